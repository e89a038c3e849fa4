/**
 * What leaves the worker carries no record content (issue 9): a sync on the real stack, with payload encryption on,
 * through failure paths whose raw errors carry record values — a CRM trigger refusing a task with its subject in the
 * message, detail and hint; Graph answering 500 and 400 with messages echoing an email and a name; a 500 on a
 * contact write echoing the contact — then every workflow history of the namespace and every pending activity is
 * read back and searched for the seeded names, emails, subjects and bodies: in the raw history (payloads as stored),
 * in every payload decoded with the codec, in every failure message, stack trace and cause, and in heartbeat details.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING } from '../../src/security/codec';
import { mailboxWorkflowId } from '../../src/workflows/mailbox';
import { eventually, startStack, type Stack } from '../helpers/stack';

const ANNA = 'anna@contoso.com';

/** Distinctive values no id, code or message of cxsync's could contain by chance. */
const SEED = {
  crmFirst: 'Quennell',
  crmLast: 'Ybarrondo',
  crmEmail: 'q.ybarrondo@seedmail-crm.example',
  crmCompany: 'Fennimore Trawlers',
  crmNotes: 'Kestrelwood figures pending',
  exGiven: 'Ottoline',
  exSurname: 'Vasquez-Pryce',
  exEmail: 'ottoline.vp@seedmail-ex.example',
  taskSubject: 'Renegotiate the Hallowmere lease',
  taskBody: 'Bring the Marrowgate ledger',
  poisonSubject: 'Tamarisk errand',
  poisonBody: 'Zephyrine instructions',
  lateLast: 'Quillfeather',
  lateEmail: 'quillfeather@seedmail-crm.example',
};
const SEEDED = Object.values(SEED);

/** Every piece of text reachable in a history or a description: strings, and bytes read as UTF-8. */
function texts(v: unknown, out: string[], seen = new Set<unknown>()): void {
  if (v === null || v === undefined) return;
  if (typeof v === 'string') return void out.push(v);
  if (v instanceof Uint8Array) return void out.push(Buffer.from(v).toString('utf8'));
  if (typeof v !== 'object' || seen.has(v)) return;
  seen.add(v);
  if (Array.isArray(v)) return v.forEach((x) => texts(x, out, seen));
  for (const x of Object.values(v as Record<string, unknown>)) texts(x, out, seen);
}

/** Every Payload object (metadata + data) inside a history or a description. */
function payloads(v: unknown, out: Payload[], seen = new Set<unknown>()): void {
  if (!v || typeof v !== 'object' || v instanceof Uint8Array || seen.has(v)) return;
  seen.add(v);
  if (Array.isArray(v)) return v.forEach((x) => payloads(x, out, seen));
  const o = v as Record<string, unknown>;
  if (o.metadata && typeof o.metadata === 'object' && 'data' in o && (o.data === null || o.data === undefined || o.data instanceof Uint8Array)) out.push(o as Payload);
  for (const x of Object.values(o)) payloads(x, out, seen);
}

/** Failure objects (message, stackTrace, cause…) inside a history or a description. */
function failureMessages(v: unknown, out: string[], seen = new Set<unknown>()): void {
  if (!v || typeof v !== 'object' || v instanceof Uint8Array || seen.has(v)) return;
  seen.add(v);
  if (Array.isArray(v)) return v.forEach((x) => failureMessages(x, out, seen));
  const o = v as Record<string, unknown>;
  if (typeof o.message === 'string' && ('stackTrace' in o || 'applicationFailureInfo' in o)) out.push(o.message);
  for (const x of Object.values(o)) failureMessages(x, out, seen);
}

function leaks(haystack: string[]): string[] {
  const text = haystack.join('\n').toLowerCase();
  return SEEDED.filter((s) => text.includes(s.toLowerCase()));
}

