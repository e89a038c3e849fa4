/** One line for "cannot reach Temporal", instead of the transport library's text (tonic errors, deadlines). */

/** Whether a connect error means the server could not be reached (as opposed to a refused namespace, say). */
export function isUnreachable(err: unknown): boolean {
  const e = err as Error | undefined;
  return e?.name === 'TransportError' || /transport|connect|unavailable|deadline|dns error/i.test(e?.message ?? '');
}

/** Why the connection failed, in words, from what the Rust core or the gRPC client reported. */
export function unreachableCause(err: unknown): string {
  const msg = (err as Error | undefined)?.message ?? String(err);
  if (/ConnectionRefused|connection refused/i.test(msg)) return 'connection refused (nothing listens on that port)';
  if (/dns error|lookup address|ENOTFOUND|EAI_AGAIN/i.test(msg)) return 'the host name does not resolve';
  if (/deadline|timed? ?out|TimedOut/i.test(msg)) return 'no answer in time (wrong host or port, a firewall, or a TLS server reached without TLS)';
  if (/tls|certificate|handshake|ssl/i.test(msg)) return 'the TLS handshake failed (check the CA, client certificate and server name settings)';
  if (/ConnectionReset|connection reset|broken pipe/i.test(msg)) return 'the connection was closed by the other side (a plain-text client talking to a TLS server?)';
  return 'the connection failed';
}

export function temporalUnreachableMessage(address: string, err: unknown): string {
  return `Temporal unreachable at ${address}: ${unreachableCause(err)}; check that the Temporal server runs there (npm start runs one locally) and TEMPORAL_ADDRESS (LOG_LEVEL=debug shows the transport error)`;
}
