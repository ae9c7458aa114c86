// A helm post-renderer (run as a postrenderer/v1 plugin, see upgrade.test.ts): every
// MutatingWebhookConfiguration calls URL instead of its Service, because the suite runs the
// webhook on the host and the cluster has no kubelet and no Service routing. Nothing else changes,
// so the chart's own configuration (its caBundle, rules, failurePolicy) is what the API server uses.
//   node test/helm/post-render-url.ts URL  < manifests  > manifests
import { readFileSync } from 'node:fs';
import { parseAllDocuments, stringify } from 'yaml';

const url = process.argv[2];
if (!url) throw new Error('usage: node test/helm/post-render-url.ts URL');
const docs = parseAllDocuments(readFileSync(0, 'utf8')).map((d) => d.toJS() as Record<string, any> | null).filter((o) => o !== null);
for (const o of docs) {
  if (o.kind !== 'MutatingWebhookConfiguration') continue;
  for (const webhook of o.webhooks ?? []) {
    delete webhook.clientConfig.service;
    webhook.clientConfig.url = url;
  }
}
process.stdout.write(docs.map((o) => `---\n${stringify(o)}`).join(''));
