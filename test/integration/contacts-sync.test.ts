import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { startStack, type Stack } from '../helpers/stack';

const ANNA = 'anna@contoso.com';

async function crmContacts(s: Stack, ownerId: string) {
  const r = await sql<{ id: string; first_name: string; last_name: string; email: string; company: string | null; deleted_at: Date | null }>`
    select id, first_name, last_name, email, company, deleted_at from crm.contacts where owner_id = ${ownerId} order by last_name`.execute(s.db);
  return r.rows;
}

describe('contacts two-way sync on the real stack', () => {
  let s: Stack;
  let anna: string;
  before(async () => {
    s = await startStack();
    anna = await s.addUser(ANNA, 'Anna Schmidt');
  });
  after(async () => s?.teardown());

  it('copies CRM contacts into the mailbox and Exchange contacts into the CRM on the first cycle', async () => {
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email, company) values
      (${anna}, 'Lukas', 'Weber', 'lukas@fabrikam.de', 'Fabrikam'),
      (${anna}, 'Sofia', 'Rossi', 'sofia@adventure-works.it', null)`.execute(s.db);
    s.emulator.admin.ensureMailbox(ANNA);
    // Enrol first so the VContacts folder exists, then the user adds a contact there in Outlook.
    await s.operator.enroll(ANNA);
    const status = await s.operator.syncNow(ANNA, { wait: true });
    assert.equal(status?.lastCycle?.outcome, 'completed');
    assert.equal(status?.lastCycle?.types.contact?.exchange.created, 2);
    const inExchange = s.emulator.admin.listContacts(ANNA, 'VContacts');
    assert.deepEqual(inExchange.map((c) => c.surname).sort(), ['Rossi', 'Weber']);

    s.emulator.admin.createContact(ANNA, 'VContacts', { givenName: 'Chloé', surname: 'Martin', emailAddresses: [{ address: 'chloe@contoso.fr' }] });
    const st2 = await s.operator.syncNow(ANNA, { wait: true });
    assert.equal(st2?.lastCycle?.types.contact?.crm.created, 1);
    assert.equal(st2?.lastCycle?.types.contact?.exchange.created, 0, 'the CRM copy must not echo back to Exchange');
    const rows = await crmContacts(s, anna);
    assert.deepEqual(rows.map((r) => r.last_name), ['Martin', 'Rossi', 'Weber']);

    // A quiet cycle writes nothing anywhere.
    const st3 = await s.operator.syncNow(ANNA, { wait: true });
    const t = st3!.lastCycle!.types.contact!;
    assert.deepEqual([t.exchange.created, t.exchange.updated, t.exchange.deleted, t.crm.created, t.crm.updated, t.crm.deleted], [0, 0, 0, 0, 0, 0]);
    assert.equal(s.emulator.admin.listContacts(ANNA, 'VContacts').length, 3);
  });

  it('carries edits and deletions both ways', async () => {
    const weber = s.emulator.admin.listContacts(ANNA, 'VContacts').find((c) => c.surname === 'Weber')!;
    s.emulator.admin.updateContact(ANNA, weber.id, { jobTitle: 'Head of Purchasing' });
    await sql`update crm.contacts set company = 'Adventure Works' where last_name = 'Rossi'`.execute(s.db);
    let st = await s.operator.syncNow(ANNA, { wait: true });
    assert.equal(st?.lastCycle?.types.contact?.crm.updated, 1);
    assert.equal(st?.lastCycle?.types.contact?.exchange.updated, 1);
    const jt = await sql<{ job_title: string }>`select job_title from crm.contacts where last_name = 'Weber'`.execute(s.db);
    assert.equal(jt.rows[0].job_title, 'Head of Purchasing');
    assert.equal(s.emulator.admin.listContacts(ANNA, 'VContacts').find((c) => c.surname === 'Rossi')?.companyName, 'Adventure Works');

    const martin = s.emulator.admin.listContacts(ANNA, 'VContacts').find((c) => c.surname === 'Martin')!;
    s.emulator.admin.deleteContact(ANNA, martin.id);
    await sql`update crm.contacts set deleted_at = now() where last_name = 'Rossi'`.execute(s.db);
    st = await s.operator.syncNow(ANNA, { wait: true });
    assert.equal(st?.lastCycle?.types.contact?.crm.deleted, 1);
    assert.equal(st?.lastCycle?.types.contact?.exchange.deleted, 1);
    const live = (await crmContacts(s, anna)).filter((r) => !r.deleted_at).map((r) => r.last_name);
    assert.deepEqual(live, ['Weber']);
    assert.deepEqual(s.emulator.admin.listContacts(ANNA, 'VContacts').map((c) => c.surname), ['Weber']);
  });

  it('logs and skips bad items while the rest of the cycle goes on', async () => {
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values
      (${anna}, 'Bad', 'Email', 'not-an-email'),
      (${anna}, 'Long', 'Notes', 'long@x.org'),
      (${anna}, 'Good', 'One', 'good@x.org')`.execute(s.db);
    await sql`update crm.contacts set notes = repeat('x', 40000) where last_name = 'Notes'`.execute(s.db);
    s.emulator.admin.createContact(ANNA, 'VContacts', { personalNotes: 'no name at all' });
    const st = await s.operator.syncNow(ANNA, { wait: true });
    const t = st!.lastCycle!.types.contact!;
    // The default policy truncates an over-long body (notes) and syncs the item (fieldLimits.body, docs/POLICIES.md).
    assert.equal(t.exchange.created, 2, 'the good CRM contact and the long-notes one (truncated) are exported');
    assert.equal(t.errors, 2);
    const log = await s.operator.log(ANNA, 20);
    const messages = log.map((l) => l.message).join('\n');
    assert.match(messages, /email "not-an-email" is not a valid email address/);
    assert.match(messages, /field notes is 40000 characters long; truncated to 32000/);
    assert.match(messages, /contact has no name/);
  });

  it('finds a create whose answer was lost (504 after success) by its sync id instead of creating it again', async () => {
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values (${anna}, 'Lost', 'Answer', 'lost@x.org')`.execute(s.db);
    s.emulator.admin.injectFault(ANNA, { status: 504, count: 1, method: 'POST', pathPattern: '/contacts$', applyThenFail: true });
    const st = await s.operator.syncNow(ANNA, { wait: true });
    assert.equal(st?.lastCycle?.types.contact?.exchange.created, 1);
    const copies = s.emulator.admin.listContacts(ANNA, 'VContacts').filter((c) => c.surname === 'Answer');
    assert.equal(copies.length, 1, 'exactly one copy in Exchange');
    const lookups = s.emulator.recentRequests().filter((r) => r.includes('singleValueExtendedProperties/Any'));
    assert.equal(lookups.length, 1, 'the retry looked the item up by its sync id');
  });
});
