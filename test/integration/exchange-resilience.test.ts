/**
 * The Exchange adapter against a harsh Graph (issue 3), on the real stack (Temporal dev server, PostgreSQL,
 * HTTPS emulator, real Graph client): 10 % 429/503/504 (half of the failed writes performed anyway) plus random
 * latency during an initial sync of 2,000 contacts and during a two-way change round, with partial and repeated
 * delta items; a 410 in the middle of a round; lost mappings found again by sync marker; the batch size.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { startStack, type Stack } from '../helpers/stack';

const BULK = 'bulk@contoso.com';
const RESYNC = 'resync@contoso.com';
const SMALL = 'small@contoso.com';
const RELINK = 'relink@contoso.com';

type Summary = NonNullable<NonNullable<Awaited<ReturnType<Stack['operator']['status']>>['lastCycle']>['types']['contact']>;

/** Runs cycles until one finds nothing to do; returns the per-cycle summaries. */
async function syncUntilIdle(s: Stack, upn: string, maxCycles = 40): Promise<Summary[]> {
  const seen: Summary[] = [];
  for (let i = 0; i < maxCycles; i++) {
    const st = await s.operator.syncNow(upn, { wait: true, timeoutMs: 180_000 });
    assert.equal(st?.lastCycle?.outcome, 'completed', `cycle ${i} of ${upn}: ${JSON.stringify(st?.lastCycle)} ${st?.needsAttentionReason ?? ''}`);
    const t = st!.lastCycle!.types.contact!;
    seen.push(t);
    const moved = t.pulled.exchange + t.pulled.crm + t.exchange.created + t.exchange.updated + t.exchange.deleted + t.crm.created + t.crm.updated + t.crm.deleted;
    if (moved === 0) return seen;
  }
  assert.fail(`${upn} still had work after ${maxCycles} cycles: ${JSON.stringify(seen.slice(-3))}`);
}

async function crmRows(s: Stack, owner: string) {
  const r = await sql<{ id: string; first_name: string | null; last_name: string | null; email: string | null; job_title: string | null; company: string | null; phone: string | null }>`
    select id::text, first_name, last_name, email, job_title, company, phone from crm.contacts where owner_id = ${owner} and deleted_at is null`.execute(s.db);
  return r.rows;
}

/** Exchange creates done per cycle of the mailbox, in cycle order (cycles without any left out). */
async function createdPerCycle(s: Stack, upn: string): Promise<number[]> {
  const r = await sql<{ n: string }>`select count(*)::text as n from sync.operation
    where mailbox_id = ${upn} and side = 'exchange' and kind = 'create' and status = 'done' group by cycle_id order by cycle_id`.execute(s.db);
  return r.rows.map((x) => Number(x.n));
}

function assertUnique<T>(values: T[], what: string): void {
  const dup = values.filter((v, i) => values.indexOf(v) !== i);
  assert.equal(dup.length, 0, `${what} duplicated: ${JSON.stringify(dup.slice(0, 5))}`);
}

