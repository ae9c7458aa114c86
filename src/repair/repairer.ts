// `serve`'s repair of what slipped through: when no replica answered and the API server failed
// open, objects in opted-in namespaces are stored unmutated. One list+watch per audited kind,
// cluster-wide, hands every object to repairDecision() and keeps nothing of it. Services are
// patched (externalTrafficPolicy restarts no pods), guarded by the resourceVersion that was
// judged; workloads get one Event and a metric. Both writes are idempotent, so every replica
// runs this without a leader: the second patch fails its resourceVersion test, the second Event
// create is refused as AlreadyExists. Writes go one at a time; a failed one is retried with
// backoff, then left to `realip-webhook audit`.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { AUDITED_KINDS, type AuditedKind, type ListedObject } from '../commands/audit-scan.js';
import { errorMessage } from '../errors.js';
import { KubeApiError, KubeHttp } from '../kube/kube-http.js';
import { ListWatchCache, type WatchedResource } from '../kube/list-watch-cache.js';
import type { CachedNamespace } from '../namespaces/kube-namespace-cache.js';
import {
  REASON_REPAIRED,
  REASON_UNMUTATED,
  repairedMessage,
  repairEvent,
  unmutatedMessage,
  type EventTarget,
} from './repair-event.js';
import { repairDecision } from './slipped-through.js';

export type RepairOutcome = 'repaired' | 'reported' | 'failed';

export interface RepairReporter {
  /** One object repaired (Service patched) or reported (Event created), or one write that failed. */
  repair(kind: string, outcome: RepairOutcome): void;
  trackWatch(watch: WatchedResource): void;
}

export interface RepairerOptions {
  labelPrefix: string;
  namespaces: { cached(name: string): CachedNamespace | undefined };
  reporter?: RepairReporter;
  /** reportingInstance of the Events: the pod's hostname. */
  instance: string;
  /** Waits before the retries of a failed write (and of an object whose namespace is not cached yet). */
  retryDelaysMs?: readonly number[];
}

interface Watched {
  audited: AuditedKind;
  apiVersion: string;
  cache: ListWatchCache<KubernetesObject>;
}

interface Job {
  key: string;
  kind: string;
  attempt: number;
  run: () => Promise<void>;
}

const DEFAULT_RETRY_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 16_000];
/** Bound on each discovery GET and write: a stuck request must not hold up the queue. */
const REQUEST_TIMEOUT_MS = 10_000;

function plural(kind: string): string {
  return `${kind.toLowerCase()}s`;
}

