// The docs' cluster blocks (`<!-- doc-test: run cluster -->`: helm install, kubectl apply -k,
// kubectl label, audit) run against a real kube-apiserver, a fresh one for each Markdown file
// (and for each `fresh` block). The rest is test/docs/docs.test.ts in npm test.
import { test } from 'node:test';
import { runDocs } from '../docs/run-docs.js';
import { helmTools } from '../helm/helm.js';
import { startCluster } from './cluster.js';
import { missingPrerequisites } from './webhook-harness.js';

test('the docs cluster commands, run as a user would', { timeout: 1_800_000 }, async (t) => {
  const missing = await missingPrerequisites();
  if (missing.length > 0) return t.skip(missing.join('; '));
  helmTools(); // installs helm on first use (test/helm/install-helm.sh), for the blocks marked needs=helm
  await runDocs(t, { mode: 'cluster', startCluster: () => startCluster() });
});
