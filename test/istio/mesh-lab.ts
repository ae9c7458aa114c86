// The live path as a cluster runs it, on loopback: the suite's kube-apiserver (Pod Security
// admission on, as by default), the built webhook registered with the shipped configuration
// (00-realip-webhook), istiod with its injection webhook registered from `istioctl manifest
// generate`, and kube-controller-manager with the deployment and replicaset controllers, so the
// Pods asserted on are the ones a ReplicaSet creates. No scheduler, no kubelet: Pods stay Pending.
import { join } from 'node:path';
import { isExecutable, KUBERNETES_BIN_DIR, startProcess, stopProcess, tail, type Proc } from '../e2e/cluster.js';
import { generateCertsForRegistration, getJson, manifestStream, missingPrerequisites, pollUntil, type Obj } from '../e2e/webhook-harness.js';
import { release } from '../kubernetes/release.js';
import { namespace, startClusterWithWebhook, type ClusterWithWebhook } from '../datapath/cluster-with-webhook.js';
import { adaptInjectorWebhook, generateIstioManifest, ISTIO_NAMESPACE, missingIstio, startIstiod, type Istiod } from './istio.js';

const CONTROLLER_MANAGER = `${KUBERNETES_BIN_DIR}/kube-controller-manager`;
const PROBE_NAMESPACE = 'istio-probe';
const POD_TIMEOUT_MS = 60_000;

export interface CreateResult {
  code: number;
  /** kubectl's stderr: the admission warnings, or the rejection. */
  stderr: string;
}

export interface IstioLab {
  control: ClusterWithWebhook;
  istiod: Istiod;
  /** `kubectl create`; a rejection is a result, not an error. */
  create(...objects: Obj[]): Promise<CreateResult>;
  /** The one Pod a Deployment's ReplicaSet created, or the ReplicaSet's reason it could not. */
  podOf(ns: string, app: string): Promise<{ pod: Obj } | { rejected: string }>;
  get(args: string[]): Promise<Obj>;
  /** Switches istiod's injector ConfigMap (it reloads it) and waits until injection follows. */
  useInjector(which: 'plain' | 'cni'): Promise<void>;
  /** Replaces the one Node by one whose kubelet reports `kubeletVersion`, and waits until istiod's native-sidecar detection follows. */
  useNode(kubeletVersion: string): Promise<void>;
  stop(): Promise<void>;
}

const NODE_NAME = 'node-1';
// Istio's sidecar mounts a projected ServiceAccount token, which needs serviceAccountName; the
// ServiceAccount admission plugin that would set it is off in the suite's API server.
const POD_SPEC = { serviceAccountName: 'default', containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] };

function node(kubeletVersion: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: NODE_NAME, labels: { 'kubernetes.io/hostname': NODE_NAME } },
    // istiod turns native sidecars on by itself only when every Node's kubelet is 1.33 or newer.
    status: { nodeInfo: { kubeletVersion: `v${kubeletVersion}` } },
  };
}

export function pod(name: string, annotations: Record<string, string> = {}): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: name }, annotations },
    spec: POD_SPEC,
  };
}

export function deployment(name: string, template: { annotations?: Record<string, string>; labels?: Record<string, string> } = {}): Obj {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, ...template.labels }, ...(template.annotations ? { annotations: template.annotations } : {}) },
        spec: POD_SPEC,
      },
    },
  };
}

/** What the lab cannot run without, each with the command that provides it. */
export async function missingLabPrerequisites(): Promise<string[]> {
  const missing = [...(await missingPrerequisites()), ...(await missingIstio())];
  if (!(await isExecutable(CONTROLLER_MANAGER))) missing.push(`${CONTROLLER_MANAGER} not found: ${release.installHint}`);
  return missing;
}

