/**
 * `cxsync forget <email>`: GDPR erasure of a person from cxsync's own tables (db/retention-store.ts says what is
 * erased and why sync goes on unharmed). The CRM and Exchange are not touched: erasing the person there is their
 * own job. Needs only the database, not Temporal.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/connection';
import { SyncStore } from '../db/sync-store';
import {
  addressPattern,
  emptyForgetCounts,
  forgetEverywhere,
  forgetInMailbox,
  mailboxesMentioning,
  normaliseEmail,
  rowsMentioning,
  type ForgetBlocked,
  type ForgetCounts,
  type Remaining,
} from '../db/retention-store';
import { withMailboxLock } from '../activities/mailbox-lock';
import { OperatorError } from './operator';

export interface ForgetResult {
  email: string;
  /** Mailboxes whose rows mentioned the address. */
  mailboxes: string[];
  erased: ForgetCounts;
  /** Mailboxes left alone for now: a change of the person's records is still on its way. */
  blocked: ForgetBlocked[];
  /** Rows still mentioning the address afterwards, per table (those of blocked mailboxes included). */
  remaining: Remaining[];
}

export async function forget(db: Db, email: string): Promise<ForgetResult> {
  const e = normaliseEmail(email);
  if (!e) throw new OperatorError(`"${email}" is not an email address`);
  const store = new SyncStore(db);
  if (await store.getMailbox(e)) {
    throw new OperatorError(`${e} is an enrolled mailbox: remove it first (cxsync remove ${e}), then forget erases what is left of it`);
  }
  const pattern = addressPattern(e);
  const mailboxes = await mailboxesMentioning(db, pattern);
  const erased = emptyForgetCounts();
  const blocked: ForgetBlocked[] = [];
  for (const m of mailboxes) {
    const run = () => forgetInMailbox(db, m, e);
    let r: Awaited<ReturnType<typeof run>>;
    try {
      // An enrolled mailbox is erased under its lease, between two steps of its cycle (one writer per mailbox).
      r = (await store.getMailbox(m)) ? await withMailboxLock(db, m, run) : await run();
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === 'MailboxBusy') {
        blocked.push({ mailbox: m, unplanned: 0, pending: 0, busy: true });
        continue;
      }
      throw err;
    }
    if ('blocked' in r) blocked.push(r.blocked);
    else for (const k of Object.keys(erased) as (keyof ForgetCounts)[]) erased[k] += r.counts[k];
  }
  erased.emailExclusions += await forgetEverywhere(db, e);
  return { email: e, mailboxes, erased, blocked, remaining: await rowsMentioning(db, pattern) };
}

export function formatForget(r: ForgetResult): string[] {
  const c = r.erased;
  const lines = [
    `${r.email}: erased ${c.logLines} log line(s), ${c.conflicts} conflict(s), ${c.stagedChanges} staged change(s), ${c.operations} operation(s), ` +
      `${c.mappingBases} mapping base(s), ${c.cycleSummaries} cycle summar${c.cycleSummaries === 1 ? 'y' : 'ies'}, ${c.eventInvitations} invitation decision(s), ${c.emailUnresolved} unresolved email(s), ${c.emailExclusions} email exclusion(s)`,
  ];
  const done = r.mailboxes.filter((m) => !r.blocked.some((b) => b.mailbox === m));
  if (done.length) lines.push(`in the sync data of: ${done.join(', ')}`);
  for (const b of r.blocked) {
    lines.push(b.busy
      ? `not erased in ${b.mailbox}: a step of its sync cycle is running; run cxsync forget again in a minute`
      : `not erased in ${b.mailbox}: ${b.unplanned + b.pending} change(s) of this person are not synced yet; let its cycle finish (cxsync sync-now ${b.mailbox} --wait, after cxsync resume if it is paused), then run cxsync forget again`);
  }
  for (const x of r.remaining) lines.push(`still mentioned: ${x.table}, ${x.rows} row(s)`);
  lines.push('the CRM and Exchange were not touched: erase the person there with their own tools, or the next cycle that reads their records stores them again');
  return lines;
}
