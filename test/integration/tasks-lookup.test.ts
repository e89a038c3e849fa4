/**
 * The To Do lookup after a lost create answer, at the adapter level: the emulator through the production Graph
 * client and JSON batches, a list of more than a thousand tasks, and the lookup steps the Exchange cycle takes
 * (findBySyncId, then findNextPage while foundOf finds nothing). Graph cannot filter tasks by linked resource,
 * so a task beyond the first page must still be found, or a retried create would duplicate it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sendBatch, type GraphSubRequest } from '../../src/activities/exchange/batch';
import { TodoApi } from '../../src/activities/exchange/todo-api';
import type { ExchangeItem, RecordTypeAdapter } from '../../src/activities/record-types/adapter';
import { tasksAdapter } from '../../src/activities/record-types/tasks';
import type { TaskRecord } from '../../src/domain/task';
import { startGraphEmulator, type GraphEmulator } from '../../src/emulator';
import { freshDatabase } from '../helpers/database';
import { connect } from '../helpers/emulator-client';

const UPN = 'erin@contoso.test';
const LIST = 'VTasks';

/** What the cycle does for one 'find' operation: one request per round, each answer read by foundOf. */
async function lookUp(adapter: RecordTypeAdapter<TaskRecord>, listId: string, syncId: string): Promise<{ found?: ExchangeItem; requests: GraphSubRequest[] }> {
  const requests: GraphSubRequest[] = [];
  let request: GraphSubRequest | undefined = adapter.exchangeRequests.findBySyncId(UPN, listId, syncId);
  while (request) {
    requests.push(request);
    assert.ok(requests.length < 20, 'the lookup does not end');
    const [answer] = await sendBatch(adapter.graph, UPN, [request]);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const found = adapter.foundOf(answer.body, syncId);
    if (found) return { found, requests };
    request = adapter.findNextPage?.(answer.body, syncId);
  }
  return { requests };
}

describe('To Do lookup by sync id in a list of more than a thousand tasks', () => {
  let emu: GraphEmulator;
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let adapter: RecordTypeAdapter<TaskRecord>;
  let listId: string;
  const BULK = 1250;

  before(async () => {
    emu = await startGraphEmulator({ port: 0 });
    emu.admin.ensureMailbox(UPN, 'Erin');
    database = await freshDatabase();
    adapter = tasksAdapter(database.db, new TodoApi(connect(emu).client));
    listId = await adapter.ensureContainer(UPN, { name: LIST });
    // Tasks of the user and earlier syncs, written in bulk through the emulator's admin API (fast).
    for (let i = 0; i < BULK; i++) {
      const marked = i % 2 === 0;
      emu.admin.createTask(UPN, LIST, {
        title: `Earlier ${i}`,
        ...(marked ? { linkedResources: [{ applicationName: 'cxsync', externalId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, webUrl: `urn:cxsync:crm-task:crm-${i}` }] } : {}),
      });
    }
  });
  after(async () => {
    await emu?.close();
    await database?.drop();
  });

  test('a create whose answer was lost is found on a later page', async () => {
    const syncId = 'c0ffee00-0000-4000-8000-000000000001';
    const record: TaskRecord = { subject: 'Lost answer', status: 'notStarted', importance: 'normal' };
    const create = adapter.exchangeRequests.create(UPN, listId, record, { syncId, crmId: 'crm-lost' }, null);
    const [created] = await sendBatch(adapter.graph, UPN, [create]); // its answer is "lost": only the emulator knows the id
    assert.equal(created.status, 201);
    const id = (created.body as { id: string }).id;

    const all = emu.admin.listTasks(UPN, LIST);
    assert.equal(all.length, BULK + 1);
    assert.equal(all.findIndex((t) => t.id === id), BULK, 'the task is beyond the first thousand');

    const { found, requests } = await lookUp(adapter, listId, syncId);
    assert.equal(found?.id, id, 'found by its linked resource');
    assert.equal(requests.length, 2, 'the first page and the next one');
    assert.match(requests[1].url, /^\/users\/.*\/tasks\?.*\$skip=1000/, 'the nextLink, relative to the version root as a batch operation needs');
    assert.equal(requests[1].headers?.Prefer, 'outlook.timezone="UTC"', 'times in UTC on every page');
    assert.equal(found?.payload.title, 'Lost answer');
    assert.equal(found?.payload.linkedResources, undefined, 'the marker stays out of the payload');
  });

  test('a sync id on the first page needs one request; one that is nowhere ends after the last page', async () => {
    const first = await lookUp(adapter, listId, '00000000-0000-4000-8000-000000000010');
    assert.ok(first.found);
    assert.equal(first.requests.length, 1);

    const none = await lookUp(adapter, listId, 'deadbeef-0000-4000-8000-000000000000');
    assert.equal(none.found, undefined, 'not there: the create goes ahead');
    assert.equal(none.requests.length, 2, 'every page was read, and no more');
  });
});
