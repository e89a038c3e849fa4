/**
 * The policy commands as an operator runs them: `cxsync policy list|show|create|update|delete`, `enroll --policy`,
 * `assign`, `resume --confirm-mass-delete`, `plan`, `conflicts`; exit codes and one-line errors that name the
 * problem (missing file, bad JSON, invalid field with its allowed values, policy in use with its mailboxes).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { cxsync, oneLine } from '../helpers/cli';
import { startStack, type Stack } from '../helpers/stack';

describe('cxsync policy commands', () => {
  let s: Stack;
  let env: NodeJS.ProcessEnv;
  let dir: string;
  const file = (name: string, content: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, content);
    return p;
  };

  before(async () => {
    s = await startStack();
    await s.addUser('pia@contoso.com', 'Pia Lind');
    await s.addUser('ola@contoso.com', 'Ola Berg');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxsync-policy-'));
    env = {
      DATABASE_URL: s.dbUrl,
      TEMPORAL_ADDRESS: s.temporalAddress,
      TEMPORAL_TASK_QUEUE: s.taskQueue,
      CXSYNC_EMULATOR_PORT: new URL(s.emulator.origin).port,
      GRAPH_CA_FILE: s.caFile(),
    };
  });
  after(async () => {
    await s?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('help lists the new commands', async () => {
    const r = await cxsync(['--help'], env);
    for (const c of ['policy', 'assign', 'plan']) assert.match(r.stdout, new RegExp(`\\n\\s+${c}\\b`), c);
    const p = await cxsync(['policy', '--help'], env);
    for (const c of ['list', 'show', 'create', 'update', 'delete']) assert.match(p.stdout, new RegExp(`\\n\\s+${c}\\b`), c);
    const res = await cxsync(['resume', '--help'], env);
    assert.match(res.stdout, /--confirm-mass-delete/);
    assert.match(res.stdout, /--discard-mass-delete/);
  });

  it('lists the default policy, creates one from a partial file and shows it with the defaults filled in', async () => {
    let r = await cxsync(['policy', 'list'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^default\s+0 mailboxes/m);

    const f = file('sales.json', JSON.stringify({ description: 'Sales team: CRM is master', contact: { direction: 'crm-to-exchange', prevent: { exchange: { delete: true } } } }));
    // A new name is taken as typed: "Sales" would have been stored as "sales" without a word.
    r = await cxsync(['policy', 'create', 'Sales', '--file', f], env);
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /^cxsync: "Sales" is not a policy name: use lower-case letters, digits, .*, e\.g\. sales$/);
    r = await cxsync(['policy', 'create', 'sales', '--file', f], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'policy sales created');

    r = await cxsync(['policy', 'show', 'sales'], env);
    assert.equal(r.code, 0, r.stderr);
    const [head, ...json] = r.stdout.split('\n');
    assert.equal(head, 'policy sales, used by 0 mailboxes');
    const shown = JSON.parse(json.join('\n'));
    assert.equal(shown.contact.direction, 'crm-to-exchange');
    assert.equal(shown.contact.conflict, 'crm-wins', 'defaults filled in');
    assert.equal(shown.contact.prevent.exchange.delete, true);
    assert.equal(shown.contact.folder, 'VContacts');

    r = await cxsync(['policy', 'show', 'sales', '--json'], env);
    const d = JSON.parse(r.stdout);
    assert.deepEqual(d.stored, { description: 'Sales team: CRM is master', contact: { direction: 'crm-to-exchange', prevent: { exchange: { delete: true } } } });
    assert.deepEqual(d.mailboxes, []);

    r = await cxsync(['policy', 'list', '--json'], env);
    assert.deepEqual(JSON.parse(r.stdout).map((p: { name: string; description: string }) => [p.name, p.description]), [['default', ''], ['sales', 'Sales team: CRM is master']]);
  });

  it('refuses bad input with one line naming the problem', async () => {
    const cases: [string[], RegExp][] = [
      [['policy', 'create', 'x', '--file', path.join(dir, 'nope.json')], /^cxsync: policy file .*nope\.json not found$/],
      [['policy', 'create', 'x', '--file', file('bad.json', '{"contact": {')], /^cxsync: policy file .*bad\.json is not valid JSON: /],
      [['policy', 'create', 'x', '--file', file('invalid.json', '{"contact": {"direction": "sideways"}}')], /^cxsync: policy file .*invalid\.json: contact\.direction must be one of both, crm-to-exchange, exchange-to-crm \(got "sideways"\)$/],
      [['policy', 'create', 'x', '--file', file('colour.json', '{"category": {"name": "CRM", "color": "teal"}}')], /category\.color must be one of preset0, preset1, .*preset24 \(got "teal"\)$/],
      [['policy', 'create', 'x', '--file', file('typo.json', '{"contact": {"mergeByMail": true}}')], /contact: unknown field "mergeByMail"$/],
      [['policy', 'create', 'x', '--file', file('array.json', '[]')], /a policy must be a JSON object/],
      [['policy', 'create', 'bad name!', '--file', file('ok.json', '{}')], /"bad name!" is not a policy name: use lower-case letters, digits/],
      [['policy', 'create', 'sales', '--file', file('ok2.json', '{}')], /^cxsync: policy sales exists already: change it with cxsync policy update sales --file <policy\.json>$/],
      [['policy', 'show', 'ghost'], /^cxsync: unknown policy ghost: the policies are default, sales/],
      [['policy', 'update', 'ghost', '--file', file('ok3.json', '{}')], /^cxsync: unknown policy ghost/],
      [['policy', 'delete', 'default'], /^cxsync: the default policy cannot be deleted/],
      [['enroll', 'pia@contoso.com', '--policy', 'ghost'], /^cxsync: unknown policy ghost/],
      [['assign', 'nobody@contoso.com', 'sales'], /^cxsync: unknown mailbox nobody@contoso.com/],
    ];
    for (const [args, re] of cases) {
      const r = await cxsync(args, env);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(oneLine(r.stderr), re, args.join(' '));
    }
    const r = await cxsync(['policy', 'create', 'x'], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /required option '--file <policy\.json>' not specified/);
    assert.equal((await cxsync(['policy', 'show', 'x'], env)).code, 1, 'nothing was created by the failed attempts');
  });

  it('enrolls with a policy, refuses to delete a policy in use (naming the mailboxes), assigns, then deletes', async () => {
    // test-connection (run by enroll) has its own tests (test-connection.test.ts); here only the policy matters.
    let r = await cxsync(['enroll', 'pia@contoso.com', '--policy', 'sales', '--skip-test-connection'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'pia@contoso.com enrolled (policy sales)');
    r = await cxsync(['enroll', 'ola@contoso.com', '--skip-test-connection'], env);
    assert.equal(r.stdout.trim(), 'ola@contoso.com enrolled (policy default)');
    r = await cxsync(['assign', 'ola@contoso.com', 'sales'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ola@contoso.com: policy sales (was default); applies from the next cycle');

    r = await cxsync(['policy', 'delete', 'sales'], env);
    assert.equal(r.code, 1);
    assert.equal(oneLine(r.stderr), 'cxsync: policy sales is used by 2 mailboxes: ola@contoso.com, pia@contoso.com; assign them another policy first (cxsync assign <mailbox> <policy>)');
    r = await cxsync(['policy', 'list'], env);
    assert.match(r.stdout, /^sales\s+2 mailboxes\s+Sales team/m);

    r = await cxsync(['policy', 'update', 'sales', '--file', file('sales2.json', '{"description": "two-way now"}')], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'policy sales updated; applies from the next cycle of 2 mailboxes');
    const d = JSON.parse((await cxsync(['policy', 'show', 'sales', '--json'], env)).stdout);
    assert.equal(d.effective.contact.direction, 'both', 'an update replaces the document; what it leaves out is the default again');
    assert.deepEqual(d.mailboxes, ['ola@contoso.com', 'pia@contoso.com']);

    for (const m of ['ola@contoso.com', 'pia@contoso.com']) assert.equal((await cxsync(['assign', m, 'default'], env)).code, 0);
    r = await cxsync(['policy', 'delete', 'sales'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'policy sales deleted');
    const mb = await sql<{ policy_name: string | null }>`select policy_name from sync.mailbox order by id`.execute(s.db);
    assert.deepEqual(mb.rows.map((x) => x.policy_name), [null, null]);
  });

  it('plan prints what the next cycle would do with reasons, applies nothing; resume without a held delete refuses the flag', async () => {
    const pia = await sql<{ crm_user_id: string }>`select crm_user_id from sync.mailbox where id = 'pia@contoso.com'`.execute(s.db);
    await s.operator.syncNow('pia@contoso.com', { wait: true });
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values (${pia.rows[0].crm_user_id}, 'Per', 'Plan', 'per@x.org')`.execute(s.db);
    const before = s.emulator.admin.listContacts('pia@contoso.com', 'VContacts').length;
    let r = await cxsync(['plan', 'pia@contoso.com'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^plan for pia@contoso\.com \(policy default\); nothing has been applied$/m);
    assert.match(r.stdout, /^contact: read Exchange from the saved delta link \(\d+ changes\), CRM from the saved watermark \(1 changes\)$/m);
    assert.match(r.stdout, /^event: read Exchange from /m, 'every enabled type is planned');
    assert.match(r.stdout, /^\s+create\s+Exchange\s+Per Plan\s+new in CRM\s+\[crm [0-9a-f-]+\]$/m);
    assert.equal(s.emulator.admin.listContacts('pia@contoso.com', 'VContacts').length, before, 'nothing applied');
    r = await cxsync(['plan', 'pia@contoso.com', '--json'], env);
    const plan = JSON.parse(r.stdout);
    assert.deepEqual(plan.types[0].operations.map((o: { kind: string; side: string; label: string }) => [o.kind, o.side, o.label]), [['create', 'exchange', 'Per Plan']]);
    r = await cxsync(['plan', 'nobody@contoso.com'], env);
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /unknown mailbox nobody@contoso\.com/);

    r = await cxsync(['resume', 'pia@contoso.com', '--confirm-mass-delete'], env);
    assert.equal(r.code, 1);
    assert.equal(oneLine(r.stderr), 'cxsync: mailbox pia@contoso.com has no mass delete waiting for a decision; resume it without --confirm-mass-delete');
    r = await cxsync(['resume', 'pia@contoso.com', '--confirm-mass-delete', '--discard-mass-delete'], env);
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stderr), /give --confirm-mass-delete or --discard-mass-delete, not both/);
  });

  it('conflicts shows both versions’ key fields side by side, the rule and the outcome', async () => {
    const M = 'pia@contoso.com';
    await s.operator.syncNow(M, { wait: true });
    await s.operator.syncNow(M, { wait: true });
    const ex = s.emulator.admin.listContacts(M, 'VContacts').find((c) => c.surname === 'Plan')!;
    s.emulator.admin.updateContact(M, ex.id, { companyName: 'Exchange AB', jobTitle: 'Buyer' });
    await sql`update crm.contacts set company = 'CRM AB' where email = 'per@x.org'`.execute(s.db);
    await s.operator.syncNow(M, { wait: true });
    const r = await cxsync(['conflicts', M], env);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout;
    assert.match(out, /contact {2}CRM [0-9a-f-]+ {2}⇄ {2}Exchange \S+/);
    assert.match(out, /^ {2}rule: {4}conflict: crm-wins$/m);
    // Field-level merge: only company clashed; the Exchange job title is merged, not overruled.
    assert.match(out, /^ {2}outcome: fields company: CRM version kept; other fields merged$/m);
    assert.match(out, /^ {2}\* company\s+CRM AB\s+Exchange AB$/m);
    assert.match(out, /^ {2}\* jobTitle\s+-\s+Buyer$/m);
    assert.match(out, /^ {4}firstName\s+Per\s+Per$/m);
    assert.equal(s.emulator.admin.listContacts(M, 'VContacts').find((c) => c.surname === 'Plan')?.companyName, 'CRM AB');
  });
});
