// Hop 4, in the pod: an istio-proxy sidecar in REDIRECT mode connects to the app from 127.0.0.6;
// TPROXY keeps the client's address. Why a Pod did not get TPROXY comes from the webhook's own
// decision for its workload (opt-in, Pod Security level, ambient mode, an explicit annotation).
import { type NamespaceInfo } from '../commands/audit-scan.js';
import {
  DATAPLANE_MODE_LABEL,
  INTERCEPTION_ANNOTATION,
  POD_SECURITY_ENFORCE_LABEL,
} from '../mutation/istio-interception.js';
import { mutate } from '../mutation/mutate.js';
import { readyEndpoints, topOwner } from './endpoints.js';
import { SEES, type Hop, type Readable } from './hop.js';
import { nameOf, namespaceOf, type Container, type EndpointSlice, type Pod, type Service, type Workload } from './objects.js';

export interface PodFacts {
  service: Service;
  slices: Readable<EndpointSlice[]>;
  pods: Readable<Pod[]>;
  workloads: Readable<Workload[]>;
  namespace: Readable<NamespaceInfo>;
  labelPrefix: string;
  /** The app is reached through an L7 proxy: the client travels in X-Forwarded-For, whatever the TCP source. */
  behindL7Proxy: boolean;
}

export interface Sidecar {
  native: boolean;
  mode: string;
  /** Where the mode was read. */
  from: string;
}

const PROXY = 'istio-proxy';

function modeArg(c: Container | undefined): string | undefined {
  const args = c?.args ?? [];
  const i = args.indexOf('-m');
  return i >= 0 ? args[i + 1] : undefined;
}

/** The Pod's istio-proxy and its interception mode, or undefined when it has none. */
export function sidecarOf(pod: Pod): Sidecar | undefined {
  const inits = pod.spec?.initContainers ?? [];
  const nativeProxy = inits.find((c) => c.name === PROXY && c.restartPolicy === 'Always');
  const proxy = nativeProxy ?? pod.spec?.containers?.find((c) => c.name === PROXY);
  if (!proxy) return undefined;
  const native = nativeProxy !== undefined;
  const env = proxy.env?.find((e) => e.name === 'ISTIO_META_INTERCEPTION_MODE')?.value;
  if (env) return { native, mode: env, from: `istio-proxy env ISTIO_META_INTERCEPTION_MODE` };
  const init = inits.find((c) => c.name === 'istio-init' || c.name === 'istio-validation');
  const arg = modeArg(init);
  if (arg) return { native, mode: arg, from: `${init!.name} -m` };
  const annotation = pod.metadata?.annotations?.[INTERCEPTION_ANNOTATION];
  if (annotation) return { native, mode: annotation, from: `annotation ${INTERCEPTION_ANNOTATION}` };
  return { native, mode: 'REDIRECT', from: "Istio's default" };
}

