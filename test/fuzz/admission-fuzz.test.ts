// Seeded random mutations of valid reviews, sent to the real HTTPS server (fail-open) and, many
// more, through parseReview + admit in-process. Whatever arrives: no crash, no 5xx, every 200 is a
// review for the request's uid that allows it, and every patch applies under the API server's
// JSON-patch rules. Replay a failure with FUZZ_SEED=<seed from the test name>.
//   node --import tsx --test test/fuzz/admission-fuzz.test.ts
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { admit, type NamespaceLookup } from '../../src/admission/admit.js';
import { InvalidReviewError } from '../../src/admission/invalid-review.js';
import { parseReview } from '../../src/admission/review.js';
import type { NamespaceSource } from '../../src/namespaces/namespace-source.js';
import { buildServer } from '../../src/server/webhook-server.js';
import { applyStrict, decodePatch } from '../support/patch.js';
import { fuzzBody, NAMESPACE_LABELS, prng } from './random-review.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const SEED = process.env['FUZZ_SEED'] ? Number(process.env['FUZZ_SEED']) : 0x5eed_2026;
const HTTP = { cases: 3000, boundMs: 40_000, atLeast: 500, concurrency: 4 };
const IN_PROCESS = { cases: 30_000, boundMs: 30_000, atLeast: 5000 };
const ADMIT = { labelPrefix: 'realip.io', failClosed: false };

class MapNamespaces implements NamespaceSource {
  async lookup(name: string): Promise<NamespaceLookup> {
    const labels = NAMESPACE_LABELS[name];
    return labels ? { found: true, labels } : { found: false, reason: `namespace ${name} not found` };
  }
  isReady = () => true;
  size = () => Object.keys(NAMESPACE_LABELS).length;
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}

/** Asserts what every admitted answer must be, for the review that was sent; returns the patched object if any. */
function checkAdmitted(sent: Json, answer: Json): Json | undefined {
  assert.equal(answer.kind, 'AdmissionReview');
  assert.equal(answer.apiVersion, sent.apiVersion, 'echoes the apiVersion');
  const { response } = answer;
  assert.equal(response.uid, sent.request.uid, 'echoes the uid');
  assert.equal(response.allowed, true);
  if (response.warnings !== undefined) {
    assert.ok(Array.isArray(response.warnings) && response.warnings.every((w: unknown) => typeof w === 'string'));
  }
  if (response.patch === undefined) return undefined;
  assert.equal(response.patchType, 'JSONPatch');
  return applyStrict(sent.request.object, decodePatch(response.patch));
}

