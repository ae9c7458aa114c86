// GETs, watches and the repairer's few writes against the API server on connections of their own. client-node's KubeConfig
// supplies the TLS settings and credentials (exec plugins and token files included) and a new
// agent per request, so no request ever waits behind a socket another one froze. The watch
// reports every chunk it receives, for the cache's inactivity deadline.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** An API server answer other than 200, with the Status object's reason, message and causes. */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    readonly status: number,
    readonly reason: string | undefined,
    message: string,
    readonly causes: readonly string[] = [],
  ) {
    super(`HTTP ${status}${reason ? ` ${reason}` : ''}: ${message}`);
  }
}

/** A Status object, as the API server sends for an error (also inside a watch ERROR event). */
export interface KubeStatus {
  code?: number;
  reason?: string;
  message?: string;
  details?: { causes?: { reason?: string; message?: string }[] };
}

export function statusError(status: KubeStatus, fallbackCode: number): KubeApiError {
  const causes = (status.details?.causes ?? []).map((c) => c.reason ?? c.message ?? '').filter(Boolean);
  return new KubeApiError(status.code ?? fallbackCode, status.reason, status.message ?? 'no message', causes);
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface WatchHandlers {
  /** The response headers, then every chunk of the body, however small: the connection is alive. */
  onData(): void;
  /** Every complete line (one watch event). */
  onLine(line: string): void;
}

// An error body is a Status object of a few hundred bytes; more is not worth holding.
const MAX_ERROR_BODY = 64 * 1024;

export class KubeHttp {
  constructor(private readonly kubeConfig: KubeConfig) {}

  /** GET `path` and parse the JSON answer; aborted (socket closed) with `signal`. */
  async getJson<T>(path: string, query: Query, signal: AbortSignal): Promise<T> {
    const res = await this.open(path, query, signal);
    const body = await readBody(res, Infinity);
    if (res.statusCode !== 200) throw errorFrom(res.statusCode ?? 0, body);
    return JSON.parse(body) as T;
  }

  /**
   * Sends `body` as JSON (or as `contentType`, a JSON patch say) with `method` and parses the
   * JSON answer; any status but 200 and 201 is thrown as a KubeApiError.
   */
  async send<T>(method: 'POST' | 'PATCH', path: string, body: unknown, signal: AbortSignal, contentType = 'application/json'): Promise<T> {
    const res = await this.open(path, {}, signal, { method, body: JSON.stringify(body), contentType });
    const text = await readBody(res, Infinity);
    if (res.statusCode !== 200 && res.statusCode !== 201) throw errorFrom(res.statusCode ?? 0, text);
    return JSON.parse(text) as T;
  }

  /** Opens a watch and delivers its lines; settles when the stream ends (resolves) or breaks (rejects). */
  async watch(path: string, query: Query, signal: AbortSignal, handlers: WatchHandlers): Promise<void> {
    const res = await this.open(path, { ...query, watch: true }, signal);
    if (res.statusCode !== 200) throw errorFrom(res.statusCode ?? 0, await readBody(res, MAX_ERROR_BODY));
    handlers.onData();
    res.setEncoding('utf8');
    let partial = '';
    await new Promise<void>((resolve, reject) => {
      res.on('data', (chunk: string) => {
        handlers.onData();
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) if (line.trim()) handlers.onLine(line);
      });
      res.on('end', resolve);
      res.on('error', reject);
      // A socket closed before the end of the chunked body ends nothing: it is a break.
      res.on('close', () => (res.complete ? resolve() : reject(new Error('watch stream closed before its end'))));
    });
  }

  private async open(
    path: string,
    query: Query,
    signal: AbortSignal,
    write?: { method: string; body: string; contentType: string },
  ): Promise<http.IncomingMessage> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/+$/, '') + path);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value));
    const options: https.RequestOptions = {
      method: write?.method ?? 'GET',
      headers: write
        ? { accept: 'application/json', 'content-type': write.contentType, 'content-length': Buffer.byteLength(write.body) }
        : { accept: 'application/json' },
    };
    // Credentials, CA, client certificate, and a new agent: this request's own connection.
    await this.kubeConfig.applyToHTTPSOptions(options);
    signal.throwIfAborted();
    const send = url.protocol === 'http:' ? http.request : https.request;
    return new Promise((resolve, reject) => {
      const req = send(url, { ...options, signal }, resolve);
      req.on('error', reject);
      req.end(write?.body);
    });
  }
}

function readBody(res: http.IncomingMessage, limit: number): Promise<string> {
  res.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let body = '';
    res.on('data', (chunk: string) => {
      if (body.length < limit) body += chunk;
    });
    res.on('end', () => resolve(body));
    res.on('error', reject);
  });
}

function errorFrom(code: number, body: string): KubeApiError {
  try {
    const status = JSON.parse(body) as KubeStatus;
    if (typeof status === 'object' && status !== null) return statusError(status, code);
  } catch {
    // Not a Status object (a proxy's HTML page, say): its text is the message.
  }
  return new KubeApiError(code, undefined, body.trim().slice(0, 200) || 'empty body');
}
