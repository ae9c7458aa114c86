// Finding the tools the cluster suites run, on PATH or at the places Debian installs them.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The first executable `name` on PATH, else the first executable fallback; undefined when none is. */
export function findExecutable(name: string, fallbacks: string[] = []): string | undefined {
  const inPath = (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, name));
  return [...inPath, ...fallbacks].find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
