// Hop 1, entry: how clients reach the Service. A NodePort or LoadBalancer Service is its own L4
// entry; a ClusterIP Service is reached through an Ingress or an HTTPRoute, whose controller's
// own Service is then the L4 entry. The controller's Service is found from labels that installs
// put on it; when they do not say, the answer is "unknown", never a guess.
import { EXTERNAL_SERVICE_TYPES } from '../mutation/external-traffic-policy.js';
import type { Labels } from '../mutation/settings.js';
import { known, type Hop, type Readable } from './hop.js';
import {
  nameOf,
  namespaceOf,
  ref,
  type Gateway,
  type GatewayClass,
  type HTTPRoute,
  type Ingress,
  type IngressClass,
  type Service,
} from './objects.js';

export const INGRESS_NGINX = 'k8s.io/ingress-nginx';
const INGRESS_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';
/** Labels Helm charts put on both the IngressClass and the controller's Service. */
const SHARED_INSTALL_LABELS = ['app.kubernetes.io/name', 'app.kubernetes.io/instance'];
/** Labels Gateway API implementations put on the Service they make for a Gateway. */
const GATEWAY_SERVICE_LABELS: readonly { name: string; namespace?: string }[] = [
  { name: 'gateway.networking.k8s.io/gateway-name' },
  { name: 'gateway.envoyproxy.io/owning-gateway-name', namespace: 'gateway.envoyproxy.io/owning-gateway-namespace' },
];

/** Everything entry reads. Ingress and Gateway API lists are only read for a ClusterIP Service. */
export interface EntryFacts {
  service: Service;
  ingresses: Readable<Ingress[]>;
  ingressClasses: Readable<IngressClass[]>;
  /** undefined: the cluster serves no Gateway API (no HTTPRoute CRD). */
  httpRoutes: Readable<HTTPRoute[]> | undefined;
  gateways: Readable<Gateway[]> | undefined;
  gatewayClasses: Readable<GatewayClass[]> | undefined;
  /** Services of every namespace, to find the controller's. */
  services: Readable<Service[]>;
}

export type Entry =
  /** A NodePort or LoadBalancer Service: L4 is this Service. */
  | { path: 'direct'; l4: Service }
  /** A ClusterIP Service nothing outside the cluster reaches. */
  | { path: 'in-cluster' }
  /** Through an ingress or gateway controller; l4 is its Service when it was found. */
  | { path: 'proxy'; controller: string | undefined; l4: Service | undefined };

export const typeOf = (service: Service): string => service.spec?.type ?? 'ClusterIP';
const isExternal = (service: Service) => EXTERNAL_SERVICE_TYPES.includes(typeOf(service));

function backendsOf(ingress: Ingress): string[] {
  const paths = (ingress.spec?.rules ?? []).flatMap((r) => r.http?.paths ?? []);
  return [ingress.spec?.defaultBackend, ...paths.map((p) => p.backend)].map((b) => b?.service?.name ?? '').filter(Boolean);
}

function routesTo(route: HTTPRoute, service: Service): boolean {
  return (route.spec?.rules ?? []).some((rule) =>
    (rule.backendRefs ?? []).some(
      (b) =>
        (b.kind ?? 'Service') === 'Service' &&
        (b.group ?? '') === '' &&
        b.name === nameOf(service) &&
        (b.namespace ?? namespaceOf(route)) === namespaceOf(service),
    ),
  );
}

const matches = (labels: Labels | undefined, wanted: Labels) =>
  Object.keys(wanted).length > 0 && Object.entries(wanted).every(([k, v]) => labels?.[k] === v);

/** The one NodePort or LoadBalancer Service carrying all `wanted` labels, or why there is none. */
function serviceWithLabels(services: Service[], wanted: Labels, what: string): Readable<Service> {
  const selector = Object.entries(wanted).map(([k, v]) => `${k}=${v}`).join(',');
  const found = services.filter((s) => isExternal(s) && matches(s.metadata?.labels, wanted));
  if (found.length === 1) return known(found[0]!);
  if (found.length === 0) return { ok: false, reason: `no NodePort or LoadBalancer Service has the labels ${selector} of ${what}` };
  return { ok: false, reason: `several Services have the labels ${selector} of ${what}: ${found.map(ref).join(', ')}` };
}

