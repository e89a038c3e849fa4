/** HTTP plumbing: identity endpoints, the /v1.0 surface (auth, faults, counting, $batch) and the /admin API. */
import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkBearer, instanceDiscovery, openIdConfiguration, rolesAllowing, tokenRequest, tokenRoles, type AuthConfig } from './auth';
import { GraphHttpError, errorBody, faultCode } from './errors';
import type { Faults } from './faults';
import { handleGraph, userOfPath } from './graph';
import type { GraphContext, GraphRequest, GraphResponse } from './route-kit';
import { parsePrefer } from './query';
import type { AdminApi } from './admin';
import type { Throttle } from './throttle';
import { handleUpload, isUploadPath } from './mail';

export interface ServerDeps {
  auth: AuthConfig;
  /** Users whose mailbox Graph cannot serve (no Exchange Online licence, inactive, on-premises): 404 MailboxNotEnabledForRESTAPI. */
  mailboxesNotEnabled: Set<string>;
  graph: GraphContext;
  faults: Faults;
  admin: AdminApi;
  counts: { total: number; byMailbox: Map<string, number>; recent: string[]; throttled: Map<string, number> };
  throttle: Throttle;
  /** Added before each /v1.0 answer, so concurrency limits and timeouts can be exercised. */
  latencyMs: number;
  log?: (line: string) => void;
}

