// What counts as a schedulable node and a zone, and the --watch-nodes flag. The watch itself runs
// against a real API server in test/e2e/node-watch.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Node } from '@kubernetes/client-node';
import { BUNDLED_NAMESPACES_FILE, ConfigError, parseServeConfig } from '../../src/config.js';
import { countNodes, isSchedulable, slimNode } from '../../src/nodes/node-watch.js';

function node(name: string, o: { ready?: 'True' | 'False' | 'Unknown'; cordoned?: boolean; zone?: string } = {}): V1Node {
  return {
    metadata: { name, labels: o.zone ? { 'topology.kubernetes.io/zone': o.zone } : {} },
    spec: o.cordoned ? { unschedulable: true } : {},
    status: { conditions: o.ready ? [{ type: 'Ready', status: o.ready }] : [] },
  };
}

describe('countNodes', () => {
  test('only Ready, uncordoned nodes count, and zones are counted among them', () => {
    const nodes = [
      node('a', { ready: 'True', zone: 'z1' }),
      node('b', { ready: 'True', zone: 'z1' }),
      node('c', { ready: 'True', zone: 'z2' }),
      node('cordoned', { ready: 'True', cordoned: true, zone: 'z3' }),
      node('not-ready', { ready: 'False', zone: 'z4' }),
      node('unknown', { ready: 'Unknown' }),
      node('no-conditions'),
    ];
    assert.deepEqual(countNodes(nodes), { schedulable: 3, zones: 2 });
  });

  test('nodes without a zone label add no zone', () => {
    assert.deepEqual(countNodes([node('a', { ready: 'True' }), node('b', { ready: 'True' })]), { schedulable: 2, zones: 0 });
  });

  test('isSchedulable needs the Ready condition True', () => {
    assert.equal(isSchedulable(node('a', { ready: 'True' })), true);
    assert.equal(isSchedulable(node('a', { ready: 'True', cordoned: true })), false);
    assert.equal(isSchedulable(node('a', { ready: 'False' })), false);
  });
});

describe('slimNode', () => {
  test('keeps what is counted and the resourceVersion, drops the rest', () => {
    const big: V1Node = {
      metadata: { name: 'a', resourceVersion: '7', labels: { 'topology.kubernetes.io/zone': 'z1', 'kubernetes.io/os': 'linux' }, annotations: { x: 'y' } },
      spec: { unschedulable: true, podCIDR: '10.0.0.0/24' },
      status: {
        conditions: [{ type: 'Ready', status: 'True' }, { type: 'MemoryPressure', status: 'False' }],
        images: [{ names: ['registry.k8s.io/pause:3.9'], sizeBytes: 1 }],
      },
    };
    const slimmed = slimNode(big);
    assert.deepEqual(slimmed, {
      metadata: { name: 'a', resourceVersion: '7', labels: { 'topology.kubernetes.io/zone': 'z1' } },
      spec: { unschedulable: true },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    });
    assert.deepEqual(countNodes([slimmed]), countNodes([big]));
  });
});

describe('--watch-nodes', () => {
  let work = '';
  let cert = '';
  let kubeconfig = '';
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'realip-watch-nodes-'));
    cert = join(work, 'tls.crt');
    kubeconfig = join(work, 'kubeconfig');
    writeFileSync(cert, 'x');
    writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\n');
  });
  after(() => rmSync(work, { recursive: true, force: true }));
  const tls = () => ['--tls-cert', cert, '--tls-key', cert];
  // No cluster; the example namespaces file is there, as in a checkout.
  const none = (path: string) => path === BUNDLED_NAMESPACES_FILE;

  test('off by default; on by flag or REALIP_WATCH_NODES', () => {
    assert.equal(parseServeConfig([...tls(), '--kubeconfig', kubeconfig], {}, none).watchNodes, false);
    assert.equal(parseServeConfig([...tls(), '--kubeconfig', kubeconfig, '--watch-nodes'], {}, none).watchNodes, true);
    assert.equal(parseServeConfig([...tls(), '--kubeconfig', kubeconfig], { REALIP_WATCH_NODES: 'true' }, none).watchNodes, true);
  });

  test('refused without a cluster, naming why labels come from a file', () => {
    assert.throws(
      () => parseServeConfig([...tls(), '--watch-nodes'], { HOME: '/nowhere' }, none),
      (err: unknown) =>
        err instanceof ConfigError && /--watch-nodes needs a cluster .*no cluster configured/.test(err.message),
    );
  });
});
