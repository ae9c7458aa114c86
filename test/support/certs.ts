// Serving certificates made by certs/generate.sh, the script users run: every suite that serves
// HTTPS thereby also exercises it. Each call makes a fresh CA, so suites never trust each other's.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './repo.js';

export interface ServingCerts {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  caPem: string;
  cert: Buffer;
  key: Buffer;
  /** What generate.sh printed on stdout, trimmed: meant to be base64 of ca.crt (the caBundle). */
  caBundle: string;
  /** SHA-256 fingerprint of the serving certificate, as X509Certificate and getPeerCertificate() write it. */
  fingerprint: string;
}

/** A fresh CA and a serving certificate for 127.0.0.1 in `dir`. */
export function generateCerts(dir: string): ServingCerts {
  const caBundle = execFileSync(join(REPO_ROOT, 'certs', 'generate.sh'), ['--out', dir, '--ip', '127.0.0.1'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
  const caFile = join(dir, 'ca.crt');
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  const cert = readFileSync(certFile);
  return {
    dir,
    caFile,
    certFile,
    keyFile,
    caPem: readFileSync(caFile, 'utf8'),
    cert,
    key: readFileSync(keyFile),
    caBundle,
    fingerprint: new X509Certificate(cert).fingerprint256,
  };
}