function collectionPath(apiVersion: string, kind: string): string {
  return `${apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`}/${plural(kind)}`;
}

export class Repairer {
  private readonly http: KubeHttp;
  private readonly watched: Watched[] = [];
  private readonly queue: Job[] = [];
  private readonly queued = new Set<string>();
  /** uids of workloads whose Event is known to exist: no second create on their every status update. */
  private readonly reported = new Set<string>();
  /** Namespaces already warned about (no managedFields entry owns a label). */
  private readonly unknownOptIn = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly retryDelaysMs: readonly number[];
  private working = false;
  private stopped = new AbortController();

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly log: Logger,
    private readonly options: RepairerOptions,
  ) {
    this.http = new KubeHttp(kubeConfig);
    this.retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  }

  /** Finds the served version of each kind, then starts its watch. */
  async start(): Promise<void> {
    const signal = this.stopped.signal;
    for (const audited of AUDITED_KINDS) {
      const apiVersion = await this.servedVersion(audited, signal);
      if (signal.aborted) return;
      if (!apiVersion) {
        this.log.info({ kind: audited.kind }, `repair: the cluster serves no ${audited.kind} version of ${audited.apiVersions.join(', ')}; not watched`);
        continue;
      }
      // Raw JSON from the API server: a ListedObject (client-node's types would say Date for timestamps).
      const cache = new ListWatchCache<KubernetesObject>(this.kubeConfig, this.log, {
        path: collectionPath(apiVersion, audited.kind),
        resource: audited.kind.toLowerCase(),
        // Nothing is kept: each object is judged as it comes, in every list and event.
        slim: () => undefined,
        onObject: (object) => this.consider(watched, object as ListedObject, 0),
        onDeleted: (object) => {
          if (object.metadata?.uid) this.reported.delete(object.metadata.uid);
        },
      });
      const watched: Watched = { audited, apiVersion, cache };
      this.options.reporter?.trackWatch(cache);
      this.watched.push(watched);
      void cache.start();
    }
    this.log.info(
      { kinds: this.watched.map((w) => `${w.apiVersion} ${w.audited.kind}`) },
      'repair: watching for objects admitted unmutated in opted-in namespaces',
    );
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.all(this.watched.map((w) => w.cache.stop()));
  }

  /** The first of the kind's versions the cluster serves; asks again every few seconds while it cannot tell. */
  private async servedVersion(audited: AuditedKind, signal: AbortSignal): Promise<string | undefined> {
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        for (const apiVersion of audited.apiVersions) {
          const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
          try {
            const list = await this.bounded((s) => this.http.getJson<{ resources?: { name?: string }[] }>(path, {}, s));
            if (list.resources?.some((r) => r.name === plural(audited.kind))) return apiVersion;
          } catch (err) {
            if (!(err instanceof KubeApiError && err.status === 404)) throw err;
          }
        }
        return undefined;
      } catch (err) {
        if (signal.aborted) return undefined;
        const delay = this.retryDelaysMs[Math.min(attempt, this.retryDelaysMs.length - 1)] ?? 1000;
        this.log.warn({ kind: audited.kind, err: errorMessage(err) }, `repair: discovery of ${audited.kind} failed; asking again in ${delay} ms`);
        await new Promise<void>((resolve) => {
          this.later(delay, resolve);
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    }
    return undefined;
  }

  /** Judges one object; queues its patch or Event. Never throws into the watch. */
  private consider(watched: Watched, object: ListedObject, attempt: number): void {
    try {
      const { audited, apiVersion } = watched;
      const { namespace, uid, name } = object.metadata ?? {};
      if (!namespace || !uid || !name) return;
      if (audited.kind !== 'Service' && this.reported.has(uid)) return;
      const cached = this.options.namespaces.cached(namespace);
      if (!cached) {
        // A namespace the namespace watch has not delivered yet: ask again shortly.
        if (attempt < this.retryDelaysMs.length) this.later(this.retryDelaysMs[attempt]!, () => this.consider(watched, object, attempt + 1));
        return;
      }
      const labels = cached.metadata?.labels ?? {};
      const decision = repairDecision(object, audited, apiVersion, { name: namespace, labels, labelsSetAt: cached.labelsSetAt }, this.options.labelPrefix);
      if (decision.action === 'none') {
        if (cached.labelsSetAt === undefined && labels[`${this.options.labelPrefix}/inject`] === 'enabled' && !this.unknownOptIn.has(namespace)) {
          this.unknownOptIn.add(namespace);
          this.log.warn({ namespace, reason: decision.reason }, `repair: objects of namespace ${namespace} are not checked: ${decision.reason}`);
        }
        return;
      }
      const target: EventTarget = { apiVersion, kind: audited.kind, namespace, name, uid, resourceVersion: object.metadata?.resourceVersion };
      const fields = {
        kind: audited.kind,
        namespace,
        name,
        uid,
        createdAt: object.metadata?.creationTimestamp,
        labelsSetAt: new Date(cached.labelsSetAt!).toISOString(),
        changes: decision.drift.changes,
      };
      if (decision.action === 'patch') {
        this.enqueue({ key: `${uid}/${target.resourceVersion}`, kind: audited.kind, attempt: 0, run: () => this.patchService(target, decision.drift.patch, decision.drift.changes, fields) });
      } else {
        this.enqueue({ key: `${uid}/event`, kind: audited.kind, attempt: 0, run: () => this.report(target, decision.drift.changes, fields) });
      }
    } catch (err) {
      this.log.error({ kind: watched.audited.kind, name: object.metadata?.name, err: errorMessage(err) }, 'repair: judging an object failed');
    }
  }

  private async patchService(target: EventTarget, ops: unknown[], changes: string[], fields: object): Promise<void> {
    // The test makes the patch fail if the Service changed since it was judged (as audit's does).
    const guard = target.resourceVersion ? [{ op: 'test', path: '/metadata/resourceVersion', value: target.resourceVersion }] : [];
    const path = `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/services/${encodeURIComponent(target.name)}`;
    try {
      await this.bounded((s) => this.http.send('PATCH', path, [...guard, ...ops], s, 'application/json-patch+json'));
    } catch (err) {
      // Deleted, or changed since (by the other replica's repair, say): the watch brings the new version.
      if (err instanceof KubeApiError && (err.status === 404 || err.status === 409 || (err.status === 422 && (await this.changedSince(path, target))))) {
        this.log.debug({ ...fields, err: err.message }, 'repair: Service changed or gone since it was judged');
        return;
      }
      throw err;
    }
    this.options.reporter?.repair(target.kind, 'repaired');
    this.log.info(fields, `repair: Service ${target.namespace}/${target.name} was admitted unmutated; set ${changes.join(', ')} (restarts no pods)`);
    await this.createEvent(target, 'Normal', REASON_REPAIRED, repairedMessage({ changes }), fields).catch((err: unknown) => {
      this.log.warn({ ...fields, err: errorMessage(err) }, 'repair: the Event on the repaired Service could not be written');
    });
  }

  /**
   * A failed JSON-patch test and a refused change both answer 422 with the same message: the
   * Service's resourceVersion now tells them apart.
   */
  private async changedSince(path: string, target: EventTarget): Promise<boolean> {
    try {
      const now = await this.bounded((s) => this.http.getJson<ListedObject>(path, {}, s));
      return now.metadata?.resourceVersion !== target.resourceVersion;
    } catch (err) {
      return err instanceof KubeApiError && err.status === 404;
    }
  }

  private async report(target: EventTarget, changes: string[], fields: object): Promise<void> {
    const created = await this.createEvent(target, 'Warning', REASON_UNMUTATED, unmutatedMessage({ kind: target.kind, name: target.name, changes }), fields);
    this.reported.add(target.uid);
    if (!created) return;
    this.options.reporter?.repair(target.kind, 'reported');
    this.log.warn(fields, `repair: ${target.kind} ${target.namespace}/${target.name} was admitted unmutated and lacks ${changes.join(', ')}; reported in an Event (its pod template is left alone: changing it rolls out new pods)`);
  }

  /** True when this call created the Event; false when it existed already (another replica, an earlier run). */
  private async createEvent(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string, fields: object): Promise<boolean> {
    const event = repairEvent(target, type, reason, message, this.options.instance, new Date());
    try {
      await this.bounded((s) => this.http.send('POST', `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/events`, event, s));
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) {
        this.log.debug({ ...fields, event: event.metadata.name }, 'repair: Event already written');
        return false;
      }
      throw err;
    }
  }

  private enqueue(job: Job): void {
    if (this.queued.has(job.key) || this.stopped.signal.aborted) return;
    this.queued.add(job.key);
    this.queue.push(job);
    void this.work();
  }

  private async work(): Promise<void> {
    if (this.working) return;
    this.working = true;
    try {
      for (let job = this.queue.shift(); job && !this.stopped.signal.aborted; job = this.queue.shift()) {
        this.queued.delete(job.key);
        try {
          await job.run();
        } catch (err) {
          this.failed(job, err);
        }
      }
    } finally {
      this.working = false;
    }
  }

  private failed(job: Job, err: unknown): void {
    if (this.stopped.signal.aborted) return;
    this.options.reporter?.repair(job.kind, 'failed');
    const delay = this.retryDelaysMs[job.attempt];
    const fields = { kind: job.kind, key: job.key, err: errorMessage(err), attempts: job.attempt + 1 };
    if (delay === undefined) {
      this.log.error(fields, `repair: gave up on a ${job.kind}; realip-webhook audit lists it`);
      return;
    }
    this.log.error({ ...fields, retryInMs: delay }, `repair: writing for a ${job.kind} failed; retrying in ${delay} ms`);
    this.later(delay, () => this.enqueue({ ...job, attempt: job.attempt + 1 }));
  }

  private later(ms: number, fn: () => void): void {
    if (this.stopped.signal.aborted) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  /** Runs `request` with an abort after REQUEST_TIMEOUT_MS or on stop(). */
  private async bounded<R>(request: (signal: AbortSignal) => Promise<R>): Promise<R> {
    const signal = AbortSignal.any([this.stopped.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]);
    return request(signal);
  }
}
