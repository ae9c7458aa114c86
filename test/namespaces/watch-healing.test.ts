// How the list+watch heals, against the fake API server, with the clock and the random source
// injected: the test fires each deadline and backoff timer itself, so nothing asserts a duration.
// Covers the backoff schedule, the inactivity deadline, 410 storms, "too large resource version",
// and a watch from the resourceVersion of storage that has since been restored.
//   node --import tsx --test test/namespaces/watch-healing.test.ts
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { Backoff } from '../../src/kube/backoff.js';
import { WebhookMetrics } from '../../src/server/metrics.js';
import { KubeNamespaceCache } from '../../src/namespaces/kube-namespace-cache.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { FakeClock } from '../support/fake-clock.js';
import { captureLogs, type CapturedLogs } from '../support/logs.js';

const ENABLED = { 'realip.io/inject': 'enabled' };
const DISABLED = { 'realip.io/inject': 'disabled' };
/** Bound on waits for real I/O (the fake server is on loopback); only a hang reaches it. */
const BOUND_MS = 5000;
/** With random() = 0: timeoutSeconds 20, so the inactivity deadline is 20 s + 5 s. */
const DEADLINE_MS = 25_000;
/** The list's own bound: a timer that is pending while a list is in flight. */
const LIST_BOUND_MS = 30_000;

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + BOUND_MS;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`still waiting after ${BOUND_MS} ms for: ${what}`);
    await sleep(5);
  }
}

