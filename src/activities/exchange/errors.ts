/**
 * The one place that decides what a Microsoft Graph error means for the sync. Everything else asks
 * `classifyGraphError` and acts on the kind, never on raw status codes.
 */
import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import { MAILBOX_NEEDS_ATTENTION } from '../../domain/status';

export type GraphErrorKind =
  | 'throttled' //          429: retry after Retry-After
  | 'transient' //          5xx, network: retry with backoff
  | 'sync-state-expired' // 410 SyncStateNotFound: start a fresh delta round
  | 'not-found' //          404 on an item
  | 'precondition-failed' //412: the item changed since we read it
  | 'bad-item' //           400 on an item's data: log and skip the item
  | 'mailbox' //            401/403, unknown mailbox: the mailbox needs an operator
  | 'unknown';

export interface ClassifiedGraphError {
  kind: GraphErrorKind;
  status: number;
  code: string;
  message: string;
  retryAfterMs?: number;
}

interface GraphLikeError {
  statusCode?: number;
  status?: number;
  code?: string;
  message?: string;
  body?: unknown;
  headers?: Headers | Record<string, string>;
}

function header(h: GraphLikeError['headers'], name: string): string | undefined {
  if (!h) return undefined;
  if (typeof (h as Headers).get === 'function') return (h as Headers).get(name) ?? undefined;
  const rec = h as Record<string, string>;
  return rec[name] ?? rec[name.toLowerCase()];
}

/** Retry-After is seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

export function classifyGraphError(err: unknown): ClassifiedGraphError {
  const e = (err ?? {}) as GraphLikeError;
  const status = e.statusCode ?? e.status ?? -1;
  let code = e.code ?? '';
  let message = e.message ?? String(err);
  if (e.body && typeof e.body === 'string') {
    try {
      const parsed = JSON.parse(e.body) as { error?: { code?: string; message?: string } };
      code = parsed.error?.code ?? code;
      message = parsed.error?.message ?? message;
    } catch { /* not JSON */ }
  }
  const c = code.toLowerCase();
  const base = { status, code, message };
  if (status === 429 || c === 'toomanyrequests' || c === 'applicationthrottled') {
    return { ...base, kind: 'throttled', retryAfterMs: parseRetryAfter(header(e.headers, 'Retry-After')) };
  }
  if (status === 410 || c === 'syncstatenotfound' || c === 'syncstateinvalid' || c === 'resyncrequired') return { ...base, kind: 'sync-state-expired' };
  if (status === 412 || c === 'errorirresolvableconflict') return { ...base, kind: 'precondition-failed' };
  if (status === 401 || status === 403 || c === 'errorinvaliduser' || c === 'mailboxnotenabledforrestapi' || c === 'erroraccessdenied' || c === 'invalidauthenticationtoken') {
    return { ...base, kind: 'mailbox' };
  }
  if (status === 404) return { ...base, kind: 'not-found' };
  if (status === 400 || status === 413 || status === 422) return { ...base, kind: 'bad-item' };
  if (status >= 500 || status === -1 || status === 408) {
    return { ...base, kind: 'transient', retryAfterMs: parseRetryAfter(header(e.headers, 'Retry-After')) };
  }
  return { ...base, kind: 'unknown' };
}


/**
 * Turns a Graph error that is not about one item into what Temporal should do: a Retry-After becomes the
 * next retry delay; a mailbox-level refusal stops retrying and puts the mailbox in needs-attention.
 */
export function toActivityFailure(err: unknown, what: string, opts: { progressed?: boolean } = {}): Error {
  const g = classifyGraphError(err);
  const msg = `${what}: Graph ${g.status} ${g.code || ''} ${g.message}`.replace(/\s+/g, ' ').trim();
  if (g.kind === 'mailbox') return ApplicationFailure.create({ message: msg, type: MAILBOX_NEEDS_ATTENTION, nonRetryable: true });
  // Throttling is expected pacing, not a fault: BENIGN keeps it out of the worker's warnings and failure metrics.
  if (g.kind === 'throttled') return ApplicationFailure.create({ message: msg, type: `Graph${g.status}`, nextRetryDelay: Math.max(1, g.retryAfterMs ?? 1000), category: ApplicationFailureCategory.BENIGN });
  if (g.retryAfterMs !== undefined) return ApplicationFailure.create({ message: msg, type: `Graph${g.status}`, nextRetryDelay: Math.max(1, g.retryAfterMs) });
  // An attempt that saved progress before failing retries soon: Temporal's backoff grows with every attempt
  // of the same activity, progress or not, and would otherwise reach minutes during a long faulty round.
  if (opts.progressed) return ApplicationFailure.create({ message: msg, type: `Graph${g.status}`, nextRetryDelay: 1000 });
  return ApplicationFailure.create({ message: msg, type: `Graph${g.status}` });
}

/** One operation's answer inside a JSON batch (or a synthetic one standing for a failed batch request). */
export interface SubResponseLike {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** The same classification for an operation that failed inside a $batch (outer answer 200). */
export function classifySubResponse(res: SubResponseLike): ClassifiedGraphError {
  const error = (res.body as { error?: { code?: string; message?: string } } | undefined)?.error;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers ?? {})) headers[k.toLowerCase()] = v;
  return classifyGraphError({ statusCode: res.status === 0 ? -1 : res.status, code: error?.code ?? '', message: error?.message ?? `status ${res.status}`, headers });
}