/** Runs `one(i)` for i = 0, 1, ... on `concurrency` lanes until `cases` ran or `boundMs` passed. */
async function bounded(limits: { cases: number; boundMs: number }, concurrency: number, one: (i: number) => Promise<void>) {
  const deadline = Date.now() + limits.boundMs;
  let next = 0;
  const lane = async () => {
    while (next < limits.cases && Date.now() < deadline) await one(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return next;
}

const failure = (i: number, body: string, err: unknown) =>
  new Error(`case ${i} of seed ${SEED} (FUZZ_SEED=${SEED}): ${err instanceof Error ? err.message : String(err)}\nbody: ${body.slice(0, 2000)}`, {
    cause: err,
  });

describe(`admission fuzz, seed ${SEED}`, () => {
  const repo = fileURLToPath(new URL('../../', import.meta.url));
  let work = '';
  let app: ReturnType<typeof buildServer>;
  let agent: https.Agent;
  let port = 0;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'realip-fuzz-'));
    execFileSync(join(repo, 'certs', 'generate.sh'), ['--out', work, '--ip', '127.0.0.1'], { stdio: 'ignore' });
    const tls = { cert: readFileSync(join(work, 'tls.crt')), key: readFileSync(join(work, 'tls.key')) };
    app = buildServer({ tls, namespaces: new MapNamespaces(), admit: ADMIT, logger: pino({ level: 'silent' }) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
    agent = new https.Agent({ keepAlive: true, ca: readFileSync(join(work, 'ca.crt')) });
  });

  after(async () => {
    agent?.destroy();
    await app?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const send = (method: 'GET' | 'POST', path: string, body?: string) =>
    new Promise<{ status: number; json: Json }>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, method, path, agent, headers: { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });

  it(`HTTPS: up to ${HTTP.cases} mutated reviews, no 5xx, every 200 a valid review (seed ${SEED})`, async () => {
    const random = prng(SEED);
    const statuses = new Map<number, number>();
    let patched = 0;
    const ran = await bounded(HTTP, HTTP.concurrency, async (i) => {
      const body = fuzzBody(random, i);
      try {
        const { status, json } = await send('POST', '/mutate', body);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        assert.ok(status < 500, `status ${status}: ${JSON.stringify(json).slice(0, 500)}`);
        if (status === 200) {
          if (checkAdmitted(JSON.parse(body), json)) patched++;
        } else {
          assert.equal(typeof json.error, 'string', 'a 4xx names the error');
          assert.equal(typeof json.message, 'string', 'a 4xx explains it');
        }
      } catch (err) {
        throw failure(i, body, err);
      }
    });
    const health = await send('GET', '/healthz');
    assert.equal(health.status, 200, 'the server still answers after the fuzz');
    console.log(`seed ${SEED}: ${ran} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${patched} patched`);
    assert.ok(ran >= HTTP.atLeast, `only ${ran} requests within ${HTTP.boundMs} ms`);
    // The mutations must leave enough reviews valid to reach the features, and break enough to reach the 400s.
    assert.ok(patched > ran / 20, `only ${patched} of ${ran} patched`);
    assert.ok((statuses.get(400) ?? 0) > ran / 20, `only ${statuses.get(400) ?? 0} of ${ran} rejected`);
  });

  it(`in-process: up to ${IN_PROCESS.cases} mutated reviews through parseReview + admit, patches idempotent (seed ${SEED})`, async () => {
    const random = prng(SEED ^ 0x9e3779b9);
    const namespaces = new MapNamespaces();
    let patched = 0;
    // Internal errors are admitted unchanged (fail-open) and allowed by the contract; listed for a reader.
    const internalErrors = new Set<string>();
    const ran = await bounded(IN_PROCESS, 1, async (i) => {
      const body = fuzzBody(random, i);
      let sent: Json;
      try {
        sent = JSON.parse(body);
      } catch {
        return; // not JSON: the server answers 400 before parseReview
      }
      try {
        let parsed;
        try {
          parsed = parseReview(sent);
        } catch (err) {
          if (err instanceof InvalidReviewError) return;
          throw err;
        }
        const lookup = parsed.request.namespace ? await namespaces.lookup(parsed.request.namespace) : { found: false as const, reason: 'none' };
        const { review, summary } = admit(parsed, lookup, ADMIT);
        const result = checkAdmitted(sent, JSON.parse(JSON.stringify(review)));
        if (summary.outcome === 'error' && lookup.found) internalErrors.add(summary.error ?? '');
        if (!result) return;
        patched++;
        // A second pass over the patched object changes nothing (reinvocationPolicy: IfNeeded).
        const again = admit(parseReview({ ...sent, request: { ...sent.request, object: result } }), lookup, ADMIT);
        assert.equal(again.review.response.patch, undefined, `second pass patched again: ${again.summary.changes.join(', ')}`);
      } catch (err) {
        throw failure(i, body, err);
      }
    });
    console.log(`seed ${SEED}: ${ran} in-process cases, ${patched} patched, internal errors: ${JSON.stringify([...internalErrors])}`);
    assert.ok(ran >= IN_PROCESS.atLeast, `only ${ran} cases within ${IN_PROCESS.boundMs} ms`);
    assert.ok(patched > ran / 20, `only ${patched} of ${ran} patched`);
  });
});
