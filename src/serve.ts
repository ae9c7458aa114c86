// The `serve` command: wires the configuration to a namespace source and the HTTPS server.
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { NamespaceSourceConfig, ServeConfig } from './config.js';
import { createLogger } from './logger.js';
import { FileNamespaceSource } from './namespaces/file-namespace-source.js';
import { KubeNamespaceCache } from './namespaces/kube-namespace-cache.js';
import { NodeWatch } from './nodes/node-watch.js';
import type { NamespaceSource } from './namespaces/namespace-source.js';
import { buildServer } from './server.js';

function loadKubeConfig(config: Exclude<NamespaceSourceConfig, { type: 'file' }>): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (config.type === 'in-cluster') kubeConfig.loadFromCluster();
  else kubeConfig.loadFromFile(config.path);
  return kubeConfig;
}

export function createNamespaceSource(config: NamespaceSourceConfig, log: Logger): NamespaceSource {
  if (config.type === 'file') {
    log.info({ file: config.path, reason: config.reason }, `reading namespace labels from file ${config.path}: ${config.reason}`);
    return new FileNamespaceSource(config.path);
  }
  const kubeConfig = loadKubeConfig(config);
  log.info(
    { server: kubeConfig.getCurrentCluster()?.server, reason: config.reason },
    `watching namespaces of ${kubeConfig.getCurrentCluster()?.server} (${config.reason})`,
  );
  return new KubeNamespaceCache(kubeConfig, log);
}

export async function serve(config: ServeConfig): Promise<void> {
  const log = createLogger(config.logLevel);
  const namespaces = createNamespaceSource(config.namespaces, log);
  // parseServeConfig refuses --watch-nodes with a namespaces file.
  const nodes =
    config.watchNodes && config.namespaces.type !== 'file' ? new NodeWatch(loadKubeConfig(config.namespaces), log) : undefined;
  const app = buildServer({
    tls: { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) },
    namespaces,
    admit: { labelPrefix: config.labelPrefix, failClosed: config.failClosed },
    logger: log,
    nodes,
  });
  void namespaces.start();
  void nodes?.start();
  await app.listen({ port: config.port, host: config.host });

  const shutdown = async (signal: string) => {
    log.info({ signal }, 'shutting down');
    await app.close();
    await namespaces.stop();
    await nodes?.stop();
    process.exit(0);
  };
  process.once('SIGTERM', (s) => void shutdown(s));
  process.once('SIGINT', (s) => void shutdown(s));
}