describe('no record content in Temporal: histories, failures and heartbeats', () => {
  let s: Stack;
  let anna: string;
  const codec = new AesGcmPayloadCodec({ keys: new Map([['test-2026', randomBytes(32)]]), encodeKeyId: 'test-2026' });
  const descriptions: WorkflowExecutionDescription[] = [];
  let watching = false;
  let watcher: Promise<void> | undefined;

  before(async () => {
    s = await startStack({ codec });
    anna = await s.addUser(ANNA, 'Anna Schmidt');
  });
  after(async () => {
    watching = false;
    await watcher;
    await sql`drop trigger if exists refuse_seeded on crm.tasks`.execute(s.db).catch(() => undefined);
    await s?.teardown();
  });

  it('syncs the seeded records through failures whose raw errors carry their values', async () => {
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email, company, notes)
      values (${anna}, ${SEED.crmFirst}, ${SEED.crmLast}, ${SEED.crmEmail}, ${SEED.crmCompany}, ${SEED.crmNotes})`.execute(s.db);
    await sql`insert into crm.tasks (owner_id, subject, description, status, priority) values (${anna}::uuid, ${SEED.taskSubject}, ${SEED.taskBody}, 'Open', 'Medium')`.execute(s.db);
    s.emulator.admin.ensureMailbox(ANNA);
    s.emulator.admin.createContact(ANNA, 'VContacts', { givenName: SEED.exGiven, surname: SEED.exSurname, emailAddresses: [{ address: SEED.exEmail, name: `${SEED.exGiven} ${SEED.exSurname}` }] });
    // Graph refusing a delta read with messages that echo values: 500s (retried in the activity, then by Temporal),
    // then a 400 (the activity fails at once).
    s.emulator.admin.injectFault(ANNA, { status: 500, count: 5, method: 'GET', pathPattern: 'contacts/delta', message: `Cannot convert the literal '${SEED.crmEmail}' to the expected type 'Edm.String'.` });
    s.emulator.admin.injectFault(ANNA, { status: 400, count: 1, method: 'GET', pathPattern: 'contacts/delta', message: `Invalid value ${SEED.exGiven} ${SEED.exSurname} for property displayName.` });
    await s.operator.enroll(ANNA);
    // Temporal keeps only the last failure of a retried activity: a watcher reads the pending activities all along,
    // so the failures of intermediate attempts are searched too.
    const handle = s.temporal.client.workflow.getHandle(mailboxWorkflowId(ANNA));
    watching = true;
    watcher = (async () => {
      while (watching) {
        const d = await handle.describe().catch(() => undefined);
        if (d && (d.raw.pendingActivities ?? []).some((a) => a.lastFailure)) descriptions.push(d);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const first = await eventually(() => s.operator.status(ANNA), (st) => st.cyclesCompleted >= 1, { timeoutMs: 120_000, what: 'the first cycle' });
    assert.equal(first.lastCycle?.outcome, 'completed', JSON.stringify(first.lastCycle));
    assert.ok(s.emulator.admin.listContacts(ANNA, 'VContacts').some((c) => c.surname === SEED.crmLast), 'the CRM contact reached Exchange');
    assert.ok(s.emulator.admin.listTasks(ANNA, 'VTasks').some((t) => (t as { title?: string }).title === SEED.taskSubject), 'the CRM task reached To Do');

    // The CRM refuses the task an Outlook user adds, naming it in message, detail and hint. A deferred constraint
    // trigger (a CRM's cross-row validation) raises at commit; the apply then finds the operation alone, counts the
    // error against it and marks it failed (a poison item), so the error is stored in sync.operation and the sync
    // log, scrubbed, and never becomes a Temporal failure. A new CRM contact's write to Exchange meets 500s whose
    // message echoes it: those do reach the history, through the scrubber.
    await sql.raw(`
      create or replace function crm.refuse_seeded() returns trigger language plpgsql as $$
      begin
        if new.subject like '%${SEED.poisonSubject}%' then
          raise exception 'task "%" (%) refused for %', new.subject, new.description, '${SEED.crmEmail}'
            using detail = 'Failing row contains (' || new.subject || ', ' || coalesce(new.description, '') || ')', hint = 'owner ${SEED.exEmail}';
        end if;
        return new;
      end $$`).execute(s.db);
    await sql`create constraint trigger refuse_seeded after insert or update on crm.tasks deferrable initially deferred for each row execute function crm.refuse_seeded()`.execute(s.db);
    s.emulator.admin.createTask(ANNA, 'VTasks', { title: SEED.poisonSubject, status: 'notStarted', body: { content: SEED.poisonBody, contentType: 'text' } });
    await sql`insert into crm.contacts (owner_id, first_name, last_name, email) values (${anna}, 'Ada', ${SEED.lateLast}, ${SEED.lateEmail})`.execute(s.db);
    s.emulator.admin.injectFault(ANNA, { status: 500, count: 8, method: 'POST', pathPattern: 'contacts$', message: `The contact ${SEED.lateLast} <${SEED.lateEmail}> could not be saved.` });
    await s.operator.syncNow(ANNA);

    // The task's write fails on every attempt while the trigger is there, until it is marked failed.
    const refused = await eventually(
      async () => (await sql<{ status: string; error: string | null }>`select status, error from sync.operation where mailbox_id = ${ANNA} and record_type = 'task' and side = 'crm' and kind = 'create' and error is not null`.execute(s.db)).rows,
      (rows) => rows.some((r) => r.status === 'failed'),
      { timeoutMs: 120_000, what: 'the refused task write to be marked failed' },
    );
    descriptions.push(await handle.describe());
    const logged = (await sql<{ message: string }>`select message from sync.log where mailbox_id = ${ANNA} and level = 'error'`.execute(s.db)).rows.map((r) => r.message);
    const stored = [...refused.map((r) => r.error ?? ''), ...logged].join('\n');
    assert.match(stored, /PostgreSQL error P0001/, 'the trigger failure is on record, by its SQLSTATE');
    assert.deepEqual(leaks([stored]), [], 'the stored error and the sync log carry no seeded value');

    await sql`drop trigger refuse_seeded on crm.tasks`.execute(s.db);
    assert.equal((await s.operator.retry(ANNA)).operations, 1, 'cxsync retry applies the failed task write once the cause is fixed');
    const done = await eventually(() => s.operator.status(ANNA), (st) => st.cyclesCompleted >= 2, { timeoutMs: 180_000, what: 'the second cycle' });
    assert.equal(done.lastCycle?.outcome, 'completed', JSON.stringify(done.lastCycle));
    const inCrm = await eventually(
      async () => (await sql<{ n: number }>`select count(*)::int as n from crm.tasks where subject = ${SEED.poisonSubject}`.execute(s.db)).rows[0].n,
      (n) => n >= 1,
      { timeoutMs: 120_000, what: 'the retried task write' },
    );
    assert.equal(inCrm, 1, 'the task reached the CRM once the trigger was gone, once');
    assert.ok(s.emulator.admin.listContacts(ANNA, 'VContacts').some((c) => c.surname === SEED.lateLast), 'the late CRM contact reached Exchange after the 500s');
    // One more quiet cycle, so the history also holds a run continued with the carried state.
    await s.operator.syncNow(ANNA, { wait: true });
    watching = false;
    await watcher;
  });

  it('no seeded value is in any history, payload, failure or heartbeat of the namespace', async () => {
    const client = s.temporal.client;
    let runs = 0;
    let events = 0;
    const raw: string[] = [];
    const decoded: string[] = [];
    const failures: string[] = [];
    let encrypted = 0;
    const plain: Payload[] = [];
    const inspect = async (v: unknown) => {
      texts(v, raw);
      failureMessages(v, failures);
      const found: Payload[] = [];
      payloads(v, found);
      for (const p of found) {
        if (Buffer.from(p.metadata?.encoding ?? new Uint8Array()).toString() === ENCRYPTED_ENCODING) encrypted++;
        else plain.push(p);
      }
      texts(await codec.decode(found), decoded);
    };
    for await (const wf of client.workflow.list()) {
      const h = client.workflow.getHandle(wf.workflowId, wf.runId);
      const history = await h.fetchHistory();
      runs++;
      events += history.events?.length ?? 0;
      raw.push(historyToJSON(history));
      await inspect(history);
      if (wf.status.name === 'RUNNING') descriptions.push(await h.describe());
    }
    for (const d of descriptions) await inspect(d.raw);

    assert.deepEqual(leaks(failures), [], `failure messages: ${failures.filter((f) => leaks([f]).length).slice(0, 3).join(' | ')}`);
    assert.deepEqual(leaks(decoded), [], 'decoded payloads (inputs, results, heartbeat details, carried state)');
    assert.deepEqual(leaks(raw), [], 'raw histories and pending activities');

    // The scan saw what it had to: several runs, encrypted payloads that decode to the mailbox's inputs, and the
    // failures of the paths above (scrubbed).
    assert.ok(runs >= 2, `runs ${runs}`);
    assert.ok(events > 50, `events ${events}`);
    assert.ok(encrypted > 20, `encrypted payloads ${encrypted}`);
    // Payloads the SDK never passes through a codec: search attributes (indexed by the server) and patch markers.
    const unencrypted = plain.filter((p) => !p.metadata?.type && !/^\{"id":"[\w-]+","deprecated":(true|false)\}$/.test(Buffer.from(p.data ?? new Uint8Array()).toString()));
    assert.deepEqual(unencrypted.map((p) => Buffer.from(p.data ?? new Uint8Array()).toString()), [], 'every other payload is encrypted');
    assert.ok(decoded.some((t) => t.includes(ANNA)), 'decoded payloads hold the workflow inputs (the mailbox id)');
    assert.ok(!raw.some((t) => t.includes('"mailboxId"')), 'raw payloads are ciphertext');
    const all = failures.join('\n');
    assert.match(all, /Graph 500|first: 500/, 'a Graph 500 failure was recorded');
    assert.match(all, /Graph 400/, 'the Graph 400 failure was recorded');

  });
});
