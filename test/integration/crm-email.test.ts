/**
 * The built-in CRM's email records (migration 0013_crm_email, src/activities/crm/postgres-crm-email.ts) on a real
 * PostgreSQL: finding the record an address belongs to and the resolution order (domain/email-records.ts),
 * records created from a sender, idempotent activities and links, attachments and their placeholders, and the
 * activity feed. Filing and email sync are not built yet: this is the CRM side they will use.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import type { Db } from '../../src/db/connection';
import type { Database } from '../../src/db/schema';
import { PostgresCrmEmail } from '../../src/activities/crm/postgres-crm-email';
import type { CrmEmailActivityChange, EmailActivityFields } from '../../src/activities/crm/crm-store';
import { freshDatabase } from '../helpers/database';

const MB = 'anna@contoso.com';
const OTHER_MB = 'bob@contoso.com';

async function addUser(db: Kysely<Database>, email: string): Promise<string> {
  return (await sql<{ id: string }>`insert into crm.users (email, display_name) values (${email}, ${email}) returning id::text as id`.execute(db)).rows[0].id;
}
async function contact(db: Kysely<Database>, owner: string | null, slots: { email?: string; email2?: string; email3?: string }, name = 'Contact'): Promise<string> {
  const r = await sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name, email, email2, email3)
    values (${owner}::uuid, ${name}, 'Test', ${slots.email ?? null}, ${slots.email2 ?? null}, ${slots.email3 ?? null}) returning id::text as id`.execute(db);
  return r.rows[0].id;
}
async function lead(db: Kysely<Database>, owner: string | null, email: string, email2: string | null = null): Promise<string> {
  const r = await sql<{ id: string }>`insert into crm.leads (owner_id, last_name, email, email2) values (${owner}::uuid, 'Lead', ${email}, ${email2}) returning id::text as id`.execute(db);
  return r.rows[0].id;
}
async function account(db: Kysely<Database>, owner: string | null, { email, domain, name = 'Account' }: { email?: string; domain?: string; name?: string }): Promise<string> {
  const r = await sql<{ id: string }>`insert into crm.accounts (owner_id, name, email, domain) values (${owner}::uuid, ${name}, ${email ?? null}, ${domain ?? null}) returning id::text as id`.execute(db);
  return r.rows[0].id;
}
const nextXid = async (db: Kysely<Database>) => (await sql<{ x: string }>`select pg_snapshot_xmax(pg_current_snapshot())::text as x`.execute(db)).rows[0].x;

function fields(ownerId: string, over: Partial<EmailActivityFields> = {}): EmailActivityFields {
  return {
    ownerId,
    subject: 'Quote for 40 chairs',
    bodyText: 'Hello Anna,\nplease find the quote attached.',
    bodyHtml: '<p>Hello Anna,</p><p>please find the quote attached.</p>',
    from: { address: 'carla@fabrikam.com', name: 'Carla Diaz' },
    to: [{ address: 'anna@contoso.com', name: 'Anna Berg' }],
    cc: [{ address: 'sales@contoso.com', name: null }],
    bcc: [],
    sentAt: '2030-03-04T09:15:00.000000Z',
    receivedAt: '2030-03-04T09:15:07.000000Z',
    direction: 'incoming',
    internetMessageId: `<${randomUUID()}@fabrikam.com>`,
    conversationId: 'AAQkADconv1',
    inReplyTo: null,
    ...over,
  };
}

describe('crm email records', () => {
  let env: Awaited<ReturnType<typeof freshDatabase>>;
  let db: Db;
  let crm: PostgresCrmEmail;
  let me: string;
  let other: string;

  before(async () => {
    env = await freshDatabase();
    db = env.db;
    crm = new PostgresCrmEmail(db);
    me = await addUser(db, MB);
    other = await addUser(db, OTHER_MB);
    await sql`insert into sync.mailbox (id, crm_user_id) values (${MB}, ${me}::uuid), (${OTHER_MB}, ${other}::uuid)`.execute(db);
  });
  after(async () => env?.drop());

  describe('finding the record of an address (resolution order)', () => {
    it('matches every contact slot and lead slot case-insensitively, and leaves deleted records out', async () => {
      const c3 = await contact(db, other, { email: 'x1@elsewhere.com', email3: 'Slot.Three@Fabrikam.COM' });
      const deleted = await contact(db, other, { email: 'slot.three@fabrikam.com' });
      await sql`update crm.contacts set deleted_at = now() where id = ${deleted}::uuid`.execute(db);
      const r = await crm.findRecordsByAddress({ address: 'SLOT.three@fabrikam.com', userId: me });
      assert.equal(r.address, 'slot.three@fabrikam.com');
      assert.deepEqual(r.candidates.map((x) => [x.type, x.id, x.match]), [['contact', c3, 'address']]);
      assert.deepEqual(r.resolution, { kind: 'resolved', record: r.candidates[0], rule: 'the only match' });

      const l2 = await lead(db, null, 'first@leads.example', 'Second@Leads.Example');
      const rl = await crm.findRecordsByAddress({ address: 'second@leads.example', userId: me });
      assert.deepEqual(rl.candidates.map((x) => [x.type, x.id]), [['lead', l2]]);
      assert.deepEqual(await crm.findRecordsByAddress({ address: 'not an address', userId: me }), { address: null, candidates: [], resolution: { kind: 'none' } });
      assert.deepEqual((await crm.findRecordsByAddress({ address: 'nobody@nowhere.example', userId: me })).resolution, { kind: 'none' });
    });

    it("a record owned by the mailbox's user first: my lead wins over someone else's contact", async () => {
      const theirs = await contact(db, other, { email: 'owner@tie.example' });
      const mine = await lead(db, me, 'owner@tie.example');
      const r = await crm.findRecordsByAddress({ address: 'owner@tie.example', userId: me });
      assert.equal(r.candidates.length, 2);
      assert.equal(r.resolution.kind, 'resolved');
      assert.deepEqual(r.resolution.kind === 'resolved' && [r.resolution.record.id, r.resolution.rule], [mine, "owned by the mailbox's user"]);
      // For the other user the same address resolves to their own contact.
      const r2 = await crm.findRecordsByAddress({ address: 'owner@tie.example', userId: other });
      assert.deepEqual(r2.resolution.kind === 'resolved' && r2.resolution.record.id, theirs);
    });

    it('then contact before lead before account', async () => {
      const c = await contact(db, other, { email2: 'type@tie.example' });
      const l = await lead(db, other, 'type@tie.example');
      await account(db, other, { email: 'type@tie.example' });
      const r = await crm.findRecordsByAddress({ address: 'type@tie.example', userId: me });
      assert.deepEqual(r.resolution.kind === 'resolved' && [r.resolution.record.id, r.resolution.rule], [c, 'contact before lead']);
      // Without the contact: the lead, before the account.
      const r2 = await crm.findRecordsByAddress({ address: 'type@tie.example', userId: me, types: ['lead', 'account'] });
      assert.deepEqual(r2.resolution.kind === 'resolved' && [r2.resolution.record.id, r2.resolution.rule], [l, 'lead before account']);
    });

    it("accounts: by their own address before by domain; a domain match only when no person matches; never a public mail domain", async () => {
      const info = await account(db, null, { email: 'Info@Northwind.example', domain: 'northwind.example', name: 'Northwind (info)' });
      const byDomain = await account(db, null, { domain: 'northwind.example', name: 'Northwind' });
      const r = await crm.findRecordsByAddress({ address: 'info@northwind.example', userId: me });
      assert.deepEqual(r.candidates.map((x) => [x.id, x.match]).sort(), [[byDomain, 'domain'], [info, 'address']].sort());
      assert.deepEqual(r.resolution.kind === 'resolved' && [r.resolution.record.id, r.resolution.rule], [info, 'address before domain']);
      // An unknown person at that domain: both accounts match by domain, a tie.
      const unknown = await crm.findRecordsByAddress({ address: 'someone@northwind.example', userId: me });
      assert.equal(unknown.resolution.kind, 'ambiguous');
      // A known person at that domain: the contact, not the company.
      const person = await contact(db, null, { email: 'pat@northwind.example' });
      const p = await crm.findRecordsByAddress({ address: 'pat@northwind.example', userId: me });
      assert.deepEqual(p.resolution.kind === 'resolved' && p.resolution.record.id, person);
      // matchDomain off: the caller asks for address matches only.
      assert.deepEqual((await crm.findRecordsByAddress({ address: 'someone@northwind.example', userId: me, matchDomain: false })).resolution, { kind: 'none' });
      await account(db, me, { domain: 'gmail.com', name: 'Misfiled' });
      assert.deepEqual((await crm.findRecordsByAddress({ address: 'bob@gmail.com', userId: me })).candidates, []);
    });

    it('several records at the best rank are ambiguous: returned, never guessed', async () => {
      const a = await contact(db, me, { email: 'twin@tie.example' }, 'Twin A');
      const b = await contact(db, me, { email3: 'TWIN@tie.example' }, 'Twin B');
      await contact(db, other, { email: 'twin@tie.example' }, 'Not mine');
      await lead(db, me, 'twin@tie.example');
      const r = await crm.findRecordsByAddress({ address: 'twin@tie.example', userId: me });
      assert.equal(r.candidates.length, 4);
      assert.equal(r.resolution.kind, 'ambiguous');
      assert.deepEqual(r.resolution.kind === 'ambiguous' && r.resolution.candidates.map((x) => x.id).sort(), [a, b].sort());
      assert.equal(r.resolution.kind === 'ambiguous' && r.resolution.reason, "2 contacts owned by the mailbox's user share the address");
      // Deleting one of the twins settles it.
      await sql`update crm.contacts set deleted_at = now() where id = ${b}::uuid`.execute(db);
      const r2 = await crm.findRecordsByAddress({ address: 'twin@tie.example', userId: me });
      // The runner-up is now my lead: the type decides.
      assert.deepEqual(r2.resolution.kind === 'resolved' && [r2.resolution.record.id, r2.resolution.rule], [a, 'contact before lead']);
    });

    it('the lookups use the address and domain indexes', async () => {
      // The same predicates as findRecordsByAddress and the feed, planned over tables large enough (5,000 rows each,
      // analysed) for an index to be chosen whenever it can serve the predicate; a plan without it means it cannot
      // (a missing or dropped index, a partial-index condition the query does not imply, a lower() on one side only).
      await sql`insert into crm.contacts (last_name, email, email2, email3)
        select 'Bulk', 'c' || g || '@bulk.example', 'c2' || g || '@bulk.example', 'c3' || g || '@bulk.example' from generate_series(1, 5000) g`.execute(db);
      await sql`insert into crm.leads (last_name, email, email2) select 'Bulk', 'l' || g || '@bulk.example', 'l2' || g || '@bulk.example' from generate_series(1, 5000) g`.execute(db);
      await sql`insert into crm.accounts (name, email, domain) select 'Bulk', 'a' || g || '@bulk.example', 'd' || g || '.bulk.example' from generate_series(1, 5000) g`.execute(db);
      await sql`insert into crm.email_activities (owner_id, subject, direction) select ${me}::uuid, 'Bulk', 'incoming' from generate_series(1, 5000)`.execute(db);
      await sql`insert into crm.email_links (email_activity_id, record_type, record_id)
        select e.id, 'account', x.id from (select id, row_number() over () n from crm.email_activities) e
        join (select id, row_number() over () n from crm.accounts) x using (n)`.execute(db);
      for (const t of ['contacts', 'leads', 'accounts', 'email_activities', 'email_links']) await sql`analyze ${sql.table(`crm.${t}`)}`.execute(db);
      const plan = async (q: ReturnType<typeof sql>) => (await sql<{ 'QUERY PLAN': string }>`explain ${q}`.execute(db)).rows.map((x) => x['QUERY PLAN']).join('\n');
      const uses = (p: string, ix: string) => assert.match(p, new RegExp(`Index Scan on ${ix}\\b|Index Scan using ${ix}\\b`), p);
      const a = 'x@y.example';
      const contacts = await plan(sql`select id from crm.contacts c where c.deleted_at is null and (lower(c.email) = ${a} or lower(c.email2) = ${a} or lower(c.email3) = ${a})`);
      for (const ix of ['contacts_email_lower', 'contacts_email2_lower', 'contacts_email3_lower']) uses(contacts, ix);
      const leads = await plan(sql`select id from crm.leads l where l.deleted_at is null and (lower(l.email) = ${a} or lower(l.email2) = ${a})`);
      for (const ix of ['leads_email', 'leads_email2']) uses(leads, ix);
      uses(await plan(sql`select id from crm.accounts x where x.deleted_at is null and x.domain = ${'y.example'}`), 'accounts_domain');
      uses(await plan(sql`select id from crm.accounts x where x.deleted_at is null and lower(x.email) = ${a}`), 'accounts_email');
      uses(await plan(sql`select * from crm.email_links where record_type = 'account' and record_id = ${randomUUID()}::uuid`), 'email_links_record');
      const xid = await nextXid(db);
      uses(await plan(sql`select * from crm.email_activities e where e.change_txid >= ${xid}::xid8 and e.change_txid < ${(BigInt(xid) + 10n).toString()}::xid8`), 'email_activities_feed');
    });
  });

  describe('records created from a sender', () => {
    it('contact, lead and account, each idempotent on the id the caller chose', async () => {
      const sender = { address: 'Dana.Lee@Tailspin.example', name: 'Dana Lee' };
      const ids = { contact: randomUUID(), lead: randomUUID(), account: randomUUID() };
      for (const type of ['contact', 'lead', 'account'] as const) {
        const first = await crm.createRecordFromSender({ mailboxId: MB, id: ids[type], type, ownerId: me, sender });
        const again = await crm.createRecordFromSender({ mailboxId: MB, id: ids[type], type, ownerId: me, sender });
        assert.deepEqual([first, again], [{ record: { type, id: ids[type] }, created: true }, { record: { type, id: ids[type] }, created: false }]);
      }
      const c = await db.selectFrom('crm.contacts').select(['first_name', 'last_name', 'email', 'owner_id', 'changed_by']).where('id', '=', ids.contact).executeTakeFirstOrThrow();
      assert.deepEqual(c, { first_name: 'Dana', last_name: 'Lee', email: 'dana.lee@tailspin.example', owner_id: me, changed_by: MB });
      const l = await db.selectFrom('crm.leads').select(['first_name', 'last_name', 'email', 'source', 'status']).where('id', '=', ids.lead).executeTakeFirstOrThrow();
      assert.deepEqual(l, { first_name: 'Dana', last_name: 'Lee', email: 'dana.lee@tailspin.example', source: 'Email', status: 'New' });
      const a = await db.selectFrom('crm.accounts').select(['name', 'domain', 'email']).where('id', '=', ids.account).executeTakeFirstOrThrow();
      assert.deepEqual(a, { name: 'tailspin.example', domain: 'tailspin.example', email: 'dana.lee@tailspin.example' });
      // All three now match the address: the contact wins, as documented.
      const r = await crm.findRecordsByAddress({ address: sender.address, userId: me });
      assert.deepEqual(r.resolution.kind === 'resolved' && r.resolution.record, { type: 'contact', id: ids.contact, ownerId: me, match: 'address', displayName: 'Dana Lee', accountId: null });
      await assert.rejects(crm.createRecordFromSender({ mailboxId: MB, id: randomUUID(), type: 'lead', ownerId: me, sender: { address: 'nobody' } }), /email address/);
    });

    it('two mailboxes creating a record from the same sender at once make one record; a deleted one is not reused', async () => {
      const sender = { address: `Race@race-${randomUUID().slice(0, 8)}.example`, name: 'Ray Race' };
      for (const type of ['contact', 'lead', 'account'] as const) {
        const [a, b] = await Promise.all([
          crm.createRecordFromSender({ mailboxId: MB, id: randomUUID(), type, ownerId: me, sender }),
          crm.createRecordFromSender({ mailboxId: OTHER_MB, id: randomUUID(), type, ownerId: me, sender }),
        ]);
        assert.equal(a.record.id, b.record.id, type);
        assert.deepEqual([a.created, b.created].sort(), [false, true], `${type}: one of the two created it`);
        const table = type === 'contact' ? 'crm.contacts' : type === 'lead' ? 'crm.leads' : 'crm.accounts';
        await sql`update ${sql.table(table)} set deleted_at = now() where id = ${a.record.id}::uuid`.execute(db);
        const next = await crm.createRecordFromSender({ mailboxId: MB, id: randomUUID(), type, ownerId: me, sender });
        assert.equal(next.created, true, `${type}: a record deleted in the CRM is not brought back`);
        assert.notEqual(next.record.id, a.record.id);
      }
    });

    it('a contact may belong to an account; a hard-deleted account leaves it without one', async () => {
      const acc = await account(db, me, { name: 'Wingtip', domain: 'wingtip.example' });
      const c = await contact(db, me, { email: 'sam@wingtip.example' });
      await sql`update crm.contacts set account_id = ${acc}::uuid where id = ${c}::uuid`.execute(db);
      const r = await crm.findRecordsByAddress({ address: 'sam@wingtip.example', userId: me });
      assert.equal(r.resolution.kind === 'resolved' && r.resolution.record.accountId, acc);
      await sql`delete from crm.accounts where id = ${acc}::uuid`.execute(db);
      const row = await db.selectFrom('crm.contacts').select('account_id').where('id', '=', c).executeTakeFirstOrThrow();
      assert.equal(row.account_id, null);
    });
  });

  describe('email activities, links and attachments', () => {
    it('filing twice creates one activity; linking it to two records twice makes two links', async () => {
      const c = await contact(db, me, { email: 'carla@fabrikam.com' });
      const l = await lead(db, me, 'carla@fabrikam.com');
      const syncId = randomUUID();
      const f = fields(me);
      const file = async () => {
        const created = await crm.createEmailActivity({ mailboxId: MB, syncId, fields: f });
        const links = await crm.linkEmailActivity({ mailboxId: MB, activityId: created.id, records: [{ type: 'contact', id: c }, { type: 'lead', id: l }] });
        return { created, links };
      };
      const first = await file();
      const second = await file();
      assert.deepEqual(first.created, { id: first.created.id, created: true, deleted: false });
      assert.deepEqual(second.created, { id: first.created.id, created: false, deleted: false });
      assert.deepEqual(first.links.map((x) => x.outcome), ['linked', 'linked']);
      assert.deepEqual(second.links.map((x) => x.outcome), ['already-linked', 'already-linked']);
      const id = first.created.id;
      assert.equal((await sql<{ n: string }>`select count(*)::text as n from crm.email_activities where sync_id = ${syncId}::uuid`.execute(db)).rows[0].n, '1');
      assert.deepEqual(await crm.emailLinks(id), [{ type: 'contact', id: c }, { type: 'lead', id: l }]);
      const got = await crm.getEmailActivity(id);
      assert.ok(got);
      const { id: _id, syncId: gotSync, deleted, version, updatedAt, ...rest } = got;
      assert.deepEqual(rest, f);
      assert.deepEqual([gotSync, deleted, /^\d+$/.test(version), typeof updatedAt], [syncId, false, true, 'string']);
      assert.deepEqual(await crm.findEmailActivitiesByMessageId(f.internetMessageId!), [{ id, ownerId: me, syncId, deleted: false }]);
    });

    it('two concurrent creates with one sync id make one activity', async () => {
      const syncId = randomUUID();
      const results = await Promise.all([0, 1, 2].map(() => crm.createEmailActivity({ mailboxId: MB, syncId, fields: fields(me) })));
      assert.equal(new Set(results.map((r) => r.id)).size, 1);
      assert.deepEqual(results.map((r) => r.created).sort(), [false, false, true]);
    });

    it('a link to a missing or deleted record is refused as missing; links follow hard deletes, not soft ones', async () => {
      const { id } = await crm.createEmailActivity({ mailboxId: MB, syncId: randomUUID(), fields: fields(me) });
      const gone = await lead(db, me, 'gone@x.example');
      await sql`update crm.leads set deleted_at = now() where id = ${gone}::uuid`.execute(db);
      const soft = await contact(db, me, { email: 'soft@x.example' });
      const hard = await account(db, me, { name: 'Hard' });
      const r = await crm.linkEmailActivity({
        mailboxId: MB,
        activityId: id,
        records: [{ type: 'lead', id: gone }, { type: 'contact', id: randomUUID() }, { type: 'contact', id: 'not-a-uuid' }, { type: 'contact', id: soft }, { type: 'account', id: hard }],
      });
      assert.deepEqual(r.map((x) => x.outcome), ['missing', 'missing', 'missing', 'linked', 'linked']);
      await sql`update crm.contacts set deleted_at = now() where id = ${soft}::uuid`.execute(db);
      await sql`delete from crm.accounts where id = ${hard}::uuid`.execute(db);
      assert.deepEqual(await crm.emailLinks(id), [{ type: 'contact', id: soft }]);
      // A deleted activity takes no new links.
      await sql`update crm.email_activities set deleted_at = now() where id = ${id}::uuid`.execute(db);
      const c2 = await contact(db, me, { email: 'late@x.example' });
      assert.deepEqual((await crm.linkEmailActivity({ mailboxId: MB, activityId: id, records: [{ type: 'contact', id: c2 }] })).map((x) => x.outcome), ['missing']);
      // Filing it again says it was deleted, so the caller can decide; the activity is not re-created.
      const again = await crm.createEmailActivity({ mailboxId: MB, syncId: (await crm.getEmailActivity(id))!.syncId!, fields: fields(me) });
      assert.deepEqual(again, { id, created: false, deleted: true });
    });

    it('attachments are stored with their size; an oversized one is a placeholder with its reason; a repeat is a no-op', async () => {
      const { id } = await crm.createEmailActivity({ mailboxId: MB, syncId: randomUUID(), fields: fields(me) });
      const bytes = new Uint8Array([0x25, 0x50, 0x44, 0x46, 0x2d, 0x31]);
      const stored = await crm.addEmailAttachment({ mailboxId: MB, activityId: id, attachment: { key: 'AAMk-1', name: 'quote.pdf', contentType: 'application/pdf', content: bytes } });
      const skipped = await crm.addEmailAttachment({
        mailboxId: MB,
        activityId: id,
        attachment: { key: 'AAMk-2', name: 'video.mp4', contentType: 'video/mp4', content: null, sizeBytes: 52_428_800, skippedReason: "52428800 bytes is over the policy's attachment size limit of 10485760 bytes" },
      });
      const repeat = await crm.addEmailAttachment({ mailboxId: MB, activityId: id, attachment: { key: 'AAMk-1', name: 'quote.pdf', contentType: 'application/pdf', content: bytes } });
      assert.deepEqual([stored.created, skipped.created, repeat], [true, true, { id: stored.id, created: false }]);
      assert.deepEqual(await crm.emailAttachments(id), [
        { id: stored.id, key: 'AAMk-1', name: 'quote.pdf', contentType: 'application/pdf', sizeBytes: 6, isInline: false, contentId: null, skippedReason: null },
        { id: skipped.id, key: 'AAMk-2', name: 'video.mp4', contentType: 'video/mp4', sizeBytes: 52_428_800, isInline: false, contentId: null, skippedReason: "52428800 bytes is over the policy's attachment size limit of 10485760 bytes" },
      ]);
      assert.deepEqual(await crm.attachmentContent(stored.id), Buffer.from(bytes));
      assert.equal(await crm.attachmentContent(skipped.id), null);
      await assert.rejects(
        crm.addEmailAttachment({ mailboxId: MB, activityId: id, attachment: { key: 'AAMk-3', name: 'x', contentType: null, content: null, sizeBytes: 1, skippedReason: '' } }),
        /reason it was skipped/,
      );
      // The table refuses a row that is neither stored nor skipped, or whose size is not its content's.
      await assert.rejects(sql`insert into crm.email_attachments (email_activity_id, name, size_bytes) values (${id}::uuid, 'x', 1)`.execute(db), /check constraint/);
      await assert.rejects(sql`insert into crm.email_attachments (email_activity_id, name, size_bytes, content) values (${id}::uuid, 'x', 5, '\\x00'::bytea)`.execute(db), /check constraint/);
      // Hard-deleting the activity takes its links and attachments with it.
      await sql`delete from crm.email_activities where id = ${id}::uuid`.execute(db);
      assert.deepEqual(await crm.emailAttachments(id), []);
    });

    it('bound to a transaction, its writes commit or roll back with the caller\'s', async () => {
      const syncId = randomUUID();
      await assert.rejects(
        db.transaction().execute(async (tx) => {
          await new PostgresCrmEmail(tx).createEmailActivity({ mailboxId: MB, syncId, fields: fields(me) });
          throw new Error('bookkeeping failed');
        }),
        /bookkeeping failed/,
      );
      assert.equal((await sql<{ n: string }>`select count(*)::text as n from crm.email_activities where sync_id = ${syncId}::uuid`.execute(db)).rows[0].n, '0');
    });
  });

  describe('the email activity feed', () => {
    /** Reads from `after` until every transaction up to `txid` has ended (other test files share the cluster). */
    async function readPast(after: string, txid: string, mailboxId = MB, ownerId = me) {
      for (let i = 0; i < 400; i++) {
        const page = await crm.emailActivityChanges({ ownerId, mailboxId, after });
        if (BigInt(page.watermark) > BigInt(txid)) return page;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`transactions below ${txid} still running`);
    }
    const byId = (changes: CrmEmailActivityChange[], id: string) => changes.filter((c) => c.id === id);

    it('sees activities created and changed in the CRM, and not the mailbox\'s own writes', async () => {
      const w0 = await nextXid(db);
      const own = await crm.createEmailActivity({ mailboxId: MB, syncId: randomUUID(), fields: fields(me, { subject: 'filed by me' }) });
      const byOther = await crm.createEmailActivity({ mailboxId: OTHER_MB, syncId: randomUUID(), fields: fields(me, { subject: 'filed by bob for anna' }) });
      const notMine = await crm.createEmailActivity({ mailboxId: OTHER_MB, syncId: randomUUID(), fields: fields(other, { subject: "bob's" }) });
      const byUser = (await sql<{ id: string }>`insert into crm.email_activities (owner_id, subject, direction) values (${me}::uuid, 'logged by hand', 'outgoing') returning id::text as id`.execute(db)).rows[0].id;
      const page = await readPast(w0, await nextXid(db));
      const ids = page.changes.map((c) => c.id);
      assert.ok(!ids.includes(own.id), 'own write echoed');
      assert.ok(!ids.includes(notMine.id), "another user's activity read");
      assert.deepEqual(byId(page.changes, byOther.id).map((c) => [c.removed, c.activity?.subject]), [[false, 'filed by bob for anna']]);
      assert.deepEqual(byId(page.changes, byUser).map((c) => [c.removed, c.activity?.subject, c.activity?.direction]), [[false, 'logged by hand', 'outgoing']]);
      // The other mailbox sees mine and not its own.
      const theirs = await readPast(w0, await nextXid(db), OTHER_MB, me);
      assert.deepEqual(theirs.changes.map((c) => c.id).filter((x) => x === own.id || x === byOther.id), [own.id]);

      // Edited, given an attachment, linked, deleted: each a change but the link.
      const w1 = page.watermark;
      await sql`update crm.email_activities set subject = 'logged by hand (edited)' where id = ${byUser}::uuid`.execute(db);
      const p1 = await readPast(w1, await nextXid(db));
      const edited = byId(p1.changes, byUser);
      assert.deepEqual(edited.map((c) => c.activity?.subject), ['logged by hand (edited)']);
      assert.ok(BigInt(edited[0].version!) > BigInt(byId(page.changes, byUser)[0].version!));

      const w2 = p1.watermark;
      const c = await contact(db, me, { email: 'linked@x.example' });
      await sql`insert into crm.email_links (email_activity_id, record_type, record_id) values (${byUser}::uuid, 'contact', ${c}::uuid)`.execute(db);
      assert.deepEqual(byId((await readPast(w2, await nextXid(db))).changes, byUser), [], 'a link is not a change of the message');
      await sql`insert into crm.email_attachments (email_activity_id, name, size_bytes, content) values (${byUser}::uuid, 'a.txt', 1, '\\x41'::bytea)`.execute(db);
      assert.equal(byId((await readPast(w2, await nextXid(db))).changes, byUser).length, 1, 'an attachment added is a change');
      const w2b = await nextXid(db);
      await sql`delete from crm.email_attachments where email_activity_id = ${byUser}::uuid`.execute(db);
      assert.equal(byId((await readPast(w2b, await nextXid(db))).changes, byUser).length, 1, 'an attachment removed is a change');

      const w3 = await nextXid(db);
      await sql`update crm.email_activities set deleted_at = now() where id = ${byUser}::uuid`.execute(db);
      await sql`delete from crm.email_activities where id = ${byOther.id}::uuid`.execute(db);
      const p3 = await readPast(w3, await nextXid(db));
      assert.deepEqual(byId(p3.changes, byUser).map((x) => [x.removed, x.hardDeleted ?? false, x.activity]), [[true, false, null]]);
      assert.deepEqual(byId(p3.changes, byOther.id).map((x) => [x.removed, x.hardDeleted ?? false]), [[true, true]]);
      // The mailbox's own hard delete is not echoed either.
      const w4 = await nextXid(db);
      await db.transaction().execute(async (tx) => {
        await sql`select set_config('cxsync.writer', ${MB}, true)`.execute(tx);
        await sql`delete from crm.email_activities where id = ${own.id}::uuid`.execute(tx);
      });
      assert.deepEqual(byId((await readPast(w4, await nextXid(db))).changes, own.id), []);
    });

    it('a reassigned activity the mailbox has mapped arrives as left scope; an unmapped one is simply no longer read', async () => {
      const mapped = await crm.createEmailActivity({ mailboxId: OTHER_MB, syncId: randomUUID(), fields: fields(me) });
      const unmapped = await crm.createEmailActivity({ mailboxId: OTHER_MB, syncId: randomUUID(), fields: fields(me) });
      await sql`insert into sync.email_sync_map (mailbox_id, activity_id, message_id, origin) values (${MB}, ${mapped.id}::uuid, 'AAMkAG-1', 'exchange')`.execute(db);
      const w = await nextXid(db);
      await sql`update crm.email_activities set owner_id = ${other}::uuid where id in (${mapped.id}::uuid, ${unmapped.id}::uuid)`.execute(db);
      const p = await readPast(w, await nextXid(db));
      assert.deepEqual(byId(p.changes, mapped.id).map((x) => [x.removed, x.leftScope]), [[true, true]]);
      assert.deepEqual(byId(p.changes, unmapped.id), []);
      // A full read reports a mapped activity whose row is gone.
      await sql`delete from crm.email_activities where id = ${mapped.id}::uuid`.execute(db);
      const full = await crm.emailActivityChanges({ ownerId: me, mailboxId: MB, after: null });
      assert.deepEqual(byId(full.changes, mapped.id).map((x) => [x.removed, x.hardDeleted]), [[true, true]]);
    });

    it('is commit-order safe: an activity committed late is read after its watermark, never skipped', async () => {
      const w0 = await nextXid(db);
      const slow = new pg.Client({ connectionString: env.url });
      await slow.connect();
      try {
        await slow.query('begin');
        const late = (await slow.query<{ id: string; t: string }>(`insert into crm.email_activities (owner_id, subject, direction) values ($1, 'slow', 'incoming') returning id::text as id, pg_current_xact_id()::text as t`, [me])).rows[0];
        const early = (await sql<{ id: string }>`insert into crm.email_activities (owner_id, subject, direction) values (${me}::uuid, 'fast', 'incoming') returning id::text as id`.execute(db)).rows[0].id;
        // The slow transaction is still open: the feed stops below it, so 'fast' (a later xid) waits too.
        const p1 = await crm.emailActivityChanges({ ownerId: me, mailboxId: MB, after: w0 });
        assert.ok(BigInt(p1.watermark) <= BigInt(late.t));
        assert.deepEqual(p1.changes.filter((c) => c.id === late.id || c.id === early), []);
        await slow.query('commit');
        const p2 = await readPast(p1.watermark, await nextXid(db));
        assert.deepEqual(p2.changes.filter((c) => c.id === late.id || c.id === early).map((c) => c.activity?.subject), ['slow', 'fast']);
      } finally {
        await slow.end();
      }
    });
  });
});
