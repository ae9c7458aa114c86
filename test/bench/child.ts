// Child processes of the bench: started, read from, and always ended.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** CPU time a process has used so far, in microseconds, split as the kernel accounts it. */
export interface CpuTime {
  user: number;
  system: number;
}

/** USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS = 100;

export function cpuTime(pid: number): CpuTime {
  // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const micros = (ticks: string) => (Number(ticks) * 1e6) / CLOCK_TICKS;
  return { user: micros(fields[11]!), system: micros(fields[12]!) };
}

export interface Child {
  process: ChildProcess;
  /** The first stdout line that is a JSON object with `key` (a server's {"port": N}), parsed. */
  lineWith(key: string): Promise<Record<string, unknown>>;
  /** The last few KB the child wrote on stderr, for error messages. */
  stderr(): string;
  stop(): Promise<void>;
}

export interface ChildOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** The node binary (default: the bench's own). */
  node?: string;
  /** A program to run instead of node (Kyverno). */
  command?: string;
  /** Run on this CPU only (taskset -c), so the load generator cannot take its time. */
  cpu?: number | undefined;
}

/**
 * Starts `node args...` (or `command args...`). Its stdout is read as lines until the awaited ones came, then drained
 * without parsing, as a log collector would: a server at info level writes a line per request.
 */
export function startChild(args: string[], options: ChildOptions): Child {
  const node = options.command ?? options.node ?? process.execPath;
  const [command, argv] = options.cpu === undefined ? [node, args] : ['taskset', ['-c', String(options.cpu), node, ...args]];
  const child = spawn(command, argv, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const waiting: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  let pending = '';
  const onData = (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      for (const w of waiting.splice(0)) {
        if (w.match(line)) w.resolve(line);
        else waiting.push(w);
      }
    }
    if (waiting.length === 0) {
      child.stdout!.off('data', onData);
      child.stdout!.resume();
    }
  };
  child.stdout!.on('data', onData);
  // Lines are awaited right after the start; one awaited after the drain began would never come.
  const awaitLine = (match: (line: string) => boolean) =>
    new Promise<string>((resolve, reject) => {
      waiting.push({ match, resolve });
      void exited.then((code) => reject(new Error(`child ${args.join(' ')} exited with ${code}: ${stderr}`)));
    });
  return {
    process: child,
    lineWith: (key) =>
      awaitLine((line) => line.startsWith('{') && key in (JSON.parse(line) as object)).then((line) => JSON.parse(line) as Record<string, unknown>),
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
