// Whether a process lives: the suites name what they create after their pid, and sweep what the
// runs that died left behind.

/** True while `pid` runs (EPERM: it runs, as another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
