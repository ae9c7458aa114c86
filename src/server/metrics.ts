// Prometheus series of one webhook instance, on a registry of its own (not prom-client's global
// one) so that tests and tools can run several servers in one process. The HTTP layer records
// them from each admission's summary; admit() itself stays free of I/O and metrics.
import type { X509Certificate } from 'node:crypto';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AdmissionSummary } from '../admission/admit.js';
import type { WatchedResource } from '../kube/list-watch-cache.js';
import { WORKLOAD_KINDS } from '../mutation/workload-kinds.js';
import type { NamespaceSource } from '../namespaces/namespace-source.js';
import type { RepairOutcome } from '../repair/repairer.js';

const PREFIX = 'realip_webhook_';

/** Admission work is sub-millisecond; the top buckets catch a namespace GET on a cache miss. */
export const DURATION_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

export type AdmissionOutcome = 'patched' | 'unchanged' | 'skipped' | 'error';

// Anyone who can reach the port can send any kind: label values stay within this set so a
// client cannot grow the registry without bound.
const KNOWN_KINDS = new Set(['Service', ...Object.keys(WORKLOAD_KINDS)]);

export class WebhookMetrics {
  readonly registry = new Registry();
  private readonly admissions: Counter<'kind' | 'operation' | 'outcome'>;
  private readonly mutations: Counter<'feature'>;
  private readonly duration: Histogram;
  private readonly rejected: Counter<'status'>;
  private readonly droppedConnections: Counter;
  private readonly certificateExpiry: Gauge;
  private readonly certificateReloads: Counter<'result'>;
  private readonly watchRestarts: Counter<'resource' | 'reason'>;
  private readonly watchRelists: Counter<'resource'>;
  private readonly watched: WatchedResource[] = [];
  private readonly repairs: Counter<'kind' | 'outcome'>;

  constructor(namespaces: NamespaceSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.admissions = new Counter({
      name: `${PREFIX}admission_requests_total`,
      help: 'AdmissionReviews answered, by object kind (other for kinds the webhook does not know), operation and outcome (patched, unchanged, skipped, error)',
      labelNames: ['kind', 'operation', 'outcome'],
      registers,
    });
    this.mutations = new Counter({
      name: `${PREFIX}mutations_total`,
      help: 'Changes made, by feature (external-traffic-policy, anti-affinity, istio-interception)',
      labelNames: ['feature'],
      registers,
    });
    this.duration = new Histogram({
      name: `${PREFIX}request_duration_seconds`,
      help: 'Time to answer POST /mutate, from its headers received to its response sent',
      buckets: DURATION_BUCKETS_SECONDS,
      registers,
    });
    this.rejected = new Counter({
      name: `${PREFIX}rejected_requests_total`,
      help: 'POST /mutate answered without an AdmissionReview, by HTTP status (400/413/415 bad input, 401 no client certificate, 500 fail-closed error, 503 shed under load)',
      labelNames: ['status'],
      registers,
    });
    this.droppedConnections = new Counter({
      name: `${PREFIX}dropped_connections_total`,
      help: 'Connections closed on arrival because the server already held its maximum',
      registers,
    });
    new Gauge({
      name: `${PREFIX}namespace_cache_size`,
      help: 'Namespaces whose labels are held',
      registers,
      collect() {
        this.set(namespaces.size());
      },
    });
    new Gauge({
      name: `${PREFIX}namespace_cache_last_event_age_seconds`,
      help: 'Seconds since the namespace cache last received a list (first or re-list) or a watch event (+Inf before the first); grows on a quiet cluster too',
      registers,
      collect() {
        const at = namespaces.lastEventAt;
        this.set(at ? (Date.now() - at) / 1000 : Infinity);
      },
    });
    this.certificateExpiry = new Gauge({
      name: `${PREFIX}tls_certificate_expiry_timestamp_seconds`,
      help: 'Unix time at which the serving certificate in use expires (its notAfter)',
      registers,
    });
    this.certificateReloads = new Counter({
      name: `${PREFIX}tls_certificate_reloads_total`,
      help: 'Serving certificate changes seen on disk, by result: reloaded, or refused (the previous certificate is kept)',
      labelNames: ['result'],
      registers,
    });
    this.watchRestarts = new Counter({
      name: `${PREFIX}watch_restarts_total`,
      help: 'List+watch restarts after a failure, by resource (namespace, node) and reason (list_failed, watch_failed, expired, too_large_resource_version, inactive, closed_without_events, stream_broken)',
      labelNames: ['resource', 'reason'],
      registers,
    });
    this.watchRelists = new Counter({
      name: `${PREFIX}watch_relists_total`,
      help: 'Full lists after the first, by resource: each replaces the cache',
      labelNames: ['resource'],
      registers,
    });
    this.repairs = new Counter({
      name: `${PREFIX}repairs_total`,
      help: 'Objects found admitted unmutated in opted-in namespaces (no replica answered, failurePolicy Ignore), by kind and outcome: repaired (a Service patched), reported (an Event on a workload), failed (a write that failed; retried)',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    const watched = this.watched;
    new Gauge({
      name: `${PREFIX}watch_last_success_age_seconds`,
      help: 'Seconds since the last successful list or watch event (bookmarks included) of the resource (+Inf before the first); stays under a minute on a healthy cluster, quiet or not',
      labelNames: ['resource'],
      registers,
      collect() {
        for (const watch of watched) {
          const at = watch.lastSuccessAt;
          this.set({ resource: watch.resource }, at ? (Date.now() - at) / 1000 : Infinity);
        }
      },
    });
    if (namespaces.watch) this.trackWatch(namespaces.watch);
  }

  /** Counts the restarts and relists of a list+watch, and exposes the age of its last success. */
  trackWatch(watch: WatchedResource): void {
    const { resource } = watch;
    this.watched.push(watch);
    watch.reporter = {
      restarted: (reason) => this.watchRestarts.inc({ resource, reason }),
      relisted: () => this.watchRelists.inc({ resource }),
    };
  }

  repair(kind: string, outcome: RepairOutcome): void {
    this.repairs.inc({ kind, outcome });
  }

  admission(summary: Pick<AdmissionSummary, 'kind' | 'operation' | 'outcome' | 'changes' | 'skipped'>): void {
    this.admissions.inc({
      kind: KNOWN_KINDS.has(summary.kind) ? summary.kind : 'other',
      operation: summary.operation,
      outcome: summary.skipped && summary.outcome === 'unchanged' ? 'skipped' : summary.outcome,
    });
    for (const change of summary.changes) this.mutations.inc({ feature: change.split('=')[0] ?? change });
  }

  /** Every POST /mutate, answered or not. */
  requestDone(seconds: number, status: number): void {
    this.duration.observe(seconds);
    if (status >= 400) this.rejected.inc({ status: String(status) });
  }

  connectionDropped(): void {
    this.droppedConnections.inc();
  }

  certificateInUse(certificate: X509Certificate): void {
    this.certificateExpiry.set(Date.parse(certificate.validTo) / 1000);
  }

  certificateReloaded(result: 'reloaded' | 'refused'): void {
    this.certificateReloads.inc({ result });
  }
}
