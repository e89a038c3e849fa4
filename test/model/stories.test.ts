/**
 * User stories of the sync cycle under interleavings, each a fixed sequence of workflow steps and user actions
 * on the same driver, environment and world (scenario.ts ModelRun) as the interleaving property, which is
 * fast-check model-based testing (real activities, PostgreSQL, HTTPS Graph emulator). They describe behaviour
 * DESIGN.md ("Concurrency") asks for; a failure names what the user would lose.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { MAILBOXES, startModelEnv, type ModelEnv, type RunSettings } from './environment';
import { settle, waitForCrmFeed } from './settle';
import { ModelRun } from './scenario';
import { syncedFields, tagOf } from './world';

let env: ModelEnv;
let fields: string[];
before(async () => {
  env = await startModelEnv();
  fields = await syncedFields(env);
});
after(async () => env?.close());

const A = MAILBOXES.A;

async function story(settings: Partial<RunSettings> = {}): Promise<ModelRun> {
  const s: RunSettings = { mailboxes: ['A'], batchSize: 500, ...settings };
  await env.reset(s);
  return new ModelRun(env, fields, s.mailboxes);
}

/**
 * Runs the mailbox's cycle up to (not including) the activity `prefix`, once the CRM feed can see every CRM edit
 * made so far (another transaction in the cluster can hold it back for a moment).
 */
/** A linked contact whose Outlook job title was edited, with mailbox A stopped just before it applies the plan. */
async function outlookEditPlanned() {
  const run = await story();
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await settled(run);
  w.editOutlook('A', r1, 'jobTitle', 'From Outlook');
  await runUntil(run, 'applyBatch');
  return { run, w, r1 };
}

async function runUntil(run: ModelRun, prefix: string): Promise<void> {
  await waitForCrmFeed(env.db);
  await run.drivers.A.runUntil(prefix);
}

/** Quiescence, which must be reached: these stories are about what the user ends up with. */
async function settled(run: ModelRun, maxRounds = 20): Promise<void> {
  const s = await settle(env, run.mailboxes.map((m) => run.drivers[m]), maxRounds);
  assert.deepEqual(s.violations, [], `the sync settles (${s.cycles.map((c) => `${c.mailbox}: ${c.operations.join(' | ') || 'nothing'}`).join('; ')})`);
}

async function crmByTag(tag: string, opts: { all?: boolean } = {}) {
  const r = await sql<Record<string, unknown> & { id: string; owner_id: string; deleted_at: Date | null }>`
    select * from crm.contacts where split_part(last_name, ' ', 1) = ${tag} ${opts.all ? sql`` : sql`and deleted_at is null`} order by created_at`.execute(env.db);
  return r.rows;
}

const outlookByTag = (run: ModelRun, tag: string) => run.world.outlookItems('A').filter((c) => tagOf(c.surname) === tag);

async function conflictsOf(tag: string) {
  const r = await sql<{ rule: string; outcome: string; crm_version: Record<string, unknown> | null; exchange_version: Record<string, unknown> | null }>`
    select rule, outcome, crm_version, exchange_version from sync.conflict order by id`.execute(env.db);
  return r.rows.filter((c) => tagOf(c.crm_version?.lastName) === tag || tagOf(c.exchange_version?.lastName) === tag);
}

test('1. pause, then resume: a CRM edit made while the mailbox was paused reaches Outlook', async () => {
  // A cycle that already committed contacts and stops before tasks is resumed later without re-planning contacts:
  // whatever it reads of the contact feed then must not be thrown away.
  const run = await story({ tasks: true });
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await settled(run);
  await w.createInCrm('A'); // gives the next cycle's contacts something to plan
  const d = run.drivers.A;
  await runUntil(run, 'commitType contact');
  await d.step();
  d.pause();
  await d.runUntil('finishCycle interrupted');
  await d.step();
  await w.editCrm(r1, 'jobTitle', 'Edited while paused');
  d.resume();
  await settled(run);
  assert.equal(w.outlookCopy('A', r1)?.jobTitle, 'Edited while paused');
});

