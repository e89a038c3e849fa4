/**
 * One writer per mailbox (DESIGN.md, "Concurrency"). Temporal may start a second attempt of an activity while
 * the first still runs (its heartbeat timed out: a stalled worker, a long GC); both would then write. Every
 * step that writes holds the mailbox's lease in sync.mailbox_lease: a second attempt waits for it, and takes it
 * over only once it expired, with a new fencing token. The stalled holder learns it lost the lease at its next
 * renewal and its next heartbeat fails, before it writes another batch.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { sql } from 'kysely';
import type { Db } from '../db/connection';

/** Longer than the heartbeat timeout (15 s): a live holder renews well before it expires. */
const LEASE_MS = 30_000;
const RENEW_MS = 5_000;
/** How long an attempt waits for the lease before it fails (retryable) and Temporal tries again later. */
const WAIT_MS = 20_000;

interface Lease {
  token: string;
  lost: boolean;
}
const current = new AsyncLocalStorage<Lease>();

/** Throws when the running step's lease was taken over: called from every heartbeat. */
export function assertLeaseHeld(): void {
  const lease = current.getStore();
  if (lease?.lost) {
    throw ApplicationFailure.create({ message: 'another attempt took over this mailbox (lease expired): this attempt stops before writing more', type: 'MailboxLeaseLost' });
  }
}

async function acquire(db: Db, mailboxId: string, holder: string): Promise<string | undefined> {
  const r = await sql<{ token: string }>`
    insert into sync.mailbox_lease (mailbox_id, token, holder, expires_at) values (${mailboxId}, 1, ${holder}, now() + ${`${LEASE_MS} milliseconds`}::interval)
    on conflict (mailbox_id) do update set token = sync.mailbox_lease.token + 1, holder = excluded.holder, expires_at = excluded.expires_at
      where sync.mailbox_lease.expires_at < now()
    returning token::text as token`.execute(db);
  return r.rows[0]?.token;
}

export async function withMailboxLock<T>(db: Db, mailboxId: string, fn: () => Promise<T>, beat: () => void = () => undefined): Promise<T> {
  const holder = randomUUID();
  const waitUntil = Date.now() + WAIT_MS;
  let token: string | undefined;
  while (!(token = await acquire(db, mailboxId, holder))) {
    if (Date.now() > waitUntil) {
      throw ApplicationFailure.create({ message: `another attempt is still writing mailbox ${mailboxId}; this one is retried once it has stopped`, type: 'MailboxBusy', nextRetryDelay: 2_000 });
    }
    beat();
    await new Promise((r) => setTimeout(r, 500));
  }
  const lease: Lease = { token, lost: false };
  const renew = setInterval(() => {
    void sql`update sync.mailbox_lease set expires_at = now() + ${`${LEASE_MS} milliseconds`}::interval
      where mailbox_id = ${mailboxId} and token = ${token}::bigint`.execute(db)
      .then((r) => { if (Number(r.numAffectedRows ?? 0) === 0) lease.lost = true; }, () => undefined);
  }, RENEW_MS);
  try {
    return await current.run(lease, fn);
  } finally {
    clearInterval(renew);
    await sql`delete from sync.mailbox_lease where mailbox_id = ${mailboxId} and token = ${token}::bigint`.execute(db).catch(() => undefined);
  }
}
