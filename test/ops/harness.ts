// What only the operations tests need: client certificates made with openssl, an in-process
// server with its metrics server and captured log lines, raw HTTPS requests that report which
// certificate the server presented, and reading Prometheus samples. The helpers every suite
// shares (serving certificates, log capture, free ports, the CLI) are in test/support/.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { buildMetricsServer } from '../../src/server/metrics-server.js';
import { WebhookMetrics } from '../../src/server/metrics.js';
import type { NamespaceSource } from '../../src/namespaces/namespace-source.js';
import { buildServer, type ServerOptions } from '../../src/server/webhook-server.js';
import type { Json } from '../support/json.js';
import { captureLogs } from '../support/logs.js';
import { namespacesYaml } from '../support/namespaces.js';

/** One namespace opted in (demo) and one not (default): all the operations tests admit into. */
export const NAMESPACES_YAML = namespacesYaml({ demo: { 'realip.io/inject': 'enabled' }, default: {} });

export interface ClientCredentials {
  cert: Buffer;
  key: Buffer;
}

/** A client CA and a client certificate it signed (extendedKeyUsage clientAuth). */
export function generateClientCerts(dir: string): { caPem: string; caFile: string; client: ClientCredentials } {
  mkdirSync(dir, { recursive: true });
  const run = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const file = (name: string) => join(dir, name);
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '1', '-subj', '/CN=test-client-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign',
    '-keyout', file('client-ca.key'), '-out', file('client-ca.crt'));
  run('req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-subj', '/CN=kube-apiserver', '-keyout', file('client.key'), '-out', file('client.csr'));
  writeFileSync(file('client.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  run('x509', '-req', '-sha256', '-days', '1', '-in', file('client.csr'), '-CA', file('client-ca.crt'), '-CAkey', file('client-ca.key'),
    '-CAcreateserial', '-CAserial', file('client-ca.srl'), '-extfile', file('client.ext'), '-out', file('client.crt'));
  return {
    caPem: readFileSync(file('client-ca.crt'), 'utf8'),
    caFile: file('client-ca.crt'),
    client: { cert: readFileSync(file('client.crt')), key: readFileSync(file('client.key')) },
  };
}

export interface Running {
  app: ReturnType<typeof buildServer>;
  port: number;
  metrics: WebhookMetrics;
  metricsPort: number;
  logger: Logger;
  lines: Json[];
  close(): Promise<void>;
}

/** buildServer() plus its metrics server, both listening on free ports of 127.0.0.1. */
export async function startServer(
  namespaces: NamespaceSource,
  options: Omit<ServerOptions, 'namespaces' | 'logger' | 'admit' | 'metrics'> & { failClosed?: boolean },
): Promise<Running> {
  const { lines, logger } = captureLogs();
  const metrics = new WebhookMetrics(namespaces);
  const { failClosed = false, ...rest } = options;
  const app = buildServer({ ...rest, namespaces, logger, metrics, admit: { labelPrefix: 'realip.io', failClosed } });
  const metricsApp = buildMetricsServer(metrics, logger);
  await app.listen({ port: 0, host: '127.0.0.1' });
  await metricsApp.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    port: (app.server.address() as AddressInfo).port,
    metrics,
    metricsPort: (metricsApp.server.address() as AddressInfo).port,
    logger,
    lines,
    close: async () => {
      await app.close();
      await metricsApp.close();
    },
  };
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Json;
  /** Fingerprint of the certificate the server presented on this connection. */
  peerFingerprint: string;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  ca: string | string[];
  client?: ClientCredentials;
  /** Reuse connections through this agent; default: a new connection for this request. */
  agent?: https.Agent;
}

/** One HTTPS request to 127.0.0.1; rejects on a transport error (refused, reset, handshake failure). */
export function send(port: number, path: string, options: RequestOptions): Promise<Response> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? (payload ? 'POST' : 'GET'),
        ca: options.ca,
        ...(options.client ?? {}),
        agent: options.agent ?? false,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
        timeout: 10_000,
      },
      (res) => {
        const peerFingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let json: Json = {};
          try {
            json = JSON.parse(text) as Json;
          } catch {
            // Not JSON (e.g. the metrics text): `text` holds it.
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, peerFingerprint });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from port ${port} within 10 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** GET a plain-HTTP URL; resolves with the status and body. */
export async function fetchText(url: string): Promise<{ status: number; text: string; contentType: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') ?? '' };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    assert.ok(Date.now() < deadline, `gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