test('2a. an Outlook edit planned for the CRM and a CRM edit of another field made before the write: both survive, no conflict', async () => {
  // A CRM write must be conditional on the row version the plan saw, as an Exchange write is on its change key.
  const { run, w, r1 } = await outlookEditPlanned();
  await w.editCrm(r1, 'company', 'From CRM');
  await settled(run);
  const [row] = await crmByTag(r1.tag);
  assert.equal(row.job_title, 'From Outlook', 'the Outlook edit reached the CRM');
  assert.equal(row.company, 'From CRM', 'the CRM edit was not overwritten by the write planned before it');
  const item = w.outlookCopy('A', r1)!;
  assert.deepEqual([item.jobTitle, item.companyName], ['From Outlook', 'From CRM']);
  assert.deepEqual(await conflictsOf(r1.tag), [], 'different fields are merged, not a conflict');
});

test('2b. an Outlook edit planned for the CRM and a CRM edit of the same field made before the write: the CRM wins, on record', async () => {
  // Same field on both sides is a real conflict: the policy's rule (crm-wins) decides, and the loser is kept on record.
  const { run, w, r1 } = await outlookEditPlanned();
  await w.editCrm(r1, 'jobTitle', 'From CRM');
  await settled(run);
  assert.equal((await crmByTag(r1.tag))[0].job_title, 'From CRM', 'crm-wins: the CRM edit stays');
  assert.equal(w.outlookCopy('A', r1)?.jobTitle, 'From CRM');
  const c = await conflictsOf(r1.tag);
  assert.ok(c.some((x) => x.exchange_version?.jobTitle === 'From Outlook'), `the losing Outlook edit is on record as a conflict (conflicts: ${JSON.stringify(c)})`);
});

test('2c. an Outlook edit planned for the CRM, and the CRM contact deleted before the write: not written blind, not dropped as applied; keep-updated restores it once', async () => {
  // A write that found nothing to write to has not synced the edit: stamping it applied would let the delete win silently.
  const { run, w, r1 } = await outlookEditPlanned();
  const d = run.drivers.A;
  const [deleted] = await crmByTag(r1.tag);
  await w.deleteInCrm(r1);
  await d.step();
  const op = await sql<{ status: string }>`select status from sync.operation where side = 'crm' and kind = 'update' and crm_id = ${deleted.id} and not coalesce((payload->>'restore')::boolean, false)`.execute(env.db);
  assert.ok(!op.rows.some((o) => o.status === 'done'), `the write to a deleted contact is not recorded as applied (status: ${op.rows.map((o) => o.status).join(', ')})`);
  await settled(run);
  const all = await crmByTag(r1.tag, { all: true });
  assert.deepEqual(all.map((r) => r.id), [deleted.id], 'keep-updated restores the deleted CRM row under its own id: no second contact');
  assert.equal(all[0].deleted_at, null, 'the contact the user updated in Outlook is kept');
  assert.equal(all[0].job_title, 'From Outlook');
  assert.equal(outlookByTag(run, r1.tag).length, 1);
  assert.ok((await conflictsOf(r1.tag)).some((c) => c.rule === 'delete-vs-update: keep-updated' && c.outcome === 'restored in CRM'), 'the delete-vs-update decision is on record');
});

test('2d. two mailboxes restore one deleted contact once: deleted in the CRM while both Outlook copies were edited', async () => {
  // Both users share the contact (workgroup scope); each mailbox's keep-updated decision must land on the same
  // CRM record, or one delete becomes two contacts (found by the interleaving search, seed 20261130).
  const run = await story({ mailboxes: ['A', 'B'] });
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await settled(run);
  const [row] = await crmByTag(r1.tag);
  await w.deleteInCrm(r1);
  w.editOutlook('A', r1, 'jobTitle', 'Edited by A');
  w.editOutlook('B', r1, 'department', 'Edited by B');
  await settled(run);
  const all = await crmByTag(r1.tag, { all: true });
  assert.deepEqual(all.map((r) => r.id), [row.id], 'one CRM contact, restored under its own id');
  assert.equal(all[0].deleted_at, null);
  assert.equal(all[0].job_title, 'Edited by A', "A's edit is kept");
  assert.equal(all[0].department, 'Edited by B', "B's edit of another field is kept too");
  for (const m of ['A', 'B'] as const) assert.equal(run.world.outlookItems(m).filter((c) => tagOf(c.surname) === r1.tag).length, 1, `one Outlook copy in ${m}`);
});

