// HTTPS transport: parse the body, look up the namespace, call admit(), serialize. No decisions here.
import underPressure from '@fastify/under-pressure';
import Fastify, { LogController, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { admit, FailClosedError, type AdmissionSummary, type AdmitOptions, type NamespaceLookup } from '../admission/admit.js';
import { InvalidReviewError } from '../admission/invalid-review.js';
import { parseReview } from '../admission/review.js';
import type { NodeCounts } from '../mutation/scheduling-warnings.js';
import type { NamespaceSource } from '../namespaces/namespace-source.js';
import { requireClientCertificate } from './client-certificate.js';
import { defaultLimits, loadShedding, reportDroppedConnections, type ServerLimits } from './limits.js';
import type { WebhookMetrics } from './metrics.js';
import { secureContextOptions, type ServingTls } from './tls.js';
import { errorMessage } from '../errors.js';

// An UPDATE review carries the object and the old object, each up to the API server's 3 MiB limit.
export const BODY_LIMIT_BYTES = 8 * 1024 * 1024;
// The API server drops idle connections after 90 s; closing later than that avoids racing a
// request onto a connection the server is closing.
export const KEEP_ALIVE_TIMEOUT_MS = 95_000;

export interface ServerOptions {
  tls: ServingTls;
  namespaces: NamespaceSource;
  admit: AdmitOptions;
  logger: Logger;
  /** The node watch (serve --watch-nodes), read on each request for the node-aware warnings. */
  nodes?: { counts(): NodeCounts | undefined };
  /** Series of this instance, recorded here from each admission's summary. */
  metrics?: WebhookMetrics;
  /** Timeouts, connection bound and load shedding; unset ones take defaultLimits(). */
  limits?: Partial<ServerLimits>;
  /** True once shutdown has begun: /readyz answers 503 and responses close their connection. */
  isShuttingDown?: () => boolean;
}

const NO_NAMESPACE: NamespaceLookup = { found: false, reason: 'request has no namespace' };
const ROUTES = 'POST /mutate, GET /healthz, GET /readyz';

// A source that throws is treated like one that cannot answer, so the fail mode decides.
async function lookupNamespace(source: NamespaceSource, name: string): Promise<NamespaceLookup> {
  try {
    return await source.lookup(name);
  } catch (err) {
    return { found: false, reason: `namespace lookup failed: ${errorMessage(err)}` };
  }
}

export function buildServer(options: ServerOptions) {
  const limits: ServerLimits = { ...defaultLimits(), ...options.limits };
  const app = Fastify({
    https: {
      ...secureContextOptions(options.tls),
      // Asked for, not demanded in the handshake: see client-certificate.ts.
      requestCert: Boolean(options.tls.clientCa),
      rejectUnauthorized: false,
      handshakeTimeout: limits.handshakeTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: limits.timeoutCheckIntervalMs,
    },
    connectionTimeout: limits.idleTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // A request that reaches us while closing is answered, not refused with 503: a refusal
    // makes the API server apply the failurePolicy and admit the object unmutated.
    return503OnClosing: false,
    bodyLimit: BODY_LIMIT_BYTES,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    loggerInstance: options.logger,
    // One line per admission is logged below; Fastify's own request lines would double it.
    logController: new LogController({ disableRequestLogging: true }),
    // Our lines name the request themselves (reqId, uid); a child logger per request cost more
    // than the admission's own checks.
    childLoggerFactory: (logger) => logger,
  });
  const log = options.logger;
  app.server.maxConnections = limits.maxConnections;
  reportDroppedConnections(app.server, limits.maxConnections, log, () => options.metrics?.connectionDropped());
  // While shutting down, and on a connection past its age, every answer asks the client to
  // reconnect, which reaches another replica (or spreads over both, limits.ts). Hooks here and
  // below take a callback rather than return a promise: one less per request.
  const isShuttingDown = options.isShuttingDown ?? (() => false);
  const firstAnswerAt = new WeakMap<object, number>();
  app.addHook('onSend', (req, reply, payload, done) => {
    const socket = req.raw.socket;
    const now = Date.now();
    const since = firstAnswerAt.get(socket);
    if (since === undefined) firstAnswerAt.set(socket, now);
    if (isShuttingDown() || (since !== undefined && now - since >= limits.maxConnectionAgeMs)) void reply.header('connection', 'close');
    done(null, payload);
  });
  // Reviews are JSON; a text body gets 415 rather than a confusing "not an object" 400.
  app.removeContentTypeParser('text/plain');

  const logAdmission = (summary: AdmissionSummary) => {
    if (summary.outcome === 'error') log.error(summary, 'admission');
    else log.info(summary, 'admission');
  };

  const handleReview = async (req: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now();
    let review;
    try {
      review = parseReview(req.body);
    } catch (err) {
      if (!(err instanceof InvalidReviewError)) throw err;
      log.warn({ reqId: req.id, err: err.message }, 'rejected an invalid AdmissionReview');
      return reply.code(400).send({ error: 'InvalidAdmissionReview', message: err.message });
    }
    const { namespace } = review.request;
    const lookup = namespace ? await lookupNamespace(options.namespaces, namespace) : NO_NAMESPACE;
    try {
      const { review: response, summary } = admit(review, lookup, options.admit, options.nodes?.counts());
      // Set on the summary rather than spread into a copy: the copy cost more than the line's JSON.
      summary.durationMs = Math.round((performance.now() - started) * 1000) / 1000;
      // Written once the answer is on its way: the line's serialization and the write it starts
      // (a libuv thread to wake) then no longer sit between the API server and its answer.
      setImmediate(logAdmission, summary);
      options.metrics?.admission(summary);
      return response;
    } catch (err) {
      if (!(err instanceof FailClosedError)) throw err;
      log.error({ uid: review.request.uid, kind: review.request.kind.kind, namespace, err: err.message }, 'admission failed (fail-closed)');
      options.metrics?.admission({ kind: review.request.kind.kind, operation: review.request.operation, outcome: 'error', changes: [] });
      return reply.code(500).send({ error: 'MutationFailed', message: err.message });
    }
  };

  // POST /mutate in a scope of its own, so the client-certificate check and load shedding apply
  // to admissions only: the probes of a busy pod keep answering.
  app.register(async (admission) => {
    if (options.tls.clientCa) admission.addHook('onRequest', requireClientCertificate(log));
    await admission.register(underPressure, loadShedding(limits, log));
    const { metrics } = options;
    if (metrics) {
      admission.addHook('onResponse', (_req, reply, done) => {
        metrics.requestDone(reply.elapsedTime / 1000, reply.statusCode);
        done();
      });
    }
    admission.post('/mutate', handleReview);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    if (options.isShuttingDown?.()) return reply.code(503).send({ status: 'not ready', reason: 'shutting down' });
    if (options.namespaces.isReady()) return { status: 'ready' };
    return reply.code(503).send({ status: 'not ready', reason: 'namespace list has not arrived yet' });
  });

  app.setNotFoundHandler(async (req, reply) =>
    reply.code(404).send({ error: 'NotFound', message: `no route ${req.method} ${req.url}; routes: ${ROUTES}` }),
  );

  app.setErrorHandler(async (err: FastifyError, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    const message =
      err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? `request body is larger than the limit of ${BODY_LIMIT_BYTES} bytes`
        : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? `content type ${JSON.stringify(req.headers['content-type'] ?? '')} is not supported (allowed: application/json)`
          : err.message;
    const line = { reqId: req.id, method: req.method, url: req.url, status, code: err.code, err: message };
    if (status >= 500) log.error(line, 'request failed');
    else log.warn(line, 'bad request');
    return reply.code(status).send({ error: err.code ?? 'InternalError', message });
  });

  return app;
}
