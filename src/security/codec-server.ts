/**
 * `cxsync codec-server`: Temporal's remote codec endpoint (docs.temporal.io/production-deployment/data-encryption).
 * The Temporal UI and the `temporal` CLI send the encrypted payloads they display to POST /decode and get them
 * back readable; POST /encode is the reverse (for the UI's signal and query inputs). Only those who reach this
 * server (and hold its token, when one is set) see record content: the keys never leave it.
 *
 * Body, both ways: {"payloads": [{"metadata": {"encoding": "<base64>", …}, "data": "<base64>"}, …]}.
 */
import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { JSONToPayload, payloadToJSON, type JSONPayload } from '@temporalio/common/lib/proto-utils';
import { payloadCodec } from './codec';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Origins whose pages may call this server (the Temporal UI's), or '*' for any. */
  corsOrigins: string[];
  /** When set, requests must carry `Authorization: Bearer <token>` (the `temporal` CLI's --codec-auth). */
  authToken?: string;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes?: number;
  log?: (line: string) => void;
}

const HEADERS_ALLOWED = 'authorization, content-type, x-namespace';

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function readBody(req: http.IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw new HttpError(413, `request body larger than ${max} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parsePayloads(text: string): Payload[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
  const list = (body as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(list)) throw new HttpError(400, 'body must be {"payloads": [...]}');
  try {
    return list.map((p) => JSONToPayload(p as JSONPayload));
  } catch {
    throw new HttpError(400, 'a payload is not {"metadata": {key: base64}, "data": base64}');
  }
}

export function createCodecServer(o: CodecServerOptions): http.Server {
  const max = o.maxBodyBytes ?? 8 * 1024 * 1024;
  const anyOrigin = o.corsOrigins.includes('*');
  return http.createServer(async (req, res) => {
    const origin = req.headers.origin;
    if (origin && (anyOrigin || o.corsOrigins.includes(origin))) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      // The UI's "include cross-origin credentials" option sends cookies; allowed for listed origins only.
      if (!anyOrigin) res.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    const send = (status: number, body?: unknown) => {
      if (body === undefined) res.writeHead(status).end();
      else res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    try {
      const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
      const op = path.endsWith('/decode') ? 'decode' : path.endsWith('/encode') ? 'encode' : undefined;
      if (req.method === 'OPTIONS') {
        res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
        res.setHeader('Access-Control-Allow-Headers', HEADERS_ALLOWED);
        res.setHeader('Access-Control-Max-Age', '600');
        return send(204);
      }
      if (req.method === 'GET' && (path === '' || path === '/health')) return send(200, { ok: true });
      if (!op) throw new HttpError(404, 'POST /encode or /decode');
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      if (o.authToken) {
        const auth = req.headers.authorization ?? '';
        const token = auth.replace(/^Bearer\s+/i, '');
        if (!auth || !sameSecret(token, o.authToken)) throw new HttpError(401, 'missing or wrong Authorization: Bearer token');
      }
      const payloads = parsePayloads(await readBody(req, max));
      const out = op === 'decode' ? await o.codec.decode(payloads) : await o.codec.encode(payloads);
      send(200, { payloads: out.map((p) => payloadToJSON(p)) });
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 400;
      // A payload that does not open is the caller's problem (wrong key id, altered data), said without content.
      o.log?.(`codec-server: ${req.method} ${req.url} → ${status}: ${(err as Error).message}`);
      send(status, { error: (err as Error).message });
    }
  });
}

export async function listen(server: http.Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as { port: number }).port;
}

/** The command: serves until SIGINT/SIGTERM. Refuses to start without keys (there would be nothing to decode). */
export async function runCodecServer(
  env: { CXSYNC_CODEC_KEYS?: string; CXSYNC_CODEC_KEY_ID?: string; CXSYNC_CODEC_CORS_ORIGINS: string; CXSYNC_CODEC_AUTH_TOKEN?: string },
  opts: { port: number; host: string },
  say: (line: string) => void,
): Promise<void> {
  const codec = payloadCodec(env);
  if (!codec) throw new Error('CXSYNC_CODEC_KEYS is not set: payloads are not encrypted, so there is nothing to decode (docs/DEPLOYMENT.md, "Payload encryption")');
  const corsOrigins = env.CXSYNC_CODEC_CORS_ORIGINS.split(',').map((x) => x.trim()).filter(Boolean);
  const server = createCodecServer({ codec, corsOrigins, authToken: env.CXSYNC_CODEC_AUTH_TOKEN, log: say });
  let port: number;
  try {
    port = await listen(server, opts.port, opts.host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'EADDRINUSE' ? `port ${opts.port} on ${opts.host} is already in use: choose another with --port` : (err as Error).message);
  }
  say(`codec server on http://${opts.host}:${port} (POST /decode, /encode); encodes with key ${codec.encodeKeyId}; CORS origins ${corsOrigins.join(', ')}; ${env.CXSYNC_CODEC_AUTH_TOKEN ? 'Authorization: Bearer token required' : 'no token required'}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
