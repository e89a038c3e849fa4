/**
 * The 412 race: the user edits an item in Outlook after cxsync planned a write to it and before the write. The
 * update carries If-Match, so Exchange refuses it; cxsync reads the item again. An edit of properties cxsync
 * does not sync is written over at once, on the new change key; an edit of synced fields is never overwritten
 * blindly: the write is skipped and the next cycle plans both versions as a conflict under the policy's rule.
 * The cycle's activities are called one by one here (as the workflow calls them) so the edit lands exactly
 * between plan and apply; everything else is the real stack.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { createMailboxActivities } from '../../src/activities/mailbox-activities';
import type { RecordTypeAdapter } from '../../src/activities/record-types/adapter';
import { readAdapters } from '../../src/client/adapters';
import type { RecordType } from '../../src/domain/status';
import type { MailboxActivities } from '../../src/workflows/activities-contract';
import { DEFAULT_ACTIVITY_SETTINGS } from '../../src/worker/worker';
import { emulatorGraphSettings, startStack, type Stack } from '../helpers/stack';
import { waitForCrmFeed } from '../model/settle';

const UPN = 'race@contoso.com';

describe('412: the user edits between plan and apply', () => {
  let s: Stack;
  let acts: MailboxActivities;
  let owner: string;
  const emailOf = (c: Record<string, unknown>) => (c.emailAddresses as Array<{ address: string }>)[0].address;
  const exchange = (email: string) => s.emulator.admin.listContacts(UPN, 'VContacts').find((c) => emailOf(c) === email)!;
  const crm = async (email: string) => (await sql<{ job_title: string | null }>`select job_title from crm.contacts where email = ${email}`.execute(s.db)).rows[0];

  /** One cycle of the contact type, with `between` run after plan and before apply. */
  async function cycle(between: () => Promise<void> | void = () => undefined) {
    // The CRM feed reads below the cluster's oldest running transaction: another test file's can hold an edit
    // made just before back from this cycle's read.
    await waitForCrmFeed(s.db);
    const { cycleId } = await acts.startCycle(UPN);
    const step = { mailboxId: UPN, cycleId, recordType: 'contact' as const };
    await acts.pullExchange(step);
    await acts.pullCrm(step);
    const planned = await acts.plan(step);
    await between();
    const applied = await acts.applyBatch({ ...step, limit: 500 });
    const committed = await acts.commitType(step);
    await acts.finishCycle({ mailboxId: UPN, cycleId, outcome: 'completed' });
    return { cycleId, planned, applied, committed };
  }

  before(async () => {
    s = await startStack();
    owner = await s.addUser(UPN, 'Race User');
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email, job_title) values
      (${owner}, 'Xena', 'Synced', 'x@example.org', 'Start'), (${owner}, 'Yves', 'Synced', 'y@example.org', 'Start')`.execute(s.db);
    await s.operator.enroll(UPN);
    const st = await s.operator.syncNow(UPN, { wait: true, timeoutMs: 60_000 });
    assert.equal(st?.lastCycle?.types.contact?.exchange.created, 2);
    // The workflow steps aside; this test drives the cycles itself.
    await s.operator.pause(UPN, 'test drives the cycle');
    acts = createMailboxActivities({
      db: s.db,
      adapters: readAdapters(s.db, emulatorGraphSettings(s.emulator), s.emulator.caCertPem) as { [T in RecordType]: RecordTypeAdapter<unknown> },
      settings: DEFAULT_ACTIVITY_SETTINGS,
    });
    await cycle(); // the echo round of the first cycle's creates
  });
  after(async () => s?.teardown());

  it('an edit of synced fields is not overwritten: the write is skipped, and the next cycle resolves the conflict by the policy (CRM wins)', async () => {
    await sql`update crm.contacts set job_title = 'From CRM' where email = 'x@example.org'`.execute(s.db);
    const first = await cycle(() => {
      s.emulator.admin.updateContact(UPN, exchange('x@example.org').id, { jobTitle: 'From Outlook' });
    });
    assert.equal(first.planned.operations, 1);
    assert.equal(first.applied.applied, 0, 'the planned update was not applied');
    assert.equal(exchange('x@example.org').jobTitle, 'From Outlook', 'the user edit was not overwritten blindly');
    assert.equal(first.committed.workRemaining, true, 'the next cycle should start at once');
    const op = await sql<{ status: string; error: string }>`select status, error from sync.operation where cycle_id = ${first.cycleId}`.execute(s.db);
    assert.deepEqual(op.rows.map((r) => r.status), ['skipped']);
    assert.match(op.rows[0].error, /^replan:.*412/);
    // The CRM change waits for the next plan, with the version the 412 re-read found in Exchange.
    const kept = await sql<{ side: string }>`select side from sync.staged_change where mailbox_id = ${UPN} order by side`.execute(s.db);
    assert.deepEqual(kept.rows.map((r) => r.side), ['crm', 'exchange'], 'the CRM change waits for the next plan');

    const second = await cycle();
    assert.equal(second.planned.conflicts, 1, 'planned as a conflict');
    const conflict = await sql<{ rule: string; crm_version: { jobTitle?: string }; exchange_version: { jobTitle?: string } }>`
      select rule, crm_version, exchange_version from sync.conflict where cycle_id = ${second.cycleId}`.execute(s.db);
    assert.equal(conflict.rows[0].rule, 'conflict: crm-wins');
    assert.equal(conflict.rows[0].exchange_version.jobTitle, 'From Outlook', 'both versions are on record');
    assert.equal(conflict.rows[0].crm_version.jobTitle, 'From CRM');
    assert.equal(exchange('x@example.org').jobTitle, 'From CRM');
    assert.equal((await crm('x@example.org')).job_title, 'From CRM');
    assert.equal(second.committed.workRemaining, false);
  });

  it('an edit of properties cxsync does not sync is written over in the same cycle, on the new change key', async () => {
    await sql`update crm.contacts set job_title = 'CRM again' where email = 'y@example.org'`.execute(s.db);
    const before = exchange('y@example.org');
    const r = await cycle(() => {
      s.emulator.admin.updateContact(UPN, before.id, { nickName: 'Why', categories: ['CRM', 'Mine'] });
    });
    const ops = await sql<{ side: string; kind: string; status: string }>`select side, kind, status from sync.operation where cycle_id = ${r.cycleId} and side = 'exchange' and exchange_id = ${before.id}`.execute(s.db);
    assert.deepEqual(ops.rows, [{ side: 'exchange', kind: 'update', status: 'done' }]);
    const after = exchange('y@example.org');
    assert.equal(after.jobTitle, 'CRM again');
    assert.equal(after.nickName, 'Why', 'the user edit of an unsynced property stays');
    assert.deepEqual(after.categories, ['CRM', 'Mine']);
    const patches = s.emulator.recentRequests().filter((x) => x.startsWith('PATCH') && x.includes(before.id));
    assert.equal(patches.length, 2, 'one 412, one write on the new change key');
  });

  it('an item deleted after planning: the 404 is recorded as the deletion it is, and the next cycle applies the delete-vs-update rule', async () => {
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email, job_title) values (${owner}, 'Zora', 'Synced', 'z@example.org', 'Start')`.execute(s.db);
    await cycle(); // export
    await cycle(); // its echo
    const gone = exchange('z@example.org');
    await sql`update crm.contacts set job_title = 'Edited in CRM' where email = 'z@example.org'`.execute(s.db);
    const first = await cycle(() => {
      s.emulator.admin.deleteContact(UPN, gone.id);
    });
    const op = await sql<{ status: string; error: string }>`select status, error from sync.operation where cycle_id = ${first.cycleId} and side = 'exchange'`.execute(s.db);
    assert.deepEqual(op.rows.map((r) => r.status), ['skipped']);
    assert.match(op.rows[0].error, /^replan:.*deleted after planning/);
    // Kept for the next plan whether or not Exchange's delta ever reports the deletion.
    const kept = await sql<{ side: string; removed: boolean; external_id: string }>`select side, removed, external_id from sync.staged_change where mailbox_id = ${UPN} order by side`.execute(s.db);
    assert.deepEqual(kept.rows.map((r) => [r.side, r.removed]), [['crm', false], ['exchange', true]]);
    assert.equal(kept.rows[1].external_id, gone.id);
    assert.equal(first.committed.workRemaining, true);

    const second = await cycle();
    const conflict = await sql<{ rule: string; outcome: string }>`select rule, outcome from sync.conflict where cycle_id = ${second.cycleId}`.execute(s.db);
    assert.equal(conflict.rows[0].rule, 'delete-vs-update: keep-updated');
    const back = exchange('z@example.org');
    assert.notEqual(back.id, gone.id, 'recreated (the default rule keeps the updated version)');
    assert.equal(back.jobTitle, 'Edited in CRM');
    assert.equal(s.emulator.admin.listContacts(UPN, 'VContacts').filter((c) => emailOf(c) === 'z@example.org').length, 1);
    assert.equal(second.committed.workRemaining, false, 'settled: no update re-sent to a deleted item every cycle');
  });

  it('the workflow takes over again and finds nothing left to do', async () => {
    await s.operator.resume(UPN);
    const st = await s.operator.syncNow(UPN, { wait: true, timeoutMs: 60_000 });
    const t = st!.lastCycle!.types.contact!;
    assert.deepEqual([t.exchange.created, t.exchange.updated, t.crm.created, t.crm.updated, t.conflicts], [0, 0, 0, 0, 0]);
  });
});