test('2e. an Outlook delete while a CRM user edits a field and undoes the edit: the delete stands', async () => {
  // The CRM row changed (its feed shows it) but its synced fields are what the Outlook user saw when deleting:
  // there is no edit for keep-updated to keep (found by the stress search, seed 600201589).
  const run = await story();
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await settled(run);
  const [row] = await crmByTag(r1.tag);
  w.deleteInOutlook('A', r1);
  await w.editCrm(r1, 'jobTitle', 'For a moment');
  await w.editCrm(r1, 'jobTitle', (row.job_title as string | null) ?? null);
  await settled(run);
  assert.deepEqual(await crmByTag(r1.tag), [], 'the CRM contact is deleted');
  assert.equal(outlookByTag(run, r1.tag).length, 0, 'and not restored in Outlook');
});

test('2f. an Outlook edit that loses its conflict to a CRM edit, then the CRM contact deleted before the plan: the delete stands', async () => {
  // crm-wins settles the edits of jobTitle for the CRM's; the CRM user who then deletes saw every value that would
  // stand, so keep-updated has nothing to keep (found by the stress search, seed 249657252). Had the sync read the
  // delete before the CRM edit, it would have kept the contact for the Outlook edit (2c): the model allows both.
  const run = await story();
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await settled(run);
  w.editOutlook('A', r1, 'jobTitle', 'From Outlook');
  await w.editCrm(r1, 'jobTitle', 'From CRM');
  await runUntil(run, 'plan');
  await w.deleteInCrm(r1);
  await settled(run);
  assert.deepEqual(await crmByTag(r1.tag), [], 'the CRM contact stays deleted');
  assert.equal(outlookByTag(run, r1.tag).length, 0, 'and its Outlook copy is removed');
  const c = await conflictsOf(r1.tag);
  assert.ok(c.some((x) => x.exchange_version?.jobTitle === 'From Outlook'), `the losing Outlook edit is on record as a conflict (conflicts: ${JSON.stringify(c)})`);
});

test('2g. an Outlook edit, the CRM contact deleted, then the Outlook edit undone before the sync reads it: the delete stands', async () => {
  // The Outlook copy changed twice but its synced fields are back to what the CRM user saw when deleting: there is
  // no edit for keep-updated to keep (found by the stress search, seed 716977062). A cycle that read the edit in
  // between would have kept the contact for it (2c); the model allows both.
  const run = await story();
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await settled(run);
  const [before] = outlookByTag(run, r1.tag);
  w.editOutlook('A', r1, 'department', 'For a moment');
  await w.deleteInCrm(r1);
  w.editOutlook('A', r1, 'department', (before.department as string | undefined) ?? null);
  await settled(run);
  assert.deepEqual(await crmByTag(r1.tag), [], 'the CRM contact stays deleted');
  assert.equal(outlookByTag(run, r1.tag).length, 0, 'and its Outlook copy is removed');
});

test('3. an Outlook edit racing a CRM write in a cycle that carries operations over the batch size: CRM wins at quiescence', async () => {
  // The cycle that meets the 412 also carries writes over the batch size (2 of 5): the re-plan it asks for must
  // survive the carry-over, or the user's Outlook edit wins by default next cycle.
  const run = await story({ batchSize: 2 });
  const w = run.world;
  const recs = [];
  for (let i = 0; i < 5; i++) recs.push(await w.createInCrm('A'));
  await settled(run, 30);
  for (const r of recs) await w.editCrm(r, 'jobTitle', `CRM ${r.tag}`);
  await runUntil(run, 'applyBatch');
  // The user edits, in Outlook, the contact whose write comes first in this cycle.
  const first = await sql<{ crm_id: string }>`select crm_id from sync.operation where side = 'exchange' and status = 'pending' order by cycle_id desc, seq limit 1`.execute(env.db);
  const rows = await Promise.all(recs.map(async (r) => ({ r, row: (await crmByTag(r.tag))[0] })));
  const target = rows.find((x) => x.row.id === first.rows[0]?.crm_id)?.r;
  assert.ok(target, 'the cycle planned the five Exchange updates');
  w.editOutlook('A', target, 'jobTitle', 'Outlook racing the write');
  await settled(run, 30);
  for (const r of recs) {
    assert.equal((await crmByTag(r.tag))[0].job_title, `CRM ${r.tag}`, `${r.tag}: the CRM edit stays (crm-wins)`);
    assert.equal(w.outlookCopy('A', r)?.jobTitle, `CRM ${r.tag}`, `${r.tag}: Outlook shows the CRM edit`);
  }
  assert.ok((await conflictsOf(target.tag)).some((c) => c.exchange_version?.jobTitle === 'Outlook racing the write'), 'the racing Outlook edit is on record as the losing side');
});

