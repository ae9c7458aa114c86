// The `serve` command: wires the configuration to a namespace source and the HTTPS server.
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { NamespaceSourceConfig, ServeConfig } from './config.js';
import { createLogger } from './logger.js';
import { FileNamespaceSource } from './namespaces/file-namespace-source.js';
import { KubeNamespaceCache } from './namespaces/kube-namespace-cache.js';
import type { NamespaceSource } from './namespaces/namespace-source.js';
import { buildServer } from './server.js';

export function createNamespaceSource(config: NamespaceSourceConfig, log: Logger): NamespaceSource {
  if (config.type === 'file') {
    log.info({ file: config.path, reason: config.reason }, `reading namespace labels from file ${config.path}: ${config.reason}`);
    return new FileNamespaceSource(config.path);
  }
  const kubeConfig = new KubeConfig();
  if (config.type === 'in-cluster') kubeConfig.loadFromCluster();
  else kubeConfig.loadFromFile(config.path);
  log.info(
    { server: kubeConfig.getCurrentCluster()?.server, reason: config.reason },
    `watching namespaces of ${kubeConfig.getCurrentCluster()?.server} (${config.reason})`,
  );
  return new KubeNamespaceCache(kubeConfig, log);
}

export async function serve(config: ServeConfig): Promise<void> {
  const log = createLogger(config.logLevel);
  const namespaces = createNamespaceSource(config.namespaces, log);
  const app = buildServer({
    tls: { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) },
    namespaces,
    admit: { labelPrefix: config.labelPrefix, failClosed: config.failClosed },
    logger: log,
  });
  void namespaces.start();
  await app.listen({ port: config.port, host: config.host });

  const shutdown = async (signal: string) => {
    log.info({ signal }, 'shutting down');
    await app.close();
    await namespaces.stop();
    process.exit(0);
  };
  process.once('SIGTERM', (s) => void shutdown(s));
  process.once('SIGINT', (s) => void shutdown(s));
}
