// The previous release, found from the history rather than from tags (a clone may have none): the
// newest release commit before this one, a release commit being one that changed package.json's
// version from another version. A version that package.json was created with (0.1.0 in this
// project's first commit) was never released, so creating the file does not count. The cases:
// - a tree between releases: the newest release, which is what its users upgrade from;
// - a release commit itself: the release before it (upgrading from itself would prove nothing);
// - no release commit before this one (before the first release, or the first release commit
//   itself): none, and the upgrade test says so and skips;
// - a shallow clone that does not reach back to such a change: none found within it, and the test
//   says that `git fetch --unshallow` would let it look further;
// - a release commit without the chart: none usable, said as such.
import { execFileSync } from 'node:child_process';
import { packageVersion } from '../../build/build-info.ts';

export type PreviousRelease = { commit: string; version: string; subject: string; treeVersion: string } | { reason: string; treeVersion: string };

const CHART = 'manifests/helm/realip-webhook/Chart.yaml';

function git(repo: string, args: string[]): string | undefined {
  try {
    return execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * 1024 * 1024 }).trim();
  } catch {
    return undefined;
  }
}

const versionAt = (repo: string, commit: string) => {
  const text = git(repo, ['show', `${commit}:package.json`]);
  return text === undefined ? undefined : (JSON.parse(text) as { version?: string }).version;
};

export function findPreviousRelease(repo: string): PreviousRelease {
  const treeVersion = packageVersion(repo);
  if (git(repo, ['rev-parse', '--verify', '--quiet', 'HEAD']) === undefined) return { reason: `${repo} is not a git checkout with commits`, treeVersion };
  const shallow = git(repo, ['rev-parse', '--is-shallow-repository']) === 'true';
  const head = git(repo, ['rev-parse', 'HEAD']);
  // Commits whose diff of package.json adds or removes a "version" line, newest first.
  const candidates = (git(repo, ['log', '--format=%H', '-G', '"version":', 'HEAD', '--', 'package.json']) ?? '').split('\n').filter(Boolean);
  for (const commit of candidates) {
    if (commit === head) continue;
    const version = versionAt(repo, commit);
    const before = versionAt(repo, `${commit}^`);
    if (!version || before === undefined || before === version) continue;
    const subject = git(repo, ['log', '-1', '--format=%s', commit]) ?? '';
    if (git(repo, ['cat-file', '-e', `${commit}:${CHART}`]) === undefined) return { reason: `the previous release ${version} (${commit.slice(0, 12)}) has no chart at ${CHART}`, treeVersion };
    return { commit, version, subject, treeVersion };
  }
  if (shallow) {
    const oldest = git(repo, ['log', '--format=%h %ad', '--date=short', '--max-parents=0', 'HEAD'])?.split('\n').at(-1) ?? '?';
    return { reason: `shallow clone (its history stops at ${oldest}): no release commit before this one within it; git fetch --unshallow lets the test look further`, treeVersion };
  }
  return { reason: `no previous release: no commit before this one changed package.json's version (no release cut yet, or this is the first release commit, ${treeVersion})`, treeVersion };
}
