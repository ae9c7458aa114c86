// (c) Resident memory of a process whose namespace cache holds N namespaces, filled by list from
// the fake API server, against the same process with the cache empty.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { FakeApiServer, FAKE_TOKEN } from '../support/fake-apiserver.js';
import { startChild } from './child.js';
import { REPO } from './workload.js';

// The measured process runs the compiled cache under plain node: the tsx loader alone would add
// some 35 MB to every figure.
const CHILD = `
import { setTimeout as sleep } from 'node:timers/promises';
const { KubeConfig } = await import('@kubernetes/client-node');
const { pino } = await import('pino');
const { KubeNamespaceCache } = await import(process.env.RSS_MODULE);
const kc = new KubeConfig();
kc.loadFromOptions({
  clusters: [{ name: 'fake', server: process.env.RSS_URL, skipTLSVerify: true }],
  users: [{ name: 'fake', token: process.env.RSS_TOKEN }],
  contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
  currentContext: 'fake',
});
const cache = new KubeNamespaceCache(kc, pino({ level: 'silent' }));
await cache.start();
const deadline = Date.now() + 60_000;
while (cache.size() < Number(process.env.RSS_EXPECTED)) {
  if (Date.now() > deadline) throw new Error('cache holds ' + cache.size() + ' namespaces after 60 s');
  await sleep(20);
}
for (let i = 0; i < 4; i++) { globalThis.gc(); await sleep(50); }
const { rss, heapUsed } = process.memoryUsage();
console.log(JSON.stringify({ rss, heapUsed, size: cache.size() }));
await cache.stop();
`;

export interface Memory {
  rss: number;
  heapUsed: number;
}

/** A fake API server holding `count` namespaces with a few labels each, as a real cluster's would. */
export async function apiServerWith(count: number): Promise<FakeApiServer> {
  const server = new FakeApiServer();
  await server.start();
  for (let i = 0; i < count; i++) {
    const name = `team-${String(i).padStart(5, '0')}`;
    server.set(name, {
      'kubernetes.io/metadata.name': name,
      'realip.io/inject': i % 3 === 0 ? 'enabled' : 'disabled',
      team: `team-${i % 97}`,
      env: i % 2 ? 'prod' : 'staging',
    });
  }
  return server;
}

export async function cacheMemory(server: FakeApiServer, expected: number): Promise<Memory> {
  const env = {
    ...process.env,
    RSS_URL: server.url,
    RSS_TOKEN: FAKE_TOKEN,
    RSS_EXPECTED: String(expected),
    RSS_MODULE: pathToFileURL(join(REPO, 'dist', 'namespaces', 'kube-namespace-cache.js')).href,
  };
  const child = startChild(['--expose-gc', '--input-type=module', '-e', CHILD], { cwd: REPO, env });
  try {
    const { rss, heapUsed, size } = (await child.firstLine) as Memory & { size: number };
    if (size !== expected) throw new Error(`cache holds ${size} namespaces, expected ${expected}`);
    return { rss, heapUsed };
  } finally {
    await child.stop();
  }
}
