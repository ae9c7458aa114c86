// The repository root, so tests can run what a user runs from it (certs/generate.sh, src/cli.ts)
// whatever directory the test runner was started in.
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Copies manifests/ to `dir`/manifests for a test to render or change. A developer's own keys in
 * the git-ignored overlays/plain/tls are neither copied nor overwritten.
 */
export function copyManifests(dir: string): void {
  const plainTls = join(REPO_ROOT, 'manifests', 'overlays', 'plain', 'tls');
  cpSync(join(REPO_ROOT, 'manifests'), join(dir, 'manifests'), { recursive: true, filter: (src) => !src.startsWith(plainTls) });
}
