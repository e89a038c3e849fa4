/**
 * The one place that decides what a Microsoft Graph error means for the sync. Everything else asks
 * `classifyGraphError` and acts on the kind, never on raw status codes.
 */
import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import { MAILBOX_NEEDS_ATTENTION, TYPE_NEEDS_ATTENTION, type RecordType, type SyncArea } from '../../domain/status';

export type GraphErrorKind =
  | 'throttled' //          429: retry after Retry-After
  | 'transient' //          5xx, network: retry with backoff
  | 'sync-state-expired' // 410 SyncStateNotFound: start a fresh delta round
  | 'not-found' //          404 on an item
  | 'precondition-failed' //412: the item changed since we read it
  | 'bad-item' //           400 on an item's data: log and skip the item
  | 'credentials' //        the app's secret or certificate is refused, the app is disabled or unknown (MSAL/AADSTS), 401
  | 'forbidden' //          403: this app may not use this resource (a record type's permission or consent)
  | 'mailbox' //            the mailbox does not exist or is not enabled for REST: the mailbox needs an operator
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
  if (c === CREDENTIALS_ERROR.toLowerCase() || status === 401 || c === 'invalidauthenticationtoken') return { ...base, kind: 'credentials' };
  if (status === 429 || c === 'toomanyrequests' || c === 'applicationthrottled') {
    return { ...base, kind: 'throttled', retryAfterMs: parseRetryAfter(header(e.headers, 'Retry-After')) };
  }
  if (status === 410 || c === 'syncstatenotfound' || c === 'syncstateinvalid' || c === 'resyncrequired') return { ...base, kind: 'sync-state-expired' };
  if (status === 412 || c === 'errorirresolvableconflict') return { ...base, kind: 'precondition-failed' };
  if (c === 'errorinvaliduser' || c === 'mailboxnotenabledforrestapi' || c === 'errormailboxnotenabledforrestapi' || (c === 'resourcenotfound' && /user|mailbox/i.test(message))) {
    return { ...base, kind: 'mailbox' };
  }
  if (status === 403 || c === 'erroraccessdenied' || c === 'accessdenied' || c === 'authorization_requestdenied') return { ...base, kind: 'forbidden' };
  if (status === 404) return { ...base, kind: 'not-found' };
  if (status === 400 || status === 413 || status === 422) return { ...base, kind: 'bad-item' };
  if (status >= 500 || status === -1 || status === 408) {
    return { ...base, kind: 'transient', retryAfterMs: parseRetryAfter(header(e.headers, 'Retry-After')) };
  }
  return { ...base, kind: 'unknown' };
}


/** The name (Graph client: `code`) of errors getToken raises when Microsoft identity refuses the app itself. */
export const CREDENTIALS_ERROR = 'CredentialsError';

/** The error getToken throws for a credentials problem: the Graph client reports its name as the error code. */
export function credentialsError(p: CredentialProblem): Error {
  const err = new Error(`${p.aadsts ?? p.oauthError ?? 'credentials'}: ${p.what}: ${p.fix}`);
  err.name = CREDENTIALS_ERROR;
  return err;
}

/** The application permission each record type needs (Microsoft Graph permissions reference). */
const PERMISSION: Record<SyncArea, string> = { contact: 'Contacts.ReadWrite', event: 'Calendars.ReadWrite', task: 'Tasks.ReadWrite.All', email: 'Mail.ReadWrite' };
const NOUN: Record<SyncArea, string> = { contact: 'contacts', event: 'calendar', task: 'To Do lists', email: 'mail' };

/**
 * The needs-attention failure for an error retrying cannot fix, or undefined for any other. Credentials and a
 * missing mailbox stop the mailbox; a refused permission stops only its record type (a 403 on To Do must not stop
 * contacts). Messages carry the status, the Graph code and what to do, never Graph's free text (it can echo
 * record content into the workflow history).
 */