/** Why the webhook gave this Pod no TPROXY, and the fix, from its decision on the Pod's workload. */
function whyRedirect(facts: PodFacts, pod: Pod): { why: string; fix: string } {
  const ns = namespaceOf(facts.service);
  if (!facts.namespace.ok) return { why: `why unknown (${facts.namespace.reason})`, fix: `set ${INTERCEPTION_ANNOTATION}: TPROXY on the pod template` };
  const owner = topOwner(pod, facts.workloads);
  if (!owner.ok) return { why: `why unknown (${owner.reason})`, fix: `set ${INTERCEPTION_ANNOTATION}: TPROXY on the pod template` };
  const object = owner.value ?? pod;
  const kind = owner.value?.kind ?? 'Pod';
  const group = owner.value ? (owner.value.apiVersion?.split('/').at(-2) ?? '') : '';
  const id = `${kind.toLowerCase()}/${nameOf(object)}`;
  const restart = owner.value ? `kubectl rollout restart ${id} -n ${ns}` : `recreate Pod ${nameOf(pod)}`;
  const decision = mutate({ kind: { group: owner.value ? group : '', kind }, operation: 'CREATE', object, namespaceLabels: facts.namespace.value.labels, labelPrefix: facts.labelPrefix });
  if (decision.changes.includes('istio-interception=TPROXY')) {
    return { why: `the webhook would set TPROXY on ${id} today: its Pods were created before the opt-in`, fix: restart };
  }
  // Istio interception is the feature mutate() decides last: its reason is the last skip.
  const why = decision.skips.at(-1) ?? 'the webhook would not change it';
  const level = facts.namespace.value.labels[POD_SECURITY_ENFORCE_LABEL];
  if (why.includes('pod-security')) {
    return {
      why: `${why}: TPROXY needs NET_ADMIN in istio-proxy, which Pod Security ${level} forbids`,
      fix: `move namespace ${ns} to Istio ambient mode (${DATAPLANE_MODE_LABEL}=ambient), or read the client from X-Forwarded-For behind an ingress`,
    };
  }
  if (why.startsWith('namespace') && why.includes(`${facts.labelPrefix}/inject`)) {
    return { why: `the webhook leaves it alone: ${why}`, fix: `kubectl label namespace ${ns} ${facts.labelPrefix}/inject=enabled --overwrite && ${restart}` };
  }
  return { why: `the webhook leaves it alone: ${why}`, fix: `set ${INTERCEPTION_ANNOTATION}: TPROXY on the pod template of ${id}` };
}

export function inThePodHop(facts: PodFacts): Hop {
  const hop = 'in the pod' as const;
  if (!facts.slices.ok) return { hop, verdict: 'unknown', evidence: [`unknown (${facts.slices.reason})`] };
  const names = [...new Set(readyEndpoints(facts.slices.value).flatMap((e) => (e.pod ? [e.pod] : [])))];
  if (names.length === 0) {
    return { hop, verdict: 'unknown', evidence: ['unknown (no ready endpoint names a Pod: a Service without a selector, or EndpointSlices written by hand)'] };
  }
  if (!facts.pods.ok) return { hop, verdict: 'unknown', evidence: [`unknown (${facts.pods.reason})`] };
  const evidence: string[] = [];
  if (facts.namespace.ok) {
    const labels = facts.namespace.value.labels;
    evidence.push(`namespace Pod Security enforce level: ${labels[POD_SECURITY_ENFORCE_LABEL] ?? '(none)'}; Istio ambient: ${labels[DATAPLANE_MODE_LABEL] === 'ambient' ? 'yes' : 'no'}`);
  }
  const pods = names.map((n) => facts.pods.ok ? facts.pods.value.find((p) => nameOf(p) === n) : undefined);
  const missing = names.filter((_, i) => !pods[i]);
  if (missing.length === names.length) return { hop, verdict: 'unknown', evidence: [...evidence, `unknown (Pods ${missing.join(', ')} not found)`] };
  let redirect: Pod | undefined;
  for (const pod of pods) {
    if (!pod) continue;
    const sidecar = sidecarOf(pod);
    if (!sidecar) evidence.push(`Pod ${nameOf(pod)}: no istio-proxy`);
    else {
      evidence.push(`Pod ${nameOf(pod)}: istio-proxy ${sidecar.native ? 'native sidecar (init container)' : 'sidecar container'}, interception ${sidecar.mode} (${sidecar.from})`);
      if (sidecar.mode !== 'TPROXY') redirect ??= pod;
    }
  }
  if (!redirect) return { hop, verdict: 'kept', evidence };
  const { why, fix } = whyRedirect(facts, redirect);
  if (facts.behindL7Proxy) {
    evidence.push('REDIRECT: the app sees 127.0.0.6 as the TCP source, the client stays in X-Forwarded-For', why);
    return { hop, verdict: 'kept', evidence };
  }
  evidence.push('REDIRECT: istio-proxy connects to the app from 127.0.0.6', why);
  return { hop, verdict: 'lost', evidence, sees: SEES.sidecar, fix };
}
