// The real CLI in a child process (`node --import tsx src/cli.ts mutate ...`): stdin, files, the
// bundled example namespaces, stdout/stderr separation and exit codes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import * as fx from '../fixtures/objects.js';
import { applyStrict } from '../support/patch.js';

type Json = Record<string, any>;
const repo = fileURLToPath(new URL('../../', import.meta.url));
const NAMESPACES = join(repo, 'manifests', 'examples', 'namespaces.yaml');

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'src', 'cli.ts'), 'mutate', ...args], {
    cwd: repo,
    input,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let work = '';
before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-mutate-cli-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

describe('realip-webhook mutate (child process)', () => {
  test('-f - reads stdin; namespaces from the example file; exit 0; summary on stderr', () => {
    const input = [fx.service('LoadBalancer'), fx.deployment()].map((o) => stringify(o)).join('---\n');
    const r = cli(['-f', '-', '--namespaces-file', NAMESPACES], input);
    assert.equal(r.code, 0, r.stderr);
    const [service, deployment] = parseAllDocuments(r.stdout).map((d) => d.toJS() as Json);
    assert.equal(service!['spec'].externalTrafficPolicy, 'Local');
    assert.equal(deployment!['spec'].template.metadata.annotations['sidecar.istio.io/interceptionMode'], 'TPROXY');
    assert.match(r.stderr, /^mutated Service demo\/source-ip-app: external-traffic-policy=Local$/m);
    assert.doesNotMatch(r.stdout, /mutated|Warning/);
  });

  test('a file and -o patch', () => {
    const file = join(work, 'svc.json');
    writeFileSync(file, JSON.stringify(fx.service('NodePort')));
    const r = cli(['-f', file, '--namespace-labels', 'realip.io/inject=enabled', '-o', 'patch']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout)[0].patch, [{ op: 'add', path: '/spec/externalTrafficPolicy', value: 'Local' }]);
  });

  test('-o patch in an Istio ambient namespace: no TPROXY, the reason in skips; a template asking for a sidecar gets TPROXY', () => {
    const labels = ['--namespace-labels', 'realip.io/inject=enabled,istio.io/dataplane-mode=ambient', '-o', 'patch'];
    const plain = cli(['-f', '-', ...labels], stringify(fx.deployment()));
    assert.equal(plain.code, 0, plain.stderr);
    const [entry] = JSON.parse(plain.stdout) as Json[];
    assert.ok(!JSON.stringify(entry!['patch']).includes('interceptionMode'), JSON.stringify(entry!['patch']));
    assert.ok(entry!['patch'].length > 0, 'anti-affinity still applies');
    assert.ok((entry!['skips'] as string[]).some((s) => /Istio ambient mode .*ztunnel keeps the client address/.test(s)), plain.stdout);
    assert.doesNotMatch(plain.stderr, /TPROXY/);

    const template = fx.podTemplate();
    template['metadata'].labels['sidecar.istio.io/inject'] = 'true';
    const asked = cli(['-f', '-', ...labels], stringify(fx.deployment({ template })));
    assert.equal(asked.code, 0, asked.stderr);
    const [withSidecar] = JSON.parse(asked.stdout) as Json[];
    const patched = applyStrict(fx.deployment({ template }), withSidecar!['patch']);
    assert.equal(patched['spec'].template.metadata.annotations['sidecar.istio.io/interceptionMode'], 'TPROXY', asked.stdout);
  });

  test('a bad document exits 2 naming its index, with nothing on stdout', () => {
    const r = cli(['-f', '-', '--namespace-labels', 'realip.io/inject=enabled'], `${stringify(fx.service('NodePort'))}---\nkind: [oops\n`);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^realip-webhook: document 1: not valid YAML or JSON/m);
    assert.equal(r.stdout, '');
  });

  for (const [name, args, pattern] of [
    ['no -f', ['--namespace-labels', 'a=b'], /-f FILE is required/],
    ['a missing file', ['-f', '/nonexistent/x.yaml'], /-f \/nonexistent\/x\.yaml: cannot read the file \(ENOENT\)/],
    ['an unknown -o', ['-f', '-', '-o', 'xml'], /-o "xml" is not allowed \(allowed: yaml, json, patch\)/],
    ['an unknown flag', ['-f', '-', '--namespace', 'demo'], /Unknown option '--namespace'.*allowed flags: -f\/--filename/],
    ['both label sources', ['-f', '-', '--namespace-labels', 'a=b', '--namespaces-file', NAMESPACES], /alternatives/],
    ['a bad label prefix', ['-f', '-', '--label-prefix', 'Not_DNS'], /--label-prefix "Not_DNS" is not a DNS subdomain/],
  ] as const) {
    test(`usage error exits 2: ${name}`, () => {
      const r = cli([...args], '');
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
    });
  }

  test('--help prints the usage and exits 0', () => {
    const r = cli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: realip-webhook mutate -f FILE\|-/);
  });
});