export function attentionFailure(g: ClassifiedGraphError, what: string, recordType?: SyncArea): ApplicationFailure | undefined {
  const graph = `Graph ${g.status > 0 ? `${g.status} ` : ''}${g.code}`.trim();
  switch (g.kind) {
    case 'credentials':
      return ApplicationFailure.create({
        type: MAILBOX_NEEDS_ATTENTION,
        nonRetryable: true,
        message: g.code === CREDENTIALS_ERROR
          ? `${what}: Microsoft identity refused the app (${g.message})`
          : `${what}: ${graph}: the access token was refused: check the app registration (client id, tenant, secret or certificate) and this host's clock`,
      });
    case 'mailbox':
      return ApplicationFailure.create({
        type: MAILBOX_NEEDS_ATTENTION,
        nonRetryable: true,
        message: `${what}: ${graph}: the mailbox does not exist or is not enabled for Microsoft Graph: check the address, that the user has an Exchange Online mailbox and licence`,
      });
    case 'forbidden':
      return ApplicationFailure.create({
        type: recordType ? TYPE_NEEDS_ATTENTION : MAILBOX_NEEDS_ATTENTION,
        nonRetryable: true,
        message: recordType
          ? `${what}: ${graph}: the app may not use this mailbox's ${NOUN[recordType]}: grant the application permission ${PERMISSION[recordType]} with admin consent (and include the mailbox in any application access policy)`
          : `${what}: ${graph}: the app may not use this mailbox: check its application permissions, admin consent and any application access policy`,
      });
    default:
      return undefined;
  }
}

/**
 * Turns a Graph error that is not about one item into what Temporal should do: a Retry-After becomes the
 * next retry delay; an error retrying cannot fix stops retrying and puts the mailbox (or the record type) in
 * needs-attention (attentionFailure).
 */
