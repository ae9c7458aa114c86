// Namespace labels from a YAML/JSON file: the accepted shapes, lookups, and errors that point at
// the file and the document.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUNDLED_NAMESPACES_FILE } from '../../src/config.js';
import { FileNamespaceSource, parseNamespaces } from '../../src/namespaces/file-namespace-source.js';

const FILE = 'ns.yaml';
const INJECT = 'realip.io/inject';

let work = '';
before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-file-ns-test-'));
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function assertParseError(text: string, ...patterns: RegExp[]): void {
  assert.throws(
    () => parseNamespaces(text, FILE),
    (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.ok(err.message.startsWith(`${FILE}: document `), err.message);
      for (const p of patterns) assert.match(err.message, p);
      return true;
    },
  );
}

describe('parseNamespaces', () => {
  it('reads multi-document YAML, comments and empty documents included', () => {
    const text = `# leading comment
apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels:
    ${INJECT}: enabled
    realip.io/anti-affinity: required
---
---
apiVersion: v1
kind: Namespace
metadata:
  name: plain
`;
    const namespaces = parseNamespaces(text, FILE);
    assert.deepEqual([...namespaces.keys()], ['demo', 'plain']);
    assert.deepEqual(namespaces.get('demo'), { [INJECT]: 'enabled', 'realip.io/anti-affinity': 'required' });
    assert.deepEqual(namespaces.get('plain'), {});
  });

  it('reads a JSON array of Namespaces', () => {
    const text = JSON.stringify([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a', labels: { [INJECT]: 'enabled' } } },
      { metadata: { name: 'b' } },
    ]);
    const namespaces = parseNamespaces(text, FILE);
    assert.equal(namespaces.size, 2);
    assert.deepEqual(namespaces.get('a'), { [INJECT]: 'enabled' });
    assert.deepEqual(namespaces.get('b'), {});
  });

  it('reads a YAML List with items', () => {
    const text = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Namespace
    metadata: {name: one, labels: {${INJECT}: enabled}}
  - apiVersion: v1
    kind: Namespace
    metadata: {name: two, labels: {${INJECT}: disabled}}
`;
    const namespaces = parseNamespaces(text, FILE);
    assert.deepEqual(namespaces.get('one'), { [INJECT]: 'enabled' });
    assert.deepEqual(namespaces.get('two'), { [INJECT]: 'disabled' });
    assert.equal(namespaces.size, 2);
  });

  it('reads the JSON NamespaceList of `kubectl get ns -o json`', () => {
    const text = JSON.stringify(
      {
        apiVersion: 'v1',
        kind: 'NamespaceList',
        metadata: { resourceVersion: '' },
        items: [
          {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: {
              name: 'kube-system',
              uid: '3c1f',
              labels: { 'kubernetes.io/metadata.name': 'kube-system' },
            },
            spec: { finalizers: ['kubernetes'] },
            status: { phase: 'Active' },
          },
          {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { name: 'demo', labels: { 'kubernetes.io/metadata.name': 'demo', [INJECT]: 'enabled' } },
          },
        ],
      },
      null,
      2,
    );
    const namespaces = parseNamespaces(text, FILE);
    assert.deepEqual([...namespaces.keys()].sort(), ['demo', 'kube-system']);
    assert.equal(namespaces.get('demo')?.[INJECT], 'enabled');
  });

  it('an empty file has no namespaces', () => {
    assert.equal(parseNamespaces('', FILE).size, 0);
    assert.equal(parseNamespaces('# nothing here\n', FILE).size, 0);
  });

  describe('errors name the file and the document', () => {
    it('a kind that is not Namespace', () => {
      const text = `apiVersion: v1
kind: Namespace
metadata: {name: fine}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
`;
      assertParseError(text, /^ns\.yaml: document 1: /, /kind "ConfigMap" is not Namespace/);
    });

    it('a kind that is not Namespace inside a list names the item', () => {
      const text = JSON.stringify({ kind: 'List', items: [{ kind: 'Namespace', metadata: { name: 'a' } }, { kind: 'Pod', metadata: { name: 'p' } }] });
      assertParseError(text, /^ns\.yaml: document 0 item 1: /, /"Pod"/);
    });

    it('missing metadata.name', () => {
      const text = `kind: Namespace
metadata:
  name: ok
---
kind: Namespace
metadata:
  labels: {a: b}
`;
      assertParseError(text, /^ns\.yaml: document 1: /, /metadata\.name/);
    });

    it('an empty metadata.name', () => {
      assertParseError('kind: Namespace\nmetadata: {name: ""}\n', /document 0/, /metadata\.name must be a non-empty string/);
    });

    it('labels that are not strings', () => {
      const text = `kind: Namespace
metadata:
  name: demo
  labels:
    ${INJECT}: enabled
    replicas: 3
`;
      assertParseError(text, /^ns\.yaml: document 0: /, /metadata\.labels must be a map of strings/);
    });

    // src/namespaces/file-namespace-source.ts namespaceFields: an array passes the "map of strings" check
    // (Object.values of ['a','b'] are strings), so the array is stored as the namespace's labels.
    it('labels that are a list', () => {
      assertParseError('kind: Namespace\nmetadata:\n  name: demo\n  labels: [a, b]\n', /document 0/, /metadata\.labels/);
    });

    it('a scalar document', () => {
      assertParseError('---\njust a string\n', /document 0/, /expected a Namespace object/);
    });

    it('a YAML syntax error', () => {
      const text = `kind: Namespace
metadata: {name: good}
---
kind: Namespace
metadata:
  name: [unclosed
`;
      assertParseError(text, /^ns\.yaml: document 1: /);
    });
  });
});

describe('FileNamespaceSource', () => {
  it('looks up a namespace from the file', async () => {
    const path = join(work, 'namespaces.yaml');
    writeFileSync(path, `kind: Namespace\nmetadata:\n  name: demo\n  labels:\n    ${INJECT}: enabled\n`);
    const source = new FileNamespaceSource(path);
    assert.deepEqual(await source.lookup('demo'), { found: true, labels: { [INJECT]: 'enabled' } });
    assert.equal(source.isReady(), true);
    assert.equal(source.size(), 1);
  });

  it('a missing namespace: found false, with a reason naming the namespace and the file', async () => {
    const path = join(work, 'one.yaml');
    writeFileSync(path, 'kind: Namespace\nmetadata: {name: demo}\n');
    const result = await new FileNamespaceSource(path).lookup('elsewhere');
    assert.equal(result.found, false);
    assert.ok(!result.found);
    assert.match(result.reason, /elsewhere/);
    assert.ok(result.reason.includes(path), result.reason);
  });

  it('a bad file fails at construction with its path in the error', () => {
    const path = join(work, 'bad.yaml');
    writeFileSync(path, 'kind: Secret\nmetadata: {name: x}\n');
    assert.throws(() => new FileNamespaceSource(path), (err: Error) => err.message.startsWith(`${path}: document 0`));
  });

  it('a missing file fails at construction', () => {
    assert.throws(() => new FileNamespaceSource(join(work, 'absent.yaml')), /ENOENT/);
  });

  it('the bundled example file parses and opts demo in', async () => {
    const source = new FileNamespaceSource(BUNDLED_NAMESPACES_FILE);
    const demo = await source.lookup('demo');
    assert.ok(demo.found, 'demo is in the bundled file');
    assert.equal(demo.labels[INJECT], 'enabled');
    const notOptedIn = await source.lookup('default');
    assert.ok(!notOptedIn.found || notOptedIn.labels[INJECT] !== 'enabled', 'default is not opted in');
    assert.ok(source.size() >= 2);
  });
});
