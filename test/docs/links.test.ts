// Every relative link and #anchor in README.md, docs/*.md and manifests/**/README.md resolves:
// the file or directory exists, and an anchor is the slug of a heading of the target file as
// GitHub makes it (lower case; punctuation other than - and _ removed; spaces to -; a repeated
// slug gets -1, -2, ...).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../support/repo.js';
import { docFiles, fences } from './doc-blocks.js';

/** The Markdown with its fenced blocks blanked out. */
function withoutFences(markdown: string): string {
  const lines = markdown.split('\n');
  for (const f of fences(markdown)) {
    const end = f.line + f.text.split('\n').length; // the closing fence's index
    for (let i = f.line - 1; i <= end && i < lines.length; i++) lines[i] = '';
  }
  return lines.join('\n');
}

/** The Markdown outside fenced blocks and inline code: where links are. */
function prose(markdown: string): string {
  return withoutFences(markdown).replace(/`[^`\n]*`/g, '``');
}

/** GitHub's anchor for a heading's text. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link's text only
    .replace(/[`*]/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-');
}

function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of withoutFences(readFileSync(file, 'utf8')).split('\n')) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = slug(h[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

test('slugs as GitHub makes them', () => {
  assert.equal(slug('Node-aware warnings (`--watch-nodes`)'), 'node-aware-warnings---watch-nodes');
  assert.equal(slug('`realip-webhook mutate`'), 'realip-webhook-mutate');
  assert.equal(slug('What was found, and how'), 'what-was-found-and-how');
  assert.equal(slug('npm run test:e2e'), 'npm-run-teste2e');
});

for (const file of docFiles(REPO_ROOT)) {
  test(`links in ${file} resolve`, () => {
    const path = join(REPO_ROOT, file);
    const broken: string[] = [];
    const text = prose(readFileSync(path, 'utf8'));
    const targets = [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
    targets.push(...[...text.matchAll(/<(?:img|a)\s[^>]*(?:src|href)="([^"]+)"/g)].map((m) => m[1]!));
    for (const target of targets) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      const [rel, anchor] = target.split('#', 2) as [string, string | undefined];
      const resolved = rel === '' ? path : normalize(join(dirname(path), decodeURIComponent(rel)));
      if (!resolved.startsWith(REPO_ROOT) || !existsSync(resolved)) {
        broken.push(`${target}: ${relative(REPO_ROOT, resolved)} does not exist`);
        continue;
      }
      if (anchor === undefined) continue;
      if (statSync(resolved).isDirectory() || !resolved.endsWith('.md')) {
        broken.push(`${target}: an anchor into ${relative(REPO_ROOT, resolved)}, which is not a Markdown file`);
      } else if (!anchors(resolved).has(anchor)) {
        broken.push(`${target}: no heading of ${relative(REPO_ROOT, resolved)} has the anchor #${anchor} (it has: ${[...anchors(resolved)].join(', ')})`);
      }
    }
    assert.deepEqual(broken, [], `broken links in ${file}`);
  });
}