describe('Backoff', () => {
  let now = 0;
  const clock = { now: () => now };

  it('doubles from 800 ms up to a cap of 30 s; the jitter takes each wait from the upper half of its step', () => {
    const top = new Backoff(clock, () => 1);
    const bottom = new Backoff(clock, () => 0);
    const waits = (backoff: Backoff) => Array.from({ length: 8 }, () => ((now += 1000), backoff.next()));
    assert.deepEqual(waits(top), [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
    assert.deepEqual(waits(bottom), [400, 800, 1600, 3200, 6400, 12800, 15000, 15000]);
  });

  it('starts over after 2 minutes without a failure, and not before', () => {
    const backoff = new Backoff(clock, () => 1);
    for (let i = 0; i < 5; i++) backoff.next();
    now += 119_999;
    assert.equal(backoff.next(), 25600, 'a failure 2 min minus 1 ms after the last one keeps climbing');
    now += 120_000;
    assert.equal(backoff.next(), 800);
  });
});

describe('list+watch healing', () => {
  let server: FakeApiServer;
  let clock: FakeClock;
  let logs: CapturedLogs;
  let cache: KubeNamespaceCache;

  const labels = async (name: string) => {
    const found = await cache.lookup(name);
    return found.found ? found.labels : undefined;
  };
  const restartLines = () => logs.lines.filter((l) => l['msg']?.toString().startsWith('namespace watch restarting'));
  /** Waits for the backoff wait after a failure (the one timer left) and lets it pass. */
  const passBackoff = async (ms: number) => {
    await clock.timerSet(ms);
    clock.advance(ms);
  };
  const start = async (random = () => 0) => {
    cache = new KubeNamespaceCache(server.kubeConfig(), logs.logger, { clock, random });
    await cache.start();
    await until('the watch to open', () => server.openWatches === 1);
  };

  beforeEach(async () => {
    server = new FakeApiServer();
    await server.start();
    server.set('demo', ENABLED);
    server.set('other', ENABLED);
    clock = new FakeClock();
    logs = captureLogs();
  });

  afterEach(async () => {
    await cache?.stop();
    await server.close();
  });

  it('asks for bookmarks and a server-side timeout jittered between 20 and 30 s', async () => {
    await start(() => 0);
    await cache.stop();
    await start(() => 0.999);
    const watches = server.requests.filter((r) => r.verb === 'watch');
    assert.deepEqual(
      watches.map((w) => [w.allowWatchBookmarks, w.timeoutSeconds]),
      [
        ['true', '20'],
        ['true', '29'],
      ],
    );
  });

  it('gives a silent watch up once its timeoutSeconds and a grace have passed without a byte, then lists again', async () => {
    await start();
    await clock.timerSet(DEADLINE_MS);
    clock.advance(DEADLINE_MS - 1);
    assert.equal(server.count('watch'), 1);
    assert.equal(restartLines().length, 0, 'no restart a millisecond before the deadline');
    server.holdEvents = true;
    server.set('demo', DISABLED);
    clock.advance(1);
    // No backoff wait: the deadline has throttled it already.
    // The change the silent watch never delivered comes with the list.
    await until('the relisted labels', async () => isDeepStrictEqual(await labels('demo'), DISABLED));
    assert.equal(server.count('list'), 2);
    assert.equal(restartLines()[0]?.['reason'], 'inactive');
  });

  it('counts any byte as life: a bookmark moves the deadline', async () => {
    await start();
    await clock.timerSet(DEADLINE_MS);
    clock.advance(20_000);
    server.bookmark();
    const bookmarkedAt = clock.now();
    await until('the bookmark to arrive', () => cache.watch.lastSuccessAt === bookmarkedAt);
    clock.advance(5000);
    assert.equal(restartLines().length, 0, 'alive: a byte came 5 s ago');
    clock.advance(19_999);
    assert.equal(restartLines().length, 0, 'alive: a byte came 24.999 s ago');
    clock.advance(1);
    await until('a new list', () => server.count('list') === 2);
    assert.equal(restartLines()[0]?.['reason'], 'inactive');
  });

  it('resumes from the last resourceVersion it was sent when the server ends the watch', async () => {
    await start();
    server.set('demo', { ...ENABLED, seen: 'by-the-watch' });
    const confirmed = String(server.resourceVersion);
    await until('the event', async () => (await labels('demo'))?.['seen'] === 'by-the-watch');
    server.endWatches();
    await until('the watch to be opened again', () => server.count('watch') === 2);
    assert.equal(server.requests.filter((r) => r.verb === 'watch')[1]?.resourceVersion, confirmed);
    assert.equal(server.count('list'), 1, 'no list after a watch the server ended as it should');
    assert.equal(restartLines().length, 0, 'not a restart');
  });

  for (const as of ['http', 'event'] as const) {
    it(`lists again after "too large resource version" (${as === 'http' ? 'HTTP 504' : 'ERROR event'}), and drops what the list no longer has`, async () => {
      await start();
      server.set('demo', { ...ENABLED, seen: 'by-the-watch' });
      await until('the watch event', async () => (await labels('demo'))?.['seen'] === 'by-the-watch');
      server.restoreStorage({ demo: DISABLED });
      server.tooLargeWatches = { count: 1, as };
      // The server's timeout ends the watch; it had delivered an event, so the cache resumes.
      server.endWatches();
      await passBackoff(400);
      await until('the relisted labels', async () => isDeepStrictEqual(await labels('demo'), DISABLED));
      assert.equal(server.count('list'), 2);
      assert.equal(restartLines()[0]?.['reason'], 'too_large_resource_version');
      assert.equal(cache.size(), 1, 'namespace "other" is not in the restored storage');
    });
  }

  it('lists again when a watch from the resourceVersion of storage since restored ends without an event (kube-apiserver 1.20)', async () => {
    await start();
    server.set('demo', { ...ENABLED, seen: 'by-the-watch' });
    await until('the watch event', async () => (await labels('demo'))?.['seen'] === 'by-the-watch');
    server.restoreStorage({ demo: DISABLED });
    server.endWatches();
    await until('the watch resumed from the old resourceVersion', () => server.count('watch') === 2 && server.openWatches === 1);
    assert.equal(server.count('list'), 1);
    // Silent: every event of the restored storage is older than where the watch starts.
    server.set('demo', { ...DISABLED, seen: 'never-by-this-watch' });
    server.endWatches();
    await passBackoff(400);
    await until('the relisted labels', async () => (await labels('demo'))?.['seen'] === 'never-by-this-watch');
    assert.equal(server.count('list'), 2);
    assert.equal(restartLines()[0]?.['reason'], 'closed_without_events');
    assert.equal(cache.size(), 1);
  });

  it('backs a storm of 410s off, doubling each wait, and counts the restarts and relists', async () => {
    const metrics = new WebhookMetrics(cache = new KubeNamespaceCache(server.kubeConfig(), logs.logger, { clock, random: () => 1 }));
    server.goneWatches = 3;
    await cache.start();
    for (const [i, wait] of [800, 1600, 3200].entries()) {
      await clock.timerSet(wait);
      assert.equal(server.count('list'), i + 1, `no list before the ${wait} ms wait has passed`);
      clock.advance(wait);
      await until(`list ${i + 2}`, () => server.count('list') === i + 2);
    }
    await until('the watch to open', () => server.openWatches === 1);
    const text = await metrics.registry.metrics();
    assert.match(text, /realip_webhook_watch_restarts_total\{resource="namespace",reason="expired"\} 3\n/);
    assert.match(text, /realip_webhook_watch_relists_total\{resource="namespace"\} 3\n/);
    assert.match(text, /realip_webhook_watch_last_success_age_seconds\{resource="namespace"\} \d/);
  });

  it('logs an error once nothing has succeeded for 5 minutes, and not on every restart after', async () => {
    await start();
    server.setDown(true);
    const stale = () => logs.lines.filter((l) => l['level'] === 50);
    const failedAt = clock.now();
    while (clock.now() - failedAt < 7 * 60_000) {
      // One timer left (the backoff wait) once the attempt has failed; the list's own bound is gone.
      await until('the next backoff wait', () => clock.pending().length === 1 && clock.pending()[0] !== LIST_BOUND_MS);
      clock.advance(clock.pending()[0]!);
    }
    assert.equal(stale().length, 1, 'one error line in 7 minutes');
    assert.match(String(stale()[0]?.['msg']), /^no namespace list or watch event has succeeded for 3\d\d s; the cached namespaces may be stale$/);
    assert.ok(restartLines().length > 10, 'a warn line per restart');
    assert.ok(restartLines().every((l) => l['level'] === 40));
  });
});
