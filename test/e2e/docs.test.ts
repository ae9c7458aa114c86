// The docs' cluster blocks (`<!-- doc-test: run cluster -->`: helm install, kubectl apply -k,
// kubectl label, audit) run against a real kube-apiserver, a fresh one for each Markdown file
// (and for each `fresh` block), with the kubectl of the release under test. The rest is
// test/docs/docs.test.ts in npm test.
import { test } from 'node:test';
import { runDocs } from '../docs/run-docs.js';
import { helmTools } from '../helm/helm.js';
import { release } from '../kubernetes/release.js';
import { startCluster } from './cluster.js';
import { missingPrerequisites } from './webhook-harness.js';

test('the docs cluster commands, run as a user would', { timeout: 1_800_000 }, async (t) => {
  const missing = await missingPrerequisites();
  if (missing.length > 0) return t.skip(missing.join('; '));
  helmTools(); // installs helm on first use (test/helm/install-helm.sh), for the blocks marked needs=helm
  // The release's own kubectl, as a user of that release has (never the machine's: version skew).
  await runDocs(t, { mode: 'cluster', startCluster: () => startCluster(), kubectl: release.kubectl });
});
