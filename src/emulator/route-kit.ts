/**
 * What the router (graph.ts), the HTTP layer (server.ts) and every resource handler share: the request/response
 * shapes and the few answers all resources give alike. It lives apart from the router so a handler never has to
 * import the router that imports it (test/unit/emulator-imports.test.ts keeps it so).
 */
import type { DeltaQuirks } from './delta';
import { GraphHttpError } from './errors';
import { parseTop } from './query';
import type { Mailbox, Store } from './store';

export interface GraphRequest {
  method: string;
  /** Path after /v1.0, still percent-encoded, without the query string. */
  rawPath: string;
  query: URLSearchParams;
  headers: Record<string, string | undefined>;
  body: unknown;
}

export interface GraphResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface GraphContext {
  store: Store;
  /** e.g. https://localhost:8443/v1.0 — links are absolute, as Graph's are. */
  graphBaseUrl: string;
  maxPageSize: number;
  /** Delta behaviours switched on for a mailbox (see DeltaQuirks). */
  deltaQuirks?: (mailbox: Mailbox) => DeltaQuirks;
}

export const methodNotAllowed = () => new GraphHttpError(405, 'ErrorInvalidRequest', 'The OData request is not supported.');
export const noResource = (segment: string) => new GraphHttpError(400, 'BadRequest', `Resource not found for the segment '${segment}'.`);

export function ok(body: unknown, headers?: Record<string, string>): GraphResponse {
  return headers && Object.keys(headers).length ? { status: 200, body, headers } : { status: 200, body };
}

/** Offset paging with $top/$skip and an absolute nextLink, as Graph does for plain collections. */
export function pageOf(ctx: GraphContext, req: GraphRequest, all: unknown[], contextPath: string, headers?: Record<string, string>, defaultTop = 10): GraphResponse {
  const top = parseTop(req.query.get('$top'), 1000) ?? defaultTop;
  const skip = Number(req.query.get('$skip') ?? 0) || 0;
  const body: Record<string, unknown> = { '@odata.context': `${ctx.graphBaseUrl}/$metadata#${contextPath}`, value: all.slice(skip, skip + top) };
  if (skip + top < all.length) {
    const q = new URLSearchParams(req.query);
    q.set('$top', String(top));
    q.set('$skip', String(skip + top));
    body['@odata.nextLink'] = `${ctx.graphBaseUrl}${req.rawPath}?${q.toString().replace(/%24/g, '$')}`;
  }
  return ok(body, headers);
}
