/**
 * Filing mail by drop folder (issue 10; src/activities/email-filing.ts) on the real stack: Temporal dev server,
 * PostgreSQL, a worker, and the HTTPS Graph emulator through the production Graph client. The user drops
 * messages into VAccounts / VContacts / VLeads; each cycle files them to the matching CRM record or to a new
 * record of the folder's type, lists what it cannot file with the reason, and never files a message twice.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { demoDroppedMail, dropDemoMail } from '../../src/client/demo';
import { EmailFilingStore } from '../../src/db/email-filing-store';
import { configureMailboxLimits, OUTLOOK_LIMITS } from '../../src/activities/exchange/gate';
import { MailApi } from '../../src/activities/exchange/mail-api';
import { connect } from '../helpers/emulator-client';
import { eventually, startStack, type Stack } from '../helpers/stack';

const ANNA = 'anna@contoso.com';
const BEN = 'ben@contoso.com';
// Whole seconds: Graph gives message dates to the second.
const at = (minutesAgo: number) => new Date(Math.floor((Date.now() - minutesAgo * 60_000) / 1000) * 1000).toISOString();
const person = (address: string, name: string) => ({ emailAddress: { address, name } });

describe('email filing by drop folder', () => {
  let s: Stack;
  let anna: string;
  let ben: string;
  let store: EmailFilingStore;
  let n = 0;

  /** A received message as it arrives from outside; `imid` shared makes copies of one message. */
  function message(from: { address: string; name: string }, extra: Record<string, unknown> = {}) {
    n++;
    return {
      subject: `Message ${n}`,
      body: { contentType: 'html', content: `<p>Body ${n}</p>` },
      from: person(from.address, from.name),
      toRecipients: [person(ANNA, 'Anna')],
      internetMessageId: `<m${n}.${Date.now()}@example.net>`,
      receivedDateTime: at(60 * 24 * 30), // a month old: dropped mail keeps its date (no received-date filter)
      ...extra,
    };
  }
  const activitiesOf = async (imid: string) =>
    (await sql<{ id: string; owner_id: string; direction: string; subject: string; received_at: Date }>`
      select id, owner_id, direction, subject, received_at from crm.email_activities where internet_message_id = ${imid} and deleted_at is null`.execute(s.db)).rows;
  const linksOf = async (activityId: string) =>
    (await sql<{ record_type: string; record_id: string }>`select record_type, record_id::text from crm.email_links where email_activity_id = ${activityId} order by record_type, record_id`.execute(s.db)).rows;
  const cycle = (mailbox: string) => s.operator.syncNow(mailbox, { wait: true, timeoutMs: 90_000 });

  before(async () => {
    s = await startStack({ worker: { intervalSeconds: 3600, mailRescanSeconds: 3600 } });
    store = new EmailFilingStore(s.db);
    anna = await s.addUser(ANNA, 'Anna');
    ben = await s.addUser(BEN, 'Ben');
    await s.operator.createPolicy('mail', { email: { enabled: true, attachments: { maxBytes: 100_000 } } });
    for (const m of [ANNA, BEN]) {
      await s.operator.enroll(m, { policy: 'mail' });
      await eventually(() => s.operator.status(m), (st) => st.cyclesCompleted >= 1, { what: `first cycle of ${m}` });
    }
  });
  after(async () => s?.teardown());

  it('creates the drop folders on the first cycle, once', async () => {
    for (const name of ['VAccounts', 'VContacts', 'VLeads']) {
      assert.equal(s.emulator.admin.listMessages(ANNA, name).length, 0, `${name} exists (listing a missing folder throws)`);
    }
    const rows = (await sql<{ role: string; folder_name: string }>`select role, folder_name from sync.mail_folder where mailbox_id = ${ANNA} order by role`.execute(s.db)).rows;
    assert.deepEqual(rows.map((r) => [r.role, r.folder_name]), [['account', 'VAccounts'], ['contact', 'VContacts'], ['lead', 'VLeads']]);
  });

  it('a message from a known contact dropped into VLeads is filed to that contact; one from an unknown sender becomes a lead', async () => {
    const carla = (await sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name, email) values (${anna}, 'Carla', 'Known', 'Carla@Fabrikam.example') returning id::text`.execute(s.db)).rows[0].id;
    const known = message({ address: 'carla@fabrikam.example', name: 'Carla Known' });
    const unknown = message({ address: 'dan.new@northwind.example', name: 'Dan New' });
    s.emulator.admin.dropMessage(ANNA, 'VLeads', known);
    s.emulator.admin.dropMessage(ANNA, 'VLeads', unknown);
    const st = await cycle(ANNA);
    assert.deepEqual(st?.lastCycle?.email, { filed: 2, unresolved: 0, recordsCreated: 1 });

    const [a1] = await activitiesOf(known.internetMessageId);
    assert.deepEqual(await linksOf(a1.id), [{ record_type: 'contact', record_id: carla }]);
    assert.equal(a1.owner_id, anna);
    assert.equal(a1.direction, 'incoming');
    assert.equal(a1.received_at.toISOString(), new Date(known.receivedDateTime).toISOString());
    const [a2] = await activitiesOf(unknown.internetMessageId);
    const [link] = await linksOf(a2.id);
    assert.equal(link.record_type, 'lead');
    const lead = (await sql<{ first_name: string; last_name: string; email: string; owner_id: string }>`select first_name, last_name, email, owner_id from crm.leads where id = ${link.record_id}`.execute(s.db)).rows[0];
    assert.deepEqual(lead, { first_name: 'Dan', last_name: 'New', email: 'dan.new@northwind.example', owner_id: anna });

    // The next cycle files nothing again.
    const again = await cycle(ANNA);
    assert.equal(again?.lastCycle?.email, undefined, 'nothing filed, listed or created');
    assert.equal((await activitiesOf(known.internetMessageId)).length, 1);
  });

  it('one message dropped twice, into two folders and by two mailboxes is one activity with one link per record', async () => {
    const m = message({ address: 'erin@tailspin.example', name: 'Erin Tail' });
    s.emulator.admin.dropMessage(ANNA, 'VContacts', m);
    s.emulator.admin.dropMessage(ANNA, 'VContacts', m); // a second copy, same Internet message id
    await cycle(ANNA);
    const [act] = await activitiesOf(m.internetMessageId);
    const first = await linksOf(act.id);
    assert.equal(first.length, 1);
    assert.equal(first[0].record_type, 'contact', 'a contact created from the sender');

    // Into VAccounts too: the same activity, now also linked to the account made from the sender's domain.
    s.emulator.admin.dropMessage(ANNA, 'VAccounts', m);
    // Ben received it too (cc) and files it from his VContacts: Erin's contact (Anna's) is the only match.
    s.emulator.admin.dropMessage(BEN, 'VContacts', { ...m, toRecipients: [person(ANNA, 'Anna')], ccRecipients: [person(BEN, 'Ben')] });
    await cycle(ANNA);
    await cycle(BEN);
    const acts = await activitiesOf(m.internetMessageId);
    assert.equal(acts.length, 1, 'one activity for the message');
    const links = await linksOf(acts[0].id);
    assert.deepEqual(links.map((l) => l.record_type).sort(), ['account', 'contact']);
    assert.equal(links.filter((l) => l.record_type === 'contact')[0].record_id, first[0].record_id, 'Ben filed it to the same contact');
    const filed = (await sql<{ n: string }>`select count(*)::text as n from sync.mail_filed where activity_id = ${acts[0].id}`.execute(s.db)).rows[0].n;
    assert.equal(filed, '4', 'two copies and one folder of Anna, one of Ben');
  });

  it('an ambiguous match is listed with its candidates, never guessed; the operator files it and the next cycle carries it out', async () => {
    // Two contacts of other users share the address: neither is owned by Anna, both are contacts: a tie.
    const ids = [];
    for (const last of ['One', 'Two']) {
      ids.push((await sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name, email) values (${ben}, 'Shared', ${last}, 'desk@litware.example') returning id::text`.execute(s.db)).rows[0].id);
    }
    const m = message({ address: 'desk@litware.example', name: 'Litware Desk' });
    s.emulator.admin.dropMessage(ANNA, 'VContacts', m);
    const st = await cycle(ANNA);
    assert.equal(st?.lastCycle?.email?.unresolved, 1);
    assert.equal((await activitiesOf(m.internetMessageId)).length, 0, 'nothing filed');
    const [entry] = (await store.unresolved(ANNA)).filter((u) => u.internetMessageId === m.internetMessageId);
    assert.match(entry.reason, /2 contacts share the address desk@litware\.example/);
    assert.deepEqual(entry.candidates.map((c) => c.id).sort(), [...ids].sort());
    assert.equal(entry.subject, m.subject);

    // Listed messages are not read again every cycle.
    await cycle(ANNA);
    assert.equal((await activitiesOf(m.internetMessageId)).length, 0);

    assert.equal(await store.decide(entry.id, { file: [{ type: 'contact', id: ids[1] }] }, 'ops@contoso.com'), true);
    await cycle(ANNA);
    const [act] = await activitiesOf(m.internetMessageId);
    assert.deepEqual(await linksOf(act.id), [{ record_type: 'contact', record_id: ids[1] }]);
    assert.equal((await store.unresolved(ANNA)).filter((u) => u.internetMessageId === m.internetMessageId).length, 0, 'off the list');
  });

  it('an ignored message stays settled through re-scans; a decision that cannot be carried out is listed again for a new one', async () => {
    const desk = (await sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name, email) values (${ben}, 'Other', 'Desk', 'front@litware.example'), (${ben}, 'Other', 'Desk2', 'front@litware.example') returning id::text`.execute(s.db)).rows.map((r) => r.id);
    const ignored = message({ address: 'front@litware.example', name: 'Front' });
    const retried = message({ address: 'front@litware.example', name: 'Front' });
    s.emulator.admin.dropMessage(ANNA, 'VContacts', ignored);
    s.emulator.admin.dropMessage(ANNA, 'VContacts', retried);
    await cycle(ANNA);
    const listed = async () => (await store.unresolved(ANNA)).filter((u) => [ignored.internetMessageId, retried.internetMessageId].includes(u.internetMessageId!));
    const [a, b] = (await listed()).sort((x, y) => (x.internetMessageId === ignored.internetMessageId ? -1 : 1) - (y.internetMessageId === ignored.internetMessageId ? -1 : 1));
    await store.decide(a.id, { ignore: true }, 'ops');
    await store.decide(b.id, { file: [{ type: 'contact', id: desk[0] }] }, 'ops');
    await sql`update crm.contacts set deleted_at = now() where id = ${desk[0]}`.execute(s.db); // before the cycle carries it out
    await cycle(ANNA);
    const after = await listed();
    assert.deepEqual(after.map((u) => u.internetMessageId), [retried.internetMessageId], 'the ignored one is off the list');
    assert.match(after[0].reason, /was deleted in the CRM while the message was filed/);
    assert.equal(after[0].decision, null, 'the failed decision is not tried again every cycle');
    // A re-scan reads the folder again: the ignored message is not listed again, and the listed one meets a
    // changed CRM (one of the two contacts is gone): no longer ambiguous, it is filed to the other.
    // (Two hours later: the re-scan is due, and so is a second look at what it lists.)
    await sql`update sync.mail_folder set rescanned_at = now() - interval '2 hours' where mailbox_id = ${ANNA} and role = 'contact'`.execute(s.db);
    await sql`update sync.email_unresolved set updated_at = now() - interval '2 hours' where mailbox_id = ${ANNA}`.execute(s.db);
    await cycle(ANNA);
    assert.deepEqual(await listed(), []);
    assert.equal((await activitiesOf(ignored.internetMessageId)).length, 0);
    const [filed] = await activitiesOf(retried.internetMessageId);
    assert.deepEqual(await linksOf(filed.id), [{ record_type: 'contact', record_id: desk[1] }]);
  });

  it('a re-scan meeting more listed messages than the batch size still ends, and files the new message behind them', async () => {
    const DORA = 'dora@contoso.com';
    const dora = await s.addUser(DORA, 'Dora');
    await s.operator.createPolicy('small-batch', { batchSize: 3, email: { enabled: true } });
    await s.operator.enroll(DORA, { policy: 'small-batch' });
    await eventually(() => s.operator.status(DORA), (st) => st.cyclesCompleted >= 1, { what: 'first cycle' });
    for (let i = 0; i < 5; i++) s.emulator.admin.dropMessage(DORA, 'VContacts', message({ address: `team${i}@contoso.com`, name: 'Team' }));
    await eventually(async () => { await cycle(DORA); return store.unresolved(DORA); }, (u) => u.length === 5, { what: 'five listed (own domain)' });
    // Long ago: the re-scan is due and every listed message is due for a second look.
    await sql`update sync.mail_folder set rescanned_at = now() - interval '2 hours' where mailbox_id = ${DORA} and role = 'contact'`.execute(s.db);
    await sql`update sync.email_unresolved set updated_at = now() - interval '2 hours' where mailbox_id = ${DORA}`.execute(s.db);
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values (${dora}, 'Nia', 'Behind', 'nia@behind.example')`.execute(s.db);
    const behind = message({ address: 'nia@behind.example', name: 'Nia Behind' });
    s.emulator.admin.dropMessage(DORA, 'VContacts', behind);
    const rescanned = async () => (await sql<{ at: Date }>`select rescanned_at as at from sync.mail_folder where mailbox_id = ${DORA} and role = 'contact'`.execute(s.db)).rows[0].at.getTime();
    // Each cycle files or looks at 3 at the most: 6 to go, so a few cycles (not an endless series).
    for (let i = 0; i < 4 && ((await activitiesOf(behind.internetMessageId)).length === 0 || (await rescanned()) < Date.now() - 3_600_000); i++) await cycle(DORA);
    assert.equal((await activitiesOf(behind.internetMessageId)).length, 1, 'filed');
    assert.ok((await rescanned()) > Date.now() - 600_000, 'the re-scan finished');
    assert.equal((await store.unresolved(DORA)).length, 5, 'the own-domain ones stay listed');
    const st = await cycle(DORA);
    assert.equal(st?.lastCycle?.email, undefined, 'and the next cycle is quiet');
  });

  it("mail from the mailbox's own domain is never filed: listed as such; a sent message is filed to its recipient", async () => {
    const internal = message({ address: 'colleague@contoso.com', name: 'Col League' });
    const sent = message({ address: ANNA, name: 'Anna' }, { toRecipients: [person('fay@adventure.example', 'Fay Adventure')] });
    s.emulator.admin.dropMessage(ANNA, 'VContacts', internal);
    s.emulator.admin.dropMessage(ANNA, 'VContacts', sent);
    await cycle(ANNA);
    const [entry] = (await store.unresolved(ANNA)).filter((u) => u.internetMessageId === internal.internetMessageId);
    assert.match(entry.reason, /contoso\.com is the mailbox's own domain/);
    assert.equal((await sql`select 1 from crm.contacts where email = 'colleague@contoso.com'`.execute(s.db)).rows.length, 0, 'no contact made of a colleague');
    const [act] = await activitiesOf(sent.internetMessageId);
    assert.equal(act.direction, 'outgoing');
    const [link] = await linksOf(act.id);
    const fay = (await sql<{ email: string }>`select email from crm.contacts where id = ${link.record_id}`.execute(s.db)).rows[0];
    assert.equal(fay.email, 'fay@adventure.example');
  });

  it('attachments are stored with their size; one over the policy limit is a placeholder naming the limit, and the message is filed', async () => {
    const small = Buffer.alloc(2_000, 7);
    const big = Buffer.alloc(150_000, 9);
    const m = message({ address: 'gil@proseware.example', name: 'Gil Prose' }, {
      hasAttachments: true,
      attachments: [
        { '@odata.type': '#microsoft.graph.fileAttachment', name: 'small.bin', contentType: 'application/octet-stream', contentBytes: small.toString('base64') },
        { '@odata.type': '#microsoft.graph.fileAttachment', name: 'big.bin', contentType: 'application/octet-stream', contentBytes: big.toString('base64') },
      ],
    });
    s.emulator.admin.dropMessage(ANNA, 'VContacts', m);
    await cycle(ANNA);
    const [act] = await activitiesOf(m.internetMessageId);
    const atts = (await sql<{ name: string; size_bytes: string; content: Buffer | null; skipped_reason: string | null }>`
      select name, size_bytes::text, content, skipped_reason from crm.email_attachments where email_activity_id = ${act.id} order by name`.execute(s.db)).rows;
    assert.deepEqual(atts.map((a) => [a.name, a.size_bytes, a.content ? a.content.length : null]), [['big.bin', '150000', null], ['small.bin', '2000', 2000]]);
    assert.match(atts[0].skipped_reason!, /over the policy's attachment size limit of 100000 bytes/);
    assert.ok(atts[1].content!.equals(small));
  });

  it('a message moved out of a drop folder and back between two rounds is filed (removal confirmed by id, not read as a delete)', async () => {
    await cycle(ANNA); // a round that has seen the folder as it is
    const m = message({ address: 'hal@wingtip.example', name: 'Hal Wing' });
    const dropped = s.emulator.admin.dropMessage(ANNA, 'VContacts', m);
    s.emulator.admin.moveMessage(ANNA, dropped.id, 'inbox');
    s.emulator.admin.moveMessage(ANNA, dropped.id, 'VContacts');
    await cycle(ANNA);
    assert.equal((await activitiesOf(m.internetMessageId)).length, 1);
  });

  it('a message no delta round reports is found by the id re-scan', async () => {
    const m = message({ address: 'ida@margie.example', name: 'Ida Margie' });
    s.emulator.admin.dropMessage(ANNA, 'VContacts', m);
    // As if delta had lost it: the folder's delta link jumps past the drop (a fresh round's link, taken now).
    const row = (await sql<{ folder_id: string }>`select folder_id from sync.mail_folder where mailbox_id = ${ANNA} and role = 'contact'`.execute(s.db)).rows[0];
    const round = await new MailApi(connect(s.emulator).client).deltaRound(ANNA, row.folder_id);
    await sql`update sync.mail_folder set delta_link = ${round.deltaLink}, rescanned_at = now() where mailbox_id = ${ANNA} and role = 'contact'`.execute(s.db);
    await cycle(ANNA);
    assert.equal((await activitiesOf(m.internetMessageId)).length, 0, 'delta does not report it');
    await sql`update sync.mail_folder set rescanned_at = now() - interval '2 hours' where mailbox_id = ${ANNA} and role = 'contact'`.execute(s.db);
    await cycle(ANNA);
    assert.equal((await activitiesOf(m.internetMessageId)).length, 1, 'the re-scan files it');
  });

  it('a quiet cycle with email filing costs one request per drop folder', async () => {
    const upn = 'quiet@contoso.com';
    await s.addUser(upn, 'Quiet');
    await s.operator.createPolicy('mail-only', { email: { enabled: true }, contact: { enabled: false }, event: { enabled: false }, task: { enabled: false } });
    await s.operator.enroll(upn, { policy: 'mail-only' });
    await eventually(() => s.operator.status(upn), (st) => st.cyclesCompleted >= 1, { what: 'first cycle' });
    await cycle(upn); // the folders' first rounds are done
    const before = s.emulator.requestCount(upn);
    await cycle(upn);
    const spent = s.emulator.requestCount(upn) - before;
    assert.equal(spent, 3, `VAccounts, VContacts, VLeads: one delta page each; served: ${s.emulator.recentRequests().slice(-spent).join(', ')}`);
  });

  it("a 403 on mail stops filing alone: contacts keep syncing, status names Mail.ReadWrite, resume clears it", async () => {
    const upn = 'nomail@contoso.com';
    const owner = await s.addUser(upn, 'No Mail');
    await s.operator.enroll(upn, { policy: 'mail' });
    await eventually(() => s.operator.status(upn), (st) => st.cyclesCompleted >= 1, { what: 'first cycle' });
    s.emulator.admin.injectFault(upn, { status: 403, count: 1_000_000_000, pathPattern: '/mailFolders/' });
    await sql`insert into crm.contacts (owner_id, first_name, last_name) values (${owner}, 'Still', 'Synced')`.execute(s.db);
    const st = await eventually(
      async () => {
        await cycle(upn);
        return s.operator.status(upn);
      },
      (x) => !!x.typesNeedingAttention?.email && s.emulator.admin.listContacts(upn, 'VContacts').some((c) => c.surname === 'Synced'),
      { what: 'email stopped, contacts synced' },
    );
    assert.equal(st.state, 'needs-attention');
    assert.match(st.typesNeedingAttention!.email!, /Mail\.ReadWrite/);
    assert.match(st.typesNeedingAttention!.email!, /cxsync resume nomail@contoso\.com/);
    s.emulator.admin.clearFaults(upn);
    await s.operator.resume(upn);
    const m = message({ address: 'kim@after.example', name: 'Kim After' });
    s.emulator.admin.dropMessage(upn, 'VContacts', m);
    await eventually(async () => { await cycle(upn); return activitiesOf(m.internetMessageId); }, (a) => a.length === 1, { what: 'filing again after resume' });
    assert.equal((await s.operator.status(upn)).typesNeedingAttention, undefined);
  });

  it("npm start's demo: a message from a known contact and one from an unknown sender dropped into VLeads, filed once", async () => {
    // The demo mailboxes are this file's two users; each gets the demo's known contact in the CRM.
    for (const [mb, owner] of [[ANNA, anna], [BEN, ben]] as const) {
      const from = (demoDroppedMail(mb)[0].message.from as { emailAddress: { address: string } }).emailAddress.address;
      await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values (${owner}, 'Demo', 'Known', ${from})`.execute(s.db);
    }
    const deps = {
      admin: s.emulator.admin,
      cyclesCompleted: async (mb: string) => (await s.operator.status(mb)).cyclesCompleted,
      syncNow: (mb: string) => s.operator.syncNow(mb, { wait: true, timeoutMs: 90_000 }),
    };
    assert.deepEqual(await dropDemoMail(deps), [ANNA, BEN]);
    for (const mb of [ANNA, BEN]) {
      const [known, unknown] = demoDroppedMail(mb).map((d) => d.message.internetMessageId as string);
      const [k] = await activitiesOf(known);
      assert.deepEqual((await linksOf(k.id)).map((l) => l.record_type), ['contact'], `${mb}: the known contact, no lead`);
      const [u] = await activitiesOf(unknown);
      assert.deepEqual((await linksOf(u.id)).map((l) => l.record_type), ['lead'], `${mb}: a new lead`);
    }
    assert.deepEqual(await dropDemoMail(deps), [], 'a second npm start drops nothing');
  });

  it('with email.fileReplies, replies to a filed message in Inbox and Sent Items are filed to its records; nothing else, nothing older', async () => {
    const CARA = 'cara@contoso.com';
    const cara = await s.addUser(CARA, 'Cara');
    await s.operator.createPolicy('replies', { email: { enabled: true, fileReplies: true } });
    await s.operator.enroll(CARA, { policy: 'replies' });
    await eventually(() => s.operator.status(CARA), (st) => st.cyclesCompleted >= 1, { what: 'first cycle' });
    const liv = (await sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name, email) values (${cara}, 'Liv', 'Thread', 'liv@litware.example') returning id::text`.execute(s.db)).rows[0].id;
    const original = message({ address: 'liv@litware.example', name: 'Liv Thread' }, { toRecipients: [person(CARA, 'Cara')] });
    s.emulator.admin.dropMessage(CARA, 'VContacts', original);
    await cycle(CARA);
    assert.equal((await activitiesOf(original.internetMessageId)).length, 1);

    const now = new Date().toISOString();
    const replyTo = (imid: string) => [{ name: 'In-Reply-To', value: imid }];
    const theirs = message({ address: 'liv@litware.example', name: 'Liv Thread' }, { toRecipients: [person(CARA, 'Cara')], receivedDateTime: now, internetMessageHeaders: replyTo(original.internetMessageId) });
    const mine = message({ address: CARA, name: 'Cara' }, { toRecipients: [person('liv@litware.example', 'Liv Thread')], receivedDateTime: now, internetMessageHeaders: replyTo(original.internetMessageId) });
    const unrelated = message({ address: 'liv@litware.example', name: 'Liv Thread' }, { toRecipients: [person(CARA, 'Cara')], receivedDateTime: now });
    const older = message({ address: 'liv@litware.example', name: 'Liv Thread' }, { toRecipients: [person(CARA, 'Cara')], internetMessageHeaders: replyTo(original.internetMessageId) });
    s.emulator.admin.dropMessage(CARA, 'inbox', theirs);
    s.emulator.admin.dropMessage(CARA, 'sentitems', mine);
    s.emulator.admin.dropMessage(CARA, 'inbox', unrelated);
    s.emulator.admin.dropMessage(CARA, 'inbox', older); // received a month ago: before replies were filed
    const st = await cycle(CARA);
    assert.equal(st?.lastCycle?.email?.filed, 2);
    for (const [m, direction] of [[theirs, 'incoming'], [mine, 'outgoing']] as const) {
      const [a] = await activitiesOf(m.internetMessageId);
      assert.equal(a?.direction, direction, m.subject);
      assert.deepEqual(await linksOf(a.id), [{ record_type: 'contact', record_id: liv }], `${m.subject}: filed to the original's contact`);
    }
    assert.equal((await activitiesOf(unrelated.internetMessageId)).length, 0, 'another conversation');
    assert.equal((await activitiesOf(older.internetMessageId)).length, 0, 'received before replies were filed');
    const again = await cycle(CARA);
    assert.equal(again?.lastCycle?.email, undefined, 'nothing filed twice');
  });

  it('a CRM user deleting a filed activity is respected: dropping the message again does not bring it back', async () => {
    const m = message({ address: 'jo@lucerne.example', name: 'Jo Lucerne' });
    s.emulator.admin.dropMessage(ANNA, 'VContacts', m);
    await cycle(ANNA);
    const [act] = await activitiesOf(m.internetMessageId);
    await sql`update crm.email_activities set deleted_at = now() where id = ${act.id}`.execute(s.db);
    s.emulator.admin.dropMessage(ANNA, 'VLeads', m);
    await cycle(ANNA);
    assert.equal((await activitiesOf(m.internetMessageId)).length, 0);
    const logged = (await sql<{ message: string }>`select message from sync.log where mailbox_id = ${ANNA} and message like 'not filed again%'`.execute(s.db)).rows;
    assert.ok(logged.length >= 1, 'logged, not silent');
  });

  it("a spent request budget stops the filing activity, saved, and Temporal retries it after the wait instead of it waiting inside", async () => {
    const EVA = 'eva@contoso.com';
    const eva = await s.addUser(EVA, 'Eva');
    await s.operator.createPolicy('mail-paced', { email: { enabled: true }, contact: { enabled: false }, event: { enabled: false }, task: { enabled: false } });
    await s.operator.enroll(EVA, { policy: 'mail-paced' });
    await eventually(() => s.operator.status(EVA), (st) => st.cyclesCompleted >= 1, { what: 'first cycle' });
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values (${eva}, 'Pat', 'Paced', 'pat@paced.example')`.execute(s.db);
    const dropped = Array.from({ length: 30 }, () => message({ address: 'pat@paced.example', name: 'Pat Paced' }));
    for (const m of dropped) s.emulator.admin.dropMessage(EVA, 'VContacts', m);
    // A budget of 25 requests per 60 s (Outlook's is 10,000 per 10 minutes): three delta pages and the first 20
    // reads fit, the next 10 would wait up to 60 s (less the time filing the first 20 took), longer than an
    // activity waits (30 s) even on a slow machine.
    configureMailboxLimits({ requestsPerWindow: 25, windowMs: 60_000 });
    try {
      await s.operator.syncNow(EVA);
      const paced = await eventually(() => s.operator.status(EVA), (st) => st.activity?.step === 'fileMail' && st.activity.attempt >= 2, { what: 'fileMail retried by Temporal', timeoutMs: 90_000 });
      assert.equal(paced.retrying, undefined, 'pacing is not a failure streak');
      const part = (await sql<{ n: string }>`select count(*)::text as n from sync.mail_filed where mailbox_id = ${EVA}`.execute(s.db)).rows[0].n;
      assert.equal(part, '20', 'what was filed before the pause is saved');
      await eventually(() => s.operator.status(EVA), (st) => st.state === 'idle', { what: 'the cycle to finish after the wait', timeoutMs: 120_000 });
      for (const m of dropped) assert.equal((await activitiesOf(m.internetMessageId)).length, 1);
    } finally {
      configureMailboxLimits(OUTLOOK_LIMITS);
    }
  });
});
