/**
 * Sync policies on the real stack (Temporal dev server, PostgreSQL, HTTPS Graph emulator, real Graph client):
 * a policy assigned or changed applies at the next cycle; one-way direction; prevent delete; merge by email;
 * keep both; DoNotSync and body truncation; a disabled type; the schedule's interval and active hours; an
 * invalid stored policy; the emptied-side guard with confirm and discard; the dry run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { readAdapters } from '../../src/client/adapters';
import { dryRun } from '../../src/client/dry-run';
import { emulatorGraphSettings, eventually, startStack, type Stack } from '../helpers/stack';

async function crmLive(s: Stack, ownerId: string) {
  const r = await sql<{ id: string; first_name: string; last_name: string; email: string | null; company: string | null; notes: string | null }>`
    select id, first_name, last_name, email, company, notes from crm.contacts where owner_id = ${ownerId} and deleted_at is null order by last_name, company`.execute(s.db);
  return r.rows;
}
async function addCrm(s: Stack, ownerId: string, rows: { first: string; last: string; email?: string; company?: string }[]) {
  for (const c of rows) {
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email, company) values (${ownerId}, ${c.first}, ${c.last}, ${c.email ?? null}, ${c.company ?? null})`.execute(s.db);
  }
}
async function mappings(s: Stack, mailbox: string): Promise<number> {
  const r = await sql<{ n: string }>`select count(*)::text as n from sync.mapping where mailbox_id = ${mailbox}`.execute(s.db);
  return Number(r.rows[0].n);
}
const surnames = (s: Stack, upn: string) => s.emulator.admin.listContacts(upn, 'VContacts').map((c) => String(c.surname)).sort();

describe('sync policies on the real stack', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(async () => s?.teardown());

  it('a policy assigned to a mailbox applies at its next cycle: one-way CRM → Exchange, then changed back to both', async () => {
    const M = 'oneway@contoso.com';
    const uid = await s.addUser(M);
    await addCrm(s, uid, [{ first: 'Olga', last: 'One', email: 'olga@x.org' }]);
    await s.operator.createPolicy('crm-master', { description: 'CRM to Exchange only', contact: { direction: 'crm-to-exchange' } });
    await s.operator.enroll(M);
    await s.operator.syncNow(M, { wait: true });
    assert.deepEqual(surnames(s, M), ['One']);

    assert.deepEqual(await s.operator.assign(M, 'crm-master'), { mailbox: M, policy: 'crm-master', previous: 'default' });
    s.emulator.admin.createContact(M, 'VContacts', { givenName: 'Xavier', surname: 'Exonly', emailAddresses: [{ address: 'xavier@x.org' }] });
    await sql`update crm.contacts set company = 'Contoso' where email = 'olga@x.org'`.execute(s.db);
    let st = await s.operator.syncNow(M, { wait: true });
    let t = st!.lastCycle!.types.contact!;
    assert.equal(t.crm.created, 0, 'an Exchange-only contact is not copied to the CRM under crm-to-exchange');
    assert.equal(t.exchange.updated, 1, 'CRM edits still flow');
    assert.deepEqual((await crmLive(s, uid)).map((c) => c.last_name), ['One']);
    assert.equal(s.emulator.admin.listContacts(M, 'VContacts').find((c) => c.surname === 'One')?.companyName, 'Contoso');

    // Changing the policy applies at the next cycle of every mailbox using it.
    const upd = await s.operator.updatePolicy('crm-master', { contact: { direction: 'both' } });
    assert.deepEqual(upd.mailboxes, [M]);
    const x = s.emulator.admin.listContacts(M, 'VContacts').find((c) => c.surname === 'Exonly')!;
    s.emulator.admin.updateContact(M, x.id, { jobTitle: 'Buyer' });
    st = await s.operator.syncNow(M, { wait: true });
    t = st!.lastCycle!.types.contact!;
    assert.equal(t.crm.created, 1, 'now two-way: the Exchange contact reaches the CRM on its next change');
    assert.deepEqual((await crmLive(s, uid)).map((c) => c.last_name), ['Exonly', 'One']);
  });

  it('prevent delete: a contact deleted in Exchange stays in the CRM, unlinked', async () => {
    const M = 'keeper@contoso.com';
    const uid = await s.addUser(M);
    await addCrm(s, uid, [{ first: 'Paul', last: 'Kept', email: 'paul@x.org' }]);
    await s.operator.createPolicy('no-crm-deletes', { contact: { prevent: { crm: { delete: true } } } });
    assert.equal((await s.operator.enroll(M, { policy: 'no-crm-deletes' })).policy, 'no-crm-deletes');
    await s.operator.syncNow(M, { wait: true });
    await s.operator.syncNow(M, { wait: true }); // the delta sees the copies cxsync made (their echoes)
    const kept = s.emulator.admin.listContacts(M, 'VContacts').find((c) => c.surname === 'Kept')!;
    s.emulator.admin.deleteContact(M, kept.id);
    const st = await s.operator.syncNow(M, { wait: true });
    assert.equal(st!.lastCycle!.types.contact!.crm.deleted, 0);
    assert.deepEqual((await crmLive(s, uid)).map((c) => c.last_name), ['Kept']);
    assert.equal(await mappings(s, M), 0, 'the pair is unlinked');
    const why = await sql<{ reason: string }>`select reason from sync.operation where mailbox_id = ${M} and kind = 'unlink'`.execute(s.db);
    assert.deepEqual(why.rows.map((r) => r.reason), ['deleted in Exchange; delete in CRM prevented (prevent.crm.delete)']);
  });

  it('merge by email: a first sync links contacts present on both sides instead of duplicating them', async () => {
    const M = 'merge@contoso.com';
    const uid = await s.addUser(M);
    await addCrm(s, uid, [
      { first: 'Mia', last: 'Same', email: 'mia@x.org' },
      { first: 'Max', last: 'Differs', email: 'max@x.org', company: 'CRM Co' },
      { first: 'Crm', last: 'Only', email: 'crm.only@x.org' },
    ]);
    s.emulator.admin.createContact(M, 'VContacts', { givenName: 'Mia', surname: 'Same', emailAddresses: [{ address: 'MIA@x.org' }] });
    s.emulator.admin.createContact(M, 'VContacts', { givenName: 'Max', surname: 'Differs', companyName: 'Exchange Co', emailAddresses: [{ address: 'max@x.org' }] });
    s.emulator.admin.createContact(M, 'VContacts', { givenName: 'Ex', surname: 'Only', emailAddresses: [{ address: 'ex.only@x.org' }] });
    await s.operator.enroll(M);
    const st = await s.operator.syncNow(M, { wait: true });
    const t = st!.lastCycle!.types.contact!;
    assert.equal(t.exchange.created, 1, 'only the CRM-only contact is copied to Exchange');
    assert.equal(t.crm.created, 1, 'only the Exchange-only contact is copied to the CRM');
    assert.equal(await mappings(s, M), 4);
    assert.equal((await crmLive(s, uid)).length, 4);
    assert.equal(s.emulator.admin.listContacts(M, 'VContacts').length, 4);
    // The pair that differed: linked, and the default rule (crm-wins) wrote the CRM version to Exchange.
    assert.equal(s.emulator.admin.listContacts(M, 'VContacts').find((c) => c.surname === 'Differs')?.companyName, 'CRM Co');
    const conflicts = await s.operator.conflicts(M, 10);
    assert.equal(conflicts.length, 1);
    assert.equal(conflicts[0].rule, 'merge by email; conflict: crm-wins');
    assert.equal(conflicts[0].outcome, 'linked; CRM version written to Exchange');
    assert.equal((conflicts[0].exchange_version as { company?: string }).company, 'Exchange Co');
    // A quiet cycle afterwards writes nothing.
    const q = (await s.operator.syncNow(M, { wait: true }))!.lastCycle!.types.contact!;
    assert.deepEqual([q.exchange.created, q.exchange.updated, q.exchange.deleted, q.crm.created, q.crm.updated, q.crm.deleted], [0, 0, 0, 0, 0, 0]);
  });

  it('keep both: a pair edited on both sides becomes two pairs, each version once on each side, each linked to its counterpart', async () => {
    const M = 'both@contoso.com';
    const uid = await s.addUser(M);
    await addCrm(s, uid, [{ first: 'Kim', last: 'Twice', email: 'kim@x.org' }]);
    await s.operator.createPolicy('keep-both', { contact: { conflict: 'keep-both', mergeByEmail: false } });
    await s.operator.enroll(M, { policy: 'keep-both' });
    await s.operator.syncNow(M, { wait: true });
    const ex = s.emulator.admin.listContacts(M, 'VContacts')[0];
    s.emulator.admin.updateContact(M, ex.id, { companyName: 'Exchange Edit' });
    await sql`update crm.contacts set company = 'CRM Edit' where email = 'kim@x.org'`.execute(s.db);
    const st = await s.operator.syncNow(M, { wait: true });
    assert.equal(st!.lastCycle!.types.contact!.conflicts, 1);
    assert.deepEqual((await crmLive(s, uid)).map((c) => c.company), ['CRM Edit', 'Exchange Edit']);
    assert.deepEqual(s.emulator.admin.listContacts(M, 'VContacts').map((c) => c.companyName).sort(), ['CRM Edit', 'Exchange Edit']);
    // Each mapping links equal versions.
    const pairs = await sql<{ crm_id: string; exchange_id: string }>`select crm_id, exchange_id from sync.mapping where mailbox_id = ${M}`.execute(s.db);
    assert.equal(pairs.rows.length, 2);
    const crmRows = await crmLive(s, uid);
    for (const p of pairs.rows) {
      const c = crmRows.find((r) => r.id === p.crm_id)!;
      const e = s.emulator.admin.listContacts(M, 'VContacts').find((x) => x.id === p.exchange_id)!;
      assert.equal(c.company, e.companyName);
    }
    const [conflict] = await s.operator.conflicts(M, 10);
    assert.equal(conflict.rule, 'conflict: keep-both');
    assert.equal(conflict.outcome, 'both versions kept');
    // Settled: the copies' echoes change nothing.
    const q = (await s.operator.syncNow(M, { wait: true }))!.lastCycle!.types.contact!;
    assert.deepEqual([q.exchange.created, q.crm.created, q.conflicts], [0, 0, 0]);
  });

  it('DoNotSync and body truncation; a disabled type is not synced', async () => {
    const M = 'scope@contoso.com';
    const uid = await s.addUser(M);
    await addCrm(s, uid, [{ first: 'Long', last: 'Notes', email: 'long@x.org' }]);
    await sql`update crm.contacts set notes = repeat('x', 40000) where email = 'long@x.org'`.execute(s.db);
    s.emulator.admin.createContact(M, 'VContacts', { givenName: 'Private', surname: 'Person', categories: ['DoNotSync'], emailAddresses: [{ address: 'p@x.org' }] });
    await s.operator.enroll(M);
    const st = await s.operator.syncNow(M, { wait: true });
    const t = st!.lastCycle!.types.contact!;
    assert.equal(t.crm.created, 0, 'the DoNotSync contact is not copied');
    assert.equal(t.exchange.created, 1, 'the long-notes contact is exported, truncated');
    assert.equal(t.errors, 0);
    const long = s.emulator.admin.listContacts(M, 'VContacts').find((c) => c.surname === 'Notes')!;
    assert.equal(String(long.personalNotes).length, 32000);
    assert.equal((await crmLive(s, uid))[0].notes?.length, 40000, 'the CRM keeps its full text');
    const log = await s.operator.log(M, 20);
    assert.ok(log.some((l) => l.level === 'warn' && l.message === 'field notes is 40000 characters long; truncated to 32000 (fieldLimits.body is truncate)'));

    await s.operator.createPolicy('contacts-off', { contact: { enabled: false } });
    await s.operator.assign(M, 'contacts-off');
    await addCrm(s, uid, [{ first: 'Not', last: 'Synced', email: 'ns@x.org' }]);
    const off = await s.operator.syncNow(M, { wait: true });
    assert.equal(off!.lastCycle!.outcome, 'completed');
    assert.equal(off!.lastCycle!.types.contact, undefined, 'no contact step ran');
    assert.ok(!surnames(s, M).includes('Synced'));
  });

  it('the schedule: the interval, and active hours that make a scheduled cycle wait for the next window (sync-now is not limited)', async () => {
    const M = 'hours@contoso.com';
    await s.addUser(M);
    await s.operator.createPolicy('every-10-min', { schedule: { intervalSeconds: 600 } });
    await s.operator.enroll(M, { policy: 'every-10-min' });
    let st = await s.operator.syncNow(M, { wait: true });
    const end = Date.parse(st!.lastCycle!.end!);
    st = await eventually(() => s.operator.status(M), (x) => x.nextCycleAt === new Date(end + 600_000).toISOString(), { what: 'next cycle = end + 600 s' });

    // A one-minute window three hours from now (UTC): the next scheduled cycle waits for it.
    const start = Math.floor((Date.now() + 3 * 3600_000) / 60_000) * 60_000;
    const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);
    await s.operator.updatePolicy('every-10-min', { schedule: { intervalSeconds: 600, activeHours: { from: hhmm(start), to: hhmm(start + 60_000), timeZone: 'UTC' } } });
    st = await s.operator.syncNow(M, { wait: true });
    assert.equal(st!.lastCycle!.outcome, 'completed', 'sync-now runs outside active hours');
    await eventually(() => s.operator.status(M), (x) => x.nextCycleAt === new Date(start).toISOString(), { what: `next cycle at the window start ${new Date(start).toISOString()}` });
  });

  it('a stored policy that no longer validates puts the mailbox in needs-attention with the reason; fixing it and resuming recovers', async () => {
    const M = 'broken@contoso.com';
    await s.addUser(M);
    await s.operator.createPolicy('fragile', {});
    await s.operator.enroll(M, { policy: 'fragile' });
    await s.operator.syncNow(M, { wait: true });
    await sql`update sync.policy set settings = '{"contact":{"direction":"sideways"}}'::jsonb where name = 'fragile'`.execute(s.db);
    await assert.rejects(s.operator.syncNow(M, { wait: true }), /needs attention: policy fragile is invalid: contact\.direction must be one of both, crm-to-exchange, exchange-to-crm \(got "sideways"\)/);
    await s.operator.updatePolicy('fragile', { contact: { direction: 'both' } });
    await s.operator.resume(M);
    const st = await s.operator.syncNow(M, { wait: true });
    assert.equal(st!.state, 'idle');
    assert.equal(st!.lastCycle!.outcome, 'completed');
  });

  it('emptied-side guard: Exchange reports every synced contact deleted → needs-attention, nothing deleted; confirmed → mirrored', async () => {
    const M = 'wiped@contoso.com';
    const uid = await s.addUser(M);
    await addCrm(s, uid, Array.from({ length: 11 }, (_, i) => ({ first: 'Guard', last: `G${String(i).padStart(2, '0')}`, email: `g${i}@x.org` })));
    await s.operator.enroll(M);
    await s.operator.syncNow(M, { wait: true });
    await s.operator.syncNow(M, { wait: true }); // the delta sees the copies cxsync made (their echoes)
    assert.equal(s.emulator.admin.listContacts(M, 'VContacts').length, 11);
    for (const c of s.emulator.admin.listContacts(M, 'VContacts')) s.emulator.admin.deleteContact(M, c.id);

    await assert.rejects(s.operator.syncNow(M, { wait: true }), /needs attention: contact: Exchange reports 11 of 11 synced items deleted \(100 %, guard: ≥ 90 % and ≥ 10\); no deletes were mirrored\. .*--confirm-mass-delete/);
    assert.equal((await crmLive(s, uid)).length, 11, 'nothing deleted in the CRM');
    assert.equal((await s.operator.status(M)).state, 'needs-attention');
    const log = await s.operator.log(M, 5);
    assert.ok(log.some((l) => l.level === 'warn' && /^mass delete held: Exchange reports 11 of 11/.test(l.message)));

    // Resuming without a decision stops again at the same point.
    const r = await s.operator.resume(M);
    assert.deepEqual(r.held, ['contact']);
    await assert.rejects(s.operator.syncNow(M, { wait: true }), /needs attention: contact: Exchange reports 11 of 11/);
    assert.equal((await crmLive(s, uid)).length, 11);

    const ok = await s.operator.resume(M, { massDelete: 'confirm' });
    assert.deepEqual(ok.decided, ['contact']);
    await eventually(() => crmLive(s, uid), (rows) => rows.length === 0, { what: 'the confirmed deletes mirrored to the CRM' });
    const st = await eventually(() => s.operator.status(M), (x) => x.state === 'idle' && x.lastCycle?.outcome === 'completed', { what: 'idle after the confirmed cycle' });
    assert.equal(st.needsAttentionReason, null);
    assert.equal(await mappings(s, M), 0);
    await assert.rejects(s.operator.resume(M, { massDelete: 'confirm' }), /has no mass delete waiting for a decision/);
  });

  it('emptied-side guard: the CRM side emptied, discarded by the operator → Exchange keeps its copies, unlinked', async () => {
    const M = 'crmwiped@contoso.com';
    const uid = await s.addUser(M);
    await addCrm(s, uid, Array.from({ length: 10 }, (_, i) => ({ first: 'Disc', last: `D${i}`, email: `d${i}@x.org` })));
    await s.operator.enroll(M);
    await s.operator.syncNow(M, { wait: true });
    await sql`update crm.contacts set deleted_at = now() where owner_id = ${uid}`.execute(s.db);
    await assert.rejects(s.operator.syncNow(M, { wait: true }), /needs attention: contact: CRM reports 10 of 10 synced items deleted/);
    assert.equal(s.emulator.admin.listContacts(M, 'VContacts').length, 10);
    await s.operator.resume(M, { massDelete: 'discard' });
    await eventually(() => mappings(s, M), (n) => n === 0, { what: 'the deleted pairs unlinked' });
    await eventually(() => s.operator.status(M), (x) => x.state === 'idle' && x.lastCycle?.outcome === 'completed', { what: 'idle' });
    assert.equal(s.emulator.admin.listContacts(M, 'VContacts').length, 10, 'Exchange keeps every copy');
  });

  it('plan (dry run) shows what the next cycle will do, with reasons, and applies nothing', async () => {
    const M = 'dryrun@contoso.com';
    const uid = await s.addUser(M);
    await addCrm(s, uid, [{ first: 'Dora', last: 'Dry', email: 'dora@x.org' }]);
    await s.operator.enroll(M);
    await s.operator.syncNow(M, { wait: true });
    await addCrm(s, uid, [{ first: 'Nina', last: 'New', email: 'nina@x.org' }]);
    await sql`update crm.contacts set company = 'Edited' where email = 'dora@x.org'`.execute(s.db);
    s.emulator.admin.createContact(M, 'VContacts', { givenName: 'Eve', surname: 'Exchange', emailAddresses: [{ address: 'eve@x.org' }] });
    // No cycle may run while the snapshots are compared: wait until the workflow has settled (idle, and no further
    // cycle chained at once after the last one).
    let seen = -1;
    let steady = 0;
    await eventually(
      () => s.operator.status(M),
      (st) => {
        steady = st.state === 'idle' && st.cyclesCompleted === seen ? steady + 1 : 0;
        seen = st.state === 'idle' ? st.cyclesCompleted : -1;
        return steady >= 3; // idle with the same cycle count for about a second
      },
      { what: 'the workflow to settle' },
    );

    const snapshot = async () => ({
      crm: (await crmLive(s, uid)).map((c) => `${c.last_name}:${c.company}`),
      ex: s.emulator.admin.listContacts(M, 'VContacts').map((c) => `${c.surname}:${c.companyName ?? null}`).sort(),
      cursor: (await sql`select * from sync.cursor where mailbox_id = ${M} order by record_type`.execute(s.db)).rows,
      ops: (await sql`select count(*)::int as n from sync.operation where mailbox_id = ${M}`.execute(s.db)).rows,
      staged: (await sql`select count(*)::int as n from sync.staged_change where mailbox_id = ${M}`.execute(s.db)).rows,
    });
    const before = await snapshot();
    const adapters = readAdapters(s.db, emulatorGraphSettings(s.emulator), s.emulator.caCertPem);
    const plan = await dryRun(s.db, adapters, M);
    assert.equal(plan.policy, 'default');
    const t = plan.types[0];
    assert.equal(t.recordType, 'contact');
    assert.equal(t.read.exchangeFrom, 'the saved delta link');
    const writes = t.operations.filter((o) => o.kind !== 'refresh').map((o) => `${o.kind} ${o.side} ${o.label}: ${o.reason}`).sort();
    assert.deepEqual(writes, ['create crm Eve Exchange: new in Exchange', 'create exchange Nina New: new in CRM', 'update exchange Dora Dry: changed in CRM (company)']);
    assert.deepEqual(await snapshot(), before, 'the dry run changed nothing: data, cursors, operations, staging');

    // Planning twice gives the same answer, and the real cycle then does what the dry run said.
    const again = await dryRun(s.db, adapters, M);
    assert.deepEqual(again.types[0].operations.map((o) => [o.kind, o.side, o.label]), t.operations.map((o) => [o.kind, o.side, o.label]));
    const st = (await s.operator.syncNow(M, { wait: true }))!.lastCycle!.types.contact!;
    assert.deepEqual([st.crm.created, st.exchange.created, st.exchange.updated], [1, 1, 1]);
  });
});
