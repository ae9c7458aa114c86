// --client-ca: POST /mutate answers only a client whose certificate chains to that CA (the API
// server presents one when its admission config gives it a client certificate for this webhook).
// The handshake itself does not demand a certificate: the kubelet's HTTPS probes of /healthz and
// /readyz on the same port present none, and must keep working. The CA file is reloaded on change.
import { X509Certificate } from 'node:crypto';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { onRequestAsyncHookHandler } from 'fastify';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { readCaBundle } from './tls.js';
import { watchForChanges } from './tls-reload.js';

export function requireClientCertificate(log: Logger): onRequestAsyncHookHandler {
  return async (req, reply) => {
    const socket = req.raw.socket as TLSSocket;
    if (socket.authorized) return;
    const presented = Object.keys(socket.getPeerCertificate()).length > 0;
    const reason = presented ? `the certificate was not accepted (${String(socket.authorizationError)})` : 'no certificate was presented';
    log.warn({ reqId: req.id, remoteAddress: req.ip, reason }, 'refused a request without a valid client certificate');
    return reply.code(401).send({
      error: 'ClientCertificateRequired',
      message: `POST /mutate needs a client certificate signed by the --client-ca authority: ${reason}`,
    });
  };
}

export interface ClientCaReloaderOptions {
  caFile: string;
  /** The bundle in service now: a reload that reads the same bytes changes nothing. */
  current: Buffer;
  /** The rest of the context in service (serving pair and settings); the CA is set over it. */
  context: SecureContextOptions;
  server: { setSecureContext(options: SecureContextOptions): void };
  log: Logger;
  debounceMs?: number;
}

/**
 * Reloads --client-ca when its file changes, as CertificateReloader does for the serving pair
 * (the directory is watched, so a Secret's ..data swap is seen). Both set whole contexts, so the
 * serving reloader is handed `server` from here: each new pair keeps the CA in service.
 */
export class ClientCaReloader {
  private current: Buffer;
  private context: SecureContextOptions;
  private stopWatching: (() => void) | undefined;

  readonly server = {
    setSecureContext: (options: SecureContextOptions) => {
      this.context = options;
      this.options.server.setSecureContext({ ...options, ca: this.current });
    },
  };

  constructor(private readonly options: ClientCaReloaderOptions) {
    this.current = options.current;
    this.context = options.context;
  }

  start(): void {
    const { caFile, log, debounceMs } = this.options;
    this.stopWatching = watchForChanges(
      [caFile],
      () => this.reload(),
      (dir, err) => log.error({ dir, err: err.message }, `watching ${dir} for client CA changes failed; changes will not be picked up`),
      debounceMs,
    );
  }

  stop(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
  }

  /** Re-reads the bundle; serves it if it changed and loads, else keeps requiring the old CA. */
  private reload(): void {
    const { caFile, server, log } = this.options;
    let next: Buffer;
    try {
      next = readCaBundle(caFile);
      if (next.equals(this.current)) return;
      server.setSecureContext({ ...this.context, ca: next });
    } catch (err) {
      log.error({ caFile, err: errorMessage(err) }, 'client CA not reloaded: the new file is not a usable CA bundle; still requiring certificates from the previous CA');
      return;
    }
    this.current = next;
    const ca = new X509Certificate(next);
    log.info({ caFile, subject: ca.subject, fingerprint: ca.fingerprint256, validTo: ca.validTo }, 'reloaded the client CA (--client-ca)');
  }
}
