// NodeWatch against a real kube-apiserver: Nodes are created with their status (the API server
// accepts status on Node create; no kubelet runs here), cordoned and deleted, and the counts
// follow. Then the server reads those counts per request: the node-aware warnings appear in the
// AdmissionReview response.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import type { NamespaceLookup } from '../../src/admission/admit.js';
import type { NodeCounts } from '../../src/mutation/scheduling-warnings.js';
import type { NamespaceSource } from '../../src/namespaces/namespace-source.js';
import { NodeWatch } from '../../src/nodes/node-watch.js';
import { buildServer } from '../../src/server/webhook-server.js';
import * as fx from '../fixtures/objects.js';
import { generateCerts } from '../support/certs.js';
import { startCluster, type Cluster } from './cluster.js';
import { nodeManifest } from './node-manifest.js';

const REQUIRED = { 'realip.io/inject': 'enabled', 'realip.io/anti-affinity': 'required' };

let cluster: Cluster;
let watch: NodeWatch;

const node = nodeManifest;

async function countsBecome(expected: NodeCounts): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!isDeepStrictEqual(watch.counts(), expected)) {
    if (Date.now() > deadline) assert.deepEqual(watch.counts(), expected, 'counts did not follow the API server in 15 s');
    await sleep(100);
  }
}

before(async () => {
  cluster = await startCluster();
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(cluster.kubeconfig);
  watch = new NodeWatch(kubeConfig, pino({ level: 'silent' }), { backoff: { initialMs: 200 } });
});

after(async () => {
  await watch?.stop();
  await cluster?.stop();
});

describe('NodeWatch (real kube-apiserver)', { timeout: 120_000 }, () => {
  test('no counts before the first list, then zero nodes', async () => {
    assert.equal(watch.counts(), undefined);
    await watch.start();
    assert.deepEqual(watch.counts(), { schedulable: 0, zones: 0 });
  });

  test('Ready nodes count, NotReady ones do not; zones are counted among the schedulable', async () => {
    await cluster.kubectl(['apply', '-f', '-'], {
      stdin: node('n1', 'True', 'a') + node('n2', 'True', 'b') + node('n3', 'True', 'b') + node('n4', 'False', 'c'),
    });
    await countsBecome({ schedulable: 3, zones: 2 });
  });

  test('a cordon and a delete are followed', async () => {
    await cluster.kubectl(['cordon', 'n1']);
    await countsBecome({ schedulable: 2, zones: 1 });
    await cluster.kubectl(['delete', 'node', 'n3']);
    await countsBecome({ schedulable: 1, zones: 1 });
    await cluster.kubectl(['uncordon', 'n1']);
    await countsBecome({ schedulable: 2, zones: 2 });
  });

  test('the server reads the current counts per request: Pending and deadlock warnings in the response', async () => {
    const certs = generateCerts(join(cluster.dir, 'webhook-certs'));
    const namespaces: NamespaceSource = {
      lookup: async (): Promise<NamespaceLookup> => ({ found: true, labels: REQUIRED }),
      isReady: () => true,
      size: () => 1,
      start: async () => {},
      stop: async () => {},
    };
    const app = buildServer({
      tls: { cert: certs.cert, key: certs.key },
      namespaces,
      admit: { labelPrefix: 'realip.io', failClosed: false },
      logger: pino({ level: 'silent' }),
      nodes: watch,
    });
    try {
      const warningsFor = async (replicas: number): Promise<string[]> => {
        const res = await app.inject({ method: 'POST', url: '/mutate', payload: fx.review(fx.deployment({ spec: { replicas } })) });
        assert.equal(res.statusCode, 200, res.body);
        return (res.json().response.warnings ?? []) as string[];
      };
      // Two schedulable nodes (n1, n2).
      assert.ok((await warningsFor(3)).some((w) => /replicas=3 > 2 schedulable nodes: 1 pod\(s\) will stay Pending/.test(w)));
      assert.ok((await warningsFor(2)).some((w) => /replicas=2 on 2 schedulable nodes and maxSurge=25%: a rollout will deadlock/.test(w)));
      assert.ok(!(await warningsFor(1)).some((w) => /Pending|deadlock/.test(w)));

      await cluster.kubectl(['delete', 'node', 'n2']);
      await countsBecome({ schedulable: 1, zones: 1 });
      assert.ok((await warningsFor(2)).some((w) => /replicas=2 > 1 schedulable nodes/.test(w)), 'the next request sees the new count');
    } finally {
      await app.close();
    }
  });
});
