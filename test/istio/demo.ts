// npm run demo:istio: prints docs/istio.md's table, measured on the live path (see mesh-lab.ts):
// what Istio's own injector made of Pods created after the webhook.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { release } from '../kubernetes/release.js';
import { istioVersion } from './istio.js';
import { missingLabPrerequisites, startIstioLab } from './mesh-lab.js';
import { markdownTable, OLD_KUBELET, whatIstioInjects } from './what-istio-injects.js';

const missing = await missingLabPrerequisites();
if (missing.length > 0) {
  console.error(`demo:istio cannot run:\n${missing.join('\n')}`);
  process.exit(1);
}

const started = Date.now();
const dir = await mkdtemp(join(tmpdir(), 'realip-istio-demo-'));
try {
  const lab = await startIstioLab(dir, OLD_KUBELET);
  try {
    const scenarios = await whatIstioInjects(lab);
    console.log(`Istio ${await istioVersion()}, Kubernetes ${release.version}\n`);
    console.log(markdownTable(scenarios));
    console.log(`\nmeasured in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await lab.stop();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
