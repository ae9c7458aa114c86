// The decision for one object: which features apply and the JSON patch that applies them.
// Pure: the admission server, the offline `mutate` command and `audit` all call this.
import { isDeepStrictEqual } from 'node:util';
import { antiAffinity, TOPOLOGY_KEYS } from './anti-affinity.js';
import { externalTrafficPolicy } from './external-traffic-policy.js';
import type { FeatureResult } from './feature.js';
import { istioInterception } from './istio-interception.js';
import type { AddOperation } from './json-patch.js';
import { valueAt, type KubeObject, type PodTemplate } from './objects.js';
import { localWithoutSpreadWarning, requiredSpreadWarnings, type NodeCounts } from './scheduling-warnings.js';
import { resolveSetting, whyNotInjected, type Labels, type SettingSource } from './settings.js';
import { isService, workloadKind, type GroupKind } from './workload-kinds.js';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface MutationInput {
  kind: GroupKind;
  operation: Operation;
  object: KubeObject;
  /** The stored object, on UPDATE. */
  oldObject?: KubeObject | undefined;
  namespaceLabels: Labels;
  labelPrefix: string;
  /** Node counts from the server's node watch; without them node-aware warnings are left out. */
  nodes?: NodeCounts | undefined;
}

export interface MutationResult {
  ops: AddOperation[];
  /** One line each for kubectl users: what changed and what risk was avoided. */
  warnings: string[];
  /** Short names of the changes made, e.g. "external-traffic-policy=Local", for logs and audit. */
  changes: string[];
  /** Why each feature (or the whole object) did nothing, for logs. */
  skips: string[];
  /** Set when the object as a whole was out of scope and no feature was tried (the `skipped` metric). */
  skipped?: true;
}

export function mutate(input: MutationInput): MutationResult {
  const result: MutationResult = { ops: [], warnings: [], changes: [], skips: [] };
  const skipAll = (skip: string, warning?: string) => {
    result.skipped = true;
    result.skips.push(skip);
    if (warning) result.warnings.push(warning);
    return result;
  };
  const collect = (feature: FeatureResult) => {
    if (feature.applied) {
      result.ops.push(...feature.ops);
      result.changes.push(feature.change);
    } else {
      result.skips.push(feature.skip);
    }
    if (feature.warning) result.warnings.push(feature.warning);
  };

  const { kind, operation, object, labelPrefix, namespaceLabels } = input;
  const workload = workloadKind(kind);
  if (!isService(kind) && !workload) {
    return skipAll(`kind ${kind.group ? `${kind.group}/` : ''}${kind.kind} is not handled`);
  }
  if (operation !== 'CREATE' && operation !== 'UPDATE') return skipAll(`operation ${operation} is not handled`);

  const objectAnnotations: SettingSource = {
    where: `annotation on the ${kind.kind}`,
    values: object.metadata?.annotations,
  };

  if (!workload) {
    const sources = [objectAnnotations, { where: 'namespace label', values: namespaceLabels }];
    const notInjected = whyNotInjected(labelPrefix, namespaceLabels, [objectAnnotations]);
    if (notInjected) return skipAll(notInjected.skip, notInjected.warning);
    const policy = externalTrafficPolicy(object, resolveSetting(labelPrefix, 'external-traffic-policy', sources));
    collect(policy);
    const spread = localWithoutSpreadWarning(object, policy.applied, labelPrefix, namespaceLabels);
    if (spread) result.warnings.push(spread);
    return result;
  }

  if (workload.createOnly && operation !== 'CREATE') return skipAll(`${kind.kind}s are only changed on CREATE`);
  const { templatePath } = workload;
  const template = valueAt(object, templatePath) as PodTemplate | undefined;
  if (!template) return skipAll(`${kind.kind} has no pod template`);

  // The Pod's own annotations are its template's; list them once.
  const annotationSources: SettingSource[] =
    templatePath.length === 0
      ? [objectAnnotations]
      : [{ where: 'annotation on the pod template', values: template.metadata?.annotations }, objectAnnotations];
  const notInjected = whyNotInjected(labelPrefix, namespaceLabels, annotationSources);
  if (notInjected) return skipAll(notInjected.skip, notInjected.warning);

  // Labelling a namespace must not roll out workloads on an unrelated update (a scale, a label).
  if (operation === 'UPDATE' && isDeepStrictEqual(template, valueAt(input.oldObject, templatePath))) {
    // A change of replicas alone can still outgrow the nodes.
    if (workload.antiAffinity) result.warnings.push(...requiredSpreadWarnings(object, template, undefined, input.nodes));
    return skipAll('UPDATE does not change the pod template');
  }

  const sources = [...annotationSources, { where: 'namespace label', values: namespaceLabels }];
  if (workload.antiAffinity) {
    const mode = resolveSetting(labelPrefix, 'anti-affinity', sources);
    const topology = resolveSetting(labelPrefix, 'anti-affinity-topology', sources);
    const spread = antiAffinity(object, templatePath, template, mode, topology);
    collect(spread);
    const addedRequired =
      spread.applied && mode.valid && mode.value === 'required' && topology.valid ? TOPOLOGY_KEYS[topology.value] : undefined;
    result.warnings.push(...requiredSpreadWarnings(object, template, addedRequired, input.nodes));
  }
  collect(
    istioInterception(
      object,
      templatePath,
      template,
      resolveSetting(labelPrefix, 'istio-interception', sources),
      namespaceLabels,
    ),
  );
  return result;
}
