// Reads what `explain` needs from a live cluster, read-only, through audit's cluster access. Each
// list that fails (most often 403 Forbidden) becomes a reason, never an exception: the hop that
// needs it says "unknown (cannot list pods in shop: forbidden)".
import { ApiException, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { describeApiError } from '../kube/api-error.js';
import { entryHop, typeOf, type EntryFacts } from '../explain/entry.js';
import type { ExplainFacts, ServiceFacts } from '../explain/explain.js';
import { known, type Readable } from '../explain/hop.js';
import { controllerWorkload, nginxConfigMapRef } from '../explain/l7.js';
import { namespaceOf, type ConfigMap, type Service, type Workload } from '../explain/objects.js';
import { KubeAuditCluster } from './audit-cluster.js';

/** Bad input: exit 2 with this one line. */
export class ExplainInputError extends Error {
  override name = 'ExplainInputError';
}

/** Every permission explain uses, as ClusterRole rules: --help prints them, docs/explain.md shows them (a unit test compares). */
export const EXPLAIN_RBAC: readonly { apiGroups: string[]; resources: string[]; verbs: string[] }[] = [
  { apiGroups: [''], resources: ['services', 'namespaces', 'configmaps'], verbs: ['get'] },
  { apiGroups: [''], resources: ['services', 'pods', 'nodes'], verbs: ['list'] },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list'] },
  { apiGroups: ['apps'], resources: ['deployments', 'replicasets', 'statefulsets', 'daemonsets'], verbs: ['list'] },
  { apiGroups: ['networking.k8s.io'], resources: ['ingresses', 'ingressclasses'], verbs: ['list'] },
  { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes', 'gateways', 'gatewayclasses'], verbs: ['list'] },
];

const GATEWAY_VERSIONS = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'];
const WORKLOAD_KINDS = ['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet'];

async function attempt<T>(what: string, read: () => Promise<T>): Promise<Readable<T>> {
  try {
    return known(await read());
  } catch (err) {
    const why = err instanceof ApiException && err.code === 403 ? 'forbidden' : describeApiError(err);
    return { ok: false, reason: `cannot ${what}: ${why}` };
  }
}

export class ExplainReader {
  private readonly cluster: KubeAuditCluster;
  private readonly core: CoreV1Api;

  constructor(kubeConfig: KubeConfig) {
    this.cluster = new KubeAuditCluster(kubeConfig);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  private async list<T>(apiVersions: readonly string[], kind: string, namespace: string | undefined, labelSelector?: string): Promise<Readable<T[]> | undefined> {
    const apiVersion = await this.cluster.servedVersion(kind, apiVersions);
    if (!apiVersion) return undefined;
    const where = namespace ? ` in ${namespace}` : '';
    return attempt(`list ${kind.toLowerCase()}s${where}`, async () => (await this.cluster.list(apiVersion, kind, namespace, labelSelector)) as T[]);
  }

  /** A kind every supported release serves; "not served" is then a reason like any other. */
  private async listServed<T>(apiVersions: readonly string[], kind: string, namespace: string | undefined, labelSelector?: string): Promise<Readable<T[]>> {
    return (await this.list<T>(apiVersions, kind, namespace, labelSelector)) ?? { ok: false, reason: `cannot list ${kind.toLowerCase()}s: not served by this cluster` };
  }

  private async serviceFacts(service: Service): Promise<ServiceFacts> {
    const ns = namespaceOf(service);
    const workloads = await Promise.all(WORKLOAD_KINDS.map((kind) => this.listServed<Workload>(['apps/v1'], kind, ns)));
    const refused = workloads.find((w) => !w.ok);
    return {
      service,
      namespace: await attempt(`get namespace ${ns}`, async () => {
        const found = await this.cluster.namespace(ns);
        if (!found) throw new Error('not found');
        return found;
      }),
      slices: await this.listServed(['discovery.k8s.io/v1', 'discovery.k8s.io/v1beta1'], 'EndpointSlice', ns, `kubernetes.io/service-name=${service.metadata?.name}`),
      pods: await this.listServed(['v1'], 'Pod', ns),
      workloads: refused ?? known(workloads.flatMap((w) => (w.ok ? w.value : []))),
    };
  }

  async read(namespace: string, name: string, labelPrefix: string): Promise<ExplainFacts> {
    let service: Service;
    try {
      service = (await this.core.readNamespacedService({ name, namespace })) as Service;
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) throw new ExplainInputError(`service ${namespace}/${name} not found`);
      const why = err instanceof ApiException && err.code === 403 ? 'forbidden' : describeApiError(err);
      throw new Error(`cannot get service ${namespace}/${name}: ${why}`);
    }
    if (typeOf(service) === 'ExternalName') {
      throw new ExplainInputError(`service ${namespace}/${name} is type ExternalName: a DNS alias, no traffic passes through it`);
    }

    const clusterIp = typeOf(service) === 'ClusterIP';
    const notRead = <T>(): Readable<T[]> => known([]);
    const entry: EntryFacts = {
      service,
      ingresses: clusterIp ? await this.listServed(['networking.k8s.io/v1'], 'Ingress', namespace) : notRead(),
      ingressClasses: clusterIp ? await this.listServed(['networking.k8s.io/v1'], 'IngressClass', undefined) : notRead(),
      httpRoutes: clusterIp ? await this.list(GATEWAY_VERSIONS, 'HTTPRoute', undefined) : undefined,
      gateways: clusterIp ? await this.list(GATEWAY_VERSIONS, 'Gateway', undefined) : undefined,
      gatewayClasses: clusterIp ? await this.list(GATEWAY_VERSIONS, 'GatewayClass', undefined) : undefined,
      services: notRead(),
    };
    if (clusterIp && ((entry.ingresses.ok && entry.ingresses.value.length > 0) || (entry.httpRoutes?.ok && entry.httpRoutes.value.length > 0))) {
      entry.services = await this.listServed(['v1'], 'Service', undefined);
    }
    const { entry: path } = entryHop(entry);
    const controllerService = path.path === 'proxy' ? path.l4 : undefined;
    const controller = controllerService ? await this.serviceFacts(controllerService) : undefined;

    let nginxConfigMap: Readable<ConfigMap | undefined> = known(undefined);
    const workload = controller?.workloads.ok ? controllerWorkload(controller.service, controller.workloads.value) : undefined;
    const cmRef = workload ? nginxConfigMapRef(workload) : undefined;
    if (cmRef) {
      nginxConfigMap = await attempt(`get configmap ${cmRef.namespace}/${cmRef.name}`, async () =>
        (await this.core.readNamespacedConfigMap({ name: cmRef.name, namespace: cmRef.namespace })) as ConfigMap,
      );
    }
    return {
      labelPrefix,
      entry,
      app: await this.serviceFacts(service),
      controller,
      nodes: await this.listServed(['v1'], 'Node', undefined),
      nginxConfigMap,
    };
  }
}
