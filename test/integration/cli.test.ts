/** The `cxsync` command as an operator runs it: exit codes, one-line errors, JSON status. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cxsync, stackEnv, oneLine, ROOT } from '../helpers/cli';
import { eventually, freePort, startStack, type Stack } from '../helpers/stack';

describe('cxsync CLI', () => {
  let s: Stack;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    s = await startStack();
    await s.addUser('erik@contoso.com', 'Erik Berg');
    env = stackEnv(s);
  });
  after(async () => s?.teardown());

  it('prints help listing every command', async () => {
    const r = await cxsync(['--help'], env);
    assert.equal(r.code, 0);
    for (const c of ['dev', 'enroll', 'test-connection', 'list', 'status', 'pause', 'resume', 'sync-now', 'remove', 'log', 'conflicts', 'migrate', 'worker', 'emulator', 'policy', 'email']) {
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

  it('prints help for cxsync alone or a command group alone, with exit 0, and its version', async () => {
    let r = await cxsync([], env);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: cxsync \[options\] \[command\]/);
    assert.equal(r.stderr, '');
    r = await cxsync(['policy'], env);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: cxsync policy \[options\] \[command\]/);
    r = await cxsync(['--version'], env);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('says so when a log is empty or a running mailbox is resumed; refuses a policy name not in its stored form', async () => {
    await s.addUser('lena@contoso.com', 'Lena Holm');
    let r = await cxsync(['enroll', 'lena@contoso.com', '--skip-test-connection'], env);
    assert.equal(r.code, 0, r.stderr);
    r = await cxsync(['log', 'lena@contoso.com'], env);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'the sync log of lena@contoso.com is empty (nothing synced or logged yet)\n');
    r = await cxsync(['log', 'lena@contoso.com', '--json'], env);
    assert.deepEqual(JSON.parse(r.stdout), []);
    r = await cxsync(['resume', 'lena@contoso.com'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^lena@contoso\.com is not paused and needs no attention \(state (idle|syncing)\): nothing to resume\n$/);

    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cxsync-cli-')), 'p.json');
    fs.writeFileSync(file, '{}');
    r = await cxsync(['policy', 'create', 'Bad_Name', '--file', file], env);
    assert.equal(r.code, 1);
    assert.equal(oneLine(r.stderr), `cxsync: "Bad_Name" is not a policy name: use lower-case letters, digits, '.', '_' and '-' (at most 63, starting with a letter or digit), e.g. bad_name`);
    assert.equal((await cxsync(['policy', 'show', 'bad_name'], env)).code, 1, 'nothing was created');
  });

  it('list --state filters by state and shows why a mailbox is paused or needs attention; status lists types in processing order', async () => {
    await s.addUser('gone@contoso.com', 'Gone Away');
    s.emulator.admin.setMailboxEnabled('gone@contoso.com', false);
    let r = await cxsync(['enroll', 'gone@contoso.com', '--skip-test-connection'], env);
    assert.equal(r.code, 0, r.stderr);
    r = await eventually(() => cxsync(['list', '--state', 'needs-attention'], env), (x) => x.stdout.includes('gone@contoso.com'), { what: 'gone@contoso.com in needs-attention' });
    const rows = r.stdout.trim().split('\n');
    assert.match(rows[0], /^MAILBOX\s+STATE\s+LAST CYCLE\s+NEXT CYCLE\s+REASON$/);
    assert.equal(rows.length, 2, r.stdout);
    assert.match(rows[1], /^gone@contoso\.com\s+needs-attention\s+.*MailboxNotEnabledForRESTAPI/);

    r = await cxsync(['pause', 'erik@contoso.com', '--reason', 'mailbox migration'], env);
    assert.equal(r.code, 0, r.stderr);
    r = await cxsync(['list', '--state', 'paused'], env);
    assert.match(r.stdout, /\nerik@contoso\.com\s+paused\s+.*\s+mailbox migration\n$/);
    r = await cxsync(['list', '--state', 'paused', '--json'], env);
    assert.deepEqual(JSON.parse(r.stdout).map((x: { mailbox: string; reason: string }) => [x.mailbox, x.reason]), [['erik@contoso.com', 'mailbox migration']]);
    r = await cxsync(['list', '--state', 'not-running'], env);
    assert.match(r.stdout, /^no mailbox is not-running \(\d+ enrolled\)\n$/);
    r = await cxsync(['list', '--state', 'sleeping'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /argument 'sleeping' is invalid\. Allowed choices are idle, syncing, paused, needs-attention, not-running/);
    r = await cxsync(['resume', 'erik@contoso.com'], env);
    assert.equal(r.stdout, 'erik@contoso.com resumed\n');

    r = await cxsync(['sync-now', 'erik@contoso.com', '--wait'], env);
    assert.equal(r.code, 0, r.stderr);
    const types = r.stdout.split('\n').filter((l) => /^ {2}\w+: pulled/.test(l)).map((l) => l.trim().split(':')[0]);
    assert.deepEqual(types, ['contact', 'event', 'task']);
  });

  it('names what is wrong when the worker or npm start cannot start', async () => {
    const closed = await freePort();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxsync-dev-'));
    let r = await cxsync(['worker'], { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${closed}` });
    assert.equal(r.code, 1);
    assert.equal(oneLine(r.stderr), `cxsync: Temporal unreachable at 127.0.0.1:${closed}: connection refused (nothing listens on that port); check that the Temporal server runs there (npm start runs one locally) and TEMPORAL_ADDRESS (LOG_LEVEL=debug shows the transport error)`);

    // A second npm start: the emulator's port is taken (here by the test stack's emulator).
    r = await cxsync(['dev'], { ...env, CXSYNC_DATA_DIR: dataDir, TEMPORAL_ADDRESS: `127.0.0.1:${closed}` });
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), new RegExp(`^cxsync: port ${new URL(s.emulator.origin).port} \\(CXSYNC_EMULATOR_PORT, the Graph emulator\\) is in use: cxsync is probably running already \\(npm start in another terminal`));

    r = await cxsync(['dev'], { ...env, CXSYNC_DATA_DIR: dataDir, CXSYNC_EMULATOR_PORT: String(await freePort()), DATABASE_URL: `postgres://cx:s3cret@127.0.0.1:${closed}/cxsync` });
    assert.equal(r.code, 1);
    const line = oneLine(r.stderr);
    assert.match(line, new RegExp(`^cxsync: PostgreSQL unreachable at postgres://cx:\\*\\*\\*@127\\.0\\.0\\.1:${closed}/cxsync: .*\\(DATABASE_URL; unset it to use the embedded PostgreSQL\\)$`));
    assert.doesNotMatch(line, /s3cret|migration/);
  });
});

