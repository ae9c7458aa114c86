// (d) From spawning `node dist/cli.js serve` to its first 200 on /readyz, against spawning
// `node -e 0` until it exits: the part of start-up that is Node's own.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startChild } from './child.js';
import { REPO, type BenchFiles } from './workload.js';

const POLL_MS = 5;
const GIVE_UP_MS = 30_000;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function readyz(port: number, ca: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/readyz', ca, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
  });
}

/** Milliseconds from spawn to the first 200 on /readyz. */
export async function startToReady(files: BenchFiles): Promise<number> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const ca = readFileSync(files.ca);
  const started = performance.now();
  const child = startChild(
    [
      'dist/cli.js', 'serve', '--host', '127.0.0.1', '--port', String(port), '--metrics-port', String(metricsPort),
      '--tls-cert', files.cert, '--tls-key', files.key, '--namespaces-file', files.namespaces, '--log-level', 'warn',
    ],
    { cwd: REPO },
  );
  try {
    while ((await readyz(port, ca)) !== 200) {
      if (child.process.exitCode !== null) throw new Error(`serve exited with ${child.process.exitCode}`);
      if (performance.now() - started > GIVE_UP_MS) throw new Error(`not ready after ${GIVE_UP_MS} ms`);
      await sleep(POLL_MS);
    }
    return performance.now() - started;
  } finally {
    await child.stop();
  }
}

/** Milliseconds from spawn to exit of `node -e 0`. */
export async function nodeStartup(): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', () => resolve());
  });
  return performance.now() - started;
}
