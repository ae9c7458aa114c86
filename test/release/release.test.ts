// The release's parts that need no build: the changelog move, semver order, the refusals of
// `npm run release` with bad arguments, and how the Helm upgrade test finds the previous release
// in real git histories made for each case (release commits, none yet, a shallow clone).
//   node --import tsx --test test/release/release.test.ts      (npm test runs it)
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { packageVersion } from '../../build/build-info.ts';
import { releaseChangelog } from '../../build/changelog.ts';
import { SEMVER, compareVersions } from '../../build/semver.ts';
import { findPreviousRelease } from '../helm/previous-release.js';
import { REPO_ROOT } from '../support/repo.js';

const work = mkdtempSync(join(tmpdir(), 'realip-release-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('CHANGELOG: Unreleased moves under the new version', () => {
  const changelog = '# Changelog\n\nIntro.\n\n## [Unreleased]\n\n### Added\n\n- a thing\n\n## [1.0.0] - 2026-01-02\n\n### Added\n\n- the first\n';

  test('the entries go under "## [1.1.0] - date", an empty Unreleased stays on top, older releases stay', () => {
    assert.equal(
      releaseChangelog(changelog, '1.1.0', '2026-12-06'),
      '# Changelog\n\nIntro.\n\n## [Unreleased]\n\n## [1.1.0] - 2026-12-06\n\n### Added\n\n- a thing\n\n## [1.0.0] - 2026-01-02\n\n### Added\n\n- the first\n',
    );
  });

  test('refuses an empty Unreleased, entries still marked pending, a version already there, no Unreleased heading', () => {
    assert.throws(() => releaseChangelog('## [Unreleased]\n\n## [1.0.0] - 2026-01-02\n', '1.1.0', '2026-12-06'), /nothing under "## \[Unreleased\]"/);
    assert.throws(() => releaseChangelog('## [Unreleased]\n\n- (pending: issue 25) explain\n', '1.1.0', '2026-12-06'), /1 Unreleased entry is still marked "\(pending: \.\.\.\)".*\n- \(pending: issue 25\) explain/);
    assert.throws(() => releaseChangelog(changelog, '1.0.0', '2026-12-06'), /already has a section for 1\.0\.0/);
    assert.throws(() => releaseChangelog('# Changelog\n', '1.0.0', '2026-12-06'), /no "## \[Unreleased\]" heading/);
  });

  test("the repository's CHANGELOG.md: Unreleased on top, then releases as [X.Y.Z] - YYYY-MM-DD, newest first, the newest package.json's", () => {
    const text = readFileSync(join(REPO_ROOT, 'CHANGELOG.md'), 'utf8');
    const headings = [...text.matchAll(/^## (.*)$/gm)].map((m) => m[1]!);
    assert.equal(headings[0], '[Unreleased]');
    const versions = headings.slice(1).map((h) => {
      const m = /^\[(\S+)\] - \d{4}-\d\d-\d\d$/.exec(h);
      assert.ok(m && SEMVER.test(m[1]!), `a release heading "## [X.Y.Z] - YYYY-MM-DD", not "## ${h}"`);
      return m[1]!;
    });
    for (let i = 0; i + 1 < versions.length; i++) assert.ok(compareVersions(versions[i]!, versions[i + 1]!) > 0, `${versions[i]} above ${versions[i + 1]}`);
    // package.json keeps the version of the last release until the next (none before the first).
    if (versions.length > 0) assert.equal(versions[0], packageVersion(REPO_ROOT), "the newest release in the changelog is package.json's version");
  });
});

test("semver order: the specification's own example list, in order", () => {
  const ordered = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.0.1', '1.1.0', '2.0.0', '10.0.0'];
  for (let i = 0; i + 1 < ordered.length; i++) {
    assert.ok(compareVersions(ordered[i]!, ordered[i + 1]!) < 0, `${ordered[i]} < ${ordered[i + 1]}`);
    assert.ok(compareVersions(ordered[i + 1]!, ordered[i]!) > 0, `${ordered[i + 1]} > ${ordered[i]}`);
  }
  assert.equal(compareVersions('1.2.3+build.5', '1.2.3'), 0);
});

describe('npm run release refuses bad arguments before touching anything, with exit 2', () => {
  const release = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'build', 'release.ts'), ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  const cases: [string[], RegExp][] = [
    [[], /give a version or --dry-run, not neither/],
    [['1.2'], /"1\.2" is not semantic versioning: MAJOR\.MINOR\.PATCH/],
    [['v1.2.3'], /give it without the "v"/],
    [['1.2.3', '--dry-run'], /give a version or --dry-run, not both/],
    [['--push'], /unknown flag --push/],
  ];
  for (const [args, message] of cases) {
    test(`release ${args.join(' ') || '(nothing)'}`, () => {
      const r = release(args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /^release: /);
    });
  }
});

describe('the previous release, found from the history', () => {
  /** A repository whose commits set package.json's version to each of `versions` in turn ('edit' changes something else). */
  function history(name: string, versions: string[]): string {
    const repo = join(work, name);
    execFileSync('git', ['init', '--quiet', '-b', 'main', repo]);
    const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.test', ...args], { encoding: 'utf8' });
    let version = '';
    versions.forEach((v, i) => {
      if (v !== 'edit') version = v;
      writeFileSync(join(repo, 'package.json'), `${JSON.stringify({ name: 'realip-webhook', version, description: `commit ${i}` }, null, 2)}\n`);
      execFileSync('mkdir', ['-p', join(repo, 'manifests/helm/realip-webhook')]);
      writeFileSync(join(repo, 'manifests/helm/realip-webhook/Chart.yaml'), `version: ${version}\n`);
      git('add', '-A');
      git('commit', '--quiet', '-m', v === 'edit' ? `edit ${i}` : `Release ${v}`);
    });
    return repo;
  }
  const versionOf = (repo: string, p: ReturnType<typeof findPreviousRelease>) => ('commit' in p ? `${p.version} ${execFileSync('git', ['-C', repo, 'log', '-1', '--format=%s', p.commit], { encoding: 'utf8' }).trim()}` : p.reason);

  test('before the first release: none; the version package.json was created with was never released', () => {
    const repo = history('none', ['0.1.0', 'edit', 'edit']);
    assert.match(versionOf(repo, findPreviousRelease(repo)), /^no previous release: no commit before this one changed package.json's version .*0\.1\.0\)$/);
  });

  test('on the first release commit: none (0.1.0 was only the starting value)', () => {
    const repo = history('first', ['0.1.0', 'edit', '1.0.0']);
    assert.match(versionOf(repo, findPreviousRelease(repo)), /^no previous release: .*the first release commit, 1\.0\.0\)$/);
  });

  test('on a release commit: the release before it; between releases: the newest release', () => {
    const repo = history('second', ['0.1.0', '1.0.0', 'edit', '1.1.0']);
    assert.equal(versionOf(repo, findPreviousRelease(repo)), '1.0.0 Release 1.0.0');
    const later = history('between', ['0.1.0', '1.0.0', 'edit', '1.1.0', 'edit']);
    assert.equal(versionOf(later, findPreviousRelease(later)), '1.1.0 Release 1.1.0');
    const afterFirst = history('after-first', ['0.1.0', 'edit', '1.0.0', 'edit']);
    assert.equal(versionOf(afterFirst, findPreviousRelease(afterFirst)), '1.0.0 Release 1.0.0');
  });

  test('a shallow clone that does not reach the previous release says so, and one that does finds it', () => {
    const repo = history('deep', ['0.1.0', 'edit', '1.0.0', 'edit', 'edit', '1.1.0']);
    const shallow = join(work, 'shallow');
    execFileSync('git', ['clone', '--quiet', '--depth', '1', `file://${repo}`, shallow]);
    assert.match(versionOf(shallow, findPreviousRelease(shallow)), /^shallow clone \(its history stops at [0-9a-f]+ .*\): no release commit before this one within it; git fetch --unshallow/);
    const deeper = join(work, 'deeper');
    // Four commits reach the release commit but not its parent, which shows that it changed the version.
    execFileSync('git', ['clone', '--quiet', '--depth', '5', `file://${repo}`, deeper]);
    assert.equal(versionOf(deeper, findPreviousRelease(deeper)), '1.0.0 Release 1.0.0');
  });

  test('this repository: what the Helm upgrade test will do', () => {
    const p = findPreviousRelease(REPO_ROOT);
    console.log(`# previous release of this tree (${p.treeVersion}): ${'commit' in p ? `${p.version} at ${p.commit}` : p.reason}`);
    assert.ok('commit' in p || p.reason.length > 0);
  });
});
