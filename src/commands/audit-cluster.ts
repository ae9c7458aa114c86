// AuditCluster on a real API server, with @kubernetes/client-node.
import {
  ApiException,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Namespace,
} from '@kubernetes/client-node';
import { describeApiError } from '../kube/api-error.js';
import type { AddOperation } from '../mutation/json-patch.js';
import type { AuditCluster, ListedObject, NamespaceInfo } from './audit-scan.js';

const PAGE_SIZE = 500;

function info(ns: V1Namespace): NamespaceInfo {
  return { name: ns.metadata?.name ?? '', labels: ns.metadata?.labels ?? {} };
}

/** KubernetesObjectApi with its (protected) discovery opened up, to pick a served version. */
class ObjectApi extends KubernetesObjectApi {
  async serves(apiVersion: string, kind: string): Promise<boolean> {
    return (await this.resource(apiVersion, kind)) !== undefined;
  }
}

export class KubeAuditCluster implements AuditCluster {
  private readonly core: CoreV1Api;
  private readonly objects: ObjectApi;

  constructor(kubeConfig: KubeConfig) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.objects = kubeConfig.makeApiClient(ObjectApi);
  }

  async namespacesWithLabel(selector: string): Promise<NamespaceInfo[]> {
    const list = await this.core.listNamespace({ labelSelector: selector });
    return list.items.map(info).sort((a, b) => a.name.localeCompare(b.name));
  }

  async namespace(name: string): Promise<NamespaceInfo | undefined> {
    try {
      return info(await this.core.readNamespace({ name }));
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  async servedVersion(kind: string, apiVersions: readonly string[]): Promise<string | undefined> {
    for (const apiVersion of apiVersions) {
      // A group version the cluster does not serve at all answers 404: try the next one.
      if (await this.objects.serves(apiVersion, kind).catch(() => false)) return apiVersion;
    }
    return undefined;
  }

  /** Without a namespace: every namespace's (or a cluster-scoped kind's) objects. */
  async list(apiVersion: string, kind: string, namespace: string | undefined, labelSelector?: string): Promise<ListedObject[]> {
    const items: ListedObject[] = [];
    let continueToken: string | undefined;
    do {
      const page = await this.objects.list(
        apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector, PAGE_SIZE, continueToken,
      );
      // List items carry no apiVersion and kind of their own.
      items.push(...page.items.map((item) => ({ ...(item as ListedObject), apiVersion, kind })));
      continueToken = page.metadata?._continue || undefined;
    } while (continueToken);
    return items;
  }

  async patchService(namespace: string, name: string, resourceVersion: string | undefined, ops: AddOperation[]): Promise<void> {
    // The test makes the patch fail if the Service changed since it was audited.
    const guard = resourceVersion ? [{ op: 'test', path: '/metadata/resourceVersion', value: resourceVersion }] : [];
    try {
      await this.core.patchNamespacedService(
        { name, namespace, body: [...guard, ...ops] },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
    } catch (err) {
      throw new Error(describeApiError(err));
    }
  }
}