const MAX_BODY = 8 * 1024 * 1024;
const BATCH_LIMIT = 20;
/** Outlook runs up to 4 sub-requests of a $batch at a time (throttling-limits.md, "Outlook service limits for JSON batching"). */
const BATCH_PARALLELISM = 4;
const GRAPH_JSON = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new GraphHttpError(413, 'RequestEntityTooLarge', 'The request body is too large.'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJsonBody(raw: string): unknown {
  if (!raw.trim()) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    throw new GraphHttpError(400, 'BadRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, contentType = 'application/json; charset=utf-8'): void {
  if (body === undefined || status === 204) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function createRequestHandler(deps: ServerDeps) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const started = Date.now();
    const requestId = crypto.randomUUID();
    const clientRequestId = (req.headers['client-request-id'] as string | undefined) ?? requestId;
    res.setHeader('request-id', requestId);
    res.setHeader('client-request-id', clientRequestId);
    const url = new URL(req.url ?? '/', deps.auth.origin);
    res.on('finish', () => deps.log?.(`${req.method} ${url.pathname}${url.search.length > 120 ? url.search.slice(0, 120) + '…' : url.search} ${res.statusCode} ${Date.now() - started}ms`));
    readBody(req)
      .then((bytes) => route(deps, req, res, url, bytes.toString('utf8'), requestId, clientRequestId, bytes))
      .catch((err: unknown) => {
        const ge = err instanceof GraphHttpError ? err : new GraphHttpError(500, 'InternalServerError', (err as Error)?.message ?? String(err));
        if (!(err instanceof GraphHttpError)) deps.log?.(`internal error: ${(err as Error)?.stack ?? String(err)}`);
        if (!res.headersSent) send(res, ge.status, errorBody(ge, requestId, clientRequestId), ge.headers);
      });
  };
}

async function route(deps: ServerDeps, req: IncomingMessage, res: ServerResponse, url: URL, raw: string, requestId: string, clientRequestId: string, bytes: Buffer): Promise<void> {
  const method = req.method ?? 'GET';
  const path = url.pathname;

  if (path === '/v1.0' || path.startsWith('/v1.0/')) {
    deps.counts.total++;
    const why = checkBearer(deps.auth, req.headers.authorization);
    if (why) {
      const err = new GraphHttpError(401, 'InvalidAuthenticationToken', why, { 'WWW-Authenticate': `Bearer realm="", authorization_uri="${deps.auth.origin}/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"` });
      send(res, 401, errorBody(err, requestId, clientRequestId), err.headers);
      return;
    }
    const rawPath = path.slice('/v1.0'.length) || '/';
    const headers = lowerHeaders(req.headers);
    const roles = tokenRoles(req.headers.authorization!);
    let result: GraphResponse;
    if (rawPath.toLowerCase() === '/$batch') {
      if (method !== 'POST') throw new GraphHttpError(405, 'BadRequest', 'Only POST is allowed on $batch.');
      result = await batch(deps, parseJsonBody(raw), requestId, clientRequestId, roles);
    } else {
      const user = userOfPath(rawPath);
      const leave = user ? enterOrCount(deps, mailboxKeyOf(deps, user)) : undefined;
      try {
        const delay = deps.latencyMs + (user ? deps.faults.latencyFor(mailboxKeyOf(deps, user)) : 0);
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        result = graphOnce(deps, { method, rawPath, query: url.searchParams, headers, body: undefined }, raw, requestId, clientRequestId, roles);
      } finally {
        leave?.();
      }
    }
    send(res, result.status, result.body, result.headers, GRAPH_JSON);
    return;
  }

  if (path === '/admin' || path.startsWith('/admin/')) {
    const out = deps.admin.http(method, path.slice('/admin'.length), url.searchParams, parseJsonBody(raw));
    send(res, out.status, out.body);
    return;
  }

  // An attachment upload session's pre-authenticated URL (outlook.office.com in Microsoft 365): no bearer token.
  if (isUploadPath(path)) {
    const out = handleUpload(deps.graph, method, url, lowerHeaders(req.headers), bytes);
    return send(res, out.status, out.body, out.headers);
  }

  // Identity platform: /{tenant}/v2.0/.well-known/openid-configuration, /{tenant}/oauth2/v2.0/token, instance discovery.
  let m = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(path);
  if (m && method === 'GET') return send(res, 200, openIdConfiguration(deps.auth, decodeURIComponent(m[1])));
  if (/^\/common\/discovery\/instance$/.test(path) && method === 'GET') return send(res, 200, instanceDiscovery(deps.auth));
  m = /^\/([^/]+)\/discovery\/v2\.0\/keys$/.exec(path);
  if (m && method === 'GET') return send(res, 200, { keys: [] });
  m = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(path);
  if (m && method === 'POST') {
    const out = tokenRequest(deps.auth, decodeURIComponent(m[1]), new URLSearchParams(raw));
    return send(res, out.status, out.body, { 'Cache-Control': 'no-store, no-cache' });
  }
  throw new GraphHttpError(404, 'NotFound', `No route for ${method} ${path}.`);
}

function lowerHeaders(h: IncomingMessage['headers'] | Record<string, unknown>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v == null ? undefined : String(v);
  return out;
}

function mailboxKeyOf(deps: ServerDeps, user: string): string {
  return (deps.graph.store.findMailbox(user)?.upn ?? user).toLowerCase();
}

function countThrottled(deps: ServerDeps, mailboxKey: string): void {
  deps.counts.throttled.set(mailboxKey, (deps.counts.throttled.get(mailboxKey) ?? 0) + 1);
}

/** Takes a concurrency slot for the mailbox; a refusal (429) is counted as a request and as throttled. */
function enterOrCount(deps: ServerDeps, mailboxKey: string): () => void {
  try {
    return deps.throttle.enter(mailboxKey);
  } catch (err) {
    deps.counts.byMailbox.set(mailboxKey, (deps.counts.byMailbox.get(mailboxKey) ?? 0) + 1);
    countThrottled(deps, mailboxKey);
    throw err;
  }
}

/**
 * Refusals that come before the resource is looked at: a permission the token lacks (403 ErrorAccessDenied, the
 * answer Exchange gives, concepts/auth-limit-mailbox-access.md) and a user without a mailbox Graph can serve
 * (404 MailboxNotEnabledForRESTAPI). The user resource itself (GET /users/{u}) stays readable, as in Microsoft Entra.
 */
function refusal(deps: ServerDeps, req: GraphRequest, roles: string[]): GraphHttpError | undefined {
  const segs = req.rawPath.split('/').filter(Boolean).map(decodeURIComponent);
  if (segs[0]?.toLowerCase() !== 'users' || segs.length < 2) return undefined;
  const allowing = rolesAllowing(req.method, segs.slice(2));
  if (allowing && !allowing.some((r) => roles.includes(r))) return new GraphHttpError(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
  const upn = (deps.graph.store.findMailbox(segs[1])?.upn ?? segs[1]).toLowerCase();
  if (segs.length > 2 && deps.mailboxesNotEnabled.has(upn)) {
    return new GraphHttpError(404, 'MailboxNotEnabledForRESTAPI', 'The mailbox is either inactive, soft-deleted, or is hosted on-premise.');
  }
  return undefined;
}

/** One Graph operation on one mailbox: counted, subject to injected faults and throttling, errors in Graph's shape. */
function graphOnce(deps: ServerDeps, req: GraphRequest, rawBody: string | undefined, requestId: string, clientRequestId: string, roles: string[]): GraphResponse {
  const user = userOfPath(req.rawPath);
  const mailboxKey = user ? mailboxKeyOf(deps, user) : undefined;
  if (mailboxKey) deps.counts.byMailbox.set(mailboxKey, (deps.counts.byMailbox.get(mailboxKey) ?? 0) + 1);
  const fail = (err: GraphHttpError): GraphResponse => ({
    status: err.status,
    headers: { ...err.headers, 'request-id': requestId, 'client-request-id': clientRequestId },
    body: errorBody(err, requestId, clientRequestId),
  });
  const search = req.query.toString();
  const target = `/v1.0${req.rawPath}${search ? '?' + decodeURIComponent(search) : ''}`;
  deps.counts.recent.push(`${req.method} ${target}`);
  if (deps.counts.recent.length > 20_000) deps.counts.recent.splice(0, 10_000);
  const fault = mailboxKey ? deps.faults.take(mailboxKey, req.method, target) : undefined;
  const faultError = fault
    ? new GraphHttpError(fault.status, faultCode(fault.status), fault.message ?? `Injected fault ${fault.status}.`, fault.status === 429 || fault.status === 503 ? { 'Retry-After': String(fault.retryAfterSeconds ?? 1) } : {})
    : undefined;
  if (faultError && !fault?.applyThenFail) {
    if (mailboxKey && faultError.status === 429) countThrottled(deps, mailboxKey);
    return fail(faultError);
  }
  const refused = refusal(deps, req, roles);
  if (refused) return fail(refused);
  let result: GraphResponse;
  try {
    if (mailboxKey) deps.throttle.admit(mailboxKey);
    const body = rawBody !== undefined ? parseJsonBody(rawBody) : req.body;
    result = handleGraph(deps.graph, { ...req, body });
  } catch (err) {
    if (!(err instanceof GraphHttpError)) throw err;
    result = fail(err);
  }
  if (faultError) result = fail(faultError);
  if (mailboxKey && result.status === 429) countThrottled(deps, mailboxKey);
  if (faultError) return result;
  const prefer = parsePrefer(req.headers['prefer']);
  if (prefer.immutableId) {
    const applied = result.headers?.['Preference-Applied'];
    result.headers = { ...result.headers, 'Preference-Applied': applied ? `${applied}, IdType="ImmutableId"` : 'IdType="ImmutableId"' };
  }
  return result;
}

interface BatchItem {
  id: string;
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  dependsOn?: string[];
}

/**
 * JSON $batch: up to 20 operations with unique ids; the outer answer is 200 with a status per operation.
 * Operations without `dependsOn` run up to 4 at a time, each taking one of the mailbox's concurrency slots for
 * its duration (so a batch next to other requests can meet 429 MailboxConcurrency inside the 200); an operation
 * whose dependency failed answers 424 without running. Dependencies must be listed before their dependents.
 */
async function batch(deps: ServerDeps, body: unknown, requestId: string, clientRequestId: string, roles: string[]): Promise<GraphResponse> {
  const requests = (body as { requests?: BatchItem[] } | undefined)?.requests;
  if (!Array.isArray(requests) || requests.length === 0) throw new GraphHttpError(400, 'BadRequest', 'Invalid batch payload format.');
  if (requests.length > BATCH_LIMIT) throw new GraphHttpError(400, 'BadRequest', `Too many requests in the batch: the limit is ${BATCH_LIMIT}.`);
  const ids = new Set<string>();
  for (const r of requests) {
    if (typeof r?.id !== 'string' || typeof r.method !== 'string' || typeof r.url !== 'string') throw new GraphHttpError(400, 'BadRequest', 'Each batch request needs id, method and url.');
    const key = r.id.toLowerCase(); // ids are not case-sensitive
    if (ids.has(key)) throw new GraphHttpError(400, 'BadRequest', `Duplicate batch request id '${r.id}'.`);
    for (const d of r.dependsOn ?? []) {
      if (typeof d !== 'string' || !ids.has(d.toLowerCase())) throw new GraphHttpError(400, 'BadRequest', `Request '${r.id}' depends on '${String(d)}', which is not an earlier request of the batch.`);
    }
    ids.add(key);
  }
  const outcomes = new Map<string, Promise<GraphResponse>>();
  const slots = new Slots(BATCH_PARALLELISM);
  const runOne = async (r: BatchItem): Promise<GraphResponse> => {
    const deps_ = await Promise.all((r.dependsOn ?? []).map((d) => outcomes.get(d.toLowerCase())!));
    if (deps_.some((o) => o.status >= 400)) {
      const err = new GraphHttpError(424, 'FailedDependency', 'Failed dependency.');
      return { status: 424, body: errorBody(err, requestId, clientRequestId) };
    }
    const release = await slots.acquire();
    try {
      return await subRequest(deps, r, clientRequestId, roles);
    } finally {
      release();
    }
  };
  for (const r of requests) outcomes.set(r.id.toLowerCase(), runOne(r));
  const responses = await Promise.all(
    requests.map(async (r) => {
      const out = await outcomes.get(r.id.toLowerCase())!;
      const headers: Record<string, string> = { ...(out.headers ?? {}) };
      if (out.body !== undefined) headers['Content-Type'] = GRAPH_JSON;
      return { id: r.id, status: out.status, headers, ...(out.body !== undefined ? { body: out.body } : {}) };
    }),
  );
  return { status: 200, body: { responses } };
}

/** One operation of a batch: a concurrency slot of its mailbox, the mailbox's latency, then graphOnce. */
async function subRequest(deps: ServerDeps, r: BatchItem, clientRequestId: string, roles: string[]): Promise<GraphResponse> {
  const u = new URL(r.url.replace(/^\/?(v1\.0\/)?/, '/'), 'https://batch.invalid');
  const subId = crypto.randomUUID();
  const user = userOfPath(u.pathname);
  const key = user ? mailboxKeyOf(deps, user) : undefined;
  let leave: (() => void) | undefined;
  if (key) {
    try {
      leave = enterOrCount(deps, key);
    } catch (err) {
      if (!(err instanceof GraphHttpError)) throw err;
      return { status: err.status, headers: { ...err.headers }, body: errorBody(err, subId, clientRequestId) };
    }
  }
  try {
    const delay = deps.latencyMs + (key ? deps.faults.latencyFor(key) : 0);
    if (delay > 0) await new Promise((res) => setTimeout(res, delay));
    return graphOnce(deps, { method: r.method.toUpperCase(), rawPath: u.pathname, query: u.searchParams, headers: lowerHeaders(r.headers ?? {}), body: r.body }, undefined, subId, clientRequestId, roles);
  } finally {
    leave?.();
  }
}

/** A counting semaphore. */
class Slots {
  private waiting: Array<() => void> = [];
  constructor(private free: number) {}
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}
