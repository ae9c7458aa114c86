// A server for the HTTPS figures, in a process of its own so the load generator does not share
// its event loop. Prints {"port": N} once listening; SIGTERM ends it.
//   node --import tsx test/bench/servers.ts webhook|webhook-info|bare|floor CERT KEY NAMESPACES_FILE [LOG_FILE]
// webhook: the real server as `serve` builds it, logging warnings only (as (b) always measured);
// webhook-info: the same at the default log level, its line per admission written as serve
//          writes stdout (asynchronously) but to LOG_FILE: a pipe would need a reader, and
//          that reader would take the load generator's CPU;
// bare:    Fastify over HTTPS that parses the body and answers a fixed review of the same size;
// floor:   the same, but answering each API server review with the webhook's patch, warnings and
//          audit annotation for the first review it saw (no checks, no namespace lookup); GET
//          /connections counts the TLS connections the API server opened to it.
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { pino } from 'pino';
import type { AdmissionReviewResponse } from '../../src/admission/admit.js';
import { reviewHandler } from './in-process.js';
import { loadProduct } from './product.js';
import { deploymentReviewBody, NAMESPACES_YAML } from './workload.js';

const MODES = ['webhook', 'webhook-info', 'bare', 'floor'];
const [mode = '', certFile, keyFile, namespacesFile, logFile] = process.argv.slice(2);
if (!MODES.includes(mode) || !certFile || !keyFile || !namespacesFile || (mode === 'webhook-info' && !logFile)) {
  console.error(`usage: servers.ts ${MODES.join('|')} CERT KEY NAMESPACES_FILE [LOG_FILE, for webhook-info]`);
  process.exit(2);
}
const product = await loadProduct();
const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
const namespaces = new product.FileNamespaceSource(namespacesFile);
const ADMIT = { labelPrefix: 'realip.io', failClosed: false };

function webhook(level: 'warn' | 'info') {
  const base = { service: 'realip-webhook' };
  return product.buildServer({
    tls,
    namespaces,
    metrics: new product.WebhookMetrics(namespaces),
    admit: ADMIT,
    logger: level === 'info' ? pino({ level, base }, pino.destination({ dest: logFile!, sync: false })) : pino({ level, base }),
  });
}

async function bare() {
  const answer: unknown = JSON.parse(await reviewHandler(product, namespaces)(deploymentReviewBody()));
  const app = Fastify({ https: tls });
  app.post('/mutate', async (req) => {
    if (typeof req.body !== 'object') throw new Error('no body');
    return answer;
  });
  return app;
}

function floor() {
  if (!NAMESPACES_YAML.includes('realip.io/inject: enabled')) throw new Error('the floor answers as for an opted-in namespace');
  const optedIn = { found: true as const, labels: { 'realip.io/inject': 'enabled' } };
  let answer: AdmissionReviewResponse['response'] | undefined;
  let connections = 0;
  const app = Fastify({ https: tls });
  app.server.on('secureConnection', () => connections++);
  app.get('/connections', async () => ({ connections }));
  app.post('/mutate', async (req) => {
    const body = req.body as { apiVersion: AdmissionReviewResponse['apiVersion']; request: { uid: string } };
    answer ??= product.admit(product.parseReview(body), optedIn, ADMIT).review.response;
    return { apiVersion: body.apiVersion, kind: 'AdmissionReview', response: { ...answer, uid: body.request.uid } };
  });
  return app;
}

const app = mode === 'webhook' ? webhook('warn') : mode === 'webhook-info' ? webhook('info') : mode === 'bare' ? await bare() : floor();
await app.listen({ port: 0, host: '127.0.0.1' });
console.log(JSON.stringify({ port: (app.server.address() as AddressInfo).port }));
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
