/**
 * Tasks in two-way sync on the real stack: CRM tasks (Todo) ⇄ Microsoft To Do tasks in VTasks, Acumatica's
 * status table (Draft, Rejected and Deferred not synced; Canceled → Completed and back as Canceled), status
 * round trips, subject/body/due date/reminder/importance, deletes both ways, and a create whose answer was lost
 * found again by its linked resource.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { bodyText } from '../../src/domain/body';
import { addDays } from '../../src/domain/timezone';
import { startStack, type Stack } from '../helpers/stack';

const ANNA = 'anna@contoso.com';
const today = new Date().toISOString().slice(0, 10);
const day = (n: number) => addDays(today, n);

interface Task {
  id: string;
  title: string;
  status: string;
  importance: string;
  body: { content: string; contentType: string };
  dueDateTime?: { dateTime: string; timeZone: string };
  reminderDateTime?: { dateTime: string; timeZone: string };
  isReminderOn: boolean;
  categories: string[];
  linkedResources?: Array<{ externalId: string; applicationName: string; webUrl: string }>;
}

describe('tasks two-way sync on the real stack', () => {
  let s: Stack;
  let anna: string;
  const todo = () => s.emulator.admin.listTasks(ANNA, 'VTasks') as unknown as Task[];
  const byTitle = (t: string) => todo().find((x) => x.title === t);
  const crm = async (subject: string) =>
    (
      await sql<{ id: string; status: string; priority: string; due_date: string | null; reminder_local: string | null; time_zone: string | null; description: string | null; deleted: boolean }>`
        select id::text, status, priority, to_char(due_date, 'YYYY-MM-DD') as due_date, to_char(reminder_local, 'YYYY-MM-DD"T"HH24:MI:SS') as reminder_local,
          time_zone, description, deleted_at is not null as deleted
        from crm.tasks where subject = ${subject}`.execute(s.db)
    ).rows;
  const sync = async () => {
    const st = await s.operator.syncNow(ANNA, { wait: true });
    assert.equal(st?.lastCycle?.outcome, 'completed', JSON.stringify(st?.lastCycle));
    return st!.lastCycle!.types.task!;
  };

  before(async () => {
    s = await startStack();
    anna = await s.addUser(ANNA, 'Anna Schmidt');
    await sql`update crm.users set time_zone = 'Europe/Berlin' where id = ${anna}::uuid`.execute(s.db);
  });
  after(async () => s?.teardown());

  it('exports CRM tasks by the status table; Draft and Rejected stay in the CRM', async () => {
    const statuses = ['Open', 'Draft', 'In Process', 'Completed', 'Canceled', 'Pending Approval', 'Approved', 'Rejected'];
    for (const st of statuses) {
      await sql`insert into crm.tasks (owner_id, subject, status, priority, due_date) values (${anna}::uuid, ${`Task ${st}`}, ${st}, 'Medium', ${day(10)}::date)`.execute(s.db);
    }
    await sql`insert into crm.tasks (owner_id, subject, description, status, priority, due_date, reminder_local, time_zone) values
      (${anna}::uuid, 'Send the offer', 'Prices as agreed', 'Open', 'High', ${day(3)}::date, ${`${day(3)}T09:00`}::timestamp, 'Europe/Berlin')`.execute(s.db);
    s.emulator.admin.ensureMailbox(ANNA);
    await s.operator.enroll(ANNA);
    const t = await sync();
    assert.equal(t.exchange.created, 7, JSON.stringify(t));
    const expected: Record<string, string | undefined> = {
      'Task Open': 'notStarted', 'Task Draft': undefined, 'Task In Process': 'inProgress', 'Task Completed': 'completed', 'Task Canceled': 'completed',
      'Task Pending Approval': 'waitingOnOthers', 'Task Approved': 'inProgress', 'Task Rejected': undefined,
    };
    for (const [title, status] of Object.entries(expected)) assert.equal(byTitle(title)?.status, status, title);

    const offer = byTitle('Send the offer')!;
    assert.equal(offer.importance, 'high');
    assert.equal(bodyText(offer.body), 'Prices as agreed');
    assert.equal(offer.dueDateTime?.dateTime.slice(0, 10), day(3));
    assert.equal(offer.isReminderOn, true);
    // 09:00 Berlin as an instant, whatever DST says that day.
    const reminderUtc = new Date(`${offer.reminderDateTime!.dateTime.slice(0, 19)}Z`).getTime();
    const berlinWall = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(reminderUtc);
    assert.equal(berlinWall, '09:00');
    assert.deepEqual(offer.categories, ['CRM']);
    assert.equal(offer.linkedResources?.[0].applicationName, 'cxsync', 'the CRM link rides on linkedResources');
    assert.match(offer.linkedResources?.[0].webUrl ?? '', /^urn:cxsync:crm-task:[0-9a-f-]{36}$/);

    const q = await sync();
    assert.deepEqual([q.exchange.created, q.exchange.updated, q.crm.created, q.crm.updated], [0, 0, 0, 0], 'quiet: Canceled and its "completed" echo are the same');
    assert.equal((await crm('Task Canceled'))[0].status, 'Canceled');
  });

  it('imports To Do tasks; Deferred stays in To Do', async () => {
    s.emulator.admin.createTask(ANNA, 'VTasks', { title: 'Call Lukas back', status: 'notStarted', importance: 'low', dueDateTime: { dateTime: `${day(4)}T00:00:00`, timeZone: 'W. Europe Standard Time' } });
    s.emulator.admin.createTask(ANNA, 'VTasks', { title: 'Someday maybe', status: 'deferred' });
    s.emulator.admin.createTask(ANNA, 'VTasks', { title: 'Waiting for legal', status: 'waitingOnOthers', body: { content: 'NDA draft sent', contentType: 'text' } });
    const t = await sync();
    assert.equal(t.crm.created, 2, JSON.stringify(t));
    assert.equal(t.exchange.created, 0);
    const call = (await crm('Call Lukas back'))[0];
    assert.equal(call.status, 'Open');
    assert.equal(call.priority, 'Low');
    assert.equal(call.due_date, day(4), 'a due date set at midnight Berlin is that date, not the evening before in UTC');
    assert.equal((await crm('Waiting for legal'))[0].status, 'Pending Approval');
    assert.equal((await crm('Waiting for legal'))[0].description, 'NDA draft sent');
    assert.equal((await crm('Someday maybe')).length, 0, 'Deferred is not synced');
    const q = await sync();
    assert.deepEqual([q.exchange.created, q.exchange.updated, q.crm.created, q.crm.updated], [0, 0, 0, 0]);
  });

  it('round-trips status changes both ways', async () => {
    // To Do: the user starts, finishes, and waits.
    s.emulator.admin.updateTask(ANNA, byTitle('Task Open')!.id, { status: 'inProgress' });
    s.emulator.admin.updateTask(ANNA, byTitle('Task In Process')!.id, { status: 'completed' });
    s.emulator.admin.updateTask(ANNA, byTitle('Task Approved')!.id, { title: 'Task Approved (renamed)' });
    let t = await sync();
    assert.equal(t.crm.updated, 3, JSON.stringify(t));
    assert.equal((await crm('Task Open'))[0].status, 'In Process');
    assert.equal((await crm('Task In Process'))[0].status, 'Completed');
    assert.equal((await crm('Task Approved (renamed)'))[0].status, 'Approved', 'inProgress keeps the CRM\'s Approved');

    // CRM: reopen, cancel, approve, send back to draft (no longer synced: To Do keeps its last state).
    await sql`update crm.tasks set status = 'Open' where subject = 'Task In Process'`.execute(s.db);
    await sql`update crm.tasks set status = 'Canceled' where subject = 'Call Lukas back'`.execute(s.db);
    await sql`update crm.tasks set status = 'Pending Approval' where subject = 'Task Open'`.execute(s.db);
    await sql`update crm.tasks set status = 'Draft', subject = 'Task Pending (draft again)' where subject = 'Task Pending Approval'`.execute(s.db);
    t = await sync();
    assert.equal(t.exchange.updated, 3, JSON.stringify(t));
    assert.equal(byTitle('Task In Process')?.status, 'notStarted');
    assert.equal(byTitle('Call Lukas back')?.status, 'completed');
    assert.equal(byTitle('Task Open')?.status, 'waitingOnOthers');
    assert.equal(byTitle('Task Pending Approval')?.status, 'waitingOnOthers', 'a Draft task is not synced');
    const q = await sync();
    assert.deepEqual([q.exchange.updated, q.crm.updated], [0, 0]);
    assert.equal((await crm('Call Lukas back'))[0].status, 'Canceled', 'Canceled survives its completed echo');
  });

  it('carries subject, body, due date, reminder and importance edits, and deletes, both ways', async () => {
    await sql`update crm.tasks set due_date = ${day(6)}::date, priority = 'Low', description = 'Prices as agreed\nDelivery in May' where subject = 'Send the offer'`.execute(s.db);
    const legal = byTitle('Waiting for legal')!;
    s.emulator.admin.updateTask(ANNA, legal.id, {
      importance: 'high', isReminderOn: true, reminderDateTime: { dateTime: `${day(5)}T16:30:00`, timeZone: 'W. Europe Standard Time' },
    });
    let t = await sync();
    assert.deepEqual([t.exchange.updated, t.crm.updated], [1, 1], JSON.stringify(t));
    const offer = byTitle('Send the offer')!;
    assert.equal(offer.dueDateTime?.dateTime.slice(0, 10), day(6));
    assert.equal(offer.importance, 'low');
    assert.equal(bodyText(offer.body), 'Prices as agreed\nDelivery in May');
    const l = (await crm('Waiting for legal'))[0];
    assert.equal(l.priority, 'High');
    assert.equal(l.reminder_local, `${day(5)}T16:30:00`);
    assert.equal(l.time_zone, 'Europe/Berlin');

    s.emulator.admin.deleteTask(ANNA, byTitle('Task Completed')!.id);
    await sql`update crm.tasks set deleted_at = now() where subject = 'Task Approved (renamed)'`.execute(s.db);
    t = await sync();
    assert.deepEqual([t.exchange.deleted, t.crm.deleted], [1, 1], JSON.stringify(t));
    assert.equal((await crm('Task Completed'))[0].deleted, true);
    assert.equal(byTitle('Task Approved (renamed)'), undefined);
  });

  it('the status map is the policy\'s: a custom map syncs Draft ⇄ Deferred', async () => {
    const acumatica = {
      crmToExchange: { Open: 'notStarted', 'In Process': 'inProgress', Completed: 'completed', Canceled: 'completed', 'Pending Approval': 'waitingOnOthers', Approved: 'inProgress' },
      exchangeToCrm: { notStarted: 'Open', inProgress: 'In Process', completed: 'Completed', waitingOnOthers: 'Pending Approval' },
    };
    await s.operator.createPolicy('drafts-deferred', {
      task: { statusMap: { crmToExchange: { ...acumatica.crmToExchange, Draft: 'deferred' }, exchangeToCrm: { ...acumatica.exchangeToCrm, deferred: 'Draft' } } },
    });
    await s.operator.assign(ANNA, 'drafts-deferred');
    // Both changed so the feeds report them again: the Draft task in the CRM, the Deferred one in To Do.
    await sql`update crm.tasks set description = 'now synced' where subject = 'Task Draft'`.execute(s.db);
    s.emulator.admin.updateTask(ANNA, byTitle('Someday maybe')!.id, { importance: 'high' });
    const t = await sync();
    assert.deepEqual([t.exchange.created, t.crm.created], [1, 1], JSON.stringify(t));
    assert.equal(byTitle('Task Draft')?.status, 'deferred');
    assert.equal((await crm('Someday maybe'))[0].status, 'Draft');
    await s.operator.assign(ANNA, 'default');
  });

  it('finds a create whose answer was lost by its linked resource instead of creating it twice', async () => {
    await sql`insert into crm.tasks (owner_id, subject, status) values (${anna}::uuid, 'Lost answer', 'Open')`.execute(s.db);
    s.emulator.admin.injectFault(ANNA, { status: 504, count: 1, method: 'POST', pathPattern: '/tasks$', applyThenFail: true });
    const t = await sync();
    assert.equal(t.exchange.created, 1, JSON.stringify(t));
    assert.equal(todo().filter((x) => x.title === 'Lost answer').length, 1, 'exactly one To Do task');
    const lookups = s.emulator.recentRequests().filter((r) => /^GET .*\/tasks\?.*expand=linkedResources/i.test(decodeURIComponent(r)));
    assert.ok(lookups.length >= 1, 'the retry looked the task up by its linked resource');
    const q = await sync();
    assert.deepEqual([q.exchange.created, q.crm.created], [0, 0]);
  });
});
