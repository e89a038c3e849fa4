/**
 * `cxsync email` (src/client/email.ts) as an operator runs it, through the real bin/cxsync.js, on the real stack
 * (Temporal dev server, PostgreSQL, a worker, the HTTPS Graph emulator through the production Graph client):
 * the unresolved list with its reasons and candidates, decisions (file, create, ignore) carried out by the
 * mailbox's next cycle, exclusions, and clear errors for bad input.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { cxsync, stackEnv, oneLine } from '../helpers/cli';
import { eventually, startStack, type Stack } from '../helpers/stack';

const ANNA = 'anna@contoso.com';
const BEN = 'ben@contoso.com';
const person = (address: string, name: string) => ({ emailAddress: { address, name } });
const at = (minutesAgo: number) => new Date(Math.floor((Date.now() - minutesAgo * 60_000) / 1000) * 1000).toISOString();

interface Listed {
  id: string;
  mailbox: string;
  folder: { role: string; name: string | null };
  sender: { address: string | null };
  subject: string;
  reason: string;
  candidates: Array<{ type: string; id: string; displayName: string | null; state: string }>;
  decision: unknown;
  decidedBy: string | null;
  internetMessageId: string | null;
}

describe('cxsync email (the unresolved list and exclusions)', () => {
  let s: Stack;
  let env: NodeJS.ProcessEnv;
  let ben: string;
  let n = 0;

  function message(from: { address: string; name: string }) {
    n++;
    return {
      subject: `CLI message ${n}`,
      body: { contentType: 'text', content: `Body ${n}` },
      from: person(from.address, from.name),
      toRecipients: [person(ANNA, 'Anna')],
      internetMessageId: `<cli${n}.${Date.now()}@example.net>`,
      receivedDateTime: at(60),
    };
  }
  const run = (...args: string[]) => cxsync(args, env);
  const listed = async (): Promise<Listed[]> => {
    const r = await run('email', 'unresolved', ANNA, '--json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Listed[];
  };
  const entryOf = async (imid: string) => (await listed()).find((e) => e.internetMessageId === imid);
  const activityOf = async (imid: string) =>
    (await sql<{ id: string }>`select id::text from crm.email_activities where internet_message_id = ${imid} and deleted_at is null`.execute(s.db)).rows[0];
  const linksOf = async (activityId: string) =>
    (await sql<{ record_type: string; record_id: string }>`select record_type, record_id::text from crm.email_links where email_activity_id = ${activityId} order by record_type, record_id`.execute(s.db)).rows;
  const contact = async (email: string, last: string) =>
    (await sql<{ id: string }>`insert into crm.contacts (owner_id, first_name, last_name, email) values (${ben}, 'Shared', ${last}, ${email}) returning id::text`.execute(s.db)).rows[0].id;

  before(async () => {
    s = await startStack({ worker: { intervalSeconds: 3600, mailRescanSeconds: 3600 } });
    await s.addUser(ANNA, 'Anna');
    ben = await s.addUser(BEN, 'Ben');
    await s.operator.createPolicy('mail', { email: { enabled: true } });
    await s.operator.enroll(ANNA, { policy: 'mail' });
    await eventually(() => s.operator.status(ANNA), (st) => st.cyclesCompleted >= 1, { what: 'first cycle' });
    env = { ...stackEnv(s), USER: 'ops-test' };
  });
  after(async () => s?.teardown());

  it('the group and cxsync --help list the commands', async () => {
    for (const args of [['email', '--help'], ['email']]) {
      const r = await run(...args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: cxsync email \[options\] \[command\]/);
      for (const c of ['unresolved', 'file', 'create', 'ignore', 'ignore-address', 'ignore-domain', 'unignore-address', 'unignore-domain', 'exclusions']) {
        assert.match(r.stdout, new RegExp(`\\n\\s+${c} `), `email help lists ${c}`);
      }
    }
    const top = await run('--help');
    assert.match(top.stdout, /\n\s+email\s+email filing/);
    const file = await run('email', 'file', '--help');
    assert.match(file.stdout, /--to <type:id>/);
  });

  it('says so when nothing is listed; refuses an unknown mailbox', async () => {
    let r = await run('email', 'unresolved', ANNA);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `no unresolved messages for ${ANNA}\n`);
    r = await run('email', 'unresolved', 'nobody@contoso.com');
    assert.equal(r.code, 1);
    assert.equal(oneLine(r.stderr), 'cxsync: unknown mailbox nobody@contoso.com: enroll it first (cxsync enroll nobody@contoso.com)');
  });

  it('lists an ambiguous sender and an own-domain sender with reasons; file stores the choice and the cycle it asks for carries it out', async () => {
    const ids = [await contact('desk@litware.example', 'One'), await contact('desk@litware.example', 'Two')];
    const ambiguous = message({ address: 'desk@litware.example', name: 'Litware Desk' });
    const internal = message({ address: 'colleague@contoso.com', name: 'Col League' });
    s.emulator.admin.dropMessage(ANNA, 'VContacts', ambiguous);
    s.emulator.admin.dropMessage(ANNA, 'VContacts', internal);
    const st = await s.operator.syncNow(ANNA, { wait: true, timeoutMs: 90_000 });
    assert.equal(st?.lastCycle?.email?.unresolved, 2);

    // The human table: one row per entry, the reason last, the candidates under it.
    let r = await run('email', 'unresolved', ANNA);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0], /^ID\s+MAILBOX\s+FOLDER\s+RECEIVED\s+SENDER\s+SUBJECT\s+REASON$/);
    const amb = lines.findIndex((l) => l.includes('desk@litware.example'));
    assert.match(lines[amb], new RegExp(`^\\d+\\s+${ANNA}\\s+VContacts\\s+\\S+Z\\s+desk@litware\\.example\\s+${ambiguous.subject}\\s+.*2 contacts share the address desk@litware\\.example`));
    assert.match(lines[amb + 1], new RegExp(`^\\s+candidates: .*contact:${ids[0]} \\(Shared One\\).*contact:${ids[1]} \\(Shared Two\\)|^\\s+candidates: .*contact:${ids[1]} \\(Shared Two\\).*contact:${ids[0]} \\(Shared One\\)`));
    assert.ok(lines.some((l) => /colleague@contoso\.com\s+.*contoso\.com is the mailbox's own domain/.test(l)), r.stdout);

    const a = (await entryOf(ambiguous.internetMessageId))!;
    assert.deepEqual(a.candidates.map((c) => c.id).sort(), [...ids].sort());
    assert.deepEqual(a.folder, { role: 'contact', name: 'VContacts' });
    assert.equal(a.decision, null);
    const i = (await entryOf(internal.internetMessageId))!;
    assert.match(i.reason, /contoso\.com is the mailbox's own domain/);

    r = await run('email', 'file', a.id, '--to', `contact:${ids[1]}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^entry ${a.id} \\(${ANNA}\\): to be filed to contact:${ids[1]}\\n`));
    assert.match(r.stdout, /a cycle of anna@contoso\.com was requested/);
    const act = await eventually(() => activityOf(ambiguous.internetMessageId), (x) => !!x, { what: 'the filed activity' });
    assert.deepEqual(await linksOf(act.id), [{ record_type: 'contact', record_id: ids[1] }]);
    await eventually(() => entryOf(ambiguous.internetMessageId), (e) => e === undefined, { what: 'the entry off the list' });
    const logged = (await sql<{ message: string }>`select message from sync.log where mailbox_id = ${ANNA} and message like '%as decided by ops-test%'`.execute(s.db)).rows;
    assert.equal(logged.length, 1, 'the sync log names who decided');
  });

  it('bad entry ids, unknown, deleted or mistyped records: one line naming what is wrong, exit 1, nothing stored', async () => {
    const i = (await listed()).find((e) => e.sender.address === 'colleague@contoso.com')!;
    const gone = await contact('gone@litware.example', 'Gone');
    await sql`update crm.contacts set deleted_at = now() where id = ${gone}`.execute(s.db);
    const live = await contact('live@litware.example', 'Live');
    const cases: Array<[string[], RegExp]> = [
      [['email', 'file', '999999', '--to', `contact:${live}`], /^cxsync: unresolved entry 999999 does not exist \(it may have been filed or ignored since\): pick one from cxsync email unresolved$/],
      [['email', 'file', 'abc', '--to', `contact:${live}`], /^cxsync: "abc" is not an unresolved entry id: use a number from the ID column of cxsync email unresolved$/],
      [['email', 'file', i.id, '--to', 'contact:123'], new RegExp(`^cxsync: contact 123 does not exist: entry ${i.id} is unchanged; pick a live record \\(the candidates in cxsync email unresolved ${ANNA}\\) or create one`)],
      [['email', 'file', i.id, '--to', `contact:${live}`, '--to', `contact:${gone}`], new RegExp(`^cxsync: contact ${gone} was deleted in the CRM: entry ${i.id} is unchanged`)],
      [['email', 'file', i.id, '--to', `lead:${live}`], new RegExp(`^cxsync: lead ${live} does not exist: `)],
      [['email', 'file', i.id, '--to', `person:${live}`], /^cxsync: --to person:.*: give the record as type:id with type contact, lead or account/],
      [['email', 'ignore', '999999'], /^cxsync: unresolved entry 999999 does not exist/],
      [['email', 'create', '999999', '--as', 'lead'], /^cxsync: unresolved entry 999999 does not exist/],
      [['email', 'ignore-address', 'not-an-address'], /^cxsync: "not-an-address" is not an email address: give one such as anna@contoso\.com$/],
      [['email', 'ignore-domain', 'bad domain'], /^cxsync: "bad domain" is not a domain: give one such as contoso\.com$/],
      [['email', 'ignore-domain', 'litware.example', '--mailbox', 'nobody@contoso.com'], /^cxsync: unknown mailbox nobody@contoso\.com/],
    ];
    for (const [args, expected] of cases) {
      const r = await run(...args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(oneLine(r.stderr), expected, args.join(' '));
    }
    // Commander's own checks: a missing --to or --as, a type that is not a record type.
    for (const args of [['email', 'file', i.id], ['email', 'create', i.id], ['email', 'create', i.id, '--as', 'person']]) {
      const r = await run(...args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /required option '--to <type:id>' not specified|required option '--as <type>' not specified|Allowed choices are contact, lead, account/);
    }
    assert.equal((await entryOf(i.internetMessageId!))!.decision, null, 'no decision stored');
    assert.equal((await sql`select 1 from sync.email_exclusion`.execute(s.db)).rows.length, 0, 'no exclusion stored');
  });

  it('ignore takes one message off the list; ignore-domain closes the own-domain one; exclusions lists it and unignore removes it', async () => {
    const noreply = message({ address: 'noreply@contoso.com', name: 'No Reply' });
    s.emulator.admin.dropMessage(ANNA, 'VLeads', noreply);
    await s.operator.syncNow(ANNA, { wait: true, timeoutMs: 90_000 });
    const e = (await entryOf(noreply.internetMessageId))!;
    let r = await run('email', 'ignore', e.id);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^entry ${e.id} \\(${ANNA}\\): to be left unfiled and taken off the list\\n`));
    await eventually(() => entryOf(noreply.internetMessageId), (x) => x === undefined, { what: 'the ignored entry off the list' });
    assert.equal(await activityOf(noreply.internetMessageId), undefined, 'not filed');

    const internal = (await listed()).find((x) => x.sender.address === 'colleague@contoso.com')!;
    r = await run('email', 'ignore-domain', '@Contoso.COM', '--mailbox', ANNA);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `domain contoso.com is now ignored for ${ANNA}\nclosed 1 open entry of the unresolved list: it leaves the list at the mailbox's next cycle (cxsync sync-now <mailbox> for now)\n`);
    const pending = (await entryOf(internal.internetMessageId!))!;
    assert.deepEqual(pending.decision, { ignore: true });
    assert.equal(pending.decidedBy, 'ops-test');
    r = await run('email', 'ignore-domain', 'contoso.com', '--mailbox', ANNA);
    assert.match(r.stdout, /^domain contoso\.com was already ignored for anna@contoso\.com\nno open entry/);
    r = await run('sync-now', ANNA, '--wait');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await entryOf(internal.internetMessageId!), undefined, 'closed by ignore-domain');

    r = await run('email', 'ignore-address', 'Spam@Bulk.example');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^address spam@bulk\.example is now ignored for every mailbox\nno open entry/);
    r = await run('email', 'exclusions', '--mailbox', ANNA, '--json');
    assert.equal(r.code, 0, r.stderr);
    const v = JSON.parse(r.stdout);
    assert.deepEqual(v.exclusions, [
      { kind: 'domain', value: 'contoso.com', mailbox: ANNA, addedBy: 'ops-test' },
      { kind: 'address', value: 'spam@bulk.example', mailbox: null, addedBy: 'ops-test' },
    ]);
    assert.deepEqual(v.policy, { name: 'mail', ownDomain: 'contoso.com', addresses: [], domains: [] });
    r = await run('email', 'exclusions');
    assert.match(r.stdout, /^KIND\s+VALUE\s+MAILBOX\s+ADDED BY\ndomain\s+contoso\.com\s+anna@contoso\.com\s+ops-test\naddress\s+spam@bulk\.example\s+every mailbox\s+ops-test\n\neach mailbox's policy adds its email\.exclude lists/);

    r = await run('email', 'unignore-domain', 'contoso.com');
    assert.equal(r.code, 1, 'the exclusion is for one mailbox, not for every mailbox');
    assert.match(oneLine(r.stderr), /^cxsync: no ignore-domain exclusion of contoso\.com for every mailbox: see cxsync email exclusions/);
    r = await run('email', 'unignore-domain', 'contoso.com', '--mailbox', ANNA);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^domain contoso\.com is no longer ignored for anna@contoso\.com/);
    r = await run('email', 'unignore-address', 'spam@bulk.example');
    assert.equal(r.code, 0, r.stderr);
    r = await run('email', 'exclusions', '--json');
    assert.deepEqual(JSON.parse(r.stdout).exclusions, []);
  });

  it('create --as lead on a paused mailbox replaces a pending ignore; the decision is shown pending and carried out by the cycle after resume', async () => {
    await contact('sales@adatum.example', 'One');
    await contact('sales@adatum.example', 'Two');
    const m = message({ address: 'sales@adatum.example', name: 'Adatum Sales' });
    s.emulator.admin.dropMessage(ANNA, 'VLeads', m);
    await s.operator.syncNow(ANNA, { wait: true, timeoutMs: 90_000 });
    const e = (await entryOf(m.internetMessageId))!;
    assert.match(e.reason, /2 contacts share the address sales@adatum\.example/);

    let r = await run('pause', ANNA, '--reason', 'audit');
    assert.equal(r.code, 0, r.stderr);
    r = await run('email', 'ignore', e.id);
    assert.equal(r.code, 0, r.stderr);
    // Changing one's mind before the cycle: the later decision replaces the pending one.
    r = await run('email', 'create', e.id, '--as', 'lead');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      `entry ${e.id} (${ANNA}): a lead is to be created from the sender and the message filed to it\n` +
        'it replaces the decision still pending: ignore (leave it unfiled)\n' +
        `${ANNA} is paused (audit): the decision is carried out by its first cycle after cxsync resume ${ANNA}\n`,
    );
    r = await run('email', 'unresolved');
    assert.match(r.stdout, /\n\s+decision pending: create a lead from the sender and file to it, by ops-test; carried out by the mailbox's next cycle\n/);
    assert.equal(await activityOf(m.internetMessageId), undefined, 'nothing filed while paused');

    r = await run('resume', ANNA);
    assert.equal(r.code, 0, r.stderr);
    const act = await eventually(() => activityOf(m.internetMessageId), (x) => !!x, { what: 'the activity filed after resume' });
    const [link] = await linksOf(act.id);
    assert.equal(link.record_type, 'lead');
    const lead = (await sql<{ email: string; first_name: string; last_name: string }>`select email, first_name, last_name from crm.leads where id = ${link.record_id}`.execute(s.db)).rows[0];
    assert.deepEqual(lead, { email: 'sales@adatum.example', first_name: 'Adatum', last_name: 'Sales' });
    await eventually(() => entryOf(m.internetMessageId), (x) => x === undefined, { what: 'the entry off the list' });
  });
});
