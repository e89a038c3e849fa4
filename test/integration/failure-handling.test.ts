/**
 * No silent failure (issue 9), on the real stack: every failure either heals by itself or lands the mailbox (or
 * one record type) in needs-attention with a reason and what to do; `resume` clears it. A poison item is marked
 * failed after its attempts while the rest syncs; `retry` applies it once fixed. `pause` stops a running activity
 * within seconds. `status` says what the mailbox is doing and, while it retries, the last error.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { createWorker } from '../../src/worker/worker';
import { connect } from '../helpers/emulator-client';
import { emulatorGraphSettings, eventually, startStack, type Stack } from '../helpers/stack';

const ALWAYS = 1_000_000_000;

describe('failure handling', () => {
  let s: Stack;
  before(async () => {
    s = await startStack({ worker: { intervalSeconds: 3600, retryBudgetSeconds: 8, operationAttempts: 3 } });
  });
  after(async () => s?.teardown());

  async function enrolled(email: string): Promise<string> {
    const owner = await s.addUser(email);
    await s.operator.enroll(email);
    await eventually(() => s.operator.status(email), (st) => st.cyclesCompleted >= 1, { what: `first cycle of ${email}` });
    return owner;
  }
  const outlookSurnames = (email: string) => s.emulator.admin.listContacts(email, 'VContacts').map((c) => c.surname);
  /**
   * Cycles until `check` holds: the CRM feed shows a change only once every older transaction on the cluster has
   * ended, so with other test files running, a CRM edit can reach the cycle after the next.
   */
  async function syncUntil<T>(email: string, read: () => T | Promise<T>, check: (v: T) => boolean, what: string): Promise<T> {
    return eventually(
      async () => {
        await s.operator.syncNow(email, { wait: true, timeoutMs: 60_000 });
        return read();
      },
      check,
      { what },
    );
  }

  it('Graph answering 503 to every call: status shows the retries and the last error, then needs-attention once the retry budget is spent; resume heals it', async () => {
    const ann = 'ann@contoso.com';
    const owner = await enrolled(ann);
    s.emulator.admin.injectFault(ann, { status: 503, count: ALWAYS });
    await sql`insert into crm.contacts (owner_id, first_name, last_name) values (${owner}, 'During', 'Outage')`.execute(s.db);
    await s.operator.syncNow(ann);
    const retrying = await eventually(() => s.operator.status(ann), (st) => !!st.retrying && st.retrying.attempts >= 2, { what: 'a retry streak in status' });
    assert.equal(retrying.state, 'syncing', 'still syncing while within the budget');
    assert.match(retrying.retrying!.lastError, /Graph503/);
    assert.ok(retrying.activity && retrying.activity.attempt >= 2, `the running step and its attempt are shown: ${JSON.stringify(retrying.activity)}`);
    const stuck = await eventually(() => s.operator.status(ann), (st) => st.state === 'needs-attention', { what: 'needs-attention after the budget', timeoutMs: 90_000 });
    assert.match(stuck.needsAttentionReason!, /every attempt failed for .* Graph503/);
    assert.match(stuck.needsAttentionReason!, /cxsync resume ann@contoso\.com/);
    assert.equal(stuck.nextCycleAt, null);
    await eventually(
      async () => (await sql<{ message: string }>`select message from sync.log where mailbox_id = ${ann} and level = 'error' order by id`.execute(s.db)).rows,
      (rows) => rows.some((l) => /every attempt failed/.test(l.message)),
      { what: 'the sync log to say why' },
    );

    s.emulator.admin.clearFaults(ann);
    await s.operator.resume(ann);
    await eventually(async () => outlookSurnames(ann), (n) => n.includes('Outage'), { what: 'the contact after resume' });
    const healed = await eventually(() => s.operator.status(ann), (st) => st.state === 'idle', { what: 'idle after resume' });
    assert.equal(healed.retrying, undefined, 'the streak is over');
  });

  it('a 403 on To Do stops tasks only: contacts keep syncing, status names the permission to grant, resume clears it', async () => {
    const bea = 'bea@contoso.com';
    const owner = await enrolled(bea);
    s.emulator.admin.injectFault(bea, { status: 403, count: ALWAYS, pathPattern: '/todo/' });
    await sql`insert into crm.contacts (owner_id, first_name, last_name) values (${owner}, 'Still', 'Synced')`.execute(s.db);
    await syncUntil(bea, () => outlookSurnames(bea), (n) => n.includes('Synced'), 'contacts synced while tasks fail');
    const st = await s.operator.status(bea);
    assert.equal(st.state, 'needs-attention');
    assert.match(st.typesNeedingAttention?.task ?? '', /Tasks\.ReadWrite\.All/);
    assert.match(st.typesNeedingAttention?.task ?? '', /cxsync resume bea@contoso\.com/);
    assert.equal(st.needsAttentionReason, null, 'the mailbox itself is fine');
    // Later cycles keep syncing contacts and leave tasks alone until resume.
    await sql`insert into crm.contacts (owner_id, first_name, last_name) values (${owner}, 'Next', 'Cycle')`.execute(s.db);
    await syncUntil(bea, () => outlookSurnames(bea), (n) => n.includes('Cycle'), 'contacts in a later cycle');
    const list = await s.operator.list();
    assert.match(list.find((m) => m.mailbox === bea)?.reason ?? '', /task: .*Tasks\.ReadWrite\.All/);

    s.emulator.admin.clearFaults(bea);
    await s.operator.resume(bea);
    const after = await s.operator.syncNow(bea, { wait: true, timeoutMs: 60_000 });
    assert.equal(after!.state === 'idle' || after!.state === 'syncing', true);
    assert.equal(after!.typesNeedingAttention, undefined);
  });

  it('a poison CRM write (a trigger refuses it) is marked failed after its attempts while the others sync; cxsync retry applies it once fixed', async () => {
    const cy = 'cy@contoso.com';
    await enrolled(cy);
    await sql`create function crm.test_refuse_poison() returns trigger language plpgsql as $$
      begin if new.last_name = 'Poison' then raise exception 'refusing %', new.last_name; end if; return new; end $$`.execute(s.db);
    await sql`create trigger test_refuse_poison before insert or update on crm.contacts for each row execute function crm.test_refuse_poison()`.execute(s.db);
    try {
      s.emulator.admin.createContact(cy, 'VContacts', { givenName: 'Pat', surname: 'Poison' });
      s.emulator.admin.createContact(cy, 'VContacts', { givenName: 'Fay', surname: 'Fine' });
      const st = await s.operator.syncNow(cy, { wait: true, timeoutMs: 60_000 });
      assert.equal(st!.lastCycle!.outcome, 'completed', 'the cycle completes');
      const crm = await sql<{ last_name: string }>`select last_name from crm.contacts c join crm.users u on u.id = c.owner_id where u.email = ${cy}`.execute(s.db);
      assert.deepEqual(crm.rows.map((r) => r.last_name), ['Fine']);
      const ops = await sql<{ status: string; failures: number; error: string }>`select status, failures, error from sync.operation where mailbox_id = ${cy} and side = 'crm' and kind = 'create' and status = 'failed'`.execute(s.db);
      assert.equal(ops.rows.length, 1);
      assert.equal(ops.rows[0].failures, 3);
      assert.match(ops.rows[0].error, /PostgreSQL error P0001/);
      assert.doesNotMatch(ops.rows[0].error, /Poison/, 'no record content in the error');
      const log = await sql<{ message: string }>`select message from sync.log where mailbox_id = ${cy} and level = 'error'`.execute(s.db);
      assert.ok(log.rows.some((l) => /create failed after 3 attempts: PostgreSQL error P0001.*cxsync retry cy@contoso\.com/.test(l.message)), JSON.stringify(log.rows));
    } finally {
      await sql`drop trigger test_refuse_poison on crm.contacts`.execute(s.db);
      await sql`drop function crm.test_refuse_poison()`.execute(s.db);
    }
    const r = await s.operator.retry(cy);
    assert.equal(r.operations, 1);
    const crm = await eventually(
      async () => (await sql<{ last_name: string }>`select last_name from crm.contacts c join crm.users u on u.id = c.owner_id where u.email = ${cy} order by last_name`.execute(s.db)).rows.map((x) => x.last_name),
      (names) => names.includes('Poison'),
      { what: 'the poison contact after retry' },
    );
    assert.deepEqual(crm, ['Fine', 'Poison'], 'applied once, nothing duplicated');
    assert.equal((await s.operator.retry(cy)).operations, 0, 'nothing left to retry');
  });

  it('a CRM write refused only at commit (a deferred constraint trigger) is found among its chunk and fails alone', async () => {
    const cal = 'cal@contoso.com';
    await enrolled(cal);
    await sql`create function crm.test_refuse_deferred() returns trigger language plpgsql as $$
      begin if new.last_name = 'Deferred' then raise exception 'refusing %', new.last_name; end if; return null; end $$`.execute(s.db);
    await sql`create constraint trigger test_refuse_deferred after insert or update on crm.contacts deferrable initially deferred
      for each row execute function crm.test_refuse_deferred()`.execute(s.db);
    try {
      s.emulator.admin.createContact(cal, 'VContacts', { givenName: 'Dee', surname: 'Deferred' });
      s.emulator.admin.createContact(cal, 'VContacts', { givenName: 'Fran', surname: 'Fine' });
      const st = await s.operator.syncNow(cal, { wait: true, timeoutMs: 60_000 });
      assert.equal(st!.lastCycle!.outcome, 'completed');
      assert.equal(st!.state === 'idle' || st!.state === 'syncing', true, `not needs-attention: ${st!.needsAttentionReason}`);
      const crm = await sql<{ last_name: string }>`select last_name from crm.contacts c join crm.users u on u.id = c.owner_id where u.email = ${cal}`.execute(s.db);
      assert.deepEqual(crm.rows.map((r) => r.last_name), ['Fine']);
      const failed = await sql<{ failures: number }>`select failures from sync.operation where mailbox_id = ${cal} and status = 'failed'`.execute(s.db);
      assert.deepEqual(failed.rows.map((r) => r.failures), [3]);
    } finally {
      await sql`drop trigger test_refuse_deferred on crm.contacts`.execute(s.db);
      await sql`drop function crm.test_refuse_deferred()`.execute(s.db);
    }
  });

  it('a Graph 409 on one item fails that operation after its attempts, not the mailbox', async () => {
    const dee = 'dee@contoso.com';
    const owner = await enrolled(dee);
    await sql`insert into crm.contacts (owner_id, first_name, last_name) values (${owner}, 'Ok', 'One'), (${owner}, 'Conflicted', 'Two')`.execute(s.db);
    await syncUntil(dee, () => outlookSurnames(dee), (n) => n.length === 2, 'both contacts in Outlook');
    await sql`update crm.contacts set job_title = 'Edited' where owner_id = ${owner}`.execute(s.db);
    const two = s.emulator.admin.listContacts(dee, 'VContacts').find((c) => c.surname === 'Two')!;
    s.emulator.admin.injectFault(dee, { status: 409, count: ALWAYS, method: 'PATCH', pathPattern: two.id });
    const title = (name: string) => s.emulator.admin.listContacts(dee, 'VContacts').find((c) => c.surname === name)?.jobTitle;
    await syncUntil(dee, () => title('One'), (t) => t === 'Edited', 'the healthy update');
    assert.equal((await s.operator.status(dee)).lastCycle!.outcome, 'completed');
    const byName = { Two: title('Two') };
    assert.notEqual(byName.Two, 'Edited');
    const failed = await sql<{ n: number }>`select count(*)::int as n from sync.operation where mailbox_id = ${dee} and status = 'failed' and error like 'Graph 409%'`.execute(s.db);
    assert.equal(failed.rows[0].n, 1);
    s.emulator.admin.clearFaults(dee);
    assert.equal((await s.operator.retry(dee)).operations, 1);
    await eventually(async () => s.emulator.admin.listContacts(dee, 'VContacts').find((c) => c.surname === 'Two')?.jobTitle, (t) => t === 'Edited', { what: 'the update after retry' });
  });

  it('a mailbox not enabled for Graph (MailboxNotEnabledForRESTAPI) needs attention at once, with what to check', async () => {
    const hal = 'hal@contoso.com';
    await enrolled(hal);
    s.emulator.admin.setMailboxEnabled(hal, false);
    try {
      await s.operator.syncNow(hal);
      const st = await eventually(() => s.operator.status(hal), (x) => x.state === 'needs-attention', { what: 'needs-attention', timeoutMs: 30_000 });
      assert.match(st.needsAttentionReason!, /MailboxNotEnabledForRESTAPI: the mailbox does not exist or is not enabled/);
      assert.equal(st.retrying, undefined, 'not retried: nothing to wait for');
    } finally {
      s.emulator.admin.setMailboxEnabled(hal, true);
    }
    await s.operator.resume(hal);
    await eventually(() => s.operator.status(hal), (x) => x.state === 'idle' && x.cyclesCompleted >= 2, { what: 'a cycle after resume' });
  });

  it('an item Graph refuses (400) fails alone, at once, logged without its content', async () => {
    const ida = 'ida@contoso.com';
    const owner = await enrolled(ida);
    await sql`insert into crm.contacts (owner_id, first_name, last_name) values (${owner}, 'Good', 'Item'), (${owner}, 'Refused', 'Item')`.execute(s.db);
    s.emulator.admin.injectFault(ida, { status: 400, count: 1, method: 'POST', pathPattern: '/contacts$' });
    // The CRM feed shows a change once every older transaction on the cluster has ended: sync until it is planned.
    await eventually(
      async () => {
        await s.operator.syncNow(ida, { wait: true, timeoutMs: 60_000 });
        return (await sql<{ n: number }>`select count(*)::int as n from sync.operation where mailbox_id = ${ida} and kind = 'create'`.execute(s.db)).rows[0].n;
      },
      (n) => n >= 2,
      { what: 'both creates planned' },
    );
    assert.equal(s.emulator.admin.listContacts(ida, 'VContacts').length, 1, 'the other item is written');
    const ops = await sql<{ error: string; failures: number }>`select error, failures from sync.operation where mailbox_id = ${ida} and status = 'failed'`.execute(s.db);
    assert.equal(ops.rows.length, 1);
    assert.match(ops.rows[0].error, /^Graph 400 /);
    assert.equal(ops.rows[0].failures, 0, 'a refusal is not retried');
  });

  it('pause stops a running activity within seconds, not after its batch', async () => {
    const eve = 'eve@contoso.com';
    const owner = await enrolled(eve);
    const values = Array.from({ length: 40 }, (_, i) => sql`(${owner}::uuid, ${'Slow' + i}, 'Pause')`);
    await sql`insert into crm.contacts (owner_id, first_name, last_name) values ${sql.join(values)}`.execute(s.db);
    // Every Graph request takes 1.5 s: the apply of 40 creates (two batches of 20) runs for well over 10 s.
    s.emulator.admin.setLatency(eve, 1500);
    await s.operator.syncNow(eve);
    await eventually(() => s.operator.status(eve), (st) => st.activity?.step === 'applyBatch', { what: 'the apply step running', timeoutMs: 60_000 });
    const t0 = Date.now();
    await s.operator.pause(eve, 'test');
    const describe = async () => ((await s.temporal.client.workflow.getHandle(`cxsync/mailbox/${eve}`).describe()).raw.pendingActivities ?? []).length;
    await eventually(describe, (n) => n === 0, { what: 'no activity running after pause', timeoutMs: 30_000 });
    const stopped = Date.now() - t0;
    assert.ok(stopped < 8000, `the running activity stopped ${stopped} ms after pause`);
    const st = await eventually(() => s.operator.status(eve), (x) => x.state === 'paused', { what: 'paused' });
    assert.equal(st.lastCycle?.outcome, 'interrupted');
    s.emulator.admin.clearFaults(eve);
    await s.operator.resume(eve);
    await eventually(async () => outlookSurnames(eve).filter((n) => n === 'Pause').length, (n) => n === 40, { what: 'every contact after resume, once', timeoutMs: 90_000 });
  });

  it('the synced folder deleted by the user: created again, not 404 for ever', async () => {
    const fay = 'fay@contoso.com';
    const owner = await enrolled(fay);
    await sql`insert into crm.contacts (owner_id, first_name, last_name) values (${owner}, 'Kept', 'InCrm')`.execute(s.db);
    await syncUntil(fay, () => outlookSurnames(fay), (n) => n.includes('InCrm'), 'the contact in Outlook');
    const graph = connect(s.emulator).client;
    const folder = (await graph.api(`/users/${fay}/contactFolders`).filter("displayName eq 'VContacts'").get()) as { value: Array<{ id: string }> };
    await graph.api(`/users/${fay}/contactFolders/${folder.value[0].id}`).delete();
    const st = await s.operator.syncNow(fay, { wait: true, timeoutMs: 60_000 });
    assert.equal(st!.lastCycle!.outcome, 'completed');
    const log = await sql<{ message: string }>`select message from sync.log where mailbox_id = ${fay} and level = 'warn'`.execute(s.db);
    assert.ok(log.rows.some((l) => /container was deleted/.test(l.message)), 'the sync log says what happened');
    const again = (await graph.api(`/users/${fay}/contactFolders`).filter("displayName eq 'VContacts'").get()) as { value: unknown[] };
    assert.equal(again.value.length, 1, 'the folder exists again');
  });

  it('a refused client secret (AADSTS7000215) puts the mailbox in needs-attention with what to fix, instead of retrying for ever', async () => {
    const gus = 'gus@contoso.com';
    await enrolled(gus);
    await s.stopWorker();
    const graph = { ...emulatorGraphSettings(s.emulator), clientSecret: 'not-the-secret' };
    const { worker } = await createWorker({
      db: s.db,
      graph,
      graphCaPem: s.emulator.caCertPem,
      temporal: { connection: s.temporal.nativeConnection, address: s.temporalAddress, namespace: 'default', taskQueue: s.taskQueue },
      settings: { intervalSeconds: 3600, batchSize: 100, retryBudgetSeconds: 600 },
    });
    const running = worker.run();
    try {
      await s.operator.syncNow(gus);
      const st = await eventually(() => s.operator.status(gus), (x) => x.state === 'needs-attention', { what: 'needs-attention for bad credentials', timeoutMs: 60_000 });
      assert.match(st.needsAttentionReason!, /AADSTS7000215/);
      assert.match(st.needsAttentionReason!, /GRAPH_CLIENT_SECRET/);
    } finally {
      worker.shutdown();
      await running;
      await s.startWorker();
    }
  });
});
