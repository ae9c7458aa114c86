// The serving key pair and the TLS settings built from it, shared by start-up and hot reload so a
// reloaded context is configured exactly like the first one.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { errorMessage } from '../errors.js';

export const MIN_TLS_VERSION = 'TLSv1.2';

export interface ServingTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA bundle that client certificates must chain to (--client-ca); none means no client check. */
  clientCa?: string | Buffer | undefined;
}

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
  certificate: X509Certificate;
}

export class KeyPairError extends Error {
  override name = 'KeyPairError';
}

/** The options of every secure context the server uses, at start and on each reload. */
export function secureContextOptions(tls: ServingTls): SecureContextOptions {
  return { cert: tls.cert, key: tls.key, minVersion: MIN_TLS_VERSION, ...(tls.clientCa ? { ca: tls.clientCa } : {}) };
}

/**
 * Reads the certificate and key and checks that they parse and belong together, so a half-written
 * or mismatched pair is refused instead of being served. Errors name the file and the problem.
 */
export function readKeyPair(certFile: string, keyFile: string): KeyPair {
  const cert = readPem(certFile);
  const key = readPem(keyFile);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (err) {
    throw new KeyPairError(`${certFile}: not a PEM certificate (${errorMessage(err)})`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new KeyPairError(`${keyFile}: not a PEM private key (${errorMessage(err)})`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new KeyPairError(`${keyFile} is not the private key of the certificate in ${certFile} (subject ${certificate.subject})`);
  }
  try {
    // Catches what the checks above do not, e.g. a chain OpenSSL will not load.
    createSecureContext({ cert, key });
  } catch (err) {
    throw new KeyPairError(`${certFile} and ${keyFile} cannot be served: ${errorMessage(err)}`);
  }
  return { cert, key, certificate };
}

/** Reads a CA bundle and checks that it starts with a certificate. */
export function readCaBundle(file: string): Buffer {
  const ca = readPem(file);
  try {
    new X509Certificate(ca);
  } catch (err) {
    throw new KeyPairError(`${file}: not a PEM CA certificate (${errorMessage(err)})`);
  }
  return ca;
}

function readPem(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new KeyPairError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
  }
}
