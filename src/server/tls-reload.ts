// Serving certificate hot reload. cert-manager rotates the Secret and the kubelet updates the
// mounted volume by writing a new timestamped directory and swapping the `..data` symlink, so
// tls.crt and tls.key (symlinks through ..data) change without any event on their own inodes.
// Watching the directories that hold them sees the swap; every event re-reads both files.
import { watch } from 'node:fs';
import { dirname } from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { WebhookMetrics } from './metrics.js';
import { readKeyPair, secureContextOptions, type KeyPair } from './tls.js';
import { errorMessage } from '../errors.js';

/** A swap is a burst of events (new dir, symlink, rename, old dir removed); reload once after it. */
export const RELOAD_DEBOUNCE_MS = 200;

/**
 * Calls `onChange` once after each burst of events in the directories that hold `files` (a
 * Secret volume's ..data swap changes no inode of the files themselves). Returns the stop.
 */
export function watchForChanges(files: readonly string[], onChange: () => void, onError: (dir: string, err: Error) => void, debounceMs = RELOAD_DEBOUNCE_MS): () => void {
  let timer: NodeJS.Timeout | undefined;
  const watchers = [...new Set(files.map((file) => dirname(file)))].map((dir) => {
    // Not persistent: the watch alone must not keep a stopping process alive.
    const watcher = watch(dir, { persistent: false }, () => {
      clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    });
    watcher.on('error', (err) => onError(dir, err));
    return watcher;
  });
  return () => {
    clearTimeout(timer);
    for (const watcher of watchers) watcher.close();
  };
}

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
  private stopWatching: (() => void) | undefined;

  constructor(private readonly options: CertificateReloaderOptions) {
    this.current = options.current;
    options.metrics?.certificateInUse(this.current.certificate);
  }

  start(): void {
    const { certFile, keyFile, log, debounceMs } = this.options;
    this.stopWatching = watchForChanges(
      [certFile, keyFile],
      () => this.reload(),
      (dir, err) => log.error({ dir, err: err.message }, `watching ${dir} for certificate changes failed; rotations will not be picked up`),
      debounceMs,
    );
    log.info({ certFile, keyFile }, 'watching the serving certificate for changes');
  }

  stop(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
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
