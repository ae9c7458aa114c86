// The namespace cache against a fake API server that fails on demand: down, slow, 410 Gone,
// dropped watches, a lagging watch. Waits poll with a generous bound; nothing asserts a duration.
// Deadlines and backoff, on an injected clock, are in watch-healing.test.ts.
//   node --import tsx --test test/namespaces/kube-namespace-cache.test.ts
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { admit, FailClosedError, type NamespaceLookup } from '../../src/admission/admit.js';
import { parseReview } from '../../src/admission/review.js';
import { KubeNamespaceCache } from '../../src/namespaces/kube-namespace-cache.js';
import { buildServer } from '../../src/server/webhook-server.js';
import { deployment, review } from '../fixtures/objects.js';
import { FakeApiServer } from '../support/fake-apiserver.js';

const GET_TIMEOUT_MS = 200;
const RESTART_DELAY_MS = 50;
/** Far above any timeout under test: only a hang reaches it. */
const BOUND_MS = 5000;
const ENABLED = { 'realip.io/inject': 'enabled' };

/** Polls until `check` holds; fails naming `what` after BOUND_MS. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + BOUND_MS;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`still waiting after ${BOUND_MS} ms for: ${what}`);
    await sleep(10);
  }
}

/** Resolves to the promise's value, or fails if it has not settled within BOUND_MS. */
async function settles<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${BOUND_MS} ms`)), BOUND_MS);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

const labelsOf = async (cache: KubeNamespaceCache, name: string) => {
  const found = await cache.lookup(name);
  return found.found ? found.labels : undefined;
};

let server: FakeApiServer;
let cache: KubeNamespaceCache;

beforeEach(async () => {
  server = new FakeApiServer();
  await server.start();
  server.set('demo', { ...ENABLED, team: 'a' });
  server.set('other', { team: 'b' });
  cache = new KubeNamespaceCache(server.kubeConfig(), pino({ level: 'silent' }), {
    getTimeoutMs: GET_TIMEOUT_MS,
    backoff: { initialMs: RESTART_DELAY_MS, maxMs: RESTART_DELAY_MS },
  });
});

afterEach(async () => {
  await cache.stop();
  await server.close();
});

describe('first list', () => {
  it('is not ready until the first list has arrived; then answers listed namespaces from the cache', async () => {
    server.listDelayMs = 300;
    const started = cache.start();
    await until('the list request', () => server.count('list') === 1);
    assert.equal(cache.isReady(), false, 'ready while the list is still on its way');
    await settles('start()', started);
    assert.equal(cache.isReady(), true);
    assert.equal(cache.size(), 2);
    assert.deepEqual(await labelsOf(cache, 'demo'), { ...ENABLED, team: 'a' });
    assert.deepEqual(await labelsOf(cache, 'other'), { team: 'b' });
    assert.equal(server.count('get'), 0, 'a listed namespace needs no GET');
    await until('the watch to open after the list', () => server.openWatches === 1);
  });

  it('stays not ready while the API server is down, and becomes ready once it answers', async () => {
    server.setDown(true);
    await cache.start();
    await until('a retry after the failed list', () => server.connections >= 2);
    assert.equal(cache.isReady(), false);
    server.setDown(false);
    await until('ready after the API server is back', () => cache.isReady());
    assert.deepEqual(await labelsOf(cache, 'demo'), { ...ENABLED, team: 'a' });
  });

  it('lists in pages and caches every page', async () => {
    server.set('third', ENABLED);
    cache = new KubeNamespaceCache(server.kubeConfig(), pino({ level: 'silent' }), { listPageSize: 2 });
    await cache.start();
    assert.equal(server.count('list'), 2, 'two pages of two namespaces or fewer');
    assert.equal(cache.size(), 3);
    assert.deepEqual(await labelsOf(cache, 'third'), ENABLED);
    assert.equal(server.count('get'), 0);
  });

  it('retries a list that hangs, instead of waiting for it forever', async () => {
    cache = new KubeNamespaceCache(server.kubeConfig(), pino({ level: 'silent' }), {
      getTimeoutMs: GET_TIMEOUT_MS,
      backoff: { initialMs: RESTART_DELAY_MS, maxMs: RESTART_DELAY_MS },
      listTimeoutMs: 300,
    });
    server.listDelayMs = 60_000;
    void cache.start();
    await until('a second list after the first timed out', () => server.count('list') >= 2);
    assert.equal(cache.isReady(), false);
    server.listDelayMs = 0;
    await until('ready once a list answers', () => cache.isReady());
  });
});

describe('API server unreachable', () => {
  beforeEach(async () => {
    await cache.start();
    server.setDown(true);
  });

  it('keeps answering cached namespaces', async () => {
    assert.deepEqual(await labelsOf(cache, 'demo'), { ...ENABLED, team: 'a' });
    assert.equal(cache.isReady(), true, 'a cache that has listed once stays ready');
  });

  it('answers a cache miss with found:false and the reason the GET failed', async () => {
    const lookup = await settles('lookup of a missing namespace', cache.lookup('brand-new'));
    assert.equal(lookup.found, false);
    assert.match((lookup as { reason: string }).reason, /^GET namespace brand-new failed: /);
  });

  it('admits a miss unchanged with a warning when fail-open, and answers 500 when fail-closed', async () => {
    const post = async (namespace: string, failClosed: boolean) => {
      const app = buildServer({
        tls: { cert: '', key: '' },
        namespaces: cache,
        admit: { labelPrefix: 'realip.io', failClosed },
        logger: pino({ level: 'silent' }),
      });
      try {
        const payload = review(deployment(), { namespace });
        return await settles('POST /mutate', app.inject({ method: 'POST', url: '/mutate', payload }));
      } finally {
        await app.close();
      }
    };

    const open = await post('brand-new', false);
    assert.equal(open.statusCode, 200);
    const response = open.json().response;
    assert.equal(response.allowed, true);
    assert.equal(response.patch, undefined);
    assert.match(response.warnings.join('\n'), /admitted unchanged: labels of namespace brand-new unknown: GET namespace brand-new failed/);

    const closed = await post('brand-new', true);
    assert.equal(closed.statusCode, 500);
    assert.match(closed.json().message, /labels of namespace brand-new unknown/);

    const cached = await post('demo', true);
    assert.equal(cached.statusCode, 200, 'a cached namespace is served while the API server is down');
    assert.equal(cached.json().response.patchType, 'JSONPatch');
  });
});

describe('slow GET', () => {
  beforeEach(async () => {
    await cache.start();
    server.getDelayMs = 60_000;
  });

  it('answers a miss with found:false naming the timeout, and abandons the GET', async () => {
    const lookup = await settles('lookup behind a slow GET', cache.lookup('brand-new'));
    assert.deepEqual(lookup, { found: false, reason: `GET namespace brand-new timed out after ${GET_TIMEOUT_MS} ms` });
    await until('the timed-out GET to be closed', () => server.openGets === 0);
  });

  it('fails closed with the timeout as the reason', async () => {
    const lookup: NamespaceLookup = await settles('lookup', cache.lookup('brand-new'));
    const parsed = parseReview(review(deployment(), { namespace: 'brand-new' }));
    assert.throws(() => admit(parsed, lookup, { labelPrefix: 'realip.io', failClosed: true }), (err: unknown) => {
      assert.ok(err instanceof FailClosedError);
      assert.match(err.message, /GET namespace brand-new timed out after 200 ms/);
      return true;
    });
    const open = admit(parsed, lookup, { labelPrefix: 'realip.io', failClosed: false });
    assert.equal(open.review.response.allowed, true);
    assert.equal(open.review.response.patch, undefined);
    assert.match(open.review.response.warnings?.join('\n') ?? '', /timed out after 200 ms/);
  });
});

describe('watch dropped', () => {
  beforeEach(async () => {
    await cache.start();
  });

  /** A watch is open and has delivered a change, so the cache holds a resourceVersion it confirmed. */
  const watchDeliversAnEvent = async () => {
    await until('the watch', () => server.openWatches === 1);
    server.set('demo', { ...ENABLED, team: 'seen-by-the-watch' });
    await until('the watch event', async () => (await labelsOf(cache, 'demo'))?.['team'] === 'seen-by-the-watch');
  };

  it('resumes without a list after the server ends a watch that delivered an event, and sees a change made meanwhile', async () => {
    await watchDeliversAnEvent();
    server.endWatches();
    server.set('demo', { ...ENABLED, team: 'changed-between-watches' });
    await until('the change to arrive', async () => (await labelsOf(cache, 'demo'))?.['team'] === 'changed-between-watches');
    assert.equal(server.count('list'), 1, 'resumed from the resourceVersion the watch confirmed');
  });

  it('lists again after the stream breaks, even one that delivered events: the next connection may reach other storage', async () => {
    await watchDeliversAnEvent();
    server.dropWatches();
    server.set('demo', { ...ENABLED, team: 'changed-while-dropped' });
    await until('the change to arrive', async () => (await labelsOf(cache, 'demo'))?.['team'] === 'changed-while-dropped');
    assert.equal(server.count('list'), 2);
  });

  it('serves stale labels while the API server is down, then picks up the change made during the outage', async () => {
    server.setDown(true);
    server.set('demo', { ...ENABLED, team: 'changed-during-outage' });
    server.set('added-during-outage', ENABLED);
    await until('a reconnect attempt', () => server.connections >= 4);
    assert.equal((await labelsOf(cache, 'demo'))?.['team'], 'a', 'serves what it had');
    server.setDown(false);
    await until('the change to arrive', async () => (await labelsOf(cache, 'demo'))?.['team'] === 'changed-during-outage');
    await until('the namespace added during the outage to be cached', () => cache.size() === 3);
  });

  it('lists again when the resourceVersion was compacted (410 ERROR event) and drops deleted namespaces', async () => {
    server.setDown(true);
    server.set('demo', { ...ENABLED, team: 'after-compaction' });
    server.delete('other');
    // Everything before the changes is compacted: the watch cannot resume from where it was.
    server.compactedBefore = server.resourceVersion;
    server.setDown(false);
    await until('the relisted labels', async () => (await labelsOf(cache, 'demo'))?.['team'] === 'after-compaction');
    assert.equal(server.count('list'), 2);
    await until('the deleted namespace to leave the cache', () => cache.size() === 1);
  });

  it('lists again when the watch is answered with HTTP 410 Gone', async () => {
    server.goneWatches = 1;
    server.holdEvents = true;
    server.set('demo', { ...ENABLED, team: 'after-410' });
    server.dropWatches();
    // The watch held the change back, so only a new list can carry it.
    await until('the relisted labels', async () => (await labelsOf(cache, 'demo'))?.['team'] === 'after-410');
    assert.equal(server.count('list'), 2);
  });
});

describe('cache miss for a namespace created moments ago', () => {
  beforeEach(async () => {
    await cache.start();
    // The watch lags: the namespace exists on the server but has not reached the cache.
    server.holdEvents = true;
    server.set('fresh', { ...ENABLED, team: 'new' });
  });

  it('answers from a live GET', async () => {
    assert.deepEqual(await cache.lookup('fresh'), { found: true, labels: { ...ENABLED, team: 'new' } });
    assert.equal(server.count('get', 'fresh'), 1);
  });

  it('shares one GET between concurrent misses', async () => {
    server.getDelayMs = 50;
    const lookups = await Promise.all(Array.from({ length: 5 }, () => cache.lookup('fresh')));
    for (const lookup of lookups) assert.deepEqual(lookup, { found: true, labels: { ...ENABLED, team: 'new' } });
    assert.equal(server.count('get', 'fresh'), 1);
  });

  it('answers found:false for a namespace the API server does not have', async () => {
    assert.deepEqual(await cache.lookup('nowhere'), { found: false, reason: 'namespace nowhere not found' });
  });

  it('is answered from the cache once the watch catches up', async () => {
    server.releaseEvents();
    await until('the watch event', () => cache.size() === 3);
    assert.deepEqual(await labelsOf(cache, 'fresh'), { ...ENABLED, team: 'new' });
    assert.equal(server.count('get'), 0);
  });
});

describe('stop()', () => {
  it('stops retrying while the API server is down', async () => {
    await cache.start();
    server.setDown(true);
    await until('a failed reconnect', () => server.connections >= 3);
    await cache.stop();
    const seen = server.connections;
    await sleep(RESTART_DELAY_MS * 6);
    assert.equal(server.connections, seen, 'connections after stop()');
  });

  it('closes the watch and makes no request after it', async () => {
    await cache.start();
    await until('the watch', () => server.openWatches === 1);
    await cache.stop();
    await until('the watch to close', () => server.openWatches === 0);
    const seen = server.requests.length;
    await sleep(RESTART_DELAY_MS * 6);
    assert.equal(server.requests.length, seen, 'requests after stop()');
  });

  it('abandons a list in flight and never starts the watch', async () => {
    server.listDelayMs = 300;
    void cache.start();
    await until('the list request', () => server.count('list') === 1);
    await cache.stop();
    await sleep(600);
    assert.equal(server.count('watch'), 0, 'watch requests after stop()');
    assert.equal(server.count('list'), 1, 'list requests after stop()');
    assert.equal(server.openWatches, 0);
  });
});