test('4a. a CRM edit of jobTitle leaves what the user keeps in Outlook alone: extra business phones, home phones, display name, 2nd and 3rd email', async () => {
  // An update must send what changed, not the whole synced record: Outlook holds more than cxsync knows about.
  const run = await story();
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await w.editCrm(r1, 'phone', '+1 555 0100');
  await settled(run);
  const item = w.outlookCopy('A', r1)!;
  const mine = {
    businessPhones: ['+1 555 0100', '+1 555 0199'],
    homePhones: ['+1 666 0100'],
    displayName: 'Bobby (golf club)',
    emailAddresses: [...(item.emailAddresses as object[]), { address: 'r1.home@example.org', name: 'r1.home@example.org' }, { address: 'r1.other@example.org', name: 'r1.other@example.org' }],
  };
  env.emulator.admin.updateContact(A, item.id, mine);
  await settled(run);
  await w.editCrm(r1, 'jobTitle', 'Head of Golf');
  await settled(run);
  const after = w.outlookCopy('A', r1)!;
  assert.equal(after.jobTitle, 'Head of Golf');
  assert.deepEqual(after.businessPhones, mine.businessPhones);
  assert.deepEqual(after.homePhones, mine.homePhones);
  assert.equal(after.displayName, mine.displayName);
  assert.deepEqual((after.emailAddresses as Array<{ address: string }>).map((e) => e.address), mine.emailAddresses.map((e) => (e as { address: string }).address));
});

test('4b. the 2nd and 3rd Outlook email reach crm.contacts.email2 and email3', async (t) => {
  // Once the CRM has columns for them, the alternate addresses are synced data, not just data to leave alone.
  const cols = await sql<{ c: string }>`select column_name as c from information_schema.columns where table_schema = 'crm' and table_name = 'contacts' and column_name in ('email2', 'email3')`.execute(env.db);
  if (cols.rows.length < 2) {
    t.skip('crm.contacts has no email2/email3 columns yet (the core team is adding them): nothing to reach');
    return;
  }
  const run = await story();
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await settled(run);
  const item = w.outlookCopy('A', r1)!;
  env.emulator.admin.updateContact(A, item.id, {
    emailAddresses: [...(item.emailAddresses as object[]), { address: 'r1.home@example.org', name: 'Home' }, { address: 'r1.other@example.org', name: 'Other' }],
  });
  await settled(run);
  await w.editCrm(r1, 'jobTitle', 'Head of Golf');
  await settled(run);
  const [row] = await crmByTag(r1.tag);
  assert.deepEqual([row.email2, row.email3], ['r1.home@example.org', 'r1.other@example.org']);
  assert.deepEqual((w.outlookCopy('A', r1)!.emailAddresses as Array<{ address: string }>).map((e) => e.address), [row.email, 'r1.home@example.org', 'r1.other@example.org']);
});

