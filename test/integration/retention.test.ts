/**
 * Retention and erasure on the real stack (issue 9): the retention workflow prunes history older than the
 * retention period as soon as a worker starts; `cxsync remove` leaves no row of the mailbox in any sync table (but
 * its meeting-invitation decisions, which `forget` erases); `cxsync forget <email>` erases a person from the sync
 * tables — log lines, conflicts, operation payloads, mapping bases — and the cycles after it neither duplicate nor
 * overwrite anything. Query-plan figures are in retention-indexes.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { eventually, startStack, type Stack } from '../helpers/stack';
import { cxsync, oneLine } from '../helpers/cli';
import { KEPT_AFTER_REMOVE } from '../../src/db/retention-store';
import { RETENTION_WORKFLOW_ID } from '../../src/workflows/retention';

const ANNA = 'anna@contoso.com';
const BEN = 'ben@contoso.com';
const OLD = 'old@contoso.com';
const LUKAS = 'lukas@fabrikam.de';

/** Rows per sync table (every column, any type) whose text holds `email` as a whole address; written apart from
 * the implementation's own pattern. Only tables with matches. */
async function mentions(s: Stack, email: string): Promise<Record<string, number>> {
  const cols = await sql<{ t: string; c: string }>`
    select table_name as t, column_name as c from information_schema.columns
    where table_schema = 'sync' and data_type in ('text', 'jsonb', 'json', 'character varying', 'ARRAY', 'USER-DEFINED')
    order by table_name, column_name`.execute(s.db);
  const re = `(^|[^a-z0-9._%+-])${email.replace(/\./g, '\\.')}($|[^a-z0-9_-])`;
  const out: Record<string, number> = {};
  for (const { t, c } of cols.rows) {
    const r = await sql<{ n: string }>`select count(*)::text as n from ${sql.table(`sync.${t}`)} where lower(${sql.ref(c)}::text) ~ ${re}`.execute(s.db);
    if (Number(r.rows[0].n)) out[`${t}.${c}`] = Number(r.rows[0].n);
  }
  return out;
}

/**
 * Waits until the CRM change feed can see the change made by transaction `txid`: it reads only below the oldest
 * running transaction, and a concurrent test file's transaction can hold that back for a while.
 */
async function feedSees(s: Stack, rows: { rows: Array<{ txid: string }> }): Promise<void> {
  const txid = rows.rows.map((r) => r.txid).sort().pop()!;
  await eventually(() => sql<{ ok: boolean }>`select pg_snapshot_xmin(pg_current_snapshot()) > ${txid}::xid8 as ok`.execute(s.db).then((r) => r.rows[0].ok), (ok) => ok, { what: 'the CRM change to be visible to the feed' });
}

/** Rows of the mailbox in every sync table with a mailbox_id column (found in information_schema). */
async function rowsOf(s: Stack, mailbox: string): Promise<Record<string, number>> {
  const tables = await sql<{ t: string }>`select table_name as t from information_schema.columns where table_schema = 'sync' and column_name = 'mailbox_id'`.execute(s.db);
  const out: Record<string, number> = {};
  for (const { t } of tables.rows) {
    out[t] = Number((await sql<{ n: string }>`select count(*)::text as n from ${sql.table(`sync.${t}`)} where mailbox_id = ${mailbox}`.execute(s.db)).rows[0].n);
  }
  return out;
}

