// The e2e suite's kube-apiserver with the built webhook registered through the shipped
// MutatingWebhookConfiguration, as both datapath suites start it.
import { join } from 'node:path';
import { startCluster, type Cluster } from '../e2e/cluster.js';
import {
  adaptWebhookConfiguration,
  generateCertsForRegistration,
  manifestStream,
  shippedWebhookConfiguration,
  startWebhook,
  type Obj,
  type Webhook,
} from '../e2e/webhook-harness.js';

export const ENABLED = { 'realip.io/inject': 'enabled' };

export interface ClusterWithWebhook {
  cluster: Cluster;
  webhook: Webhook;
  /** `kubectl create -f -` of the objects, in order; returns kubectl's stderr (the admission warnings). */
  create(...objects: Obj[]): Promise<string>;
  stop(): Promise<void>;
}

export function namespace(name: string, labels: Record<string, string> = {}): Obj {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

/** Certificates and the webhook's log go to `dir`; `webhookArgs` are added to `serve`'s flags. */
export async function startClusterWithWebhook(dir: string, webhookArgs: string[] = []): Promise<ClusterWithWebhook> {
  const cluster = await startCluster();
  let webhook: Webhook | undefined;
  try {
    const certs = generateCertsForRegistration(join(dir, 'certs'));
    webhook = await startWebhook({ kubeconfig: cluster.kubeconfig, certs, dir, name: 'webhook', extraArgs: webhookArgs });
    const config = adaptWebhookConfiguration(await shippedWebhookConfiguration(), webhook.url, certs.caBundle);
    await cluster.kubectl(['apply', '-f', '-'], { stdin: JSON.stringify(config) });
  } catch (err) {
    await webhook?.stop();
    await cluster.stop();
    throw err;
  }
  const w = webhook;
  return {
    cluster,
    webhook: w,
    create: async (...objects) => (await cluster.kubectl(['create', '-f', '-'], { stdin: manifestStream(...objects) })).stderr,
    stop: async () => {
      await w.stop();
      await cluster.stop();
    },
  };
}
