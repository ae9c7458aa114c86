// The policy generator without a cluster: the objects it makes, that every definition the webhook
// uses reaches the CEL, and the `policy` command's output and flags. test/engines proves on a real
// API server that the policies store what the webhook stores.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { renderPolicies } from '../../src/commands/policy.js';
import { TOPOLOGY_KEYS } from '../../src/mutation/anti-affinity.js';
import { INTERCEPTION_ANNOTATION, LEVELS_WITHOUT_NET_ADMIN } from '../../src/mutation/istio-interception.js';
import { SETTINGS } from '../../src/mutation/settings.js';
import { WORKLOAD_KINDS } from '../../src/mutation/workload-kinds.js';
import { addPatch, formatCel, jsonQuoted, list, message } from '../../src/policy/cel.js';
import { generatePolicies, NOT_EXPRESSIBLE, policyComments } from '../../src/policy/policies.js';
import { resourceOf } from '../../src/policy/scope.js';
import { REPO_ROOT } from '../support/repo.js';

type Json = Record<string, any>;
const policies = generatePolicies('realip.io') as Json[];
const byName = (kind: string, name: string) => policies.find((p) => p.kind === kind && p.metadata.name === name)!;
const everyExpression = (objects: Json[]) =>
  objects.flatMap((p) => [
    ...(p.spec.variables ?? []).map((v: Json) => v.expression as string),
    ...(p.spec.mutations ?? []).map((m: Json) => m.jsonPatch.expression as string),
    ...(p.spec.validations ?? []).flatMap((v: Json) => [v.expression as string, v.messageExpression as string]),
  ]);
const cel = everyExpression(policies).join('\n');

