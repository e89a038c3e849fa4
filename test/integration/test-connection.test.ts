/**
 * `cxsync test-connection` and the check `enroll` runs first, as an operator runs them (the CLI as a process)
 * against the emulator acting as the tenant would: a rotated, expired or disabled app credential, a permission
 * granted for contacts and the calendar but not To Do, a user without a mailbox, a mailbox without Exchange
 * Online, a missing CRM user, a synced folder deleted in Outlook.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { cxsync, stackEnv, oneLine } from '../helpers/cli';
import { connect } from '../helpers/emulator-client';
import { startStack, type Stack } from '../helpers/stack';
import { DEFAULT_APP_ROLES } from '../../src/emulator/auth';
import { EMULATOR_CLIENT_SECRET } from '../../src/config';

/** The line of one check in the text report (the mark, the label, the detail). */
function lineOf(stdout: string, label: RegExp): string {
  const l = stdout.split('\n').find((x) => label.test(x));
  assert.ok(l, `a line matching ${label} in:\n${stdout}`);
  return l;
}

describe('cxsync test-connection', () => {
  let s: Stack;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    s = await startStack();
    await s.addUser('anna@contoso.com', 'Anna Svensson');
    await s.addUser('carl@contoso.com', 'Carl Nord');
    // A CRM user whose address has no user in the tenant, and a mailbox no CRM user has.
    await sql`insert into crm.users (email, display_name) values ('ghost@contoso.com', 'Ghost')`.execute(s.db);
    s.emulator.admin.ensureMailbox('nocrm@contoso.com', 'No CRM');
    env = stackEnv(s);
  });
  after(async () => s?.teardown());

  it('passes every check for a reachable mailbox with a CRM user, one line each, exit 0', async () => {
    const r = await cxsync(['test-connection', 'anna@contoso.com'], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(lineOf(r.stdout, /token/), /^✓ token\s+access token issued by the Graph emulator/);
    assert.match(lineOf(r.stdout, /CRM user/), /✓ CRM user\s+CRM user Anna Svensson \(id [\w-]+\) has this email/);
    assert.match(lineOf(r.stdout, /✓ policy/), /policy default: syncs contacts, calendar, To Do/);
    assert.match(lineOf(r.stdout, / mailbox /), /✓ mailbox\s+the mailbox answers/);
    for (const [label, noun] of [['contacts ', 'contacts'], ['calendar ', 'calendar'], ['To Do ', 'To Do']]) {
      assert.match(lineOf(r.stdout, new RegExp(`[✓✗-] ${label}\\s+${noun}: `)), /^\s*✓/, noun);
    }
    assert.match(lineOf(r.stdout, /contacts folder/), /✓ contacts folder\s+contacts folder VContacts does not exist yet: the first cycle creates it/);
    assert.match(r.stdout, /\nall checks passed\n$/);
    assert.equal(r.stderr, '');

    const t = await cxsync(['test-connection'], env);
    assert.equal(t.code, 0, t.stdout + t.stderr);
    assert.deepEqual(t.stdout.trim().split('\n').filter(Boolean).map((l) => l.slice(0, 8)), ['✓ token ', 'all chec']);
  });

  it('names a refused credential by its AADSTS code with what to change, and still checks the CRM user', async () => {
    try {
      const cases: [Record<string, unknown>, RegExp, RegExp][] = [
        [{ clientSecret: 'rotated-in-entra' }, /✗ token\s+AADSTS7000215: the client secret is not valid for this app/, /GRAPH_CLIENT_SECRET to the secret's Value \(not its Secret ID\)/],
        [{ secretExpired: true }, /✗ token\s+AADSTS7000222: the client secret has expired/, /create a new client secret/],
        [{ disabled: true }, /✗ token\s+AADSTS7000112: the app is disabled in the tenant/, /Enterprise applications/],
      ];
      for (const [app, detail, fix] of cases) {
        s.emulator.admin.setApplication({ clientSecret: EMULATOR_CLIENT_SECRET, secretExpired: false, disabled: false, ...app });
        const r = await cxsync(['test-connection', 'anna@contoso.com'], env);
        assert.equal(r.code, 2, r.stdout + r.stderr);
        const token = lineOf(r.stdout, /token/);
        assert.match(token, detail);
        assert.match(token, fix);
        assert.match(lineOf(r.stdout, /CRM user/), /^\s*✓/);
        assert.match(lineOf(r.stdout, / mailbox /), /- mailbox\s+not checked: no access token/);
        assert.match(r.stdout, /\n1 check failed\n$/);
      }
    } finally {
      s.emulator.admin.setApplication({ clientSecret: EMULATOR_CLIENT_SECRET, secretExpired: false, disabled: false });
    }
  });

  it('a 403 on To Do fails the To Do check only: contacts and the calendar still pass', async () => {
    try {
      s.emulator.admin.setApplication({ roles: DEFAULT_APP_ROLES.filter((r) => r !== 'Tasks.ReadWrite.All') });
      const r = await cxsync(['test-connection', 'anna@contoso.com'], env);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      const todo = lineOf(r.stdout, /✗ To Do /);
      assert.match(todo, /To Do: 403 ErrorAccessDenied: the app may not use this mailbox's To Do → grant the Microsoft Graph application permission Tasks\.ReadWrite\.All with admin consent/);
      assert.match(lineOf(r.stdout, /To Do list/), /^\s*- To Do list\s+To Do list: not checked/);
      assert.match(lineOf(r.stdout, /[✓✗] contacts /), /^\s*✓/);
      assert.match(lineOf(r.stdout, /[✓✗] calendar /), /^\s*✓/);
      assert.match(lineOf(r.stdout, / mailbox /), /^\s*✓ mailbox/);
      assert.match(r.stdout, /\n1 check failed\n$/);

      const j = await cxsync(['test-connection', 'anna@contoso.com', '--json'], env);
      assert.equal(j.code, 2);
      const report = JSON.parse(j.stdout);
      assert.equal(report.ok, false);
      const byCheck = Object.fromEntries(report.mailboxes[0].checks.map((c: { check: string; result: string }) => [c.check, c.result]));
      assert.deepEqual(byCheck, { 'crm-user': 'ok', policy: 'ok', mailbox: 'ok', contact: 'ok', 'contact-folder': 'ok', event: 'ok', 'event-folder': 'ok', task: 'failed', 'task-folder': 'skipped', categories: 'ok' });
    } finally {
      s.emulator.admin.setApplication({ roles: DEFAULT_APP_ROLES });
    }
  });

  it('a policy that files email checks the mail: without Mail.ReadWrite the email check fails alone, naming it', async () => {
    await s.operator.createPolicy('mail-check', { email: { enabled: true } });
    let r = await cxsync(['test-connection', 'anna@contoso.com', '--policy', 'mail-check'], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(lineOf(r.stdout, / email /), /✓ email\s+email: the mail folders are readable \(filing and email sync need Mail\.ReadWrite; writing not tested\)/);
    // The default policy files no email: no email line.
    r = await cxsync(['test-connection', 'anna@contoso.com'], env);
    assert.doesNotMatch(r.stdout, / email /);
    try {
      s.emulator.admin.setApplication({ roles: DEFAULT_APP_ROLES.filter((x) => x !== 'Mail.ReadWrite') });
      r = await cxsync(['test-connection', 'anna@contoso.com', '--policy', 'mail-check'], env);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(
        lineOf(r.stdout, / email /),
        /✗ email\s+email: 403 ErrorAccessDenied: the app may not use this mailbox's mail \(the policy files email\) → grant the Microsoft Graph application permission Mail\.ReadWrite with admin consent, or turn email off in the policy \(email\.enabled: false\)/,
      );
      for (const label of ['contacts ', 'calendar ', 'To Do ', 'mailbox ']) assert.match(lineOf(r.stdout, new RegExp(`[✓✗-] ${label}`)), /^\s*✓/, label);
      assert.match(r.stdout, /\n1 check failed\n$/);
      // enroll runs the same checks: the mailbox is not enrolled with that policy.
      r = await cxsync(['enroll', 'anna@contoso.com', '--policy', 'mail-check'], env);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /anna@contoso\.com not enrolled/);
    } finally {
      s.emulator.admin.setApplication({ roles: DEFAULT_APP_ROLES });
    }
  });

  it('tells a user missing from the tenant from a mailbox without Exchange Online, and a missing CRM user', async () => {
    let r = await cxsync(['test-connection', 'ghost@contoso.com'], env);
    assert.equal(r.code, 2);
    assert.match(lineOf(r.stdout, / mailbox /), /✗ mailbox\s+404 ErrorInvalidUser: no user or mailbox ghost@contoso\.com in the tenant → check the address: it must be the user's principal name/);
    assert.match(lineOf(r.stdout, /contacts /), /- contacts\s+contacts: not checked \(the mailbox is not reachable\)/);
    assert.match(lineOf(r.stdout, /CRM user/), /^\s*✓/);

    s.emulator.admin.setMailboxEnabled('carl@contoso.com', false);
    try {
      r = await cxsync(['test-connection', 'carl@contoso.com'], env);
      assert.equal(r.code, 2);
      assert.match(lineOf(r.stdout, / mailbox /), /✗ mailbox\s+404 MailboxNotEnabledForRESTAPI: the user has no Exchange Online mailbox .* → give carl@contoso\.com an Exchange Online licence/);
    } finally {
      s.emulator.admin.setMailboxEnabled('carl@contoso.com', true);
    }

    r = await cxsync(['test-connection', 'nocrm@contoso.com'], env);
    assert.equal(r.code, 2);
    assert.match(lineOf(r.stdout, /CRM user/), /✗ CRM user\s+no CRM user has the email nocrm@contoso\.com → create the user in the CRM/);
    assert.match(lineOf(r.stdout, / mailbox /), /^\s*✓/);
  });

  it('enroll runs it first: a failing check enrolls nothing (exit 2) unless --skip-test-connection', async () => {
    let r = await cxsync(['enroll', 'ghost@contoso.com'], env);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /✗ mailbox\s+404 ErrorInvalidUser/);
    assert.equal(oneLine(r.stderr), 'cxsync: ghost@contoso.com not enrolled: fix what failed above and enroll again (or enroll anyway with --skip-test-connection)');
    assert.equal((await sql`select 1 from sync.mailbox where id = 'ghost@contoso.com'`.execute(s.db)).rows.length, 0);

    r = await cxsync(['enroll', 'ghost@contoso.com', '--skip-test-connection'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ghost@contoso.com enrolled (policy default)');

    r = await cxsync(['enroll', 'anna@contoso.com'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /all checks passed\nanna@contoso\.com enrolled \(policy default\)\n$/);
  });

  it('--all checks every enrolled mailbox; a folder cxsync synced that was deleted in Outlook fails its check', async () => {
    // anna's first cycle creates and records her folders.
    const sync = await cxsync(['sync-now', 'anna@contoso.com', '--wait'], env);
    assert.equal(sync.code, 0, sync.stderr);
    let r = await cxsync(['test-connection', 'anna@contoso.com'], env);
    assert.equal(r.code, 0, r.stdout);
    assert.match(lineOf(r.stdout, /contacts folder/), /✓ contacts folder\s+contacts folder VContacts: the one cxsync syncs exists/);

    r = await cxsync(['test-connection', '--all'], env);
    assert.equal(r.code, 2, 'ghost@contoso.com (enrolled with --skip-test-connection) fails');
    assert.deepEqual(r.stdout.split('\n').filter((l) => /^\S+@/.test(l)), ['anna@contoso.com', 'ghost@contoso.com']);

    await s.stopWorker();
    const conn = connect(s.emulator);
    const folders = (await conn.client.api('/users/anna@contoso.com/contactFolders').filter("displayName eq 'VContacts'").get()) as { value: { id: string }[] };
    await conn.client.api(`/users/anna@contoso.com/contactFolders/${folders.value[0].id}`).delete();
    r = await cxsync(['test-connection', 'anna@contoso.com'], env);
    assert.equal(r.code, 2);
    assert.match(lineOf(r.stdout, /contacts folder/), /✗ contacts folder\s+contacts folder VContacts: the one cxsync was syncing is gone \(deleted or moved in Outlook\) → restore it in Outlook/);

    r = await cxsync(['test-connection', 'anna@contoso.com', '--all'], env);
    assert.equal(r.code, 1);
    assert.equal(oneLine(r.stderr), 'cxsync: give a mailbox or --all, not both');
  });
});
