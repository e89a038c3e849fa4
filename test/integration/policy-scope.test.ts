/**
 * The CRM scope of contact policies and the contact class, on the real stack (Temporal dev server, PostgreSQL,
 * HTTPS Graph emulator, real Graph client): filter "all" exports other users' contacts; filter "workgroup"
 * exports colleagues' contacts but not another workgroup's, and a contact reassigned out of the workgroup leaves
 * the mailbox; a user without a workgroup gets their own contacts only; contacts imported from Exchange are owned
 * by the mailbox's user and get the policy's contact class, which is not a synced field.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { startStack, type Stack } from '../helpers/stack';

async function addCrm(s: Stack, ownerId: string, first: string, last: string, email: string): Promise<string> {
  const r = await sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name, email) values (${ownerId}, ${first}, ${last}, ${email}) returning id`.execute(s.db);
  return r.rows[0].id;
}
async function setWorkgroup(s: Stack, userId: string, workgroup: string | null): Promise<void> {
  await sql`update crm.users set workgroup = ${workgroup} where id = ${userId}`.execute(s.db);
}
const surnames = (s: Stack, upn: string) => s.emulator.admin.listContacts(upn, 'VContacts').map((c) => String(c.surname)).sort();
const quiet = (t: { exchange: { created: number; updated: number; deleted: number }; crm: { created: number; updated: number; deleted: number } }) =>
  [t.exchange.created, t.exchange.updated, t.exchange.deleted, t.crm.created, t.crm.updated, t.crm.deleted];

describe('contact policy scope and contact class on the real stack', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
  });
  after(async () => s?.teardown());

  it('filter all: another user’s contact is exported; a contact imported from Exchange is owned by the mailbox’s user', async () => {
    const M = 'everyone@contoso.com';
    const uid = await s.addUser(M);
    const other = await s.addUser('someone.else@contoso.com');
    await addCrm(s, uid, 'Own', 'Mine', 'own@x.org');
    await addCrm(s, other, 'Otto', 'Others', 'otto@x.org');
    await s.operator.createPolicy('all-contacts', { contact: { filter: 'all' } });
    await s.operator.enroll(M, { policy: 'all-contacts' });
    await s.operator.syncNow(M, { wait: true });
    assert.ok(surnames(s, M).includes('Others'), 'the other user’s contact reached the mailbox');
    assert.ok(surnames(s, M).includes('Mine'));

    s.emulator.admin.createContact(M, 'VContacts', { givenName: 'Ivo', surname: 'Imported', emailAddresses: [{ address: 'ivo@x.org' }] });
    const st = await s.operator.syncNow(M, { wait: true });
    assert.equal(st!.lastCycle!.types.contact!.crm.created, 1);
    const imported = await sql<{ owner_id: string; contact_class: string | null }>`select owner_id, contact_class from crm.contacts where email = 'ivo@x.org'`.execute(s.db);
    assert.deepEqual(imported.rows, [{ owner_id: uid, contact_class: null }], 'owned by the mailbox’s user; no class without contactClass');
  });

  it('filter workgroup: a colleague’s contact is exported, another workgroup’s is not; reassigned out of the workgroup it is removed from the mailbox', async () => {
    const M = 'north.a@contoso.com';
    const uid = await s.addUser(M);
    const colleague = await s.addUser('north.b@contoso.com');
    const south = await s.addUser('south.c@contoso.com');
    await setWorkgroup(s, uid, 'North');
    await setWorkgroup(s, colleague, 'North');
    await setWorkgroup(s, south, 'South');
    await addCrm(s, uid, 'Own', 'Northern', 'own.n@x.org');
    const carl = await addCrm(s, colleague, 'Carl', 'Colleague', 'carl@x.org');
    await addCrm(s, south, 'Sven', 'Southern', 'sven@x.org');
    await s.operator.createPolicy('workgroup-contacts', { contact: { filter: 'workgroup' } });
    await s.operator.enroll(M, { policy: 'workgroup-contacts' });
    await s.operator.syncNow(M, { wait: true });
    await s.operator.syncNow(M, { wait: true }); // the delta sees the copies cxsync made (their echoes)
    assert.deepEqual(surnames(s, M), ['Colleague', 'Northern']);

    // Carl is reassigned to the South workgroup's user: he leaves the scope, and the mailbox.
    await sql`update crm.contacts set owner_id = ${south} where id = ${carl}`.execute(s.db);
    const st = await s.operator.syncNow(M, { wait: true });
    assert.equal(st!.lastCycle!.types.contact!.exchange.deleted, 1);
    assert.deepEqual(surnames(s, M), ['Northern']);
    const still = await sql<{ deleted_at: Date | null }>`select deleted_at from crm.contacts where id = ${carl}`.execute(s.db);
    assert.equal(still.rows[0].deleted_at, null, 'the CRM contact itself is untouched');
    const mapped = await sql<{ n: number }>`select count(*)::int as n from sync.mapping where mailbox_id = ${M} and crm_id = ${carl}`.execute(s.db);
    assert.equal(mapped.rows[0].n, 0);
  });

  it('filter workgroup for a user without a workgroup: only their own contacts', async () => {
    const M = 'loner@contoso.com';
    const uid = await s.addUser(M);
    const other = await s.addUser('also.loner@contoso.com');
    await addCrm(s, uid, 'Lou', 'Lonely', 'lou@x.org');
    await addCrm(s, other, 'Nobody', 'Shared', 'nobody@x.org');
    await s.operator.createPolicy('workgroup-loner', { contact: { filter: 'workgroup' } });
    await s.operator.enroll(M, { policy: 'workgroup-loner' });
    await s.operator.syncNow(M, { wait: true });
    assert.deepEqual(surnames(s, M), ['Lonely'], 'users without a workgroup do not share one');
  });

  it('contactClass: set on contacts imported from Exchange, not on CRM contacts, and not synced', async () => {
    const M = 'classy@contoso.com';
    const uid = await s.addUser(M);
    await addCrm(s, uid, 'Cora', 'Crm', 'cora@x.org');
    s.emulator.admin.createContact(M, 'VContacts', { givenName: 'Lena', surname: 'Lead', emailAddresses: [{ address: 'lena@x.org' }] });
    await s.operator.createPolicy('leads', { contact: { contactClass: 'Lead' } });
    await s.operator.enroll(M, { policy: 'leads' });
    const st = await s.operator.syncNow(M, { wait: true });
    assert.equal(st!.lastCycle!.types.contact!.crm.created, 1);
    const rows = await sql<{ email: string; owner_id: string; contact_class: string | null }>`
      select email, owner_id, contact_class from crm.contacts where owner_id = ${uid} order by email`.execute(s.db);
    assert.deepEqual(rows.rows, [
      { email: 'cora@x.org', owner_id: uid, contact_class: null },
      { email: 'lena@x.org', owner_id: uid, contact_class: 'Lead' },
    ]);
    await s.operator.syncNow(M, { wait: true }); // the echoes
    // Not a synced field: changing the class in the CRM writes nothing to Exchange.
    await sql`update crm.contacts set contact_class = 'Customer' where email = 'lena@x.org'`.execute(s.db);
    const q = (await s.operator.syncNow(M, { wait: true }))!.lastCycle!.types.contact!;
    assert.deepEqual(quiet(q), [0, 0, 0, 0, 0, 0]);
  });
});