function ingressClassOf(ingress: Ingress, classes: IngressClass[]): Readable<IngressClass> {
  const name = ingress.spec?.ingressClassName ?? ingress.metadata?.annotations?.[INGRESS_CLASS_ANNOTATION];
  const found = name !== undefined
    ? classes.find((c) => nameOf(c) === name)
    : classes.find((c) => c.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true');
  if (found) return known(found);
  return { ok: false, reason: name !== undefined ? `IngressClass ${name} not found` : 'the Ingress names no class and no IngressClass is the default' };
}

interface Exposure {
  evidence: string;
  controller: Readable<string>;
  l4: Readable<Service>;
}

function viaIngress(ingress: Ingress, facts: EntryFacts): Exposure {
  const evidence = `Ingress ${ref(ingress)} sends to it`;
  if (!facts.ingressClasses.ok) return { evidence, controller: facts.ingressClasses, l4: facts.ingressClasses };
  const ingressClass = ingressClassOf(ingress, facts.ingressClasses.value);
  if (!ingressClass.ok) return { evidence, controller: ingressClass, l4: ingressClass };
  const controller = ingressClass.value.spec?.controller;
  const what = `IngressClass ${nameOf(ingressClass.value)}`;
  const shared = Object.fromEntries(
    SHARED_INSTALL_LABELS.flatMap((k) => {
      const v = ingressClass.value.metadata?.labels?.[k];
      return v === undefined ? [] : [[k, v]];
    }),
  );
  const l4: Readable<Service> = !facts.services.ok
    ? facts.services
    : Object.keys(shared).length === 0
      ? { ok: false, reason: `${what} carries none of the labels ${SHARED_INSTALL_LABELS.join(', ')} that would name its controller's Service` }
      : serviceWithLabels(facts.services.value, shared, what);
  return {
    evidence: `${evidence} (${what}, controller ${controller ?? '(none)'})`,
    controller: controller ? known(controller) : { ok: false, reason: `${what} names no controller` },
    l4,
  };
}

function viaRoute(route: HTTPRoute, facts: EntryFacts): Exposure {
  const evidence = `HTTPRoute ${ref(route)} sends to it`;
  const parent = (route.spec?.parentRefs ?? []).find((p) => (p.kind ?? 'Gateway') === 'Gateway');
  const gatewayNs = parent?.namespace ?? namespaceOf(route);
  const unknownAs = (reason: string): Exposure => ({ evidence, controller: { ok: false, reason }, l4: { ok: false, reason } });
  if (!parent?.name) return unknownAs('the HTTPRoute names no Gateway');
  if (!facts.gateways?.ok) return unknownAs(facts.gateways?.ok === false ? facts.gateways.reason : 'no Gateways served');
  const gateway = facts.gateways.value.find((g) => nameOf(g) === parent.name && namespaceOf(g) === gatewayNs);
  if (!gateway) return unknownAs(`Gateway ${gatewayNs}/${parent.name} not found`);
  const className = gateway.spec?.gatewayClassName ?? '';
  const gatewayClass = facts.gatewayClasses?.ok ? facts.gatewayClasses.value.find((c) => nameOf(c) === className) : undefined;
  const controller: Readable<string> = gatewayClass?.spec?.controllerName
    ? known(gatewayClass.spec.controllerName)
    : { ok: false, reason: facts.gatewayClasses?.ok === false ? facts.gatewayClasses.reason : `GatewayClass ${className} not found` };
  let l4: Readable<Service> = { ok: false, reason: `no Service carries a Gateway API label naming Gateway ${ref(gateway)}` };
  if (!facts.services.ok) l4 = facts.services;
  else {
    for (const label of GATEWAY_SERVICE_LABELS) {
      const wanted: Labels = { [label.name]: nameOf(gateway), ...(label.namespace ? { [label.namespace]: gatewayNs } : {}) };
      const inScope = label.namespace ? facts.services.value : facts.services.value.filter((s) => namespaceOf(s) === gatewayNs);
      const found = serviceWithLabels(inScope, wanted, `Gateway ${ref(gateway)}`);
      if (found.ok || inScope.some((s) => matches(s.metadata?.labels, wanted))) {
        l4 = found;
        break;
      }
    }
  }
  return { evidence: `${evidence} through Gateway ${ref(gateway)} (class ${className}, controller ${controller.ok ? controller.value : 'unknown'})`, controller, l4 };
}

export function entryHop(facts: EntryFacts): { hop: Hop; entry: Entry } {
  const { service } = facts;
  const type = typeOf(service);
  const evidence = [`Service ${ref(service)} is type ${type}`];
  if (isExternal(service)) {
    evidence.push(type === 'LoadBalancer' ? 'clients come through the cloud load balancer to a node port' : 'clients come to a node port on any node');
    return { hop: { hop: 'entry', verdict: 'kept', evidence }, entry: { path: 'direct', l4: service } };
  }

  const unread = [facts.ingresses, facts.httpRoutes].flatMap((r) => (r && !r.ok ? [r.reason] : []));
  const exposures = [
    ...(facts.ingresses.ok ? facts.ingresses.value.filter((i) => backendsOf(i).includes(nameOf(service))).map((i) => viaIngress(i, facts)) : []),
    ...(facts.httpRoutes?.ok ? facts.httpRoutes.value.filter((r) => routesTo(r, service)).map((r) => viaRoute(r, facts)) : []),
  ];
  if (facts.httpRoutes === undefined) evidence.push('no Gateway API served (no HTTPRoute kind)');
  const first = exposures[0];
  if (!first) {
    if (unread.length > 0) {
      return { hop: { hop: 'entry', verdict: 'unknown', evidence: [...evidence, `unknown (${unread.join('; ')})`] }, entry: { path: 'in-cluster' } };
    }
    evidence.push('no Ingress or HTTPRoute sends to it: only in-cluster clients reach it, and ClusterIP traffic is not SNATed');
    return { hop: { hop: 'entry', verdict: 'kept', evidence }, entry: { path: 'in-cluster' } };
  }
  evidence.push(first.evidence);
  if (exposures.length > 1) evidence.push(`also: ${exposures.slice(1).map((e) => e.evidence).join('; ')} (not explained here)`);
  const controller = first.controller.ok ? first.controller.value : undefined;
  if (!first.l4.ok) {
    return {
      hop: { hop: 'entry', verdict: 'unknown', evidence: [...evidence, `unknown (controller's Service: ${first.l4.reason})`] },
      entry: { path: 'proxy', controller, l4: undefined },
    };
  }
  evidence.push(`the controller's own Service is ${ref(first.l4.value)} (type ${typeOf(first.l4.value)}): L4 below is that Service`);
  return { hop: { hop: 'entry', verdict: 'kept', evidence }, entry: { path: 'proxy', controller, l4: first.l4.value } };
}