test('4c. a CRM user adds a second email while the Outlook user removes the only one: both edits stand, the new address moves up', async () => {
  // Each edit alone leaves no gap in the email slots; merged field by field they would (email empty, email2
  // set), and Outlook's slots have none, so the sync moves the new address up on both sides. Nothing is lost:
  // the removed address is gone and the added one is kept, with no conflict.
  const run = await story();
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await settled(run);
  const [before] = await crmByTag(r1.tag);
  assert.ok(before.email, 'the contact starts with one email');
  await w.editCrm(r1, 'email2', 'r1.added@example.org');
  w.editOutlook('A', r1, 'email', null);
  await settled(run);
  const [row] = await crmByTag(r1.tag);
  assert.deepEqual([row.email, row.email2, row.email3], ['r1.added@example.org', null, null]);
  assert.deepEqual((w.outlookCopy('A', r1)!.emailAddresses as Array<{ address: string }>).map((e) => e.address), ['r1.added@example.org']);
  const conflicts = await sql`select 1 from sync.conflict where mailbox_id = ${A}`.execute(env.db);
  assert.equal(conflicts.rows.length, 0, 'no conflict: the two edits were of different slots');
});

test('4d. two mailboxes: B removes the only email while a CRM user adds a second (A also edits): the added address is kept once, the removed one is gone', async () => {
  // Merged field by field across two mailboxes, the slots came out as the added address twice, on every side
  // (found by the stress search, seed 1403556898): a merge now closes gaps and drops repeats, as validation does.
  const run = await story({ mailboxes: ['A', 'B'], batchSize: 1 });
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await settled(run, 30);
  w.editOutlook('A', r1, 'firstName', null);
  w.editOutlook('B', r1, 'email', null);
  await w.editCrm(r1, 'email2', 'r1.added@example.org');
  await settled(run, 30);
  const [row] = await crmByTag(r1.tag);
  const slots = (m: 'A' | 'B') => (w.outlookCopy(m, r1)!.emailAddresses as Array<{ address: string }>).map((e) => e.address);
  assert.deepEqual([row.email, row.email2, row.email3], ['r1.added@example.org', null, null]);
  for (const m of ['A', 'B'] as const) assert.deepEqual(slots(m), ['r1.added@example.org'], `Outlook ${m}`);
});