describe('retention and erasure on the real stack', () => {
  let s: Stack;
  let anna: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    s = await startStack({ startWorker: false });
    env = { DATABASE_URL: s.dbUrl, TEMPORAL_ADDRESS: s.temporalAddress, TEMPORAL_TASK_QUEUE: s.taskQueue };
  });
  after(async () => s?.teardown());

  it('prunes history older than 30 days as soon as a worker starts, and keeps the newer', async () => {
    const user = await s.addUser(OLD);
    await sql`insert into sync.mailbox (id, crm_user_id) values (${OLD}, ${user})`.execute(s.db);
    for (const days of [40, 10]) {
      const c = await sql<{ id: string }>`insert into sync.cycle (mailbox_id, started_at, ended_at, status) values (${OLD}, now() - make_interval(days => ${days}), now() - make_interval(days => ${days}), 'done') returning id::text`.execute(s.db);
      const id = c.rows[0].id;
      await sql`insert into sync.operation (cycle_id, mailbox_id, record_type, seq, side, kind, sync_id, reason, status, planned_cycle) values (${id}::bigint, ${OLD}, 'contact', 0, 'exchange', 'create', gen_random_uuid(), ${`${days} days`}, 'done', ${id}::bigint)`.execute(s.db);
      await sql`insert into sync.conflict (cycle_id, mailbox_id, record_type, crm_id, exchange_id, rule, outcome, at) values (${id}::bigint, ${OLD}, 'contact', 'c', 'e', 'crm-wins', ${`${days} days`}, now() - make_interval(days => ${days}))`.execute(s.db);
      await sql`insert into sync.log (mailbox_id, cycle_id, at, level, message) values (${OLD}, ${id}::bigint, now() - make_interval(days => ${days}), 'info', ${`${days} days`})`.execute(s.db);
    }
    await s.startWorker();
    const left = () => sql<{ t: string; m: string }>`
      select 'cycle' as t, (select reason from sync.operation o where o.cycle_id = c.id limit 1) as m from sync.cycle c where mailbox_id = ${OLD}
      union all select 'operation', reason from sync.operation where mailbox_id = ${OLD}
      union all select 'conflict', outcome from sync.conflict where mailbox_id = ${OLD}
      union all select 'log', message from sync.log where mailbox_id = ${OLD}`.execute(s.db).then((r) => r.rows.map((x) => `${x.t}:${x.m}`).sort());
    const rows = await eventually(left, (r) => !r.some((x) => x.endsWith('40 days')), { what: 'the 40-day-old history to be pruned' });
    assert.deepEqual(rows, ['conflict:10 days', 'cycle:10 days', 'log:10 days', 'operation:10 days']);
    const d = await s.temporal.client.workflow.getHandle(RETENTION_WORKFLOW_ID).describe();
    assert.equal(d.status.name, 'RUNNING', 'the retention workflow waits for its next hourly run');
    assert.equal(d.taskQueue, s.taskQueue);
  });

  it('forget erases a person from the sync tables; later cycles neither duplicate nor overwrite', async () => {
    anna = await s.addUser(ANNA, 'Anna Schmidt');
    // informational: links made by email are logged, with the address.
    await s.operator.createPolicy('gdpr', { logLevel: 'informational' });
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email, company, job_title) values
      (${anna}, 'Lukas', 'Weber', ${LUKAS}, 'Fabrikam', 'Buyer'),
      (${anna}, 'Max', 'Braun', 'max@fabrikam.de', 'Fabrikam', null),
      (${anna}, 'Jo', 'Lukas', 'jo.lukas@fabrikam.de', 'Fabrikam', null)`.execute(s.db);
    await feedSees(s, await sql<{ txid: string }>`update crm.contacts set email2 = 'LUKAS@FABRIKAM.DE' where last_name = 'Braun' returning change_txid::text as txid`.execute(s.db));
    // Lukas is in Outlook already, with another job title: merged by email on the first cycle, a conflict.
    s.emulator.admin.createContact(ANNA, 'VContacts', { givenName: 'Lukas', surname: 'Weber', jobTitle: 'Head of Buying', emailAddresses: [{ address: LUKAS, name: 'Lukas Weber' }] });
    await s.operator.enroll(ANNA, { policy: 'gdpr' });
    let st = await s.operator.syncNow(ANNA, { wait: true });
    assert.equal(st?.lastCycle?.outcome, 'completed');
    // Edited on both sides: a conflict on the same field, with both versions on record.
    const outlookLukas = () => s.emulator.admin.listContacts(ANNA, 'VContacts').find((c) => c.surname === 'Weber')!;
    s.emulator.admin.updateContact(ANNA, outlookLukas().id, { jobTitle: 'Purchasing lead' });
    await feedSees(s, await sql<{ txid: string }>`update crm.contacts set job_title = 'Senior buyer' where last_name = 'Weber' returning change_txid::text as txid`.execute(s.db));
    st = await s.operator.syncNow(ANNA, { wait: true });
    assert.ok((st?.lastCycle?.types.contact?.conflicts ?? 0) >= 1, 'a conflict was recorded');

    const before = await mentions(s, LUKAS);
    for (const where of ['log.message', 'conflict.crm_version', 'conflict.exchange_version', 'operation.payload', 'operation.reason', 'mapping.base']) {
      assert.ok(before[where] > 0, `before forget, ${where} holds the address (${JSON.stringify(before)})`);
    }
    // Outlook's copies as the user sees them (a write that changes nothing still bumps the version).
    const outlook = () => s.emulator.admin.listContacts(ANNA, 'VContacts').map(({ changeKey, lastModifiedDateTime, ...c }) => JSON.stringify(c)).sort();
    const outlookBefore = outlook();
    const crmRows = () => sql<Record<string, unknown>>`select id, first_name, last_name, email, email2, email3, company, job_title, phone, mobile, deleted_at from crm.contacts order by last_name`.execute(s.db).then((r) => r.rows);
    const crmBefore = await crmRows();

    // The operator's command, with the address in another case.
    const r = await cxsync(['forget', 'Lukas@Fabrikam.DE'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^lukas@fabrikam\.de: erased [1-9]\d* log line\(s\), [1-9]\d* conflict\(s\), \d+ staged change\(s\), [1-9]\d* operation\(s\), [1-9]\d* mapping base\(s\)/m);
    assert.match(r.stdout, /the CRM and Exchange were not touched/);

    assert.deepEqual(await mentions(s, LUKAS), {}, 'no sync table holds the address any more');
    assert.ok(Object.keys(await mentions(s, 'jo.lukas@fabrikam.de')).length > 0, 'a longer address that contains it is not erased');
    const maxBase = (await sql<{ base: Record<string, unknown> }>`select m.base from sync.mapping m join crm.contacts c on c.id::text = m.crm_id where c.last_name = 'Braun'`.execute(s.db)).rows[0].base;
    assert.equal(maxBase.email, 'max@fabrikam.de', "the other fields of a base that held the address in a second slot stay");
    assert.equal('email2' in maxBase, false);
    assert.deepEqual(outlook(), outlookBefore, 'Exchange untouched');
    assert.deepEqual(await crmRows(), crmBefore, 'CRM untouched');

    // The next cycle, with edits of other fields on both sides of Lukas (whose base lost its email field and whose
    // Outlook copy also comes back as the echo of the conflict's write) and of Max: merged field by field as before,
    // the erased fields written with the value the sides hold (the same), nothing cleared, duplicated or in conflict.
    s.emulator.admin.updateContact(ANNA, outlookLukas().id, { mobilePhone: '+49 171 5550100' });
    await sql`update crm.contacts set company = 'Fabrikam GmbH' where last_name = 'Weber'`.execute(s.db);
    await feedSees(s, await sql<{ txid: string }>`update crm.contacts set phone = '+49 30 5550199' where last_name = 'Braun' returning change_txid::text as txid`.execute(s.db));
    st = await s.operator.syncNow(ANNA, { wait: true });
    let t = st!.lastCycle!.types.contact!;
    assert.deepEqual([t.exchange.created, t.exchange.deleted, t.crm.created, t.crm.deleted, t.conflicts], [0, 0, 0, 0, 0], 'no create, delete or conflict');
    const lukasCrm = (await crmRows()).find((x) => x.last_name === 'Weber')!;
    assert.deepEqual([lukasCrm.email, lukasCrm.mobile, lukasCrm.company, lukasCrm.job_title], [LUKAS, '+49 171 5550100', 'Fabrikam GmbH', crmBefore.find((x) => x.last_name === 'Weber')!.job_title]);
    const lukasEx = outlookLukas();
    const addresses = (c: Record<string, unknown>) => (c.emailAddresses as Array<{ address: string }>).map((a) => a.address.toLowerCase());
    assert.deepEqual([addresses(lukasEx), lukasEx.companyName, lukasEx.mobilePhone, lukasEx.jobTitle], [[LUKAS], 'Fabrikam GmbH', '+49 171 5550100', crmBefore.find((x) => x.last_name === 'Weber')!.job_title]);
    const maxEx = s.emulator.admin.listContacts(ANNA, 'VContacts').find((c) => c.surname === 'Braun')!;
    assert.deepEqual([addresses(maxEx), maxEx.businessPhones], [['max@fabrikam.de', LUKAS], ['+49 30 5550199']]);
    const maxCrm = (await crmRows()).find((x) => x.last_name === 'Braun')!;
    assert.deepEqual([maxCrm.email, maxCrm.email2], ['max@fabrikam.de', 'LUKAS@FABRIKAM.DE']);
    assert.equal(s.emulator.admin.listContacts(ANNA, 'VContacts').length, 3, 'no duplicate in Outlook');
    assert.equal((await crmRows()).filter((x) => !x.deleted_at).length, 3, 'no duplicate in the CRM');

    // Bases are whole again. The cycle after reads the echoes of those writes (one CRM write of the company it
    // already holds follows the merge pair: not about the erased field); the one after that writes nothing at all,
    // and no value moved.
    const settled = outlook();
    const crmSettled = await crmRows();
    await s.operator.syncNow(ANNA, { wait: true });
    st = await s.operator.syncNow(ANNA, { wait: true });
    t = st!.lastCycle!.types.contact!;
    assert.deepEqual([t.exchange.created, t.exchange.updated, t.exchange.deleted, t.crm.created, t.crm.updated, t.crm.deleted, t.conflicts], [0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(outlook(), settled);
    assert.deepEqual(await crmRows(), crmSettled);
  });

  it('forget leaves a mailbox alone while a change of the person is not synced yet, and says what to do', async () => {
    // A change pulled and not yet planned (as between a cycle's pull and plan): paused, so no cycle plans it.
    await s.operator.pause(ANNA, 'erasure test');
    await eventually(() => s.operator.status(ANNA), (x) => x.state === 'paused', { what: 'paused' });
    await sql`insert into sync.staged_change (mailbox_id, record_type, side, external_id, removed, payload)
      values (${ANNA}, 'contact', 'crm', 'pending-change', false, ${JSON.stringify({ firstName: 'Lukas', email: LUKAS })}::jsonb)`.execute(s.db);
    const r = await cxsync(['forget', LUKAS], env);
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /lukas@fabrikam\.de is not erased everywhere yet: mailbox anna@contoso\.com still holds it/);
    assert.match(r.stdout, /not erased in anna@contoso\.com: 1 change\(s\) of this person are not synced yet; let its cycle finish \(cxsync sync-now anna@contoso\.com --wait, after cxsync resume if it is paused\)/);
    assert.match(r.stdout, /^lukas@fabrikam\.de: erased 0 log line\(s\), 0 conflict\(s\), 0 staged change\(s\), 0 operation\(s\), 0 mapping base\(s\)/);
    assert.equal((await mentions(s, LUKAS))['staged_change.payload'], 1, 'the change on its way is kept');
    await sql`delete from sync.staged_change where external_id = 'pending-change'`.execute(s.db);
    await s.operator.resume(ANNA);

    const refused = await cxsync(['forget', ANNA], env);
    assert.equal(refused.code, 1);
    assert.match(oneLine(refused.stderr), /anna@contoso\.com is an enrolled mailbox: remove it first \(cxsync remove anna@contoso\.com\)/);
    const bad = await cxsync(['forget', 'not-an-address'], env);
    assert.equal(bad.code, 1);
    assert.match(oneLine(bad.stderr), /"not-an-address" is not an email address/);
  });

  it('remove deletes every row of the mailbox from every sync table; forget of its address erases the rest', async () => {
    const ben = await s.addUser(BEN, 'Ben Carter');
    await feedSees(s, await sql<{ txid: string }>`insert into crm.contacts (owner_id, first_name, last_name, email) values (${ben}, 'Nina', 'Kraus', 'nina@fabrikam.de') returning change_txid::text as txid`.execute(s.db));
    await s.operator.enroll(BEN);
    await s.operator.syncNow(BEN, { wait: true });
    // What a cycle caught mid-way leaves besides: a change staged, a lease held, a meeting's invitation decision.
    await sql`insert into sync.staged_change (mailbox_id, record_type, side, external_id, removed) values (${BEN}, 'contact', 'exchange', 'x1', true)`.execute(s.db);
    await sql`insert into sync.event_invitation (mailbox_id, crm_id, handling, reason) values (${BEN}, gen_random_uuid()::text, 'list-in-body', 'test')`.execute(s.db);
    const c = await sql<{ id: string }>`select id::text from sync.cycle where mailbox_id = ${BEN} order by id desc limit 1`.execute(s.db);
    await sql`insert into sync.conflict (cycle_id, mailbox_id, record_type, crm_id, exchange_id, rule, outcome) values (${c.rows[0].id}::bigint, ${BEN}, 'contact', 'c', 'e', 'crm-wins', 'test')`.execute(s.db);
    await sql`insert into sync.log (mailbox_id, cycle_id, level, message) values (${BEN}, ${c.rows[0].id}::bigint, 'info', 'test')`.execute(s.db);
    const before = await rowsOf(s, BEN);
    for (const t of ['cursor', 'mapping', 'cycle', 'operation', 'conflict', 'log', 'staged_change', 'event_invitation']) assert.ok(before[t] > 0, `${t} has rows before remove: ${JSON.stringify(before)}`);

    const r = await cxsync(['remove', BEN], env);
    assert.equal(r.code, 0, r.stderr);
    const after = await rowsOf(s, BEN);
    const kept = Object.fromEntries(Object.entries(after).filter(([t, n]) => n > 0 && !KEPT_AFTER_REMOVE.includes(t)));
    assert.deepEqual(kept, {}, 'no row of the mailbox is left but those kept on purpose');
    assert.equal(after.event_invitation, 1, 'its invitation decisions stay for a re-enrolment');
    assert.equal(Number((await sql<{ n: string }>`select count(*)::text as n from sync.mailbox where id = ${BEN}`.execute(s.db)).rows[0].n), 0);
    assert.ok(s.emulator.admin.listContacts(BEN, 'VContacts').some((x) => x.surname === 'Kraus'), 'synced items stay in Outlook');

    const f = await cxsync(['forget', BEN], env);
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stdout, /1 invitation decision\(s\)/);
    assert.deepEqual(Object.entries(await rowsOf(s, BEN)).filter(([, n]) => n > 0), []);
    assert.deepEqual(await mentions(s, BEN), {});
  });

  it('forget erases the email unresolved entries from or about the person, and exclusions of the address', async () => {
    const EVE = 'eve@outside.example';
    await sql`insert into sync.email_unresolved (mailbox_id, message_id, role, subject, sender_address, reason)
      values (${ANNA}, 'AAMk-eve', 'contact', 'Hello', ${EVE}, 'nobody to file to'),
             (${ANNA}, 'AAMk-other', 'lead', 'Other', 'zed@outside.example', ${`2 contacts share the address; cc ${EVE}`}),
             (${ANNA}, 'AAMk-keep', 'lead', 'Kept', 'zed@outside.example', 'nobody to file to')`.execute(s.db);
    await sql`insert into sync.email_exclusion (mailbox_id, kind, value) values (null, 'address', ${EVE}), (${ANNA}, 'address', ${EVE}), (${ANNA}, 'domain', 'outside.example')`.execute(s.db);
    const r = await cxsync(['forget', EVE], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /, 2 unresolved email\(s\), 2 email exclusion\(s\)/);
    assert.deepEqual(await mentions(s, EVE), {}, 'no sync table holds the address any more');
    const left = (await sql<{ message_id: string }>`select message_id from sync.email_unresolved where mailbox_id = ${ANNA}`.execute(s.db)).rows.map((x) => x.message_id);
    assert.deepEqual(left, ['AAMk-keep']);
  });
});
