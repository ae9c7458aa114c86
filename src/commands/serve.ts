// The `serve` command: wires the configuration to a namespace source and the HTTPS server.
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ConfigError, type NamespaceSourceConfig, type ServeConfig } from '../config.js';
import { createLogger } from '../server/logger.js';
import { WebhookMetrics } from '../server/metrics.js';
import { buildMetricsServer } from '../server/metrics-server.js';
import { FileNamespaceSource } from '../namespaces/file-namespace-source.js';
import { KubeNamespaceCache } from '../namespaces/kube-namespace-cache.js';
import { NodeWatch } from '../nodes/node-watch.js';
import type { NamespaceSource } from '../namespaces/namespace-source.js';
import { buildServer } from '../server/webhook-server.js';
import { GracefulShutdown } from '../server/shutdown.js';
import { KeyPairError, readCaBundle, readKeyPair, secureContextOptions } from '../server/tls.js';
import { ClientCaReloader } from '../server/client-certificate.js';
import { CertificateReloader } from '../server/tls-reload.js';
import { Repairer } from '../repair/repairer.js';

function loadKubeConfig(config: Exclude<NamespaceSourceConfig, { type: 'file' }>): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (config.type === 'in-cluster') kubeConfig.loadFromCluster();
  else kubeConfig.loadFromFile(config.path);
  return kubeConfig;
}

/** The namespace source, and the cluster's config when there is one (the node watch and repair use it too). */
function createNamespaceSource(
  config: NamespaceSourceConfig,
  labelPrefix: string,
  log: Logger,
): { namespaces: NamespaceSource; cache?: KubeNamespaceCache; kubeConfig?: KubeConfig } {
  if (config.type === 'file') {
    log.info({ file: config.path, reason: config.reason }, `reading namespace labels from file ${config.path}: ${config.reason}`);
    return { namespaces: new FileNamespaceSource(config.path) };
  }
  const kubeConfig = loadKubeConfig(config);
  log.info(
    { server: kubeConfig.getCurrentCluster()?.server, reason: config.reason },
    `watching namespaces of ${kubeConfig.getCurrentCluster()?.server} (${config.reason})`,
  );
  const cache = new KubeNamespaceCache(kubeConfig, log, { labelPrefix });
  return { namespaces: cache, cache, kubeConfig };
}

/** The serving pair and client CA, checked before anything starts. */
function readServingTls(config: ServeConfig) {
  try {
    return { pair: readKeyPair(config.tlsCert, config.tlsKey), clientCa: config.clientCa ? readCaBundle(config.clientCa) : undefined };
  } catch (err) {
    if (err instanceof KeyPairError) throw new ConfigError(err.message);
    throw err;
  }
}

async function listen(app: { listen(at: { port: number; host: string }): Promise<string> }, flag: string, port: number, host: string) {
  try {
    await app.listen({ port, host });
  } catch (err) {
    throw new Error(`--${flag} ${port}: cannot listen on ${host}:${port} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

function createRepairer(
  config: ServeConfig,
  namespaces: KubeNamespaceCache | undefined,
  kubeConfig: KubeConfig | undefined,
  metrics: WebhookMetrics,
  log: Logger,
): Repairer | undefined {
  if (!config.repair) {
    log.info('repair off (--repair off): objects admitted unmutated while no replica answered are neither repaired nor reported');
    return undefined;
  }
  if (!namespaces || !kubeConfig) {
    log.info('repair off: namespace labels come from a file, there is no cluster to repair');
    return undefined;
  }
  return new Repairer(kubeConfig, log, { labelPrefix: config.labelPrefix, namespaces, reporter: metrics, instance: hostname() });
}

export async function serve(config: ServeConfig): Promise<void> {
  const { log, end: endLog } = createLogger(config.logLevel);
  const { pair, clientCa } = readServingTls(config);
  const { namespaces, cache, kubeConfig } = createNamespaceSource(config.namespaces, config.labelPrefix, log);
  // parseServeConfig refuses --watch-nodes with a namespaces file.
  const nodes = config.watchNodes && kubeConfig ? new NodeWatch(kubeConfig, log) : undefined;
  const metrics = new WebhookMetrics(namespaces);
  if (nodes) metrics.trackWatch(nodes.watch);
  const repairer = createRepairer(config, cache, kubeConfig, metrics, log);
  const shutdown = new GracefulShutdown(log);
  const app = buildServer({
    tls: { cert: pair.cert, key: pair.key, clientCa },
    metrics,
    isShuttingDown: shutdown.isShuttingDown,
    namespaces,
    admit: { labelPrefix: config.labelPrefix, failClosed: config.failClosed },
    logger: log,
    nodes,
  });
  const metricsApp = buildMetricsServer(metrics, log);
  const caReloader =
    config.clientCa && clientCa
      ? new ClientCaReloader({ caFile: config.clientCa, current: clientCa, context: secureContextOptions(pair), server: app.server, log })
      : undefined;
  const reloader = new CertificateReloader({
    certFile: config.tlsCert,
    keyFile: config.tlsKey,
    current: pair,
    clientCa,
    server: caReloader?.server ?? app.server,
    log,
    metrics,
  });
  const closeAll = async () => {
    reloader.stop();
    caReloader?.stop();
    await app.close();
    await metricsApp.close();
    await repairer?.stop();
    await namespaces.stop();
    await nodes?.stop();
  };
  // The repair judges objects by their namespace's labels: it starts once they have been listed.
  void namespaces.start().then(() => repairer?.start());
  void nodes?.start();
  try {
    await listen(app, 'port', config.port, config.host);
    await listen(metricsApp, 'metrics-port', config.metricsPort, config.host);
  } catch (err) {
    await closeAll();
    throw err;
  }
  reloader.start();
  caReloader?.start();
  shutdown.install(closeAll, endLog);
}
