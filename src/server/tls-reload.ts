// Serving certificate hot reload. cert-manager rotates the Secret and the kubelet updates the
// mounted volume by writing a new timestamped directory and swapping the `..data` symlink, so
// tls.crt and tls.key (symlinks through ..data) change without any event on their own inodes.
// Watching the directories that hold them sees the swap; every event re-reads both files.
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { WebhookMetrics } from './metrics.js';
import { readKeyPair, secureContextOptions, type KeyPair } from './tls.js';
import { errorMessage } from '../errors.js';

/** A swap is a burst of events (new dir, symlink, rename, old dir removed); reload once after it. */
export const RELOAD_DEBOUNCE_MS = 200;

export interface CertificateReloaderOptions {
  certFile: string;
  keyFile: string;
  /** The pair being served now: a reload that reads the same bytes changes nothing. */
  current: KeyPair;
  clientCa?: Buffer | undefined;
  server: { setSecureContext(options: SecureContextOptions): void };
  log: Logger;
  /** Told the expiry of the certificate in service, and the result of each reload. */
  metrics?: Pick<WebhookMetrics, 'certificateInUse' | 'certificateReloaded'> | undefined;
  debounceMs?: number;
}

export class CertificateReloader {
  private current: KeyPair;
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly debounceMs: number;

  constructor(private readonly options: CertificateReloaderOptions) {
    this.current = options.current;
    this.debounceMs = options.debounceMs ?? RELOAD_DEBOUNCE_MS;
    options.metrics?.certificateInUse(this.current.certificate);
  }

  start(): void {
    const { certFile, keyFile, log } = this.options;
    for (const dir of new Set([dirname(certFile), dirname(keyFile)])) {
      // Not persistent: the watch alone must not keep a stopping process alive.
      const watcher = watch(dir, { persistent: false }, () => this.schedule());
      watcher.on('error', (err) =>
        log.error({ dir, err: err.message }, `watching ${dir} for certificate changes failed; rotations will not be picked up`),
      );
      this.watchers.push(watcher);
    }
    log.info({ certFile, keyFile }, 'watching the serving certificate for changes');
  }

  stop(): void {
    clearTimeout(this.timer);
    for (const watcher of this.watchers.splice(0)) watcher.close();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload(), this.debounceMs);
  }

  /** Re-reads both files; serves them if they changed and form a valid pair, else keeps the old pair. */
  private reload(): void {
    const { certFile, keyFile, clientCa, server, log } = this.options;
    let next: KeyPair;
    try {
      next = readKeyPair(certFile, keyFile);
      if (next.cert.equals(this.current.cert) && next.key.equals(this.current.key)) return;
      server.setSecureContext(secureContextOptions({ cert: next.cert, key: next.key, clientCa }));
    } catch (err) {
      // Whatever went wrong, the context in service is untouched: keep serving it.
      log.error(
        { err: errorMessage(err), servingFingerprint: this.current.certificate.fingerprint256 },
        'serving certificate not reloaded: the new files are not a valid pair; still serving the previous certificate',
      );
      this.options.metrics?.certificateReloaded('refused');
      return;
    }
    const previous = this.current.certificate;
    this.current = next;
    log.info(
      {
        subject: next.certificate.subject,
        fingerprint: next.certificate.fingerprint256,
        validTo: next.certificate.validTo,
        previousFingerprint: previous.fingerprint256,
      },
      'reloaded the serving certificate',
    );
    this.options.metrics?.certificateInUse(next.certificate);
    this.options.metrics?.certificateReloaded('reloaded');
  }
}
