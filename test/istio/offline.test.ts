// For GitOps users, with no cluster: `realip-webhook mutate` piped into `istioctl kube-inject`
// (Istio's injector run offline on the injection template, values and mesh config from
// `istioctl manifest generate`) gives the sidecar the live path gives. The pipeline is run as
// docs/istio.md writes it, through a shell.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { manifestStream, missingPrerequisites, ROOT, type Obj } from '../e2e/webhook-harness.js';
import { generateIstioManifest, ISTIOCTL, istioVersion, missingIstio } from './istio.js';
import { deployment, pod } from './mesh-lab.js';
import { EXPECTED, interceptionFields, sidecarOf } from './what-istio-injects.js';

const missing = [...(await missingPrerequisites()).filter((m) => m.includes('dist/cli.js')), ...(await missingIstio())];
if (missing.length > 0) {
  test('prerequisites of the offline Istio pipeline', () => {
    throw new Error(missing.join('\n'));
  });
}
const PIPELINE_TIMEOUT_MS = 60_000;
const version = missing.length === 0 ? await istioVersion() : 'not built';

describe(`realip-webhook mutate | istioctl kube-inject (Istio ${version}, offline)`, { skip: missing.length > 0 && 'prerequisites missing (see above)' }, () => {
  let dir = '';
  const input = manifestStream({ ...deployment('web'), metadata: { name: 'web', namespace: 'demo' } }, { ...pod('bare'), metadata: { ...pod('bare').metadata, namespace: 'demo' } });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'realip-istio-offline-'));
    const { injector, mesh } = await generateIstioManifest({ cni: false });
    await writeFile(join(dir, 'inject-config.yaml'), injector.data.config);
    await writeFile(join(dir, 'inject-values.json'), injector.data.values);
    await writeFile(join(dir, 'mesh.yaml'), mesh.data.mesh);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /**
   * The documented pipeline, run by bash in its own process group (killed whole on time-out). No
   * kubeconfig: nothing can reach a cluster. Without --revision, istioctl would look the default
   * revision up in the cluster, and wait for it forever.
   */
  async function pipeline(withWebhook: boolean): Promise<Obj[]> {
    const inject = `"${ISTIOCTL}" kube-inject --revision default -f - --injectConfigFile inject-config.yaml --meshConfigFile mesh.yaml --valuesFile inject-values.json`;
    const mutate = `node "${join(ROOT, 'dist', 'cli.js')}" mutate -f - --namespace-labels realip.io/inject=enabled`;
    const child = spawn('bash', ['-o', 'pipefail', '-c', withWebhook ? `${mutate} | ${inject}` : inject], {
      cwd: dir,
      detached: true,
      env: { PATH: process.env.PATH, HOME: dir, KUBECONFIG: join(dir, 'no-kubeconfig') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.stdin.end(input);
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), PIPELINE_TIMEOUT_MS);
    const [code] = (await once(child, 'close')) as [number | null];
    clearTimeout(timer);
    assert.equal(code, 0, `exit ${code}: ${stderr}`);
    return parseAllDocuments(stdout).map((d) => d.toJS() as Obj).filter(Boolean);
  }

  test('with the webhook: the Deployment\'s template and the bare Pod get a TPROXY sidecar, by the same fields as on the live path', async () => {
    const [d, p] = await pipeline(true);
    assert.equal(d!.spec.template.metadata.annotations['sidecar.istio.io/interceptionMode'], 'TPROXY');
    for (const object of [d!.spec.template, p!]) {
      const sidecar = sidecarOf(object);
      assert.ok(sidecar, 'kube-inject injected a sidecar');
      assert.deepEqual(interceptionFields(sidecar), EXPECTED.TPROXY);
      assert.equal(sidecar.init, 'istio-init');
    }
  });

  test('control, kube-inject alone: REDIRECT', async () => {
    const [d, p] = await pipeline(false);
    for (const object of [d!.spec.template, p!]) assert.deepEqual(interceptionFields(sidecarOf(object)!), EXPECTED.REDIRECT);
  });
});
