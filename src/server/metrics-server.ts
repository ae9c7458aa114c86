// GET /metrics on a plain-HTTP port of its own: Prometheus scrapes it without the webhook's
// certificate, and it keeps answering while POST /mutate sheds load.
import Fastify, { LogController } from 'fastify';
import type { Logger } from 'pino';
import type { WebhookMetrics } from './metrics.js';

// One scraper holds one connection; the bounds only stop a stray client from holding many.
const METRICS_MAX_CONNECTIONS = 64;
const METRICS_TIMEOUT_MS = 10_000;

export function buildMetricsServer(metrics: WebhookMetrics, logger: Logger) {
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    connectionTimeout: METRICS_TIMEOUT_MS,
    requestTimeout: METRICS_TIMEOUT_MS,
  });
  app.server.maxConnections = METRICS_MAX_CONNECTIONS;
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  app.setNotFoundHandler(async (req, reply) =>
    reply.code(404).send({ error: 'NotFound', message: `no route ${req.method} ${req.url} on the metrics port; routes: GET /metrics` }),
  );
  return app;
}
