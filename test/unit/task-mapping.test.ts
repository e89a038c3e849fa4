/**
 * Task field mapping (src/domain/task.ts): To Do task ↔ TaskRecord ↔ CRM task row, and Acumatica's status
 * table. The record speaks To Do's statuses, so CRM statuses that share one (Completed and Canceled) are the
 * same record, and writing back keeps the CRM's own status.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprint } from '../../src/domain/fingerprint';
import type { Result } from '../../src/domain/result';
import {
  ACUMATICA_TASK_STATUS_MAP as MAP,
  CRM_TASK_STATUSES,
  crmStatusFor,
  crmTaskSynced,
  exchangeStatusOf,
  fromCrmTask,
  fromGraphTask,
  graphDueDate,
  toCrmTask,
  toGraphTask,
  validateTaskStatusMap,
  type TaskRecord,
  type GraphTask,
} from '../../src/domain/task';

function value<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got: ${r.error}`);
  return r.value;
}

describe('task status map (Acumatica)', () => {
  it('maps CRM statuses to To Do as the table says; Draft and Rejected are not synced', () => {
    const table: [string, string | undefined][] = [
      ['Open', 'notStarted'],
      ['Draft', undefined],
      ['In Process', 'inProgress'],
      ['Canceled', 'completed'],
      ['Completed', 'completed'],
      ['Approved', 'inProgress'],
      ['Pending Approval', 'waitingOnOthers'],
      ['Rejected', undefined],
    ];
    for (const [crm, ex] of table) assert.equal(exchangeStatusOf(crm, MAP), ex, crm);
    assert.deepEqual(CRM_TASK_STATUSES.filter((s) => !crmTaskSynced(s, MAP)), ['Draft', 'Rejected']);
  });

  it('maps To Do statuses back; Deferred is not synced', () => {
    assert.equal(crmStatusFor('notStarted', MAP), 'Open');
    assert.equal(crmStatusFor('inProgress', MAP), 'In Process');
    assert.equal(crmStatusFor('completed', MAP), 'Completed');
    assert.equal(crmStatusFor('waitingOnOthers', MAP), 'Pending Approval');
    assert.equal(crmStatusFor('deferred', MAP), undefined);
  });

  it('keeps the CRM status when it already corresponds (Canceled stays Canceled, Approved stays Approved)', () => {
    assert.equal(crmStatusFor('completed', MAP, 'Canceled'), 'Canceled');
    assert.equal(crmStatusFor('inProgress', MAP, 'Approved'), 'Approved');
    assert.equal(crmStatusFor('notStarted', MAP, 'Approved'), 'Open');
    assert.equal(crmStatusFor('completed', MAP, 'Draft'), 'Completed');
  });

  it('validates a configured map', () => {
    assert.equal(validateTaskStatusMap(MAP).ok, true);
    const r = validateTaskStatusMap({ crmToExchange: { Open: 'deferred' }, exchangeToCrm: {} });
    assert.match((r as { error: string }).error, /CRM Open becomes deferred in Exchange, but deferred does not map back/);
    assert.equal(validateTaskStatusMap({ crmToExchange: { Nope: 'completed' } as never, exchangeToCrm: { completed: 'Completed' } }).ok, false);
  });
});

const TASK: TaskRecord = {
  subject: 'Send the offer to Fabrikam',
  body: 'Prices as agreed\nDelivery in May',
  status: 'inProgress',
  importance: 'high',
  dueDate: '2025-03-31',
  reminder: '2025-03-31T07:00:00Z',
};

describe('To Do tasks', () => {
  it('writes the due date as midnight UTC and the reminder as wall time in the task zone', () => {
    const g = toGraphTask(TASK, { zone: 'Europe/Berlin' });
    assert.deepEqual(g.dueDateTime, { dateTime: '2025-03-31T00:00:00', timeZone: 'UTC' });
    assert.deepEqual(g.reminderDateTime, { dateTime: '2025-03-31T09:00:00', timeZone: 'W. Europe Standard Time' });
    assert.equal(g.isReminderOn, true);
    assert.equal(g.status, 'inProgress');
    assert.equal(g.title, TASK.subject);
  });

  it('reads its own write back (in UTC) as the same record', () => {
    const g = toGraphTask(TASK, { zone: 'Europe/Berlin' });
    const echo: GraphTask = {
      ...g,
      id: 'AAMkT1',
      dueDateTime: { dateTime: '2025-03-31T00:00:00.0000000', timeZone: 'UTC' },
      reminderDateTime: { dateTime: '2025-03-31T07:00:00.0000000', timeZone: 'UTC' },
      body: { content: `${TASK.body}\r\n`, contentType: 'text' },
      lastModifiedDateTime: '2025-03-01T10:00:00Z',
    };
    const back = value(fromGraphTask(echo, { userZone: 'Europe/Berlin' }));
    assert.deepEqual(back, TASK);
    assert.equal(fingerprint(back), fingerprint(TASK));
  });

  it('a due date To Do set at midnight in the user zone reads as that date, not the evening before', () => {
    assert.equal(graphDueDate({ dateTime: '2025-03-30T22:00:00.0000000', timeZone: 'UTC' }, 'Europe/Berlin'), '2025-03-31');
    assert.equal(graphDueDate({ dateTime: '2025-03-31T04:00:00.0000000', timeZone: 'UTC' }, 'America/New_York'), '2025-03-31');
    assert.equal(graphDueDate({ dateTime: '2025-03-31T00:00:00', timeZone: 'Eastern Standard Time' }, 'Europe/Berlin'), '2025-03-31');
  });

  it('an off reminder is no reminder; an unknown status is refused', () => {
    const base: GraphTask = { title: 't', status: 'notStarted', reminderDateTime: { dateTime: '2025-01-01T08:00:00', timeZone: 'UTC' }, isReminderOn: false };
    assert.equal(value(fromGraphTask(base)).reminder, undefined);
    const r = fromGraphTask({ ...base, status: 'paused' });
    assert.match((r as { error: string }).error, /status "paused"/);
    assert.match((fromGraphTask({ status: 'notStarted' }) as { error: string }).error, /no subject/);
  });
});

describe('CRM task rows', () => {
  it('round-trips through CRM columns; the reminder is kept as wall time + zone', () => {
    const w = value(toCrmTask(TASK, MAP, { userZone: 'Europe/Berlin' }));
    assert.deepEqual(w, {
      subject: TASK.subject,
      description: TASK.body,
      status: 'In Process',
      priority: 'High',
      due_date: '2025-03-31',
      reminder_local: '2025-03-31T09:00:00',
      time_zone: 'Europe/Berlin',
    });
    assert.deepEqual(value(fromCrmTask(w, MAP)), TASK);
  });

  it('a Canceled CRM task and its "completed" echo are the same record; the update keeps Canceled', () => {
    const canceled = value(fromCrmTask({ subject: 'Call back', status: 'Canceled', priority: 'Medium' }, MAP));
    const echo = value(fromGraphTask({ title: 'Call back', status: 'completed', importance: 'normal' }));
    assert.equal(fingerprint(canceled), fingerprint(echo));
    assert.equal(value(toCrmTask(echo, MAP, { current: { status: 'Canceled' } })).status, 'Canceled');
  });

  it('keeps the zone of an existing row for its reminder', () => {
    const w = value(toCrmTask(TASK, MAP, { current: { status: 'Open', time_zone: 'America/New_York' }, userZone: 'Europe/Berlin' }));
    assert.equal(w.reminder_local, '2025-03-31T03:00:00');
    assert.equal(w.time_zone, 'America/New_York');
  });

  it('refuses a status without counterpart (Draft), so the row is not synced', () => {
    assert.match((fromCrmTask({ subject: 'x', status: 'Draft' }, MAP) as { error: string }).error, /"Draft" has no counterpart/);
    assert.equal(toCrmTask({ ...TASK, status: 'deferred' }, MAP).ok, false);
  });
});
