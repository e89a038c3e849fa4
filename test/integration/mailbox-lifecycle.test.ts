import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { OperatorError } from '../../src/client/operator';
import { eventually, startStack, type Stack } from '../helpers/stack';

const BEN = 'ben@contoso.com';

describe('mailbox workflow: pause, resume, sync-now, remove', () => {
  let s: Stack;
  let ben: string;
  before(async () => {
    s = await startStack({ worker: { intervalSeconds: 2 } });
    ben = await s.addUser(BEN, 'Ben Carter');
  });
  after(async () => s?.teardown());
  const doneCreates = async () =>
    Number((await sql<{ n: string }>`select count(*)::text as n from sync.operation where status = 'done' and kind = 'create'`.execute(s.db)).rows[0].n);

  it('runs scheduled cycles, stops them while paused and restarts them on resume', async () => {
    await s.operator.enroll(BEN);
    const first = await eventually(() => s.operator.status(BEN), (st) => st.cyclesCompleted >= 2, { what: 'two scheduled cycles' });
    assert.equal(first.state === 'idle' || first.state === 'syncing', true);

    await s.operator.pause(BEN, 'migration window');
    const paused = await eventually(() => s.operator.status(BEN), (st) => st.state === 'paused', { what: 'paused state' });
    assert.equal(paused.pausedReason, 'migration window');
    assert.equal(paused.nextCycleAt, null);
    const countAtPause = paused.cyclesCompleted;
    await sql`insert into crm.contacts (owner_id, first_name, last_name) values (${ben}, 'Held', 'Back')`.execute(s.db);
    await new Promise((r) => setTimeout(r, 5000)); // more than two intervals
    const still = await s.operator.status(BEN);
    assert.ok(still.cyclesCompleted <= countAtPause + 1, 'at most the cycle in flight at pause time completes');
    assert.equal(s.emulator.admin.listContacts(BEN, 'VContacts').some((c) => c.surname === 'Back') && still.cyclesCompleted === countAtPause, false);

    await assert.rejects(() => s.operator.syncNow(BEN), (err: unknown) => err instanceof OperatorError && /paused \(migration window\): resume it first/.test((err as Error).message));

    await s.operator.resume(BEN);
    await eventually(async () => s.emulator.admin.listContacts(BEN, 'VContacts'), (cs) => cs.some((c) => c.surname === 'Back'), { what: 'the held-back contact to arrive after resume' });
    const resumed = await s.operator.status(BEN);
    assert.notEqual(resumed.state, 'paused');
  });

  it('sync-now runs a cycle at once, well before the schedule', async () => {
    await s.operator.pause(BEN);
    await s.operator.resume(BEN);
    // Long interval from here on: only sync-now can explain a new cycle.
    const before = await s.operator.status(BEN);
    const st = await s.operator.syncNow(BEN, { wait: true, timeoutMs: 20_000 });
    assert.ok(st!.cyclesCompleted > before.cyclesCompleted);
    assert.equal(st!.lastCycle!.outcome, 'completed');
  });

  it('pausing mid-cycle lets the batch in flight finish, and the cycle resumes after resume', async () => {
    await s.operator.pause(BEN);
    await eventually(() => s.operator.status(BEN), (st) => st.state === 'paused', { what: 'paused' });
    const values = Array.from({ length: 60 }, (_, i) => sql`(${ben}::uuid, ${'Mid' + i}, 'Cycle')`);
    await sql`insert into crm.contacts (owner_id, first_name, last_name) values ${sql.join(values)}`.execute(s.db);
    await s.stopWorker();
    await s.startWorker({ batchSize: 5, intervalSeconds: 2 });
    // Slow Graph down so the cycle is still applying when the pause arrives.
    s.emulator.admin.setLatency(BEN, 100);
    const doneBefore = await doneCreates();
    await s.operator.resume(BEN);
    await eventually(doneCreates, (n) => n >= doneBefore + 5, { what: 'first batch', timeoutMs: 60_000 });
    await s.operator.pause(BEN, 'mid-cycle');
    const p = await eventually(() => s.operator.status(BEN), (st) => st.state === 'paused' && st.lastCycle?.outcome === 'interrupted', { what: 'interrupted cycle' });
    assert.equal(p.lastCycle?.detail, 'paused');
    const exported = s.emulator.admin.listContacts(BEN, 'VContacts').filter((c) => c.surname === 'Cycle').length;
    assert.ok(exported < 60, `the cycle stopped early (exported ${exported} of 60)`);
    s.emulator.admin.setLatency(BEN, 0);
    await s.operator.resume(BEN);
    await eventually(async () => s.emulator.admin.listContacts(BEN, 'VContacts').filter((c) => c.surname === 'Cycle').length, (n) => n === 60, { what: 'all 60 exported after resume' });
    const names = s.emulator.admin.listContacts(BEN, 'VContacts').map((c) => c.givenName);
    assert.equal(new Set(names).size, names.length, 'no duplicates');
  });

  it('remove stops the workflow and forgets the mailbox; unknown mailboxes are refused', async () => {
    await s.operator.remove(BEN);
    await assert.rejects(() => s.operator.status(BEN), /unknown mailbox ben@contoso.com: enroll it first/);
    await assert.rejects(() => s.operator.enroll('nobody@contoso.com'), /no CRM user has the email nobody@contoso.com/);
    await assert.rejects(() => s.operator.enroll('not an address'), /is not a mailbox address/);
  });
});
