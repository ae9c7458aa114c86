// Proves the e2e harness gives a working API server: objects are stored,
// defaulted and allocated (NodePort) like in a real cluster.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCluster } from './cluster.js';

test('real kube-apiserver stores and defaults a Deployment and a NodePort Service', { timeout: 120_000 }, async () => {
  const cluster = await startCluster();
  try {
    await cluster.kubectl(['create', 'namespace', 'smoke']);
    await cluster.kubectl(['create', 'deployment', 'web', '--image=registry.k8s.io/echoserver:1.4', '-n', 'smoke']);

    const deploy = JSON.parse((await cluster.kubectl(['get', 'deployment', 'web', '-n', 'smoke', '-o', 'json'])).stdout);
    assert.equal(deploy.metadata.name, 'web');
    assert.equal(deploy.spec.replicas, 1);
    assert.equal(deploy.spec.strategy.type, 'RollingUpdate');
    assert.equal(deploy.spec.template.spec.containers[0].image, 'registry.k8s.io/echoserver:1.4');

    await cluster.kubectl(['expose', 'deployment', 'web', '--type=NodePort', '--port=8080', '-n', 'smoke']);
    const svc = JSON.parse((await cluster.kubectl(['get', 'service', 'web', '-n', 'smoke', '-o', 'json'])).stdout);
    assert.equal(svc.spec.type, 'NodePort');
    assert.equal(svc.spec.externalTrafficPolicy, 'Cluster');
    const nodePort = svc.spec.ports[0].nodePort;
    assert.ok(Number.isInteger(nodePort) && nodePort >= 30000 && nodePort <= 32767, `nodePort allocated: ${nodePort}`);
  } finally {
    await cluster.stop();
  }
});
