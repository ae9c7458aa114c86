// The real `realip-webhook` command, from source through tsx (no build step), in a child process
// with the environment of a machine that has no cluster: what the developer's shell or the test
// runner has set must not change what the CLI does.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Json } from './json.js';
import { freePorts } from './net.js';
import { REPO_ROOT } from './repo.js';

export const CLI_SOURCE = join(REPO_ROOT, 'src', 'cli.ts');

/** No kubeconfig, not in a pod, no REALIP_* settings, and `home` (empty) as HOME. */
export function noClusterEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name === 'KUBECONFIG' || name.startsWith('KUBERNETES_') || name.startsWith('REALIP_')) continue;
    // The test runner's own variables would make the child report to it.
    if (name.startsWith('NODE_TEST')) continue;
    env[name] = value;
  }
  env['HOME'] = home;
  return env;
}

/** Runs `realip-webhook <args>` to its exit. */
export function runCli(args: string[], home: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['--import', 'tsx', CLI_SOURCE, ...args], {
    cwd: REPO_ROOT,
    env: noClusterEnv(home),
    encoding: 'utf8',
    timeout: 60_000,
  });
}

export interface ServeProcess {
  proc: ChildProcess;
  port: number;
  metricsPort: number;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** Every stdout line so far, parsed (each must be JSON: serve logs nothing else there). */
  lines: Json[];
  /** Resolves with the first log line that matches, or rejects if the process exits first. */
  logLine(match: (line: Json) => boolean): Promise<Json>;
  stdout(): string;
  stderr(): string;
  /** stdout and stderr so far, for assertion messages. */
  output(): string;
}

/**
 * Spawns `realip-webhook serve --host 127.0.0.1` on two free ports (HTTPS and metrics) plus `flags`,
 * without waiting for it: the caller awaits the log line that means ready for what it tests.
 * The caller kills the process if a test ends early. `cli`: a built bundle to run instead of the source.
 */
export async function spawnServe(home: string, flags: string[], opts: { cli?: string } = {}): Promise<ServeProcess> {
  const [port, metricsPort] = (await freePorts(2)) as [number, number];
  const args = ['serve', '--host', '127.0.0.1', '--port', String(port), '--metrics-port', String(metricsPort), ...flags];
  const program = opts.cli ? [opts.cli] : ['--import', 'tsx', CLI_SOURCE];
  const proc = spawn(process.execPath, [...program, ...args], {
    cwd: REPO_ROOT,
    env: noClusterEnv(home),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));

  const lines: Json[] = [];
  const rawLines: string[] = [];
  const waiters: { match: (l: Json) => boolean; resolve: (l: Json) => void }[] = [];
  createInterface({ input: proc.stdout! }).on('line', (raw) => {
    rawLines.push(raw);
    let line: Json;
    try {
      line = JSON.parse(raw) as Json;
    } catch {
      assert.fail(`stdout line is not JSON: ${raw}`);
    }
    lines.push(line);
    for (const w of waiters.splice(0)) {
      if (w.match(line)) w.resolve(line);
      else waiters.push(w);
    }
  });
  const output = () => `stdout:\n${rawLines.join('\n')}\nstderr:\n${stderr}`;
  const logLine = (match: (l: Json) => boolean) =>
    Promise.race([
      new Promise<Json>((resolve) => {
        const seen = lines.find(match);
        if (seen) resolve(seen);
        else waiters.push({ match, resolve });
      }),
      exited.then(([code, signal]): never => {
        throw new Error(`exited (code ${code}, signal ${signal}) before the awaited log line; ${output()}`);
      }),
    ]);
  return { proc, port, metricsPort, exited, lines, logLine, stdout: () => rawLines.join('\n'), stderr: () => stderr, output };
}
