// What a build stamps on what it makes: the version (package.json, the one source), the git commit
// it was built from, where the source lives and when it was built. The bundle step bakes version
// and revision into dist/cli.js; the image build passes all four as the Dockerfile's build args,
// which become its OCI labels. Inside the image build there is no .git: the revision comes in
// as REALIP_REVISION from the build arg.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BuildInfo {
  version: string;
  /** The commit, with "-dirty" when the tree differs from it (untracked files too); "unknown" outside git. */
  revision: string;
  /** package.json's repository URL, else the origin remote's, else "unknown". */
  source: string;
  /** RFC 3339, seconds. */
  created: string;
}

export const UNKNOWN = 'unknown';

function git(dir: string, args: string[]): string | undefined {
  try {
    return execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export function packageVersion(dir: string): string {
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

export function gitRevision(dir: string): string {
  const commit = git(dir, ['rev-parse', '--verify', '--quiet', 'HEAD']);
  if (!commit) return UNKNOWN;
  // Untracked files count: the image's build context takes any file under src/ and build/.
  const changed = git(dir, ['status', '--porcelain']);
  return changed ? `${commit}-dirty` : commit;
}

export function buildInfo(dir: string, env: NodeJS.ProcessEnv = process.env): BuildInfo {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string; repository?: string | { url?: string } };
  const repository = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
  return {
    version: pkg.version,
    revision: env.REALIP_REVISION || gitRevision(dir),
    source: repository || git(dir, ['remote', 'get-url', 'origin']) || UNKNOWN,
    created: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
}
