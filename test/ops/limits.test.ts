// Slow clients, many connections and overload: the server cuts, bounds and sheds, and keeps
// answering its probes and metrics. Small limits keep the waits short; the production defaults
// are checked to reach the server.
//   node --import tsx --test test/ops/limits.test.ts
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { defaultLimits, type ServerLimits } from '../../src/server/limits.js';
import { FileNamespaceSource } from '../../src/namespaces/file-namespace-source.js';
import { KEEP_ALIVE_TIMEOUT_MS } from '../../src/server/webhook-server.js';
import { deployment, review } from '../fixtures/objects.js';
import { generateCerts, type ServingCerts } from '../support/certs.js';
import { eventually, fetchText, NAMESPACES_YAML, send, startServer, type Running } from './harness.js';
import { sample } from '../support/prometheus.js';

let work = '';
let certs: ServingCerts;
let namespacesFile = '';
const servers: Running[] = [];
const sockets: { destroy(): void }[] = [];

before(() => {
  work = mkdtempSync(join(tmpdir(), 'realip-limits-test-'));
  certs = generateCerts(join(work, 'certs'));
  namespacesFile = join(work, 'namespaces.yaml');
  writeFileSync(namespacesFile, NAMESPACES_YAML);
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  for (const server of servers) await server.close();
  rmSync(work, { recursive: true, force: true });
});

async function start(limits: Partial<ServerLimits>): Promise<Running> {
  const server = await startServer(new FileNamespaceSource(namespacesFile), { tls: { cert: certs.cert, key: certs.key }, limits });
  servers.push(server);
  return server;
}

/** A TLS connection that has finished its handshake. */
async function openTls(port: number): Promise<TLSSocket> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca: certs.caPem });
  sockets.push(socket);
  await once(socket, 'secureConnect');
  return socket;
}

/**
 * Resolves with what the server sent once it closed the socket (a reset included: the code of the
 * error is appended, as ` [ECONNRESET]`); fails if it is still open after `boundMs`.
 */
