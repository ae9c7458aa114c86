import { ApiException } from '@kubernetes/client-node';
import { errorMessage } from '../errors.js';

/** The API server's own message (a Status object's `message`) instead of the client's dump. */
export function describeApiError(err: unknown): string {
  if (err instanceof ApiException) {
    let body: unknown = err.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        // Not JSON: the text itself is the message.
      }
    }
    const message = typeof body === 'object' && body !== null ? (body as { message?: unknown }).message : body;
    return `HTTP ${err.code}${message ? `: ${String(message)}` : ''}`;
  }
  return errorMessage(err);
}
