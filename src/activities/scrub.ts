/**
 * Errors leave the worker as Temporal failures: their message and stack trace are stored in the workflow history,
 * shown in the Temporal UI and carried into the mailbox's needs-attention reason. A PostgreSQL or Graph error can
 * carry record content there (a constraint's "Key (email)=(…)", a trigger's message naming a subject, Graph
 * echoing a value it refused), and payload encryption does not cover failure messages. So every error an activity
 * throws passes through scrubActivityError first (the worker installs scrubbingInterceptor for all activities).
 *
 * Kept: the error's class (the failure type, which retry policies match), retry flags and delays, Graph status and
 * code, PostgreSQL SQLSTATE, constraint, schema, table and column names, and the text of cxsync's own failures
 * (ApplicationFailure), which names ids. Dropped: Graph's free-text message, PostgreSQL detail, hint, where and
 * the message of anything a trigger or function raised, quoted values in other errors' messages, and every email
 * address except the mailbox's own (an identifier already in the workflow id).
 */
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import type { ActivityInterceptors } from '@temporalio/worker';

const EMAIL = /[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+/g;
/** A quoted stretch of text: '…', "…", “…” or «…», where drivers and servers put the values they quote. */
const QUOTED = /'[^'\n]*'|"[^"\n]*"|“[^”\n]*”|«[^»\n]*»/g;
const MAX_MESSAGE = 2000;

export interface ScrubOptions {
  /** Email addresses that may stay (the mailbox the activity works on: it is its id). */
  allow?: string[];
  /** Known sensitive strings to remove wherever they appear (e.g. values of a record being written). */
  values?: string[];
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Text composed by cxsync: emails other than the allowed ones and any known value are removed. */
export function scrubText(text: string, o: ScrubOptions = {}): string {
  const allow = new Set((o.allow ?? []).map((a) => a.toLowerCase()));
  let out = text;
  for (const v of o.values ?? []) {
    // Very short values (a one-letter initial, "1") would shred the message without protecting anything.
    if (v && v.trim().length >= 3) out = out.replace(new RegExp(escapeRegExp(v), 'gi'), '<value>');
  }
  out = out.replace(EMAIL, (m) => (allow.has(m.toLowerCase()) ? m : '<email>'));
  return out.length > MAX_MESSAGE ? `${out.slice(0, MAX_MESSAGE)}…` : out;
}

/** Text from someone else (a driver, a library, a server): quoted values go as well. */
export function scrubForeignText(text: string, o: ScrubOptions & { keepQuoted?: string[] } = {}): string {
  const keep = new Set(o.keepQuoted ?? []);
  const allow = new Set((o.allow ?? []).map((a) => a.toLowerCase()));
  const unquoted = text.replace(QUOTED, (m) => {
    const inner = m.slice(1, -1);
    return keep.has(inner) || allow.has(inner.toLowerCase()) ? m : `${m[0]}…${m[m.length - 1]}`;
  });
  return scrubText(unquoted, o);
}

interface PgErrorLike {
  code: string;
  severity?: string;
  message: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  routine?: string;
}

function isPgError(e: unknown): e is PgErrorLike {
  const x = e as Partial<PgErrorLike> | null;
  return !!x && typeof x.code === 'string' && /^[0-9A-Z]{5}$/.test(x.code) && typeof x.severity === 'string';
}

function isGraphError(e: unknown): e is { statusCode: number; code?: string } {
  return !!e && typeof (e as { statusCode?: unknown }).statusCode === 'number';
}

/** The message a foreign error may show. */
function foreignMessage(err: Error, o: ScrubOptions): string {
  if (isPgError(err)) {
    const names = [err.schema, err.table, err.column, err.dataType, err.constraint].filter((n): n is string => !!n);
    const where = [err.constraint && `constraint ${err.constraint}`, err.table && `table ${err.schema ? `${err.schema}.` : ''}${err.table}`, err.column && `column ${err.column}`].filter(Boolean).join(', ');
    // A trigger or function's RAISE writes whatever it likes (record values included): only its SQLSTATE is kept.
    const text = err.routine === 'exec_stmt_raise' ? 'raised by a trigger or function (message withheld: it may carry record values)' : scrubForeignText(err.message, { ...o, keepQuoted: names });
    return `PostgreSQL ${err.code}${where ? ` (${where})` : ''}: ${text}`;
  }
  if (isGraphError(err)) {
    // Graph's message can echo the value it refused; status and code say what happened.
    return `Graph ${err.statusCode}${err.code ? ` ${err.code}` : ''} (message withheld: it may echo record values)`;
  }
  return scrubForeignText(err.message ?? String(err), o);
}

/** A stack trace with its message lines replaced: V8 repeats the message at the top of `stack`. */
function restack(stack: string | undefined, header: string): string | undefined {
  if (!stack) return undefined;
  const lines = stack.split('\n');
  const first = lines.findIndex((l) => /^\s+at /.test(l));
  return [header, ...(first >= 0 ? lines.slice(first) : [])].join('\n');
}

function scrubDetails(v: unknown, o: ScrubOptions): unknown {
  if (typeof v === 'string') return scrubText(v, o);
  if (Array.isArray(v)) return v.map((x) => scrubDetails(x, o));
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scrubDetails(x, o)]));
  }
  return v;
}

/**
 * The error as it may leave the process. cxsync's own ApplicationFailures keep their type, flags and message
 * (emails and known values removed); any other error becomes a retryable ApplicationFailure of the same type, as
 * the SDK would convert it, with a message that carries no values. Cancellation and other Temporal failures pass
 * unchanged. Causes are scrubbed the same way.
 */
export function scrubActivityError(err: unknown, o: ScrubOptions = {}, depth = 0): unknown {
  if (!(err instanceof Error)) return ApplicationFailure.create({ message: scrubForeignText(String(err), o), type: typeof err });
  if (err instanceof TemporalFailure && !(err instanceof ApplicationFailure)) return err;
  const cause = err.cause instanceof Error && depth < 5 ? (scrubActivityError(err.cause, o, depth + 1) as Error) : undefined;
  let out: ApplicationFailure;
  if (err instanceof ApplicationFailure) {
    out = ApplicationFailure.create({
      message: scrubText(err.message, o),
      type: err.type ?? undefined,
      nonRetryable: err.nonRetryable ?? undefined,
      details: err.details ? (scrubDetails(err.details, o) as unknown[]) : undefined,
      nextRetryDelay: err.nextRetryDelay ?? undefined,
      category: err.category ?? undefined,
      cause,
    });
  } else {
    out = ApplicationFailure.create({ message: foreignMessage(err, o), type: err.constructor?.name ?? err.name, nonRetryable: false, cause });
  }
  const stack = restack(err.stack, `${out.name}: ${out.message}`);
  if (stack) out.stack = stack;
  return out;
}

/** The mailbox an activity works on, from its arguments (a mailbox id, or a step naming one). */
function mailboxOf(args: unknown[]): string[] {
  const a = args[0];
  if (typeof a === 'string') return [a];
  const id = (a as { mailboxId?: unknown } | undefined)?.mailboxId;
  return typeof id === 'string' ? [id] : [];
}

/** Installed for every activity of the worker (src/worker/worker.ts): the one place activity errors become failures. */
export function scrubbingInterceptor(): ActivityInterceptors {
  return {
    inbound: {
      async execute(input, next) {
        try {
          return await next(input);
        } catch (err) {
          throw scrubActivityError(err, { allow: mailboxOf(input.args) });
        }
      },
    },
  };
}