async function closedByServer(socket: { on(event: string, fn: (...args: never[]) => void): unknown }, boundMs = 10_000) {
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  socket.on('error', (err: NodeJS.ErrnoException) => (received += ` [${err.code ?? err.message}]`));
  let timer: NodeJS.Timeout | undefined;
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the server left the connection open for ${boundMs} ms`)), boundMs);
  });
  try {
    return await Promise.race([closed, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

const FAST_TIMEOUTS: Partial<ServerLimits> = {
  handshakeTimeoutMs: 300,
  headersTimeoutMs: 300,
  requestTimeoutMs: 600,
  idleTimeoutMs: 600,
  timeoutCheckIntervalMs: 50,
};

describe('production defaults reach the server', () => {
  it('timeouts, connection bound and keep-alive', async () => {
    const server = await start({});
    const limits = defaultLimits();
    const http = server.app.server;
    assert.equal(http.headersTimeout, limits.headersTimeoutMs);
    assert.equal(http.requestTimeout, limits.requestTimeoutMs);
    assert.equal(http.timeout, limits.idleTimeoutMs);
    assert.equal(http.maxConnections, limits.maxConnections);
    assert.equal(http.keepAliveTimeout, KEEP_ALIVE_TIMEOUT_MS);
    // The API server waits at most timeoutSeconds (5 s in manifests/base) for an answer.
    assert.ok(limits.headersTimeoutMs < 5_000 && limits.requestTimeoutMs < 5_000 && limits.handshakeTimeoutMs < 5_000);
    assert.ok(limits.maxHeapUsedBytes > 0, 'heap shedding is on');
  });
});

describe('slow clients', () => {
  let server: Running;
  before(async () => {
    server = await start(FAST_TIMEOUTS);
  });

  it('cuts a client that sends its headers a byte at a time (slowloris) with 408', async () => {
    const socket = await openTls(server.port);
    socket.write('POST /mutate HTTP/1.1\r\nHost: webhook\r\nX-Slow: ');
    // Keep the connection busy, so only the headers timeout can end it.
    const drip = setInterval(() => socket.writable && socket.write('a'), 50);
    try {
      const received = await closedByServer(socket);
      assert.match(received, /^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(drip);
    }
  });

  // A client that keeps sending races the server's close: its next byte can meet the closed
  // socket, and the reset that answers it takes the unread 408 with it (seen under load). So the
  // byte-at-a-time client asserts the cut (the server closes, with 408 or that reset), and a client
  // that stalls mid-body, which nothing races, asserts the 408. The idle timeout is out of reach
  // for both, so only the request timeout can end them.
  describe('a body that never ends, with only the request timeout in reach', () => {
    let slowBody: Running;
    before(async () => {
      slowBody = await start({ ...FAST_TIMEOUTS, idleTimeoutMs: 60_000 });
    });
    const openBody = async () => {
      const socket = await openTls(slowBody.port);
      socket.write('POST /mutate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{');
      return socket;
    };

    it('cuts a client that sends its body a byte at a time', async () => {
      const socket = await openBody();
      const drip = setInterval(() => socket.writable && socket.write(' '), 50);
      try {
        const received = await closedByServer(socket);
        assert.match(received, /^HTTP\/1\.1 408 |^ ?\[(ECONNRESET|EPIPE)\]/, received);
      } finally {
        clearInterval(drip);
      }
    });

    it('answers 408 to a client that stalls mid-body', async () => {
      const socket = await openBody();
      assert.match(await closedByServer(socket), /^HTTP\/1\.1 408 /);
    });
  });

  it('closes a TLS connection that never sends a request, with 408', async () => {
    const socket = await openTls(server.port);
    assert.match(await closedByServer(socket), /^HTTP\/1\.1 408 /);
  });

  it('closes a TCP connection that never starts the TLS handshake', async () => {
    const socket = tcpConnect({ host: '127.0.0.1', port: server.port });
    sockets.push(socket);
    await once(socket, 'connect');
    await closedByServer(socket);
  });

  it('answers a normal client meanwhile', async () => {
    const res = await send(server.port, '/mutate', { ca: certs.caPem, body: review(deployment(), { uid: 'normal' }) });
    assert.equal(res.status, 200);
    assert.equal(res.json['response']['uid'], 'normal');
  });
});

describe('connection age', () => {
  /** One GET /healthz on `socket`, and the response head. */
  async function healthz(socket: TLSSocket): Promise<string> {
    let received = '';
    const done = new Promise<void>((resolve) => {
      const onData = (chunk: Buffer) => {
        received += chunk.toString();
        if (received.includes('{"status":"ok"}')) {
          socket.off('data', onData);
          resolve();
        }
      };
      socket.on('data', onData);
    });
    socket.write('GET /healthz HTTP/1.1\r\nHost: webhook\r\n\r\n');
    await done;
    return received.slice(0, received.indexOf('\r\n\r\n')).toLowerCase();
  }

  it('keeps a young connection, and closes one past maxConnectionAgeMs after its answer', async () => {
    const server = await start({ maxConnectionAgeMs: 300 });
    const socket = await openTls(server.port);
    assert.match(await healthz(socket), /^connection: keep-alive$/m, 'the first answer starts the clock');
    assert.match(await healthz(socket), /^connection: keep-alive$/m);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const head = await healthz(socket);
    assert.match(head, /^connection: close$/m);
    await closedByServer(socket);
  });
});

describe('many connections', () => {
  it('closes connections beyond maxConnections on arrival, and counts them', async () => {
    const server = await start({ maxConnections: 2 });
    const held = [await openTls(server.port), await openTls(server.port)];
    const excess = tlsConnect({ host: '127.0.0.1', port: server.port, ca: certs.caPem });
    sockets.push(excess);
    const outcome = await new Promise<string>((resolve) => {
      excess.on('secureConnect', () => resolve('handshake completed'));
      excess.on('error', (err: NodeJS.ErrnoException) => resolve(`refused: ${err.code ?? err.message}`));
      excess.on('close', () => resolve('refused: closed'));
    });
    assert.match(outcome, /^refused/);
    const text = (await fetchText(`http://127.0.0.1:${server.metricsPort}/metrics`)).text;
    assert.equal(sample(text, 'realip_webhook_dropped_connections_total'), 1);
    assert.ok(server.lines.some((l) => l['level'] === 40 && l['maxConnections'] === 2), 'a warn line names the limit');

    // A bound, not a latch: once a held connection goes, a new one is served.
    held[0]!.destroy();
    const res = await eventually('a connection after one was freed', async () => {
      try {
        return await send(server.port, '/healthz', { ca: certs.caPem });
      } catch {
        return undefined;
      }
    });
    assert.equal(res.status, 200);
  });
});

describe('overload', () => {
  it('sheds POST /mutate with a JSON 503 while the probes and metrics still answer', async () => {
    // A heap limit of one byte: under pressure from the first memory sample on (once a second).
    const server = await start({ maxHeapUsedBytes: 1, retryAfterSeconds: 3 });
    const shed = await eventually('a shed request', async () => {
      const res = await send(server.port, '/mutate', { ca: certs.caPem, body: review(deployment()) });
      return res.status === 503 ? res : undefined;
    });
    assert.match(String(shed.headers['content-type']), /^application\/json/);
    assert.equal(shed.json['error'], 'Overloaded');
    assert.match(shed.json['message'], /heapUsedBytes \d+ is over the limit of 1/);
    assert.equal(shed.headers['retry-after'], '3');
    const line = server.lines.find((l) => l['msg'] === 'shed a request: the webhook is overloaded');
    assert.equal(line?.['level'], 40);
    assert.equal(line?.['type'], 'heapUsedBytes');

    assert.equal((await send(server.port, '/healthz', { ca: certs.caPem })).status, 200);
    assert.equal((await send(server.port, '/readyz', { ca: certs.caPem })).status, 200);
    const metrics = await fetchText(`http://127.0.0.1:${server.metricsPort}/metrics`);
    assert.equal(metrics.status, 200);
    assert.ok(sample(metrics.text, 'realip_webhook_rejected_requests_total', { status: '503' })! >= 1);
  });
});
