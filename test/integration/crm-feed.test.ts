/**
 * The CRM change feed on a real PostgreSQL (src/activities/crm/postgres-crm.ts, docs/ARCHITECTURE.md "The CRM
 * change feed" and "Identity, idempotency and echoes"): a mailbox's own writes are left out of its feed but
 * reach other mailboxes, a retried create is a no-op, and a transaction that commits late never lands behind
 * the watermark. The cluster is shared with other test files, whose open transactions can hold the feed's upper
 * bound back: rows are awaited, and absences are asserted only once a later row has arrived.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { PostgresCrmStore, crmContactWrites } from '../../src/activities/crm/postgres-crm';
import type { Db } from '../../src/db/connection';
import { toCrmContact } from '../../src/domain/contact';
import { freshDatabase } from '../helpers/database';

const ANNA = 'anna@contoso.com';
const BEN = 'ben@contoso.com';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('CRM change feed', () => {
  let fresh: Awaited<ReturnType<typeof freshDatabase>>;
  let db: Db;
  let store: PostgresCrmStore;
  let owner = '';
  const start = async () => (await store.contactChanges({ ownerId: owner, mailboxId: ANNA, after: null })).watermark;
  /** Reads `mailboxId`'s feed after `from` until `id` is in it (or 60 s pass). */
  async function readUntil(mailboxId: string, from: string, id: string) {
    const until = Date.now() + 60_000;
    for (;;) {
      const page = await store.contactChanges({ ownerId: owner, mailboxId, after: from, scope: 'all' });
      if (page.changes.some((c) => c.id === id) || Date.now() > until) return page;
      await sleep(250);
    }
  }

  before(async () => {
    fresh = await freshDatabase();
    db = fresh.db;
    store = new PostgresCrmStore(db);
    owner = (await sql<{ id: string }>`insert into crm.users (email, display_name) values (${ANNA}, 'Anna') returning id::text as id`.execute(db)).rows[0].id;
  });
  after(async () => {
    await fresh?.drop();
  });

  it("a mailbox's own writes are left out of its feed (echoes) but reach other mailboxes; a retried create is a no-op", async () => {
    const from = await start();
    const mine = randomUUID();
    const fields = toCrmContact({ firstName: 'Echo', lastName: 'Own' });
    assert.equal(await db.transaction().execute((tx) => crmContactWrites.create(tx, ANNA, mine, owner, fields)), true);
    assert.equal(await db.transaction().execute((tx) => crmContactWrites.create(tx, ANNA, mine, owner, fields)), false, 'the retry finds its first attempt');
    assert.equal((await sql<{ n: string }>`select count(*)::text as n from crm.contacts where id = ${mine}::uuid`.execute(db)).rows[0].n, '1');
    const theirs = (await sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name) values (${owner}::uuid, 'User', 'Edit') returning id::text as id`.execute(db)).rows[0].id;
    const anna = await readUntil(ANNA, from, theirs);
    assert.ok(anna.changes.some((c) => c.id === theirs), "a user's change reaches the feed");
    assert.ok(!anna.changes.some((c) => c.id === mine), "the mailbox's own write is not read back");
    const ben = await readUntil(BEN, from, mine);
    assert.ok(ben.changes.some((c) => c.id === mine), "another mailbox reads it");
  });

  it('a transaction that commits after a read is not behind its watermark: the next read has it', async () => {
    const from = await start();
    const late = new pg.Client({ connectionString: fresh.url });
    await late.connect();
    try {
      await late.query('begin');
      const id = (await late.query<{ id: string }>(`insert into crm.contacts (owner_id, first_name, last_name) values ($1, 'Slow', 'Commit') returning id::text as id`, [owner])).rows[0].id;
      const whileOpen = await store.contactChanges({ ownerId: owner, mailboxId: ANNA, after: from });
      assert.ok(!whileOpen.changes.some((c) => c.id === id), 'not visible while open');
      await late.query('commit');
      const next = await readUntil(ANNA, whileOpen.watermark, id);
      assert.ok(next.changes.some((c) => c.id === id), 'read after the watermark the earlier read saved');
    } finally {
      await late.end();
    }
  });
});
