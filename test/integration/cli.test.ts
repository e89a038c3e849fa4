/** The `cxsync` command as an operator runs it: exit codes, one-line errors, JSON status. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cxsync, oneLine } from '../helpers/cli';
import { freePort, startStack, type Stack } from '../helpers/stack';

describe('cxsync CLI', () => {
  let s: Stack;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    s = await startStack();
    await s.addUser('erik@contoso.com', 'Erik Berg');
    env = { DATABASE_URL: s.dbUrl, TEMPORAL_ADDRESS: s.temporalAddress, TEMPORAL_TASK_QUEUE: s.taskQueue };
  });
  after(async () => s?.teardown());

  it('prints help listing every command', async () => {
    const r = await cxsync(['--help'], env);
    assert.equal(r.code, 0);
    for (const c of ['dev', 'enroll', 'list', 'status', 'pause', 'resume', 'sync-now', 'remove', 'log', 'conflicts', 'migrate', 'worker', 'emulator']) {
      assert.match(r.stdout, new RegExp(`\\n\\s+${c}\\b`), `help lists ${c}`);
    }
  });

  it('rejects bad arguments and bad configuration with one line and a non-zero exit', async () => {
    let r = await cxsync(['status'], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /missing required argument 'mailbox'/);
    r = await cxsync(['frobnicate'], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
    r = await cxsync(['list'], { ...env, CXSYNC_SYNC_INTERVAL_SECONDS: 'often' });
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /CXSYNC_SYNC_INTERVAL_SECONDS/);
    r = await cxsync(['list'], { ...env, DATABASE_URL: 'mysql://nope' });
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /DATABASE_URL must be a postgres:\/\//);
    r = await cxsync(['log', 'erik@contoso.com', '--limit', 'lots'], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /argument 'lots' is invalid\. it must be a positive whole number/);
  });

  it('says which service is unreachable', async () => {
    const closed = await freePort();
    let r = await cxsync(['list'], { ...env, DATABASE_URL: `postgres://postgres@127.0.0.1:${closed}/x` });
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /PostgreSQL unreachable at postgres:\/\/postgres@127\.0\.0\.1:\d+\/x/);
    r = await cxsync(['list'], { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${closed}` });
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /Temporal unreachable at 127\.0\.0\.1:\d+/);
  });

  it('enrolls, reports status as JSON, refuses unknown mailboxes, pauses and resumes', async () => {
    let r = await cxsync(['status', 'nobody@contoso.com'], env);
    assert.equal(r.code, 1);
    assert.equal(oneLine(r.stderr), 'cxsync: unknown mailbox nobody@contoso.com: enroll it first (cxsync enroll nobody@contoso.com)');

    r = await cxsync(['enroll', 'Erik@Contoso.com'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /erik@contoso.com enrolled/);
    r = await cxsync(['sync-now', 'erik@contoso.com', '--wait', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const status = JSON.parse(r.stdout);
    assert.equal(status.mailbox, 'erik@contoso.com');
    assert.ok(['idle', 'syncing'].includes(status.state));
    assert.equal(status.lastCycle.outcome, 'completed');
    assert.deepEqual(Object.keys(status.lastCycle.types.contact).sort(), ['conflicts', 'crm', 'errors', 'exchange', 'pulled']);
    assert.ok(status.nextCycleAt);

    r = await cxsync(['pause', 'erik@contoso.com', '--reason', 'audit'], env);
    assert.equal(r.code, 0, r.stderr);
    r = await cxsync(['sync-now', 'erik@contoso.com'], env);
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /paused \(audit\): resume it first/);
    r = await cxsync(['status', 'erik@contoso.com', '--json'], env);
    assert.equal(JSON.parse(r.stdout).state, 'paused');
    r = await cxsync(['resume', 'erik@contoso.com'], env);
    assert.equal(r.code, 0);
    r = await cxsync(['list'], env);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /erik@contoso.com\s+(idle|syncing)/);
    r = await cxsync(['log', 'erik@contoso.com'], env);
    assert.equal(r.code, 0);
  });
});
