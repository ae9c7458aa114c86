// Child processes of the bench: started, read from, and always ended.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Child {
  process: ChildProcess;
  /** The first line the child printed on stdout, parsed as JSON. */
  firstLine: Promise<unknown>;
  stop(): Promise<void>;
}

export function startChild(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Child {
  const child = spawn(process.execPath, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const firstLine = new Promise<unknown>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => resolve(JSON.parse(line)));
    void exited.then((code) => reject(new Error(`child ${args.join(' ')} exited with ${code}: ${stderr}`)));
  });
  // Not every child prints a line (serve does not): its exit must not be an unhandled rejection.
  firstLine.catch(() => {});
  return {
    process: child,
    firstLine,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
