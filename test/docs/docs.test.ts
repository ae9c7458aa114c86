// Every command the docs show is tried: the marked blocks of README.md, docs/*.md and
// manifests/**/README.md that need no cluster run here, as a user would run them, and what they
// print is compared with what the docs show. Cluster blocks are reported skipped: the e2e suite
// (test/e2e/docs.test.ts) runs them. Markers and rules: docs/testing.md, "The docs test".
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../support/repo.js';
import { docFiles, fences, outputMismatch, parseBlocks } from './doc-blocks.js';
import { runDocs } from './run-docs.js';

test('every shell block in the docs is marked, and every marker is understood', () => {
  for (const file of docFiles(REPO_ROOT)) parseBlocks(file, readFileSync(join(REPO_ROOT, file), 'utf8'));
});

test('the README set-up is the two commands, marked as the set-up', () => {
  const blocks = parseBlocks('README.md', readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'));
  assert.equal(blocks.filter((b) => b.kind === 'serve').length, 1, 'one <!-- doc-test: serve --> block in README.md');
});

test('outputs: exact, with ... for any text, JSON compared as JSON', () => {
  const [text, json] = fences('```\na: 1\nkey: ...\n...\nend\n```\n```json\n{"a": [1, "x..."]}\n```\n');
  assert.equal(outputMismatch(text!, 'a: 1\nkey: c2VjcmV0\nmore\nlines\nend\n'), undefined);
  assert.equal(outputMismatch(text!, 'a: 1\nkey: k\nend'), undefined);
  assert.match(outputMismatch(text!, 'a: 2\nkey: k\nend') ?? '', /line 1/);
  assert.equal(outputMismatch(json!, '{"a":[1,"xyz"]}'), undefined);
  assert.match(outputMismatch(json!, '{"a":[1,"y"]}') ?? '', /\$\.a\[1\]/);
  assert.match(outputMismatch(json!, '{"a":[1,"x"],"b":2}') ?? '', /keys/);
});

test('the docs commands, run as a user would', { timeout: 900_000 }, async (t) => {
  await runDocs(t, { mode: 'local' });
});
