/**
 * How the Temporal SDK's log lines reach a console: a failed activity is one line (what, which mailbox, why),
 * not the SDK's dump of the error object with its stack, which buried the console of `npm start` under thirty
 * lines per failure. LOG_LEVEL=debug keeps the full entries.
 */
import { formatWithOptions } from 'node:util';
import type { LogEntry } from '@temporalio/worker';

const MAILBOX_WORKFLOW_PREFIX = 'cxsync/mailbox/';

function stamp(e: LogEntry): string {
  return new Date(Number(e.timestampNanos / 1_000_000n)).toISOString();
}

/** The mailbox an activity ran for, from the workflow id the SDK puts in its log attributes. */
function mailboxOf(meta: Record<string, unknown> | undefined): string | undefined {
  const wid = meta?.workflowId;
  return typeof wid === 'string' && wid.startsWith(MAILBOX_WORKFLOW_PREFIX) ? wid.slice(MAILBOX_WORKFLOW_PREFIX.length) : undefined;
}

/** The one line for an entry, or undefined to print it as the SDK would. */
export function compactLine(e: LogEntry): string | undefined {
  const meta = e.meta as Record<string, unknown> | undefined;
  const error = meta?.error as { message?: unknown; type?: unknown; nonRetryable?: unknown } | undefined;
  if (e.message !== 'Activity failed' || !error) return undefined;
  const mailbox = mailboxOf(meta);
  const message = String(error.message ?? error).split('\n')[0];
  const who = mailbox ? `mailbox ${mailbox}` : `activity ${String(meta?.activityType ?? '?')}`;
  // MailboxNeedsAttention, and the per-record-type kind: retrying cannot fix these, an operator must.
  if (typeof error.type === 'string' && /NeedsAttention$/.test(error.type)) {
    return `${stamp(e)} [${e.level}] ${who} needs attention: ${message}${mailbox ? ` (cxsync status ${mailbox}; once fixed: cxsync resume ${mailbox})` : ''}`;
  }
  const attempt = typeof meta?.attempt === 'number' ? `, attempt ${meta.attempt}` : '';
  return `${stamp(e)} [${e.level}] ${who}: ${String(meta?.activityType ?? 'activity')} failed${attempt}${error.nonRetryable ? '' : ', Temporal retries it'}: ${message}`;
}

const format = formatWithOptions.bind(undefined, { colors: false });

export function consoleLogFunction(verbose: boolean): (e: LogEntry) => void {
  return (e) => {
    const line = verbose ? undefined : compactLine(e);
    if (line !== undefined) return void process.stderr.write(line + '\n');
    process.stderr.write(`${stamp(e)} [${e.level}] ${e.message}${e.meta === undefined ? '' : ` ${format(e.meta)}`}\n`);
  };
}
