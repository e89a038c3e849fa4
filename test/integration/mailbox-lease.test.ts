/**
 * One writer per mailbox (src/activities/mailbox-lock.ts, docs/ARCHITECTURE.md "One writer per mailbox") on a
 * real PostgreSQL: a second attempt waits for the lease, takes it over only once it expired, with a new fencing
 * token, and the stalled holder's next heartbeat check then fails before it writes again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { assertLeaseHeld, withMailboxLock } from '../../src/activities/mailbox-lock';
import type { Db } from '../../src/db/connection';
import { freshDatabase } from '../helpers/database';

const ANNA = 'anna@contoso.com';
const BEN = 'ben@contoso.com';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('mailbox lease: one writer per mailbox', () => {
  let fresh: Awaited<ReturnType<typeof freshDatabase>>;
  let db: Db;
  const lease = async (m: string) =>
    (await sql<{ token: string; expired: boolean }>`select token::text as token, expires_at < now() as expired from sync.mailbox_lease where mailbox_id = ${m}`.execute(db)).rows[0];

  before(async () => {
    fresh = await freshDatabase();
    db = fresh.db;
    for (const m of [ANNA, BEN]) {
      const u = await sql<{ id: string }>`insert into crm.users (email, display_name) values (${m}, ${m}) returning id::text as id`.execute(db);
      await sql`insert into sync.mailbox (id, crm_user_id) values (${m}, ${u.rows[0].id}::uuid)`.execute(db);
    }
  });
  after(async () => {
    await fresh?.drop();
  });

  it('a second attempt waits until the first has stopped writing; another mailbox does not wait', async () => {
    const events: string[] = [];
    const release = deferred();
    const entered = deferred();
    const first = withMailboxLock(db, ANNA, async () => {
      events.push('first in');
      entered.resolve();
      await release.promise;
      events.push('first out');
    });
    await entered.promise;
    const second = withMailboxLock(db, ANNA, async () => {
      events.push('second in');
    });
    await withMailboxLock(db, BEN, async () => {
      events.push('other mailbox in');
    });
    await sleep(1_200); // two polls of the waiting attempt
    const whileHeld = [...events];
    release.resolve();
    assert.deepEqual(whileHeld, ['first in', 'other mailbox in'], 'the second attempt must not enter while the first holds the lease');
    await Promise.all([first, second]);
    assert.deepEqual(events, ['first in', 'other mailbox in', 'first out', 'second in']);
    assert.equal(await lease(ANNA), undefined, 'the lease is given back when the step ends');
  });

  it('an expired lease is taken over with a new fencing token; the stalled holder then fails its next heartbeat and cannot remove the new lease', async () => {
    const release = deferred();
    const entered = deferred();
    let firstToken = '';
    let heldBefore: unknown;
    let heldAfter: unknown;
    const first = withMailboxLock(db, ANNA, async () => {
      firstToken = (await lease(ANNA)).token;
      entered.resolve();
      heldBefore = (() => { try { assertLeaseHeld(); return 'held'; } catch (e) { return e; } })();
      await release.promise;
      heldAfter = (() => { try { assertLeaseHeld(); return 'held'; } catch (e) { return e; } })();
    });
    await entered.promise;
    // The first holder stalls: its lease runs out (as when its worker stops renewing).
    await sql`update sync.mailbox_lease set expires_at = now() - interval '1 second' where mailbox_id = ${ANNA}`.execute(db);
    const secondIn = deferred();
    const secondRelease = deferred();
    let secondToken = '';
    const second = withMailboxLock(db, ANNA, async () => {
      secondToken = (await lease(ANNA)).token;
      secondIn.resolve();
      await secondRelease.promise;
    });
    try {
      await secondIn.promise;
      assert.equal(BigInt(secondToken), BigInt(firstToken) + 1n, 'the takeover bumps the fencing token');
      // The first holder's renewal (every 5 s) finds its token gone.
      await sleep(6_500);
      release.resolve();
      await first;
      assert.equal(heldBefore, 'held');
      assert.ok(heldAfter instanceof Error && /another attempt took over this mailbox/.test(heldAfter.message), `the stalled holder's heartbeat fails: ${String(heldAfter)}`);
      assert.equal((await lease(ANNA))?.token, secondToken, 'the stalled holder, ending, leaves the new lease in place');
    } finally {
      release.resolve();
      secondRelease.resolve();
      await Promise.allSettled([first, second]);
    }
    assert.equal(await lease(ANNA), undefined);
  });
});