export async function startIstioLab(dir: string, kubeletVersion: string): Promise<IstioLab> {
  const [plain, cni] = await Promise.all([generateIstioManifest({ cni: false }), generateIstioManifest({ cni: true })]);
  const control = await startClusterWithWebhook(dir);
  const { cluster } = control;
  const procs: Proc[] = [];
  let istiod: Istiod | undefined;
  const kubectl = (args: string[], stdin?: string) => cluster.kubectl(args, { ...(stdin === undefined ? {} : { stdin }), allowFail: true });
  const apply = async (...objects: Obj[]) => {
    const r = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], manifestStream(...objects));
    if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
  };

  // Created, not applied: a create keeps the status it is given (the kubelet version).
  const createNode = async (version: string) => {
    const r = await kubectl(['create', '-f', '-'], manifestStream(node(version)));
    if (r.code !== 0) throw new Error(`kubectl create node failed: ${r.stderr}`);
  };
  const logs = async () => {
    const parts = await Promise.all([...procs, ...(istiod ? [istiod.proc] : [])].map(async (p) => `--- ${p.name} ---\n${await tail(p.log, 20)}`));
    parts.push(`--- webhook ---\n${await control.webhook.logTail(10)}`);
    return parts.join('\n');
  };
  const stop = async () => {
    await Promise.all(procs.map(stopProcess));
    await istiod?.stop();
    await control.stop();
  };

  // A Pod as the API server would store it now: a server-side dry run goes through every webhook.
  const dryRunPod = async (ns: string, object: Obj) => {
    const r = await kubectl(['create', '-n', ns, '--dry-run=server', '-o', 'json', '-f', '-'], manifestStream(object));
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as Obj;
  };
  const injected = (p: Obj) => [...(p.spec.initContainers ?? []), ...p.spec.containers].map((c: Obj) => c.name as string);

  try {
    await apply(namespace(ISTIO_NAMESPACE), ...plain.crds);
    await kubectl(['wait', '--for', 'condition=Established', '--timeout', '60s', 'crd', '--all']);
    await apply(plain.mesh, plain.injector, namespace(PROBE_NAMESPACE, { 'istio-injection': 'enabled' }));
    await createNode(kubeletVersion);
    const certs = generateCertsForRegistration(join(dir, 'istiod-certs'));
    istiod = await startIstiod(cluster, dir, certs);
    await apply(adaptInjectorWebhook(plain.injectorWebhook, istiod.webhookPort, certs.caBundle));
    await pollUntil('istiod to inject a sidecar into a dry-run Pod', async () => {
      return injected(await dryRunPod(PROBE_NAMESPACE, pod('probe'))).includes('istio-proxy') ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    // Port 0: no serving port; leader election off: one of each.
    procs.push(startProcess('kube-controller-manager', CONTROLLER_MANAGER, dir, [
      '--kubeconfig', cluster.kubeconfig, '--leader-elect=false', '--secure-port', '0', '--controllers', 'deployment,replicaset',
    ]));
  } catch (err) {
    const why = `${(err as Error).message}\n${await logs()}`;
    await stop();
    throw new Error(why, { cause: err });
  }

  const get = (args: string[]) => getJson(cluster, args);

  return {
    control,
    istiod,
    create: async (...objects) => {
      const { code, stderr } = await kubectl(['create', '-f', '-'], manifestStream(...objects));
      return { code, stderr };
    },
    podOf: async (ns, app) => {
      try {
        return await pollUntil(`the ReplicaSet of ${ns}/${app} to create its Pod or give up`, async () => {
          for (const p of procs) if (p.done) throw new Error(`${p.name} exited`);
          const pods = (await get(['pods', '-n', ns, '-l', `app=${app}`])).items as Obj[];
          if (pods.length > 0) return { pod: pods[0]! };
          for (const rs of (await get(['replicasets', '-n', ns, '-l', `app=${app}`])).items as Obj[]) {
            const failure = (rs.status?.conditions as Obj[] | undefined)?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
            if (failure) return { rejected: failure.message as string };
          }
          return undefined;
        }, { timeoutMs: POD_TIMEOUT_MS, intervalMs: 300 });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${await logs()}`, { cause: err });
      }
    },
    get,
    useInjector: async (which) => {
      await apply(which === 'cni' ? cni.injector : plain.injector);
      const init = which === 'cni' ? 'istio-validation' : 'istio-init';
      await pollUntil(`istiod to inject ${init} after the ConfigMap change`, async () =>
        injected(await dryRunPod(PROBE_NAMESPACE, pod('probe'))).includes(init) ? true : undefined, { timeoutMs: 60_000, intervalMs: 500 });
    },
    useNode: async (version) => {
      await kubectl(['delete', 'node', NODE_NAME, '--wait']);
      await createNode(version);
      const native = Number(version.split('.')[1]) >= 33;
      await pollUntil(`istiod to see the kubelet ${version} Node`, async () => {
        const p = await dryRunPod(PROBE_NAMESPACE, pod('probe'));
        const inInit = ((p.spec.initContainers ?? []) as Obj[]).some((c) => c.name === 'istio-proxy');
        return inInit === native ? true : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500 });
    },
    stop,
  };
}