describe('policy generator', () => {
  test('one mutating and one warning policy per object family, each with a binding of the same name', () => {
    assert.deepEqual(
      policies.map((p) => `${p.kind}/${p.metadata.name}`),
      [
        'MutatingAdmissionPolicy/external-traffic-policy.realip.io',
        'MutatingAdmissionPolicyBinding/external-traffic-policy.realip.io',
        'MutatingAdmissionPolicy/workloads.realip.io',
        'MutatingAdmissionPolicyBinding/workloads.realip.io',
        'ValidatingAdmissionPolicy/service-warnings.realip.io',
        'ValidatingAdmissionPolicyBinding/service-warnings.realip.io',
        'ValidatingAdmissionPolicy/workload-warnings.realip.io',
        'ValidatingAdmissionPolicyBinding/workload-warnings.realip.io',
      ],
    );
    for (const p of policies.filter((o) => o.kind.endsWith('Binding'))) {
      assert.equal(p.spec.policyName, p.metadata.name);
      if (p.kind === 'ValidatingAdmissionPolicyBinding') assert.deepEqual(p.spec.validationActions, ['Warn']);
    }
  });

  test('policies match opted-in namespaces only, fail open, and mutate with JSON patches', () => {
    for (const p of policies.filter((o) => !o.kind.endsWith('Binding'))) {
      assert.deepEqual(p.spec.matchConstraints.namespaceSelector, {
        matchExpressions: [{ key: 'realip.io/inject', operator: 'In', values: ['enabled'] }],
      });
      assert.equal(p.spec.failurePolicy, 'Ignore');
      for (const m of p.spec.mutations ?? []) assert.equal(m.patchType, 'JSONPatch');
    }
  });

  test('each mutating policy patches once; only the Service policy runs again, and the output says why', () => {
    const mutating = policies.filter((p) => p.kind === 'MutatingAdmissionPolicy');
    for (const p of mutating) assert.equal(p.spec.mutations.length, 1, p.metadata.name);
    assert.deepEqual(
      mutating.map((p) => [p.metadata.name, p.spec.reinvocationPolicy]),
      [['external-traffic-policy.realip.io', 'IfNeeded'], ['workloads.realip.io', 'Never']],
    );
    const text = renderPolicies('realip.io');
    for (const [name, why] of policyComments('realip.io')) {
      const at = text.indexOf(`  name: ${name}\n`);
      const comment = text.slice(text.lastIndexOf('---\n', at), at);
      assert.ok(comment.replace(/\n# /g, ' ').includes(why.slice(0, 60)), `the reason above ${name}`);
    }
  });

  test('no policy has both matchConditions and variables (kubernetes/kubernetes#134808)', () => {
    for (const p of policies) assert.ok(!(p.spec.matchConditions && p.spec.variables), p.metadata.name);
  });

  test('every allowed value of every setting is in the CEL, as the list the value is checked against', () => {
    for (const [name, { allowed, default: fallback }] of Object.entries(SETTINGS)) {
      assert.ok(cel.includes(`"realip.io/${name}"`), `key of ${name}`);
      assert.ok(cel.includes(list(allowed)), `allowed values of ${name}: ${list(allowed)}`);
      assert.ok(cel.includes(`"raw": "${fallback}"`), `default of ${name}`);
    }
    for (const key of [...Object.values(TOPOLOGY_KEYS), ...LEVELS_WITHOUT_NET_ADMIN]) assert.ok(cel.includes(`"${key}"`), key);
    assert.ok(cel.includes(`/metadata/annotations/${INTERCEPTION_ANNOTATION.replace('/', '~1')}`));
  });

  test('every kind the webhook handles is matched, with the resources the webhook configuration lists', () => {
    const shipped = parse(readFileSync(join(REPO_ROOT, 'manifests', 'base', 'mutatingwebhookconfiguration.yaml'), 'utf8')) as Json;
    const webhookResources = new Set<string>(shipped.webhooks.flatMap((w: Json) => w.rules.flatMap((r: Json) => r.resources)));
    const interception = byName('MutatingAdmissionPolicy', 'workloads.realip.io');
    const matched = new Set(interception.spec.matchConstraints.resourceRules.flatMap((r: Json) => r.resources));
    for (const [kind, { templatePath, createOnly }] of Object.entries(WORKLOAD_KINDS)) {
      assert.ok(webhookResources.has(resourceOf(kind)), `${kind}: ${resourceOf(kind)} is a resource of the webhook configuration`);
      assert.ok(matched.has(resourceOf(kind)), kind);
      if (templatePath.length > 0) assert.ok(cel.includes(`"/${templatePath.join('/')}/metadata/annotations`), `${kind} template path`);
      const rule = interception.spec.matchConstraints.resourceRules.find((r: Json) => r.resources.includes(resourceOf(kind)));
      assert.deepEqual(rule.operations, createOnly ? ['CREATE'] : ['CREATE', 'UPDATE'], kind);
    }
    const spread = Object.keys(WORKLOAD_KINDS).filter((k) => WORKLOAD_KINDS[k]!.antiAffinity);
    assert.ok(interception.spec.mutations[0].jsonPatch.expression.startsWith(`(request.kind.kind in ${list(spread)}\n&& `), 'anti-affinity only for its kinds, checked first');
  });

  test('--label-prefix reaches every key, selector and name; nothing of the default prefix is left', () => {
    const other = generatePolicies('example.com') as Json[];
    const text = JSON.stringify(other);
    assert.doesNotMatch(text, /realip\.io/);
    assert.ok(other.every((p) => p.metadata.name.endsWith('.example.com')));
    assert.match(everyExpression(other).join('\n'), /"example\.com\/anti-affinity"/);
  });
});

describe('committed copies of the output: one source of truth', () => {
  // Regenerate with: node dist/cli.js policy > FILE (for each file below).
  for (const file of ['manifests/helm/realip-webhook/files/policies.yaml', 'manifests/overlays/policy/policies.yaml']) {
    test(`${file} is what \`realip-webhook policy\` prints`, () => {
      assert.equal(readFileSync(join(REPO_ROOT, file), 'utf8'), renderPolicies('realip.io'), `${file} drifted from the generator: regenerate it`);
    });
  }

  test('the default prefix appears only where the prefix goes, so the chart may replace it for labelPrefix', () => {
    assert.equal(renderPolicies('realip.io').replaceAll('realip.io', 'example.com'), renderPolicies('example.com'));
  });
});

describe('CEL builders', () => {
  test('formatCel() breaks only top-level operators, never inside literals or brackets', () => {
    const expr = '(a && "x && y ? z : w" in [b || c] ? {"k": d ? e : f} : g)';
    assert.equal(formatCel(expr), 'a\n&& "x && y ? z : w" in [b || c]\n? {"k": d ? e : f}\n: g');
    assert.equal(formatCel('(a) || (b)'), '(a)\n|| (b)', 'parentheses that do not enclose the whole expression stay');
    for (const e of everyExpression(policies)) assert.ok(!/\n\s*\n/.test(e), 'no empty lines');
  });

  test('message() turns a message function into CEL concatenation', () => {
    assert.equal(message((a: string, b: string) => `x ${a} y ${b}`, 'variables.a', '1 + 2'), '"x " + (variables.a) + " y " + (1 + 2)');
  });

  test('jsonQuoted() escapes as JSON.stringify does for quotes, backslashes and line breaks', () => {
    assert.equal(jsonQuoted('v'), '"\\"" + (v).replace("\\\\", "\\\\\\\\").replace("\\"", "\\\\\\"").replace("\\n", "\\\\n").replace("\\r", "\\\\r").replace("\\t", "\\\\t") + "\\""');
  });

  test('addPatch() adds the first missing parent with the rest built inside it, as addOperation does', () => {
    assert.equal(
      addPatch('object', ['spec', 'l', '-'], '1'),
      '(!object.?spec.hasValue() ? JSONPatch{op: "add", path: "/spec", value: {"l": dyn([1])}}' +
        ' : (!object.?spec.?l.hasValue() ? JSONPatch{op: "add", path: "/spec/l", value: [1]}' +
        ' : JSONPatch{op: "add", path: "/spec/l/-", value: 1}))',
    );
    assert.match(addPatch('object', ['metadata', 'a/b'], '"v"'), /object\.\?metadata\[\?"a\/b"\]|path: "\/metadata\/a~1b"/);
  });
});

describe('realip-webhook policy (child process)', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli.ts'), 'policy', ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });

  test('prints the policies as YAML, with what cannot be expressed as a comment on top', () => {
    const r = cli(['--label-prefix', 'example.com']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, renderPolicies('example.com'));
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Json).filter(Boolean);
    assert.deepEqual(docs, generatePolicies('example.com'));
    for (const note of NOT_EXPRESSIBLE) assert.ok(r.stdout.includes(`# - ${note}`));
  });

  test('a bad flag or label prefix exits 2 with the reason', () => {
    const bad = cli(['--nope']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /policy: Unknown option '--nope'.*allowed flags: --label-prefix/);
    const prefix = cli(['--label-prefix', 'Not_A_Prefix']);
    assert.equal(prefix.status, 2);
    assert.match(prefix.stderr, /--label-prefix "Not_A_Prefix" is not a DNS subdomain/);
    assert.equal(prefix.stdout, '');
  });
});