describe('Exchange adapter under faults', () => {
  let s: Stack;
  before(async () => {
    s = await startStack({ pageSize: 200 });
    await s.operator.createPolicy('bulk', { batchSize: 1000 });
    await s.operator.createPolicy('small', { batchSize: 20 });
  });
  after(async () => s?.teardown());

  describe('2,000 contacts, then a two-way change round, with 10 % 429/503/504 and random latency', () => {
    let owner: string;
    before(async () => {
      owner = await s.addUser(BULK, 'Bulk User');
      const values = Array.from({ length: 2000 }, (_, i) => sql`(${owner}::uuid, ${'Crm' + i}, 'Bulk', ${`crm${i}@example.org`}, 'Fabrikam')`);
      await sql`insert into crm.contacts (owner_id, first_name, last_name, email, company) values ${sql.join(values)}`.execute(s.db);
      for (let i = 0; i < 40; i++) s.emulator.admin.createContact(BULK, 'VContacts', { givenName: `Ex${i}`, surname: 'Outlook', emailAddresses: [{ address: `ex${i}@example.org` }] });
    });

    it('initial sync converges on both sides: nothing duplicated, nothing lost, exported items marked', async () => {
      s.emulator.admin.setChaos(BULK, { rate: 0.1, statuses: [429, 503, 504], applyThenFail: 0.5, retryAfterSeconds: 1, seed: 11 });
      s.emulator.admin.setLatency(BULK, 1, 6);
      await s.operator.enroll(BULK, { policy: 'bulk' });
      const cycles = await syncUntilIdle(s, BULK);
      s.emulator.admin.clearFaults(BULK);

      const ex = s.emulator.admin.listContacts(BULK, 'VContacts');
      assert.equal(ex.length, 2040);
      assertUnique(ex.map((c) => (c.emailAddresses as Array<{ address: string }>)[0]?.address), 'Exchange contacts');
      const crm = await crmRows(s, owner);
      assert.equal(crm.length, 2040);
      assertUnique(crm.map((r) => r.email), 'CRM contacts');
      const mappings = await sql<{ n: string }>`select count(*)::text as n from sync.mapping where mailbox_id = ${BULK}`.execute(s.db);
      assert.equal(Number(mappings.rows[0].n), 2040);
      const exported = ex.filter((c) => c.surname === 'Bulk');
      assert.ok(exported.every((c) => (c.categories as string[]).includes('CRM')), 'exported items carry the policy category');
      assert.deepEqual(s.emulator.admin.listCategories(BULK).map((c) => [c.displayName, c.color]), [['CRM', 'preset7']]);
      const perCycle = await createdPerCycle(s, BULK);
      assert.ok(cycles.length > 0 && perCycle.every((n) => n <= 1000), `at most batchSize writes per cycle: ${perCycle}`);
      assert.ok(s.emulator.throttledCount(BULK) > 0, 'the faults really happened');
    });

    it('a two-way change round (partial and repeated delta items) converges: no lost edit, conflicts resolved CRM-wins', async () => {
      const ex = s.emulator.admin.listContacts(BULK, 'VContacts');
      const byEmail = new Map(ex.map((c) => [(c.emailAddresses as Array<{ address: string }>)[0].address, c]));
      // 100 CRM edits (0..99), 100 Exchange edits (100..199), 20 conflicting pairs (200..219), 10 deletes per side.
      await sql`update crm.contacts set job_title = 'CRM edit' where owner_id = ${owner} and email in (${sql.join(Array.from({ length: 100 }, (_, i) => `crm${i}@example.org`))})`.execute(s.db);
      for (let i = 100; i < 200; i++) s.emulator.admin.updateContact(BULK, byEmail.get(`crm${i}@example.org`)!.id, { jobTitle: 'Outlook edit' });
      for (let i = 200; i < 220; i++) {
        await sql`update crm.contacts set job_title = 'CRM side' where email = ${`crm${i}@example.org`}`.execute(s.db);
        s.emulator.admin.updateContact(BULK, byEmail.get(`crm${i}@example.org`)!.id, { jobTitle: 'Outlook side', department: 'Sales' });
      }
      await sql`update crm.contacts set deleted_at = now() where email in (${sql.join(Array.from({ length: 10 }, (_, i) => `crm${300 + i}@example.org`))})`.execute(s.db);
      for (let i = 310; i < 320; i++) s.emulator.admin.deleteContact(BULK, byEmail.get(`crm${i}@example.org`)!.id);

      s.emulator.admin.setChaos(BULK, { rate: 0.1, statuses: [429, 503, 504], applyThenFail: 0.5, retryAfterSeconds: 1, seed: 12 });
      s.emulator.admin.setLatency(BULK, 1, 6);
      s.emulator.admin.setDeltaQuirks(BULK, { partialUpdates: true, repeatItems: true, emptyPages: true });
      await syncUntilIdle(s, BULK);
      s.emulator.admin.clearFaults(BULK);
      s.emulator.admin.setDeltaQuirks(BULK, {});

      const after = s.emulator.admin.listContacts(BULK, 'VContacts');
      const crm = await crmRows(s, owner);
      assert.equal(after.length, 2020);
      assert.equal(crm.length, 2020);
      assertUnique(after.map((c) => (c.emailAddresses as Array<{ address: string }>)[0].address), 'Exchange contacts');
      const exBy = new Map(after.map((c) => [(c.emailAddresses as Array<{ address: string }>)[0].address, c]));
      const crmBy = new Map(crm.map((r) => [r.email!, r]));
      for (let i = 0; i < 100; i++) assert.equal(exBy.get(`crm${i}@example.org`)?.jobTitle, 'CRM edit', `CRM edit ${i} reached Exchange`);
      for (let i = 100; i < 200; i++) {
        const r = crmBy.get(`crm${i}@example.org`)!;
        assert.equal(r.job_title, 'Outlook edit', `Exchange edit ${i} reached the CRM`);
        // The edit came as a partial delta item: the other fields must not be cleared.
        assert.equal(r.company, 'Fabrikam');
        assert.equal(r.first_name, `Crm${i}`);
      }
      for (let i = 200; i < 220; i++) {
        assert.equal(crmBy.get(`crm${i}@example.org`)?.job_title, 'CRM side', 'conflict: CRM wins');
        assert.equal(exBy.get(`crm${i}@example.org`)?.jobTitle, 'CRM side', 'conflict: CRM version written to Exchange');
      }
      for (let i = 300; i < 320; i++) {
        assert.ok(!exBy.has(`crm${i}@example.org`) && !crmBy.has(`crm${i}@example.org`), `deletion ${i} mirrored`);
      }
      for (const [email, c] of exBy) assert.equal(crmBy.get(email)?.job_title ?? null, (c.jobTitle as string | null) ?? null, `${email} agrees on both sides`);
    });
  });

  describe('410 SyncStateNotFound in the middle of a round', () => {
    let owner: string;
    before(async () => {
      owner = await s.addUser(RESYNC, 'Resync User');
      const values = Array.from({ length: 30 }, (_, i) => sql`(${owner}::uuid, ${'R' + i}, 'Resync', ${`r${i}@example.org`})`);
      await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values ${sql.join(values)}`.execute(s.db);
      for (let i = 0; i < 30; i++) s.emulator.admin.createContact(RESYNC, 'VContacts', { givenName: `U${i}`, surname: 'User', emailAddresses: [{ address: `u${i}@example.org` }] });
      await s.operator.enroll(RESYNC);
      await syncUntilIdle(s, RESYNC);
    });

    it('starts a full round that duplicates nothing and deletes only what is gone', async () => {
      const ex = s.emulator.admin.listContacts(RESYNC, 'VContacts');
      assert.equal(ex.length, 60);
      const find = (email: string) => ex.find((c) => (c.emailAddresses as Array<{ address: string }>)[0].address === email)!;
      // While the sync is not looking: 3 deleted, 2 edited, 2 added in Outlook; 1 added in the CRM.
      for (const e of ['u0', 'u1', 'r0']) s.emulator.admin.deleteContact(RESYNC, find(`${e}@example.org`).id);
      s.emulator.admin.updateContact(RESYNC, find('u5@example.org').id, { jobTitle: 'Edited in Outlook' });
      s.emulator.admin.updateContact(RESYNC, find('r5@example.org').id, { jobTitle: 'Edited too' });
      for (let i = 0; i < 2; i++) s.emulator.admin.createContact(RESYNC, 'VContacts', { givenName: `New${i}`, surname: 'User', emailAddresses: [{ address: `new${i}@example.org` }] });
      await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values (${owner}, 'Late', 'Crm', 'late@example.org')`.execute(s.db);
      // The round's second page answers 410 (its nextLink expired mid-round).
      s.emulator.admin.injectFault(RESYNC, { status: 410, count: 1, method: 'GET', pathPattern: 'delta\\?.*skiptoken' });
      // Every round now begins with an empty page carrying a nextLink, so the round has a second page to fail on.
      s.emulator.admin.setDeltaQuirks(RESYNC, { emptyPages: true });
      await syncUntilIdle(s, RESYNC);
      s.emulator.admin.setDeltaQuirks(RESYNC, {});

      const log = (await s.operator.log(RESYNC, 50)).map((l) => l.message).join('\n');
      assert.match(log, /SyncStateNotFound.*full round/);
      const after = s.emulator.admin.listContacts(RESYNC, 'VContacts');
      const crm = await crmRows(s, owner);
      const exEmails = after.map((c) => (c.emailAddresses as Array<{ address: string }>)[0].address).sort();
      const crmEmails = crm.map((r) => r.email!).sort();
      assertUnique(exEmails, 'Exchange contacts');
      assertUnique(crmEmails, 'CRM contacts');
      assert.deepEqual(exEmails, crmEmails, 'both sides hold the same contacts');
      assert.equal(crm.length, 60 - 3 + 2 + 1);
      for (const gone of ['u0', 'u1', 'r0']) assert.ok(!crmEmails.includes(`${gone}@example.org`), `${gone} deleted in the CRM too`);
      assert.equal(crm.find((r) => r.email === 'u5@example.org')?.job_title, 'Edited in Outlook');
      assert.equal(crm.find((r) => r.email === 'r5@example.org')?.job_title, 'Edited too');
    });
  });

  describe('lost mappings', () => {
    it('a full round relinks items cxsync created by their sync marker instead of importing them again', async () => {
      const owner = await s.addUser(RELINK, 'Relink User');
      const values = Array.from({ length: 8 }, (_, i) => sql`(${owner}::uuid, ${'L' + i}, 'Linked', ${`l${i}@example.org`})`);
      await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values ${sql.join(values)}`.execute(s.db);
      await s.operator.enroll(RELINK);
      await syncUntilIdle(s, RELINK);
      assert.equal(s.emulator.admin.listContacts(RELINK, 'VContacts').length, 8);
      // The mappings are lost (restored backup, bug…) and the delta token has expired.
      await sql`delete from sync.mapping where mailbox_id = ${RELINK}`.execute(s.db);
      await sql`delete from crm.contacts where email = 'l7@example.org'`.execute(s.db); // one CRM record gone for good
      s.emulator.admin.expireDeltaTokens(RELINK);
      await syncUntilIdle(s, RELINK);
      const ex = s.emulator.admin.listContacts(RELINK, 'VContacts');
      const crm = await crmRows(s, owner);
      assert.equal(ex.length, 8, 'nothing created again in Exchange');
      assert.equal(crm.length, 7, 'nothing imported again into the CRM (not even the orphan)');
      const mapped = await sql<{ n: string }>`select count(*)::text as n from sync.mapping where mailbox_id = ${RELINK}`.execute(s.db);
      assert.equal(Number(mapped.rows[0].n), 7);
      const log = (await s.operator.log(RELINK, 50)).map((l) => l.message).join('\n');
      assert.match(log, /7 item\(s\) created by cxsync relinked/);
    });
  });

  describe('folder and category from the policy', () => {
    it('the default Contacts folder when the policy names none; a category colour from the policy', async () => {
      const upn = 'plain@contoso.com';
      await s.operator.createPolicy('plain', { contact: { folder: null, category: { name: 'From CRM', color: 'preset3' } } });
      const owner = await s.addUser(upn, 'Plain Folder');
      await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values (${owner}, 'Dora', 'Default', 'dora@example.org')`.execute(s.db);
      s.emulator.admin.createContact(upn, null, { givenName: 'Otto', surname: 'Outlook', emailAddresses: [{ address: 'otto@example.org' }] });
      await s.operator.enroll(upn, { policy: 'plain' });
      await syncUntilIdle(s, upn);
      const inDefault = s.emulator.admin.listContacts(upn, 'Contacts');
      assert.deepEqual(inDefault.map((c) => c.surname).sort(), ['Default', 'Outlook']);
      assert.deepEqual(inDefault.find((c) => c.surname === 'Default')?.categories, ['From CRM']);
      assert.deepEqual(s.emulator.admin.listCategories(upn).map((c) => [c.displayName, c.color]), [['From CRM', 'preset3']]);
      assert.equal((await crmRows(s, owner)).length, 2);
    });
  });

  describe('batch size', () => {
    it('writes and pulls at most N items per cycle and type, carrying the rest to the next cycle', async () => {
      const owner = await s.addUser(SMALL, 'Small Batches');
      const values = Array.from({ length: 50 }, (_, i) => sql`(${owner}::uuid, ${'S' + i}, 'Small', ${`s${i}@example.org`})`);
      await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values ${sql.join(values)}`.execute(s.db);
      await s.operator.enroll(SMALL, { policy: 'small' });
      await syncUntilIdle(s, SMALL);
      // Per cycle from the database: the workflow may run several cycles (work remaining) between two sync-nows.
      assert.deepEqual(await createdPerCycle(s, SMALL), [20, 20, 10]);
      const pulled = await sql<{ n: string | null }>`select summary->>'pulled:contact:exchange' as n from sync.cycle where mailbox_id = ${SMALL} order by id`.execute(s.db);
      const pulledPerCycle = pulled.rows.map((r) => Number(r.n ?? 0));
      assert.ok(pulledPerCycle.every((n) => n <= 20), `≤ 20 pulled per cycle: ${pulledPerCycle}`);
      assert.equal(pulledPerCycle.reduce((a, b) => a + b, 0), 50, 'the echo round of the 50 creates, 20 at a time');
      assert.equal(s.emulator.admin.listContacts(SMALL, 'VContacts').length, 50);
      const log = (await s.operator.log(SMALL, 100)).map((l) => l.message).join('\n');
      assert.match(log, /carried over from the previous cycle/);
    });
  });
});
