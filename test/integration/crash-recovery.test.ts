/**
 * A worker process killed with SIGKILL in the middle of a cycle, then restarted: the cycle finishes with no
 * duplicate and no lost change. The worker is the real `cxsync worker` command in a child process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { sql } from 'kysely';
import { ROOT, stackEnv } from '../helpers/cli';
import { eventually, startStack, type Stack } from '../helpers/stack';

const UPN = 'carla@contoso.com';

function startWorkerProcess(s: Stack): ChildProcess {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'cxsync.js'), 'worker'], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...stackEnv(s),
      CXSYNC_SYNC_INTERVAL_SECONDS: '3600',
      CXSYNC_BATCH_SIZE: '40',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.resume();
  let err = '';
  child.stderr?.on('data', (d) => (err = (err + d).slice(-4000)));
  child.on('exit', (code, sig) => {
    if (code && !sig) console.error(`worker process exited ${code}: ${err}`);
  });
  return child;
}

describe('worker killed with SIGKILL mid-cycle', () => {
  let s: Stack;
  let owner: string;
  let child: ChildProcess | undefined;
  before(async () => {
    s = await startStack({ startWorker: false });
    owner = await s.addUser(UPN, 'Carla Diaz');
  });
  after(async () => {
    child?.kill('SIGKILL');
    await s?.teardown();
  });

  it('restarts the cycle where it stopped: nothing duplicated, nothing lost', async () => {
    const values = Array.from({ length: 120 }, (_, i) => sql`(${owner}::uuid, ${'Crm' + i}, 'Export', ${`crm${i}@example.org`})`);
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values ${sql.join(values)}`.execute(s.db);
    for (let i = 0; i < 30; i++) s.emulator.admin.createContact(UPN, 'VContacts', { givenName: `Ex${i}`, surname: 'Import', emailAddresses: [{ address: `ex${i}@example.org` }] });
    // Slow enough that the kill lands mid-apply; every create answer is at risk of being lost with the process.
    s.emulator.admin.setLatency(UPN, 40);

    child = startWorkerProcess(s);
    await s.operator.enroll(UPN);
    const doneOps = async () => Number((await sql<{ n: string }>`select count(*)::text as n from sync.operation where status = 'done'`.execute(s.db)).rows[0].n);
    await eventually(doneOps, (n) => n >= 40, { what: 'the cycle to be well under way', timeoutMs: 90_000 });
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    const atKill = await doneOps();
    assert.ok(atKill < 150, `killed mid-cycle (${atKill} operations done)`);

    // Changes made while no worker runs must not be lost either.
    await sql`update crm.contacts set job_title = 'Changed while down' where first_name = 'Crm0'`.execute(s.db);
    s.emulator.admin.setLatency(UPN, 0);
    child = startWorkerProcess(s);
    // At most CXSYNC_BATCH_SIZE writes per cycle and side: further cycles follow at once until all is done.
    const crmCount = async () => Number((await sql<{ n: string }>`select count(*)::text as n from crm.contacts where owner_id = ${owner} and deleted_at is null`.execute(s.db)).rows[0].n);
    await eventually(async () => [s.emulator.admin.listContacts(UPN, 'VContacts').length, await crmCount()], ([ex, crm]) => ex >= 150 && crm >= 150, { what: 'both sides to reach 150 contacts', timeoutMs: 150_000 });
    // Quiet: a cycle that wrote nothing and left no delta round open (a round longer than the batch size is
    // pulled over several cycles that write nothing, and planned once complete).
    const roundOpen = async () => (await sql<{ n: string }>`select count(*)::text as n from sync.cursor where next_link is not null`.execute(s.db)).rows[0].n !== '0';
    await eventually(async () => [await s.operator.syncNow(UPN, { wait: true, timeoutMs: 60_000 }), await roundOpen()] as const, ([st, open]) => {
      const t = st?.lastCycle?.types.contact;
      return !open && !!t && t.exchange.created + t.exchange.updated + t.crm.created + t.crm.updated === 0;
    }, { what: 'a quiet cycle', timeoutMs: 120_000 });

    const exchange = s.emulator.admin.listContacts(UPN, 'VContacts');
    const exNames = exchange.map((c) => `${c.givenName} ${c.surname}`);
    assert.equal(new Set(exNames).size, exNames.length, 'no duplicate in Exchange');
    assert.equal(exchange.length, 150);
    const crm = await sql<{ first_name: string; job_title: string | null }>`select first_name, job_title from crm.contacts where owner_id = ${owner} and deleted_at is null`.execute(s.db);
    const crmNames = crm.rows.map((r) => r.first_name);
    assert.equal(new Set(crmNames).size, crmNames.length, 'no duplicate in the CRM');
    assert.equal(crm.rows.length, 150);
    const mappings = await sql<{ n: string }>`select count(*)::text as n from sync.mapping`.execute(s.db);
    assert.equal(Number(mappings.rows[0].n), 150, 'one mapping per pair');
    assert.equal(exchange.find((c) => c.givenName === 'Crm0')?.jobTitle, 'Changed while down');
  });
});
