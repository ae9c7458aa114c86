// --client-ca: POST /mutate answers only a client whose certificate chains to that CA (the API
// server presents one when its admission config gives it a client certificate for this webhook).
// The handshake itself does not demand a certificate: the kubelet's HTTPS probes of /healthz and
// /readyz on the same port present none, and must keep working.
import type { TLSSocket } from 'node:tls';
import type { onRequestAsyncHookHandler } from 'fastify';
import type { Logger } from 'pino';

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
