// (a) The webhook's own work on one review, from the raw body to the response string, against
// the floor any JSON webhook pays: JSON.parse + JSON.stringify of the same body.
import type { NamespaceSource } from '../../src/namespaces/namespace-source.js';
import type { Product } from './product.js';

const ADMIT = { labelPrefix: 'realip.io', failClosed: false };
/** Each timed batch runs about this long, so timer resolution and loop overhead vanish. */
const BATCH_MS = 250;

/** What POST /mutate does with a body, minus the transport. */
export function reviewHandler(product: Product, namespaces: NamespaceSource) {
  return async (body: string): Promise<string> => {
    const review = product.parseReview(JSON.parse(body));
    const lookup = await namespaces.lookup(review.request.namespace);
    return JSON.stringify(product.admit(review, lookup, ADMIT).review);
  };
}

/** Microseconds per call of `fn`, over `iterations` calls; a sync `fn` is not awaited. */
async function perCallMicros(iterations: number, fn: () => string | Promise<string>): Promise<number> {
  let bytes = 0;
  const start = performance.now();
  for (let i = 0; i < iterations; i++) {
    const out = fn();
    bytes += (out instanceof Promise ? await out : out).length;
  }
  const micros = ((performance.now() - start) * 1000) / iterations;
  if (bytes === 0) throw new Error('nothing was produced');
  return micros;
}

export interface InProcessRound {
  webhookMicros: number;
  floorMicros: number;
}

/** One round: both measured back to back, after a warm-up (first round) that lets the JIT settle. */
export async function inProcessRound(body: string, handle: (body: string) => Promise<string>, warm: boolean): Promise<InProcessRound> {
  const webhook = () => handle(body);
  const floor = () => JSON.stringify(JSON.parse(body));
  if (!warm) {
    await perCallMicros(20_000, webhook);
    await perCallMicros(20_000, floor);
  }
  const probe = await perCallMicros(1000, webhook);
  const iterations = Math.max(1000, Math.round((BATCH_MS * 1000) / probe));
  const webhookMicros = await perCallMicros(iterations, webhook);
  const floorMicros = await perCallMicros(iterations, floor);
  return { webhookMicros, floorMicros };
}