export function toActivityFailure(err: unknown, what: string, opts: { progressed?: boolean; recordType?: SyncArea } = {}): Error {
  const g = classifyGraphError(err);
  const attention = attentionFailure(g, what, opts.recordType);
  if (attention) return attention;
  const msg = `${what}: Graph ${g.status} ${g.code || ''}`.replace(/\s+/g, ' ').trim();
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

export type CredentialProblemKind =
  | 'secret-invalid' //     AADSTS7000215, 70002: the secret sent is not one of the app's
  | 'secret-expired' //     AADSTS7000222
  | 'certificate' //        AADSTS700027, 700024, 50012, 700030, 500133: the certificate assertion was refused
  | 'credential-missing' // AADSTS7000218: neither secret nor certificate sent
  | 'app-disabled' //       AADSTS7000112, 70001
  | 'app-not-found' //      AADSTS700016, 700011: wrong client id, or the app is not in this tenant
  | 'tenant-not-found' //   AADSTS90002, 900023
  | 'consent' //            AADSTS65001, 90094, 650056, 650057, 500011: admin consent or resource missing
  | 'blocked' //            AADSTS53003, 530032: Conditional Access refused the app
  | 'credentials'; //       any other invalid_client / unauthorized_client / invalid_grant / invalid_resource

export interface CredentialProblem {
  kind: CredentialProblemKind;
  /** e.g. 'AADSTS7000215' when the answer carried one. */
  aadsts?: string;
  /** The OAuth 2.0 `error` of the token answer (invalid_client, unauthorized_client, ...). */
  oauthError?: string;
  /** What is wrong, in one clause. */
  what: string;
  /** What an operator does about it. */
  fix: string;
}

const AADSTS_CODES: Record<string, [CredentialProblemKind, string, string]> = {};
function codes(kind: CredentialProblemKind, what: string, fix: string, ...numbers: number[]): void {
  for (const n of numbers) AADSTS_CODES[`AADSTS${n}`] = [kind, what, fix];
}
codes('secret-invalid', 'the client secret is not valid for this app', "set GRAPH_CLIENT_SECRET to the secret's Value (not its Secret ID) from the app registration's Certificates & secrets", 7000215, 70002);
codes('secret-expired', 'the client secret has expired', 'create a new client secret in the app registration (Certificates & secrets) and set GRAPH_CLIENT_SECRET to its value', 7000222);
codes('certificate', 'the certificate credential was refused (wrong key, thumbprint or expired certificate)', "upload the public certificate of GRAPH_CERT_PATH to the app registration (Certificates & secrets), check GRAPH_CERT_THUMBPRINT is its thumbprint, that it has not expired and this host's clock", 700027, 700024, 50012, 700030, 500133);
codes('credential-missing', 'no client secret or certificate was sent', 'set GRAPH_CLIENT_SECRET, or GRAPH_CERT_PATH and GRAPH_CERT_THUMBPRINT', 7000218);
codes('app-disabled', 'the app is disabled in the tenant', 'enable it: Microsoft Entra admin center > Enterprise applications > the app > Properties > Enabled for users to sign in', 7000112, 70001);
codes('app-not-found', 'no app with this client id exists in the tenant', 'check GRAPH_CLIENT_ID (the Application (client) ID) and GRAPH_TENANT_ID; a multi-tenant app needs admin consent in this tenant first', 700016, 700011);
codes('tenant-not-found', 'the tenant does not exist', 'check GRAPH_TENANT_ID (the Directory (tenant) ID of the app registration)', 90002, 900023);
codes('consent', 'admin consent for the Microsoft Graph application permissions is missing', 'grant admin consent: app registration > API permissions > Grant admin consent', 65001, 90094, 650056, 650057, 500011);
codes('blocked', 'a Conditional Access policy blocks the app', "ask the tenant administrator to exclude the app from the policy (the tenant's sign-in logs name it)", 53003, 530032);

/**
 * Whether an error from acquiring a token (MSAL's ServerError, or the Graph client's GraphError wrapping it with
 * status -1) means the app's credentials or registration are wrong: retrying cannot help, an operator must act.
 * Undefined for anything else (network, identity platform unavailable: AADSTS90006, 90024, 90033,
 * temporarily_unavailable), which heals by itself. Codes from Microsoft Entra's "authentication and authorization
 * error codes" (docs/identity-platform/reference-error-codes.md, MicrosoftDocs/entra-docs); their text changes
 * over time, so the OAuth `error` is the fallback. Keeps codes only, never request content.
 */
export function classifyCredentialError(err: unknown): CredentialProblem | undefined {
  const e = (err ?? {}) as { errorCode?: unknown; message?: unknown; errorMessage?: unknown; body?: unknown };
  const text = [e.message, e.errorMessage, e.body].filter((v): v is string => typeof v === 'string').join(' ');
  const aadsts = /\bAADSTS(\d+)\b/.exec(text)?.[0];
  const oauthError =
    (typeof e.errorCode === 'string' && e.errorCode) ||
    /^(?:ServerError: )?(invalid_client|unauthorized_client|invalid_grant|invalid_request|invalid_resource|invalid_scope|unsupported_grant_type|temporarily_unavailable)\b/.exec(typeof e.message === 'string' ? e.message : '')?.[1] ||
    undefined;
  const known = aadsts ? AADSTS_CODES[aadsts] : undefined;
  if (known) return { kind: known[0], aadsts, oauthError, what: known[1], fix: known[2] };
  if (oauthError === 'invalid_client' || oauthError === 'unauthorized_client' || oauthError === 'invalid_grant' || oauthError === 'invalid_resource') {
    return {
      kind: 'credentials',
      aadsts,
      oauthError,
      what: `the identity platform refused the app's credentials (${oauthError}${aadsts ? ` ${aadsts}` : ''})`,
      fix: `check GRAPH_TENANT_ID, GRAPH_CLIENT_ID and the secret or certificate${aadsts ? `; https://login.microsoftonline.com/error?code=${aadsts.slice(6)} explains ${aadsts}` : ''}`,
    };
  }
  return undefined;
}
