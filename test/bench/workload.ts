// What every figure of the bench is measured on: a typical Deployment review (as the API server
// sends it, for an opted-in namespace) and the namespace file the servers read.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deployment, review } from '../fixtures/objects.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const NAMESPACE = 'demo';

export const NAMESPACES_YAML = `apiVersion: v1
kind: Namespace
metadata:
  name: ${NAMESPACE}
  labels:
    kubernetes.io/metadata.name: ${NAMESPACE}
    realip.io/inject: enabled
`;

/** The review of `kubectl create deployment ... --image=registry.k8s.io/echoserver:1.4`, as defaulted. */
export function deploymentReviewBody(): string {
  return JSON.stringify(review(deployment(), { namespace: NAMESPACE }));
}

export interface BenchFiles {
  dir: string;
  cert: string;
  key: string;
  ca: string;
  namespaces: string;
}

/** A serving certificate for 127.0.0.1 and the namespace file, in a fresh temporary directory. */
export function benchFiles(): BenchFiles {
  const dir = mkdtempSync(join(tmpdir(), 'realip-bench-'));
  execFileSync(join(REPO, 'certs', 'generate.sh'), ['--out', dir, '--ip', '127.0.0.1'], { stdio: 'ignore' });
  const namespaces = join(dir, 'namespaces.yaml');
  writeFileSync(namespaces, NAMESPACES_YAML);
  return { dir, cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), ca: join(dir, 'ca.crt'), namespaces };
}
