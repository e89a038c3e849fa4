/**
 * A secured Temporal frontend for tests: the Temporal CLI dev server speaks plain text only (`temporal server
 * start-dev` has no TLS flags), so this HTTP/2 proxy terminates TLS in front of it, requires a client certificate
 * signed by a throwaway CA (mTLS, as a secured self-hosted cluster does) and, optionally, an API key in the
 * `authorization` header (as Temporal Cloud does), answering gRPC UNAUTHENTICATED otherwise. Certificates are made
 * with the openssl command line, as an operator would make them.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from another CA: the proxy must refuse it. */
  strangerCert: string;
  strangerKey: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', `${name}.key`, '-out', `${name}.pem`]);
}

function makeLeaf(dir: string, ca: string, name: string, ext: string): void {
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
}

export function makeTestPki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxsync-pki-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  makeLeaf(dir, 'ca', 'server', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:temporal.test,DNS:localhost,IP:127.0.0.1\n');
  makeLeaf(dir, 'ca', 'client', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  makeLeaf(dir, 'other-ca', 'stranger', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  const p = (f: string) => path.join(dir, f);
  return { dir, caCert: p('ca.pem'), serverCert: p('server.pem'), serverKey: p('server.key'), clientCert: p('client.pem'), clientKey: p('client.key'), strangerCert: p('stranger.pem'), strangerKey: p('stranger.key') };
}

export interface TlsProxy {
  address: string;
  /** gRPC calls forwarded, and refused for a missing or wrong API key. */
  counts: { forwarded: number; refused: number };
  close(): Promise<void>;
}

export async function startTlsProxy(o: { pki: TestPki; upstream: string; apiKey?: string }): Promise<TlsProxy> {
  const upstream = http2.connect(`http://${o.upstream}`);
  upstream.on('error', () => undefined);
  const counts = { forwarded: 0, refused: 0 };
  const server = http2.createSecureServer({
    key: fs.readFileSync(o.pki.serverKey),
    cert: fs.readFileSync(o.pki.serverCert),
    ca: fs.readFileSync(o.pki.caCert),
    requestCert: true,
    rejectUnauthorized: true,
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    if (o.apiKey !== undefined && headers.authorization !== `Bearer ${o.apiKey}`) {
      counts.refused++;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'missing or wrong API key' }, { endStream: true });
      return;
    }
    counts.forwarded++;
    const forward: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers)) if (k !== ':authority' && k !== ':scheme' && v !== undefined) forward[k] = v;
    const req = upstream.request(forward);
    req.on('error', () => stream.destroy());
    stream.pipe(req);
    let trailers: http2.IncomingHttpHeaders = {};
    req.on('trailers', (t) => (trailers = t));
    req.on('response', (h) => {
      const reply: http2.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(h)) if (v !== undefined) reply[k] = v;
      if ('grpc-status' in h) {
        // Trailers-only answer (an error): headers end the stream.
        stream.respond(reply, { endStream: true });
        req.resume();
        return;
      }
      stream.respond(reply, { waitForTrailers: true });
      stream.on('wantTrailers', () => {
        const out: http2.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(trailers)) if (v !== undefined && !k.startsWith(':')) out[k] = v;
        stream.sendTrailers(out);
      });
      req.pipe(stream);
    });
    stream.on('close', () => {
      if (!req.closed) req.close();
    });
  });
  server.on('tlsClientError', () => undefined);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    counts,
    async close() {
      upstream.close();
      // Long polls stay open: close the sessions instead of waiting for them.
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      });
    },
  };
}
