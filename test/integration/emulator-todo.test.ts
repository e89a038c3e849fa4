/**
 * The emulator's Microsoft To Do lists and tasks through the production client stack: CRUD, status and
 * completedDateTime, linkedResources (the CRM link) round trip, tasks/delta paging and incremental rounds.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Client } from '@microsoft/microsoft-graph-client';
import { sendBatch } from '../../src/activities/exchange/batch';
import { TodoApi } from '../../src/activities/exchange/todo-api';
import { startGraphEmulator, type GraphEmulator } from '../../src/emulator';
import { connect, graphError } from '../helpers/emulator-client';

const UPN = 'dave@contoso.test';

type Item = Record<string, any>;
type DeltaPage = { value: Item[]; '@odata.nextLink'?: string; '@odata.deltaLink'?: string };

async function deltaRound(client: Client, start: string, pageSize?: number): Promise<DeltaPage[]> {
  const pages: DeltaPage[] = [];
  let url: string | undefined = start;
  while (url) {
    let req = client.api(url);
    if (pageSize) req = req.header('Prefer', `odata.maxpagesize=${pageSize}`);
    const page = (await req.get()) as DeltaPage;
    pages.push(page);
    url = page['@odata.nextLink'];
    assert.ok(pages.length < 100, 'delta round does not end');
  }
  return pages;
}
const items = (pages: DeltaPage[]) => pages.flatMap((p) => p.value);
const lastLink = (pages: DeltaPage[]) => pages[pages.length - 1]['@odata.deltaLink']!;

describe('Graph emulator: Microsoft To Do through the real client', () => {
  let emu: GraphEmulator;
  let client: Client;
  const base = `/users/${UPN}/todo/lists`;

  before(async () => {
    emu = await startGraphEmulator({ port: 0, maxTokenGenerations: 3 });
    emu.admin.ensureMailbox(UPN, 'Dave');
    client = connect(emu).client;
  });
  after(() => emu.close());

  test('the default list exists; a dedicated list is created and found by name', async () => {
    const lists = (await client.api(base).get()).value as Item[];
    assert.deepEqual(lists.map((l) => [l.displayName, l.wellknownListName]), [['Tasks', 'defaultList']]);
    const created = await client.api(base).post({ displayName: 'VTasks' });
    assert.equal(created.wellknownListName, 'none');
    assert.match(created['@odata.etag'], /^W\/"/);
    const found = await client.api(base).filter("displayName eq 'VTasks'").get();
    assert.deepEqual(found.value.map((l: Item) => l.id), [created.id]);
    const def = await client.api(base).filter("wellknownListName eq 'defaultList'").get();
    assert.equal(def.value[0].displayName, 'Tasks');
    const refuse = await graphError(client.api(`${base}/${def.value[0].id}`).delete());
    assert.equal(refuse.statusCode, 400);
  });

  test('task CRUD: fields, status and completedDateTime, etag, If-Match, delete', async () => {
    const list = await client.api(base).post({ displayName: 'Crud' });
    const tasks = `${base}/${list.id}/tasks`;
    const t = await client.api(tasks).post({
      title: 'Call Ada',
      body: { content: 'About the renewal', contentType: 'text' },
      importance: 'high',
      status: 'notStarted',
      dueDateTime: { dateTime: '2025-03-31T00:00:00', timeZone: 'Europe/Berlin' },
      reminderDateTime: { dateTime: '2025-03-30T09:00:00', timeZone: 'W. Europe Standard Time' },
      isReminderOn: true,
      categories: ['CRM'],
    });
    assert.equal(t.title, 'Call Ada');
    assert.equal(t.importance, 'high');
    assert.equal(t.status, 'notStarted');
    assert.deepEqual(t.body, { content: 'About the renewal', contentType: 'text' });
    assert.deepEqual(t.dueDateTime, { dateTime: '2025-03-30T22:00:00.0000000', timeZone: 'UTC' }, 'Berlin is UTC+2 after 30 March');
    assert.deepEqual(t.reminderDateTime, { dateTime: '2025-03-30T07:00:00.0000000', timeZone: 'UTC' });
    assert.equal(t.completedDateTime, undefined);
    assert.equal(t.isReminderOn, true);
    assert.match(t['@odata.etag'], /^W\/"/);

    const inBerlin = await client.api(`${tasks}/${t.id}`).header('Prefer', 'outlook.timezone="Europe/Berlin"').get();
    assert.deepEqual(inBerlin.dueDateTime, { dateTime: '2025-03-31T00:00:00.0000000', timeZone: 'Europe/Berlin' });

    const done = await client.api(`${tasks}/${t.id}`).header('If-Match', t['@odata.etag']).patch({ status: 'completed' });
    assert.equal(done.status, 'completed');
    assert.ok(done.completedDateTime?.dateTime, 'completing stamps completedDateTime');
    assert.notEqual(done['@odata.etag'], t['@odata.etag']);
    const stale = await graphError(client.api(`${tasks}/${t.id}`).header('If-Match', t['@odata.etag']).patch({ title: 'lost' }));
    assert.equal(stale.statusCode, 412);
    const reopened = await client.api(`${tasks}/${t.id}`).patch({ status: 'waitingOnOthers', dueDateTime: null });
    assert.equal(reopened.completedDateTime, undefined);
    assert.equal(reopened.dueDateTime, undefined);
    assert.equal(reopened.title, 'Call Ada');

    const badStatus = await graphError(client.api(tasks).post({ title: 'x', status: 'draft' }));
    assert.equal(badStatus.statusCode, 400);
    const unknown = await graphError(client.api(tasks).post({ title: 'x', subject: 'not a task field' }));
    assert.equal(unknown.code, 'RequestBodyRead');

    const open = await client.api(tasks).filter("status ne 'completed'").get();
    assert.deepEqual(open.value.map((x: Item) => x.id), [t.id]);

    await client.api(`${tasks}/${t.id}`).delete();
    const gone = await graphError(client.api(`${tasks}/${t.id}`).get());
    assert.equal(gone.statusCode, 404);
  });

  test('linkedResources: the CRM link round-trips through create, expand, list and its own collection', async () => {
    const list = await client.api(base).post({ displayName: 'Linked' });
    const tasks = `${base}/${list.id}/tasks`;
    const link = { webUrl: 'https://crm.example/tasks/42', applicationName: 'cxsync', displayName: 'CRM task 42', externalId: 'crm-task-42' };
    const t = await client.api(tasks).post({ title: 'Linked task', linkedResources: [link] });
    assert.equal(t.linkedResources.length, 1);
    assert.equal(t.linkedResources[0].externalId, 'crm-task-42');
    assert.ok(t.linkedResources[0].id);

    const two = await graphError(client.api(tasks).post({ title: 'x', linkedResources: [link, { ...link, externalId: 'other' }] }));
    assert.equal(two.statusCode, 400);
    assert.equal(two.message, 'Only one item in linkedResources is allowed.');

    const plain = await client.api(`${tasks}/${t.id}`).get();
    assert.equal(plain.linkedResources, undefined, 'linkedResources come with $expand');
    const expanded = await client.api(`${tasks}/${t.id}`).expand('linkedResources').get();
    assert.deepEqual({ ...expanded.linkedResources[0], id: undefined }, { ...link, id: undefined });

    const other = await client.api(tasks).post({ title: 'Another' });
    const lr = await client.api(`${tasks}/${other.id}/linkedResources`).post({ ...link, externalId: 'crm-task-43' });
    assert.equal(lr.externalId, 'crm-task-43');
    assert.deepEqual((await client.api(`${tasks}/${other.id}/linkedResources`).get()).value.map((x: Item) => x.externalId), ['crm-task-43']);

    // Graph has no $filter on linkedResources: the sync lists (or reads delta) with $expand and matches.
    const filtered = await graphError(client.api(tasks).filter("linkedResources/any(l: l/externalId eq 'crm-task-42')").get());
    assert.equal(filtered.statusCode, 400);
    const all = (await client.api(tasks).expand('linkedResources').get()).value as Item[];
    const byExternal = new Map(all.flatMap((x) => (x.linkedResources as Item[]).map((l) => [l.externalId, x.id] as const)));
    assert.equal(byExternal.get('crm-task-42'), t.id);
    assert.equal(byExternal.get('crm-task-43'), other.id);
  });

  test('a list of more than a thousand tasks is read in $top pages; the absolute nextLink keeps $expand and works in a $batch', async () => {
    // Graph documents no filter on linked resources (todotasklist-list-tasks.md): a lookup by sync id has to
    // read every page, following @odata.nextLink (paging.md), which the sync sends as a batch operation.
    const list = await client.api(base).post({ displayName: 'Big' });
    const tasks = `${base}/${list.id}/tasks`;
    const total = 1203;
    for (let i = 0; i < total; i++) emu.admin.createTask(UPN, 'Big', { title: `Bulk ${i}`, linkedResources: [{ applicationName: 'cxsync', externalId: `sync-${i}` }] });

    const first = (await client.api(`${tasks}?$top=1000&$expand=linkedResources`).get()) as DeltaPage;
    assert.equal(first.value.length, 1000);
    const next = first['@odata.nextLink']!;
    assert.ok(next.startsWith(`${emu.graphBaseUrl}${tasks}?`), `an absolute link, as Graph gives: ${next}`);
    const query = new URL(next).searchParams;
    assert.equal(query.get('$expand'), 'linkedResources', 'the link keeps the query options of the first request');
    assert.equal(query.get('$top'), '1000');

    const second = (await client.api(next).get()) as DeltaPage;
    assert.equal(second.value.length, total - 1000);
    assert.equal(second['@odata.nextLink'], undefined, 'the last page has no nextLink');
    const externalIds = [...first.value, ...second.value].map((x) => (x.linkedResources as Item[])[0].externalId as string);
    assert.equal(new Set(externalIds).size, total, 'every task once, with its linked resources');
    assert.ok(!first.value.some((x) => (x.linkedResources as Item[])[0].externalId === `sync-${total - 1}`), 'the last task is beyond the first page');

    const [answer] = await sendBatch(client, UPN, [new TodoApi(client).nextPageRequest(next)]);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual((answer.body as DeltaPage).value.map((x) => x.id), second.value.map((x) => x.id), 'the nextLink as a batch operation reads the same page');
  });

  test('tasks/delta: paged first round, incremental round with updates and deletions, expand kept in the token', async () => {
    const list = await client.api(base).post({ displayName: 'Delta' });
    const tasks = `${base}/${list.id}/tasks`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.api(tasks).post({ title: `T${i}`, linkedResources: [{ applicationName: 'cxsync', externalId: `crm-${i}` }] })).id);

    const round1 = await deltaRound(client, `${tasks}/delta?$expand=linkedResources`, 2);
    assert.deepEqual(round1.map((p) => p.value.length), [2, 2, 1]);
    for (const p of round1.slice(0, -1)) {
      assert.ok(p['@odata.nextLink']?.startsWith(`${emu.graphBaseUrl}${tasks}/delta?$skiptoken=`));
      assert.equal(p['@odata.deltaLink'], undefined);
    }
    assert.ok(lastLink(round1).startsWith(`${emu.graphBaseUrl}${tasks}/delta?$deltatoken=`));
    assert.deepEqual(items(round1).map((x) => x.id).sort(), [...ids].sort());
    assert.deepEqual(items(round1).map((x) => x.linkedResources[0].externalId).sort(), ['crm-0', 'crm-1', 'crm-2', 'crm-3', 'crm-4']);

    emu.admin.updateTask(UPN, ids[1], { status: 'inProgress' });
    await client.api(`${tasks}/${ids[3]}`).delete();
    emu.admin.deleteTask(UPN, ids[4]);
    const added = emu.admin.createTask(UPN, 'Delta', { title: 'From the user' });
    const round2 = await deltaRound(client, lastLink(round1), 2);
    const changes = items(round2);
    assert.equal(changes.length, 4);
    assert.equal(changes.find((x) => x.id === ids[1])?.status, 'inProgress');
    assert.equal(changes.find((x) => x.id === ids[1])?.linkedResources[0].externalId, 'crm-1', '$expand survives into the next round');
    assert.deepEqual(changes.find((x) => x.id === ids[3]), { '@odata.type': '#microsoft.graph.todoTask', id: ids[3], '@removed': { reason: 'deleted' } });
    assert.ok(changes.find((x) => x.id === ids[4])?.['@removed']);
    assert.equal(changes.find((x) => x.id === added.id)?.title, 'From the user');

    const round3 = await deltaRound(client, lastLink(round2));
    assert.deepEqual(items(round3), []);

    // Full rounds report what is there, not what used to be.
    const fresh = items(await deltaRound(client, `${tasks}/delta`));
    assert.deepEqual(fresh.map((x) => x.id).sort(), [ids[0], ids[1], ids[2], added.id].sort());
    assert.ok(fresh.every((x) => !x['@removed']));
  });

  test('tasks/delta tokens expire into 410 SyncStateNotFound; lists are separate', async () => {
    const a = await client.api(base).post({ displayName: 'ExpireA' });
    const b = await client.api(base).post({ displayName: 'ExpireB' });
    await client.api(`${base}/${a.id}/tasks`).post({ title: 'in A' });
    const linkA = lastLink(await deltaRound(client, `${base}/${a.id}/tasks/delta`));
    await client.api(`${base}/${b.id}/tasks`).post({ title: 'in B' });
    assert.deepEqual(items(await deltaRound(client, linkA)), [], 'a change in another list is not in this list\'s delta');
    let link = linkA;
    for (let i = 0; i < 3; i++) link = lastLink(await deltaRound(client, link));
    const evicted = await graphError(client.api(linkA).get());
    assert.equal(evicted.statusCode, 410);
    assert.equal(evicted.code, 'SyncStateNotFound');
    emu.admin.expireDeltaTokens(UPN);
    assert.equal((await graphError(client.api(link).get())).statusCode, 410);
  });
});

describe('Graph emulator: To Do persistence', () => {
  test('lists, tasks with linkedResources and deltaLinks survive a restart', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxsync-emu-todo-'));
    try {
      let emu = await startGraphEmulator({ port: 0, dataDir });
      const port = Number(new URL(emu.origin).port);
      emu.admin.ensureMailbox(UPN);
      const t = emu.admin.createTask(UPN, 'VTasks', { title: 'Persisted', linkedResources: [{ externalId: 'crm-p' }] });
      const conn = connect(emu);
      const link = lastLink(await deltaRound(conn.client, `/users/${UPN}/todo/lists/${t.listId}/tasks/delta`));
      await emu.close();

      emu = await startGraphEmulator({ port, dataDir });
      try {
        const listed = emu.admin.listTasks(UPN, 'VTasks');
        assert.deepEqual(listed.map((x) => [x.id, (x.linkedResources as Item[])[0].externalId]), [[t.id, 'crm-p']]);
        emu.admin.updateTask(UPN, t.id, { title: 'Again' });
        const round = items(await deltaRound(connect(emu).client, link));
        assert.deepEqual(round.map((x) => x.title), ['Again']);
      } finally {
        await emu.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