test('5. merge by email when the first Exchange round is longer than the batch size: six per side, all linked', async () => {
  // Both sides hold the same six people before the first sync; the first round takes three cycles of two.
  const run = await story({ batchSize: 2 });
  const uid = env.users.A;
  for (let i = 1; i <= 6; i++) {
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values (${uid}, 'Merge', ${`M${i}`}, ${`m${i}@example.org`})`.execute(env.db);
    env.emulator.admin.createContact(A, 'VContacts', { givenName: 'Merge', surname: `M${i}`, emailAddresses: [{ address: `m${i}@example.org` }] });
  }
  await settled(run, 30);
  assert.equal((await sql`select 1 from crm.contacts where deleted_at is null`.execute(env.db)).rows.length, 6, 'six contacts in the CRM');
  assert.equal(run.world.outlookItems('A').length, 6, 'six contacts in Outlook');
  const links = await sql<{ n: number }>`select count(*)::int as n from sync.mapping where mailbox_id = ${A}`.execute(env.db);
  assert.equal(links.rows[0].n, 6, 'each pair linked');
});

test('6. a contact reassigned to another owner while its Outlook copy was edited does not become two CRM contacts', async () => {
  // Leaving the mailbox's scope is not a delete: keep-updated must not re-create the contact for this mailbox.
  const run = await story();
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await settled(run);
  const before = (await crmByTag(r1.tag))[0];
  await w.reassign(r1, 'outside');
  w.editOutlook('A', r1, 'jobTitle', 'Edited in Outlook');
  await settled(run);
  const rows = await crmByTag(r1.tag);
  assert.equal(rows.length, 1, 'one CRM contact');
  assert.equal(rows[0].id, before.id);
  assert.equal(rows[0].owner_id, env.users.outside, 'still owned by the new owner');
  assert.equal(rows[0].job_title, before.job_title, "the mailbox's user does not write into someone else's contact");
});

test('7. a reassignment between plan and write: the Outlook edit is not written into the new owner\'s contact', async () => {
  // The scope is checked when writing, not only when reading the feed: the contact may have changed hands in between.
  const run = await story();
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await settled(run);
  const before = (await crmByTag(r1.tag))[0];
  w.editOutlook('A', r1, 'jobTitle', 'Edited in Outlook');
  await runUntil(run, 'applyBatch');
  await w.reassign(r1, 'outside');
  await settled(run);
  const rows = await crmByTag(r1.tag);
  assert.equal(rows.length, 1, 'one CRM contact');
  assert.equal(rows[0].owner_id, env.users.outside);
  assert.equal(rows[0].job_title, before.job_title, "the new owner's contact is untouched");
});

test('8. an Outlook contact the planner skips (invalid email) whose CRM twin is edited does not make cycles chain for ever', async () => {
  // Each write meets a 412 from the user's (invalid) edit and asks for a re-plan that can never succeed: it must stop and say why.
  const run = await story();
  const w = run.world;
  const r1 = await w.createInCrm('A');
  await settled(run);
  const item = w.outlookCopy('A', r1)!;
  env.emulator.admin.updateContact(A, item.id, { emailAddresses: [{ address: 'not-an-email', name: 'not-an-email' }] });
  await w.editCrm(r1, 'jobTitle', 'Edited in CRM');
  await waitForCrmFeed(env.db);
  const d = run.drivers.A;
  const chained: boolean[] = [];
  for (let i = 0; i < 5; i++) {
    const { workRemaining } = await d.finishCycle();
    chained.push(workRemaining);
    if (!workRemaining) break;
  }
  assert.equal(chained[chained.length - 1], false, `within 5 cycles the mailbox stops chaining cycles (workRemaining per cycle: ${chained.join(', ')})`);
  const log = await sql<{ message: string }>`select message from sync.log where mailbox_id = ${A} and item_id = ${item.id} order by id`.execute(env.db);
  assert.ok(log.rows.some((l) => /email/.test(l.message) && /not a valid email address/.test(l.message)), `the sync log says why the item is skipped (lines: ${JSON.stringify(log.rows.map((l) => l.message))})`);
});

/** Mail of the model's messages in a mailbox's folder: the copies' immutable ids. */
const copiesIn = (run: ModelRun, m: 'A' | 'B', folder: string, n: number) =>
  env.emulator.admin.listMessages(MAILBOXES[m], folder).filter((x) => x.internetMessageId === run.world.message(n as 1 | 2 | 3).internetMessageId);

async function emailLinks(activityId: string) {
  return (await sql<{ record_type: string; record_id: string }>`select record_type, record_id::text from crm.email_links where email_activity_id = ${activityId}::uuid order by record_type`.execute(env.db)).rows;
}

test('9a. one message dropped by A into VContacts and by B into VLeads, A\'s filing answer lost: one activity, owned by A, linked to what both filed it to', async () => {
  // Temporal runs A's fileMail again after its answer is lost; B files its own copy of the same Internet message
  // id from another folder. One CRM email activity whatever mailbox, folder or attempt files the message.
  const run = await story({ mailboxes: ['A', 'B'], email: true });
  const w = run.world;
  await w.seedMail();
  await w.createInCrm('A'); // R1
  await settled(run);
  w.dropMail('A', 2, 'VContacts'); // an unknown sender: A's filing makes a contact of it
  w.dropMail('B', 2, 'VLeads');
  await waitForCrmFeed(env.db);
  await run.drivers.A.runUntil('fileMail');
  const lost = await run.drivers.A.step({ kind: 'lost-answer' });
  assert.deepEqual([lost.activity, lost.outcome], ['fileMail', 'answer lost']);
  await run.drivers.B.runUntil('fileMail');
  assert.equal((await run.drivers.B.step()).outcome, 'ok');
  await settled(run);
  assert.deepEqual(await run.check(), [], 'the invariants hold');
  const acts = await w.activitiesOf(w.message(2));
  assert.equal(acts.length, 1, 'one activity for the message');
  assert.equal(acts[0].owner_id, env.users.A, 'owned by A, who filed it first');
  const links = await emailLinks(acts[0].id);
  assert.deepEqual(links.map((l) => l.record_type), ['contact'], "B's VLeads found the contact A's filing made of the sender (contact before a new lead)");
  assert.equal((await sql`select 1 from crm.leads where lower(email) = ${w.message(2).sender.address}`.execute(env.db)).rows.length, 0, 'no lead made of the sender');
  const contacts = await crmByTag('M2');
  assert.equal(contacts.length, 1, 'one contact made of the sender');
  assert.equal(links[0].record_id, contacts[0].id);
});

test('9b. a message moved VContacts→Inbox→VContacts between two steps is filed without waiting for the re-scan; a CRM delete of an activity between drop and filing stands', async () => {
  // Delta reports a message moved out of a folder and back before the folder's next round as removed, and never
  // again (the A→B→A quirk): the removal is confirmed by id (still there), never read as a delete. And a CRM user
  // who deleted a message's activity after another copy was dropped, but before that copy was filed, keeps it
  // deleted.
  const run = await story({ batchSize: 1, email: true });
  const w = run.world;
  await w.seedMail();
  await w.createInCrm('A'); // R1, M1's sender
  await settled(run, 30);
  w.dropMail('A', 1, 'VContacts');
  await settled(run, 30);
  const [first] = await w.activitiesOf(w.message(1));
  assert.ok(first && !first.deleted_at, 'M1 filed to R1');
  w.dropMail('A', 1, 'VLeads'); // a second copy of M1, filed from VLeads by a later cycle
  w.dropMail('A', 3, 'VContacts'); // ambiguous: listed, which spends the cycle's limit of one
  w.dropMail('A', 2, 'VContacts');
  const d = run.drivers.A;
  await waitForCrmFeed(env.db);
  await d.runUntil('fileMail');
  assert.match(await w.deleteActivity(1), /deleted M1's activity/);
  const r = await d.step();
  assert.equal(r.activity, 'fileMail');
  assert.equal((r.result as { workRemaining: boolean }).workRemaining, true, 'the limit of one left M2 and VLeads for the next cycle');
  // Between two steps, the user moves M2 out to the Inbox and back.
  await d.step();
  assert.match(w.moveMail('A', 2, 'Inbox'), /to Inbox/);
  assert.match(w.moveMail('A', 2, 'VContacts'), /to VContacts/);
  assert.equal(copiesIn(run, 'A', 'VContacts', 2).length, 1);
  await settled(run, 30);
  const m2 = await w.activitiesOf(w.message(2));
  assert.equal(m2.length, 1, 'M2 filed once, before any re-scan: the removal delta reported was confirmed by id');
  assert.deepEqual(await run.check(), [], 'the invariants hold, before and after the re-scan');
  assert.deepEqual((await w.activitiesOf(w.message(2))).map((a) => a.id), [m2[0].id], 'the re-scan files nothing again');
  assert.deepEqual((await emailLinks(m2[0].id)).map((l) => l.record_type), ['contact']);
  const m1 = await w.activitiesOf(w.message(1));
  assert.deepEqual(m1.map((a) => [a.id, !!a.deleted_at]), [[first.id, true]], "M1's activity stays deleted; none made again");
  const listed = await sql<{ reason: string }>`select reason from sync.email_unresolved where internet_message_id = ${w.message(3).internetMessageId}`.execute(env.db);
  assert.match(listed.rows[0]?.reason ?? '', /2 leads share the address/, 'M3 listed: ambiguous, never guessed');
});

test('9c. a drop folder\'s round cut short by the batch size is read again: what it left is filed by the next cycle, not left to the re-scan', async () => {
  // The delta link of a round is saved only once every message it named is filed or listed; saving it earlier
  // would leave the rest unseen until the periodic re-scan (hours later).
  const run = await story({ batchSize: 1, email: true });
  const w = run.world;
  await w.seedMail();
  await w.createInCrm('A'); // R1, M1's sender
  await settled(run, 30);
  w.dropMail('A', 1, 'VContacts');
  w.dropMail('A', 2, 'VContacts');
  await waitForCrmFeed(env.db);
  const first = await run.drivers.A.finishCycle();
  assert.deepEqual([first.summary.email?.filed, first.workRemaining], [1, true], 'the limit of one filed one message and left work for the next cycle');
  await settled(run, 30);
  for (const n of [1, 2] as const) assert.equal((await w.activitiesOf(w.message(n))).length, 1, `M${n} filed once, before any re-scan`);
  assert.deepEqual(await run.check(), [], 'the invariants hold, before and after the re-scan');
});
