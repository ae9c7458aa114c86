// Network namespaces for the datapath suite, and the processes started inside them. Every name
// (and the run's log directory) carries a prefix and the owning process id, so a run can sweep
// what a crashed run left behind without touching a run that is still going. Links are created directly inside the
// namespaces (never in the host's), so deleting the namespaces deletes them too.
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startProcess, stopProcess, type Proc } from '../e2e/cluster.js';
import { pidAlive } from '../support/pids.js';

const NETNS_PREFIX = 'realipdp-';
const LOG_DIR_PREFIX = 'realip-datapath-';
const EXIT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const run = promisify(execFile);

/** Why network namespaces cannot be used here, or undefined when they can. */
export async function whyNoNetns(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (CI runs .ci/run as root)';
  const probe = `${NETNS_PREFIX}${process.pid}-probe`;
  try {
    await run('ip', ['netns', 'add', probe]);
  } catch (err) {
    return `cannot create a network namespace (ip netns add): ${(err as Error).message.trim()}`;
  }
  await run('ip', ['netns', 'del', probe]);
  return undefined;
}

function listNetns(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(NETNS_PREFIX));
}

/** `ip -force -batch -`: one process for many commands, going on past errors. */
function ipBatchSync(commands: string[]): string {
  try {
    return execFileSync('ip', ['-force', '-batch', '-'], { input: commands.join('\n'), encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
  } catch (err) {
    // Some namespace was gone already: the rest were still done.
    return (err as { stdout?: string }).stdout ?? '';
  }
}

/** Kills every process inside the namespaces, then deletes them (and so their links). */
function removeNetnsSync(names: string[]): void {
  if (names.length === 0) return;
  for (const pid of ipBatchSync(names.map((n) => `netns pids ${n}`)).split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  ipBatchSync(names.map((n) => `netns del ${n}`));
}

const ownerDead = (prefix: string) => (name: string) => {
  const owner = Number(name.slice(prefix.length).split('-')[0]);
  return !Number.isInteger(owner) || !pidAlive(owner);
};

/** The prefix for mkdtemp() of this run's log directory, which sweepLeftovers() knows. */
export function logDirPrefix(): string {
  return join(tmpdir(), `${LOG_DIR_PREFIX}${process.pid}-`);
}

/**
 * Removes the namespaces (and the processes in them) and log directories left by runs whose
 * process has died. Returns the namespaces' names.
 */
export function sweepLeftovers(): string[] {
  const stale = listNetns().filter(ownerDead(NETNS_PREFIX));
  removeNetnsSync(stale);
  for (const dir of readdirSync(tmpdir()).filter((d) => d.startsWith(LOG_DIR_PREFIX)).filter(ownerDead(LOG_DIR_PREFIX))) {
    rmSync(join(tmpdir(), dir), { recursive: true, force: true });
  }
  return stale;
}

/** The namespaces of one run: created with add(), all removed by destroy(), even on a crash of this process. */
export class NetnsSet {
  private readonly names: string[] = [];
  private readonly processes: Proc[] = [];
  private readonly onExit = () => this.destroySync();
  // A signal would end the process without 'exit' handlers: exit instead, so that they all run
  // (these namespaces, and the API server and webhook of the e2e harness). Namespaces first: the
  // test runner may kill this process soon after the signal.
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.destroySync();
    process.exit(128 + osConstants.signals[signal]);
  };

  constructor(private readonly logDir: string) {
    process.once('exit', this.onExit);
    for (const signal of EXIT_SIGNALS) process.once(signal, this.onSignal);
  }

  /** The full namespace name of a short one ("node1" → realipdp-<pid>-node1). */
  name(short: string): string {
    return `${NETNS_PREFIX}${process.pid}-${short}`;
  }

  async add(short: string): Promise<void> {
    const name = this.name(short);
    await run('ip', ['netns', 'add', name]);
    this.names.push(name);
    await this.ip(short, 'link', 'set', 'lo', 'up');
  }

  /** `ip -n <namespace> ...` */
  async ip(short: string, ...args: string[]): Promise<void> {
    try {
      await run('ip', ['-n', this.name(short), ...args]);
    } catch (err) {
      throw new Error(`ip -n ${this.name(short)} ${args.join(' ')} failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
    }
  }

  /** Runs a command inside the namespace to completion; rejects on a non-zero exit. */
  async exec(short: string, cmd: string[], { timeoutMs = 10_000 } = {}): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', this.name(short), ...cmd], { timeout: timeoutMs, encoding: 'utf8' });
    return stdout;
  }

  /** Starts a long-running command inside the namespace; its output goes to <logDir>/<name>.log. */
  start(short: string, name: string, cmd: string[]): Proc {
    // `ip netns exec` execs the command, so the child's pid is the command's own.
    const proc = startProcess(name, 'ip', this.logDir, ['netns', 'exec', this.name(short), ...cmd]);
    this.processes.push(proc);
    return proc;
  }

  get started(): readonly Proc[] {
    return this.processes;
  }

  /** Stops every process (SIGTERM, then SIGKILL), then deletes every namespace. Safe to call twice. */
  async destroy(): Promise<void> {
    await Promise.all(this.processes.map(stopProcess));
    this.destroySync();
  }

  private destroySync(): void {
    for (const p of this.processes) if (!p.done) p.child.kill('SIGKILL');
    // Also whatever a command started inside a namespace and left running.
    removeNetnsSync(this.names.splice(0));
    process.removeListener('exit', this.onExit);
    for (const signal of EXIT_SIGNALS) process.removeListener(signal, this.onSignal);
  }
}
