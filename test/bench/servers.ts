// A server for the HTTPS figures, in a process of its own so the load generator does not share
// its event loop. Prints {"port": N} once listening; SIGTERM ends it.
//   node --import tsx test/bench/servers.ts webhook|bare CERT KEY NAMESPACES_FILE
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { pino } from 'pino';
import { reviewHandler } from './in-process.js';
import { loadProduct } from './product.js';
import { deploymentReviewBody } from './workload.js';

const [mode, certFile, keyFile, namespacesFile] = process.argv.slice(2);
if ((mode !== 'webhook' && mode !== 'bare') || !certFile || !keyFile || !namespacesFile) {
  console.error('usage: servers.ts webhook|bare CERT KEY NAMESPACES_FILE');
  process.exit(2);
}
const product = await loadProduct();
const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
const namespaces = new product.FileNamespaceSource(namespacesFile);

/** The real webhook as `serve` builds it (metrics included), logging warnings only. */
function webhook() {
  return product.buildServer({
    tls,
    namespaces,
    metrics: new product.WebhookMetrics(namespaces),
    admit: { labelPrefix: 'realip.io', failClosed: false },
    logger: pino({ level: 'warn' }),
  });
}

/** Fastify over HTTPS that parses the body and answers a fixed review of the webhook's size. */
async function bare() {
  const answer: unknown = JSON.parse(await reviewHandler(product, namespaces)(deploymentReviewBody()));
  const app = Fastify({ https: tls });
  app.post('/mutate', async (req) => {
    if (typeof req.body !== 'object') throw new Error('no body');
    return answer;
  });
  return app;
}

const app = mode === 'webhook' ? webhook() : await bare();
await app.listen({ port: 0, host: '127.0.0.1' });
console.log(JSON.stringify({ port: (app.server.address() as AddressInfo).port }));
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
