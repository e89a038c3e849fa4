/**
 * Microsoft To Do under /users/{u}/todo: task lists (the well-known defaultList "Tasks" always exists), tasks,
 * their linkedResources, and tasks/delta with nextLink/deltaLink/@removed like contact delta. State lives on
 * the mailbox object under `todo` (saved with it in state.json); delta round generations are the store's.
 */
import { INITIAL_ROUND } from './delta';
import crypto from 'node:crypto';
import { checkIfMatch, parseDateTimeTimeZone, preferences, unknownProperty } from './outlook-common';
import { newChangeKey, nowIso, type EventTime } from './calendar-store';
import { GraphHttpError, badRequest, notFound } from './errors';
import { parsePrefer, parseSelect } from './query';
import { parseRecurrence } from './recurrence';
import { methodNotAllowed, noResource, ok, pageOf, type GraphContext, type GraphRequest, type GraphResponse } from './route-kit';
import { newItemId, type Mailbox, type Store } from './store';
import { formatWall, instantToWall, resolveZone, wallToInstant } from './timezones';

export interface TodoList {
  id: string;
  displayName: string;
  wellknownListName: 'defaultList' | 'none';
  changeKey: string;
}

export interface LinkedResource {
  id: string;
  webUrl: string | null;
  applicationName: string | null;
  displayName: string | null;
  externalId: string | null;
}

export interface StoredTask {
  id: string;
  listId: string;
  changeKey: string;
  createdDateTime: string;
  lastModifiedDateTime: string;
  bodyLastModifiedDateTime: string;
  seq: number;
  /** title, body, status, importance, isReminderOn, categories, recurrence; times below. */
  fields: Record<string, unknown>;
  times: Partial<Record<TimeField, EventTime>>;
  linkedResources: LinkedResource[];
}

type TimeField = 'dueDateTime' | 'reminderDateTime' | 'completedDateTime' | 'startDateTime';
const TIME_FIELDS: TimeField[] = ['dueDateTime', 'reminderDateTime', 'completedDateTime', 'startDateTime'];

interface TodoLogEntry {
  listId: string;
  id: string;
  seq: number;
  removed: boolean;
}

export interface TodoState {
  seq: number;
  defaultListId: string;
  lists: Record<string, TodoList>;
  tasks: Record<string, StoredTask>;
  entries: Record<string, TodoLogEntry>;
}

type MailboxWithTodo = Mailbox & { todo?: TodoState };

export function todoState(store: Store, mb: Mailbox): TodoState {
  const m = mb as MailboxWithTodo;
  if (!m.todo) {
    const id = newListId();
    m.todo = {
      seq: 0,
      defaultListId: id,
      lists: { [id]: { id, displayName: 'Tasks', wellknownListName: 'defaultList', changeKey: newChangeKey() } },
      tasks: {},
      entries: {},
    };
    store.changed();
  }
  return m.todo;
}

function newListId(): string {
  return 'AAMkA' + crypto.randomBytes(36).toString('base64url') + 'AAA=';
}

const invalidRequest = (message: string) => new GraphHttpError(400, 'invalidRequest', message);
const roundKey = (listId: string) => `todo:${listId}`;

// ---- lists ---------------------------------------------------------------------------------------

function findList(state: TodoState, id: string): TodoList {
  const l = state.lists[id];
  if (!l) throw notFound('The specified object was not found in the store.');
  return l;
}

export function listByName(state: TodoState, name: string): TodoList | undefined {
  return Object.values(state.lists).find((l) => l.displayName.toLowerCase() === name.toLowerCase());
}

export function createList(store: Store, state: TodoState, displayName: string): TodoList {
  // To Do allows lists with the same name (it shows them as "Name (1)"); Graph does not refuse them.
  const l: TodoList = { id: newListId(), displayName, wellknownListName: 'none', changeKey: newChangeKey() };
  state.lists[l.id] = l;
  store.changed();
  return l;
}

function listName(body: unknown): string {
  const b = (body ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!['displayName', 'id', '@odata.type', '@odata.etag', 'isOwner', 'isShared', 'wellknownListName'].includes(k)) throw unknownProperty(k, 'microsoft.graph.todoTaskList');
  }
  if (typeof b.displayName !== 'string' || !b.displayName.trim()) throw invalidRequest('The displayName of a list is required.');
  return b.displayName;
}

function renderList(l: TodoList): Record<string, unknown> {
  return { '@odata.etag': `W/"${l.changeKey}"`, displayName: l.displayName, isOwner: true, isShared: false, wellknownListName: l.wellknownListName, id: l.id };
}

function deleteList(store: Store, mb: Mailbox, state: TodoState, l: TodoList): void {
  if (l.wellknownListName !== 'none') throw invalidRequest('A well-known list cannot be deleted.');
  for (const t of Object.values(state.tasks)) if (t.listId === l.id) delete state.tasks[t.id];
  for (const [k, e] of Object.entries(state.entries)) if (e.listId === l.id) delete state.entries[k];
  delete mb.rounds[roundKey(l.id)];
  delete state.lists[l.id];
  store.changed();
}

// ---- tasks ---------------------------------------------------------------------------------------

const STATUSES = ['notStarted', 'inProgress', 'completed', 'waitingOnOthers', 'deferred'];
const IMPORTANCES = ['low', 'normal', 'high'];
const READ_ONLY = new Set(['id', 'createdDateTime', 'lastModifiedDateTime', 'bodyLastModifiedDateTime', 'hasAttachments', '@odata.type', '@odata.etag', '@odata.context']);

function enumValue(name: string, v: unknown, allowed: string[]): string {
  const hit = allowed.find((a) => a.toLowerCase() === String(v).toLowerCase());
  if (typeof v !== 'string' || !hit) throw invalidRequest(`Invalid value '${String(v)}' for property '${name}'.`);
  return hit;
}

export interface TaskWrite {
  fields: Record<string, unknown>;
  times: Partial<Record<TimeField, EventTime | null>>;
  linkedResources?: LinkedResource[];
}

function parseLinkedResource(v: unknown): LinkedResource {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw badRequest('RequestBodyRead', 'A linkedResource must be an object.');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['webUrl', 'applicationName', 'displayName', 'externalId', 'id', '@odata.type', '@odata.etag'].includes(k)) throw unknownProperty(k, 'microsoft.graph.linkedResource');
  }
  const str = (k: string): string | null => {
    const x = o[k];
    if (x != null && typeof x !== 'string') throw badRequest('RequestBodyRead', `Cannot convert the literal for property '${k}' to the expected type 'Edm.String'.`);
    return (x as string | undefined) ?? null;
  };
  return { id: crypto.randomUUID(), webUrl: str('webUrl'), applicationName: str('applicationName'), displayName: str('displayName'), externalId: str('externalId') };
}

export function parseTaskBody(body: unknown, creating: boolean): TaskWrite {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('RequestBodyRead', 'The request body must be a JSON object.');
  const w: TaskWrite = { fields: {}, times: {} };
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (READ_ONLY.has(k) || k.includes('@odata.')) continue;
    if (k === 'title') {
      if (v != null && typeof v !== 'string') throw invalidRequest("Invalid value for property 'title'.");
      w.fields.title = v ?? '';
    } else if (k === 'body') {
      const b = (v ?? {}) as Record<string, unknown>;
      for (const bk of Object.keys(b)) if (bk !== 'content' && bk !== 'contentType' && bk !== '@odata.type') throw unknownProperty(bk, 'microsoft.graph.itemBody');
      w.fields.body = { content: typeof b.content === 'string' ? b.content : '', contentType: b.contentType === undefined ? 'text' : enumValue('contentType', b.contentType, ['text', 'html']) };
    } else if (k === 'status') {
      w.fields.status = enumValue(k, v, STATUSES);
    } else if (k === 'importance') {
      w.fields.importance = enumValue(k, v, IMPORTANCES);
    } else if (k === 'isReminderOn') {
      if (typeof v !== 'boolean') throw invalidRequest("Invalid value for property 'isReminderOn'.");
      w.fields.isReminderOn = v;
    } else if (k === 'categories') {
      if (!Array.isArray(v) || v.some((c) => typeof c !== 'string')) throw invalidRequest("Invalid value for property 'categories'.");
      w.fields.categories = v;
    } else if ((TIME_FIELDS as string[]).includes(k)) {
      w.times[k as TimeField] = v === null ? null : parseDateTimeTimeZone(v, k);
    } else if (k === 'recurrence') {
      w.fields.recurrence = v === null ? null : parseRecurrence(v, 'UTC');
    } else if (k === 'linkedResources') {
      if (!creating) throw invalidRequest('linkedResources cannot be updated through the task; use its linkedResources collection.');
      if (!Array.isArray(v)) throw badRequest('RequestBodyRead', "Cannot convert the literal for property 'linkedResources' to the expected type 'Collection(microsoft.graph.linkedResource)'.");
      if (v.length > 1) throw invalidRequest('Only one item in linkedResources is allowed.');
      w.linkedResources = v.map(parseLinkedResource);
    } else if (['checklistItems', 'attachments', 'extensions'].includes(k)) {
      throw badRequest('ErrorInvalidRequest', `Setting '${k}' is not supported by this emulator.`);
    } else {
      throw unknownProperty(k, 'microsoft.graph.todoTask');
    }
  }
  return w;
}

function touch(store: Store, state: TodoState, t: StoredTask): void {
  t.seq = ++state.seq;
  t.changeKey = newChangeKey();
  t.lastModifiedDateTime = nowIso();
  state.entries[t.id] = { listId: t.listId, id: t.id, seq: t.seq, removed: false };
  store.changed();
}

function applyWrite(t: StoredTask, w: TaskWrite): void {
  if (w.fields.body !== undefined) t.bodyLastModifiedDateTime = nowIso();
  Object.assign(t.fields, w.fields);
  for (const [k, v] of Object.entries(w.times) as Array<[TimeField, EventTime | null]>) {
    if (v === null) delete t.times[k];
    else t.times[k] = v;
  }
  // Completing a task stamps completedDateTime; reopening it clears it, as To Do does.
  if (t.fields.status === 'completed' && !t.times.completedDateTime) {
    const now = Date.now();
    t.times.completedDateTime = { wall: now - (now % 1000), timeZone: 'UTC' };
  }
  if (t.fields.status !== 'completed') delete t.times.completedDateTime;
}

export function createTask(store: Store, state: TodoState, listId: string, w: TaskWrite): StoredTask {
  findList(state, listId);
  const now = nowIso();
  const t: StoredTask = {
    id: newItemId(),
    listId,
    changeKey: '',
    createdDateTime: now,
    lastModifiedDateTime: now,
    bodyLastModifiedDateTime: now,
    seq: 0,
    fields: {},
    times: {},
    linkedResources: w.linkedResources ?? [],
  };
  applyWrite(t, w);
  state.tasks[t.id] = t;
  touch(store, state, t);
  return t;
}

export function updateTask(store: Store, state: TodoState, t: StoredTask, w: TaskWrite): StoredTask {
  applyWrite(t, w);
  touch(store, state, t);
  return t;
}

export function deleteTask(store: Store, state: TodoState, t: StoredTask): void {
  delete state.tasks[t.id];
  state.entries[t.id] = { listId: t.listId, id: t.id, seq: ++state.seq, removed: true };
  store.changed();
}

function findTask(state: TodoState, listId: string, id: string): StoredTask {
  const t = state.tasks[id];
  if (!t || t.listId !== listId) throw notFound('The specified object was not found in the store.');
  return t;
}

interface TaskRenderOptions {
  zoneName: string;
  zone: string;
  select?: string[];
  expandLinked: boolean;
  /** Creates answer with the linkedResources they were given. */
  withLinked?: boolean;
}

const TASK_PROPS = new Set(['importance', 'isReminderOn', 'status', 'title', 'createdDateTime', 'lastModifiedDateTime', 'bodyLastModifiedDateTime', 'hasAttachments', 'categories', 'id', 'body', 'recurrence', ...TIME_FIELDS]);

export function renderTask(t: StoredTask, opts: TaskRenderOptions): Record<string, unknown> {
  const full: Record<string, unknown> = {
    '@odata.etag': `W/"${t.changeKey}"`,
    importance: t.fields.importance ?? 'normal',
    isReminderOn: t.fields.isReminderOn ?? false,
    status: t.fields.status ?? 'notStarted',
    title: t.fields.title ?? '',
    createdDateTime: t.createdDateTime,
    lastModifiedDateTime: t.lastModifiedDateTime,
    bodyLastModifiedDateTime: t.bodyLastModifiedDateTime,
    hasAttachments: false,
    categories: t.fields.categories ?? [],
    id: t.id,
    body: t.fields.body ?? { content: '', contentType: 'text' },
  };
  // dateTimeTimeZone properties that are not set are left out, as To Do does.
  for (const k of TIME_FIELDS) {
    const v = t.times[k];
    if (!v) continue;
    const instant = wallToInstant(resolveZone(v.timeZone) ?? 'UTC', v.wall);
    full[k] = { dateTime: formatWall(instantToWall(opts.zone, instant)), timeZone: opts.zoneName };
  }
  if (t.fields.recurrence) full.recurrence = t.fields.recurrence;
  let out = full;
  if (opts.select) {
    out = { '@odata.etag': full['@odata.etag'], id: t.id };
    for (const s of opts.select) if (s in full) out[s] = full[s];
  }
  if (opts.expandLinked || (opts.withLinked && t.linkedResources.length)) out.linkedResources = t.linkedResources.map(renderLinked);
  return out;
}

function renderLinked(l: LinkedResource): Record<string, unknown> {
  return { applicationName: l.applicationName, displayName: l.displayName, externalId: l.externalId, id: l.id, webUrl: l.webUrl };
}

function taskRenderOptions(req: GraphRequest, selectRaw?: string | null, expandRaw?: string | null): TaskRenderOptions {
  const p = preferences(req);
  const select = parseSelect(selectRaw ?? req.query.get('$select'));
  for (const s of select ?? []) if (!TASK_PROPS.has(s) && s !== 'linkedResources') throw badRequest('BadRequest', `Could not find a property named '${s}' on type 'microsoft.graph.todoTask'.`);
  const expand = (expandRaw ?? req.query.get('$expand'))?.trim();
  if (expand && !/^linkedResources$/i.test(expand)) throw badRequest('BadRequest', `Parsing OData Select and Expand failed: Could not find a property named '${expand}' on type 'microsoft.graph.todoTask'.`);
  return { zoneName: p.zoneName, zone: p.zone, select: select?.filter((s) => s !== 'linkedResources'), expandLinked: !!expand || !!select?.includes('linkedResources') };
}

/**
 * The $filter forms the sync uses on tasks: `status|importance|title eq|ne '…'`. A filter on linkedResources is
 * refused: Graph documents none (todotasklist-list-tasks.md, linkedresource.md), so a client that finds tasks
 * by linked resource must page through the list (paging.md) — the emulator does not let it rely on more.
 */
function taskFilter(filter: string | null): ((t: StoredTask) => boolean) | undefined {
  if (!filter?.trim()) return undefined;
  const m = /^(status|importance|title)\s+(eq|ne)\s+'((?:[^']|'')*)'$/i.exec(filter.trim());
  if (!m) throw invalidRequest(`Invalid filter clause: the query filter '${filter}' is not supported.`);
  const field = m[1].toLowerCase() === 'title' ? 'title' : m[1].toLowerCase();
  const want = m[3].replace(/''/g, "'").toLowerCase();
  const defaults: Record<string, string> = { status: 'notStarted', importance: 'normal', title: '' };
  return (t) => (String(t.fields[field] ?? defaults[field]).toLowerCase() === want) === (m[2].toLowerCase() === 'eq');
}

// ---- routes --------------------------------------------------------------------------------------

/** `rest` is the path after /users/{u}/todo. */
export function handleTodo(ctx: GraphContext, req: GraphRequest, mb: Mailbox, rest: string[]): GraphResponse {
  const state = todoState(ctx.store, mb);
  const m = req.method;
  if (rest[0]?.toLowerCase() !== 'lists') throw noResource(rest[0] ?? 'todo');
  if (rest.length === 1) {
    if (m === 'GET') {
      const f = req.query.get('$filter');
      let lists = Object.values(state.lists);
      if (f) {
        const fm = /^(displayName|wellknownListName)\s+eq\s+'((?:[^']|'')*)'$/i.exec(f.trim());
        if (!fm) throw invalidRequest(`Invalid filter clause: the query filter '${f}' is not supported.`);
        const want = fm[2].replace(/''/g, "'").toLowerCase();
        lists = lists.filter((l) => (fm[1].toLowerCase() === 'displayname' ? l.displayName : l.wellknownListName).toLowerCase() === want);
      }
      return pageOf(ctx, req, lists.map(renderList), `users('${mb.upn}')/todo/lists`, undefined, 100);
    }
    if (m === 'POST') return { status: 201, body: renderList(createList(ctx.store, state, listName(req.body))) };
    throw methodNotAllowed();
  }
  const list = findList(state, rest[1]);
  if (rest.length === 2) {
    if (m === 'GET') return ok(renderList(list));
    if (m === 'PATCH') {
      list.displayName = listName(req.body);
      list.changeKey = newChangeKey();
      ctx.store.changed();
      return ok(renderList(list));
    }
    if (m === 'DELETE') {
      deleteList(ctx.store, mb, state, list);
      return { status: 204 };
    }
    throw methodNotAllowed();
  }
  if (rest[2].toLowerCase() !== 'tasks') throw noResource(rest[2]);
  const tasksPath = `users('${mb.upn}')/todo/lists('${list.id}')/tasks`;
  if (rest.length === 3) {
    if (m === 'GET') {
      const filter = taskFilter(req.query.get('$filter'));
      const opts = taskRenderOptions(req);
      const all = Object.values(state.tasks).filter((t) => t.listId === list.id && (!filter || filter(t)));
      return pageOf(ctx, req, all.map((t) => renderTask(t, opts)), tasksPath, undefined, 100);
    }
    if (m === 'POST') {
      const t = createTask(ctx.store, state, list.id, parseTaskBody(req.body, true));
      return { status: 201, body: renderTask(t, { ...taskRenderOptions(req), withLinked: true }) };
    }
    throw methodNotAllowed();
  }
  if (rest.length === 4 && rest[3].toLowerCase() === 'delta') {
    if (m !== 'GET') throw methodNotAllowed();
    return delta(ctx, req, mb, state, list);
  }
  const task = findTask(state, list.id, rest[3]);
  if (rest.length === 4) {
    if (m === 'GET') return ok(renderTask(task, taskRenderOptions(req)));
    if (m === 'PATCH') {
      checkIfMatch(req, task.changeKey);
      return ok(renderTask(updateTask(ctx.store, state, task, parseTaskBody(req.body, false)), taskRenderOptions(req)));
    }
    if (m === 'DELETE') {
      checkIfMatch(req, task.changeKey);
      deleteTask(ctx.store, state, task);
      return { status: 204 };
    }
    throw methodNotAllowed();
  }
  if (rest[4].toLowerCase() !== 'linkedresources') throw noResource(rest[4]);
  if (rest.length === 5) {
    if (m === 'GET') return pageOf(ctx, req, task.linkedResources.map(renderLinked), `${tasksPath}('${task.id}')/linkedResources`, undefined, 100);
    if (m === 'POST') {
      const l = parseLinkedResource(req.body);
      task.linkedResources.push(l);
      touch(ctx.store, state, task);
      return { status: 201, body: renderLinked(l) };
    }
    throw methodNotAllowed();
  }
  if (rest.length === 6) {
    const idx = task.linkedResources.findIndex((l) => l.id === rest[5]);
    if (idx < 0) throw notFound('The specified object was not found in the store.');
    if (m === 'GET') return ok(renderLinked(task.linkedResources[idx]));
    if (m === 'PATCH') {
      const patch = parseLinkedResource(req.body);
      const cur = task.linkedResources[idx];
      const b = req.body as Record<string, unknown>;
      for (const k of ['webUrl', 'applicationName', 'displayName', 'externalId'] as const) if (k in b) cur[k] = patch[k];
      touch(ctx.store, state, task);
      return ok(renderLinked(cur));
    }
    if (m === 'DELETE') {
      task.linkedResources.splice(idx, 1);
      touch(ctx.store, state, task);
      return { status: 204 };
    }
    throw methodNotAllowed();
  }
  throw noResource(rest[rest.length - 1]);
}

// ---- delta ---------------------------------------------------------------------------------------

interface TaskToken {
  t: 'n' | 'd';
  m: string;
  l: string;
  r: number;
  from: number;
  hw: number;
  after?: number;
  sel?: string;
  exp?: string;
}

function encode(t: TaskToken): string {
  return Buffer.from(JSON.stringify(t)).toString('base64url');
}

function decode(token: string): TaskToken {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as TaskToken;
    if ((t.t !== 'n' && t.t !== 'd') || typeof t.l !== 'string' || typeof t.r !== 'number') throw new Error('shape');
    return t;
  } catch {
    throw badRequest('BadRequest', 'The delta token is malformed.');
  }
}

function delta(ctx: GraphContext, req: GraphRequest, mb: Mailbox, state: TodoState, list: TodoList): GraphResponse {
  const prefer = parsePrefer(req.headers['prefer']);
  const pageSize = prefer.maxPageSize ?? ctx.maxPageSize;
  const skiptoken = req.query.get('$skiptoken');
  const deltatoken = req.query.get('$deltatoken');
  const key = roundKey(list.id);
  let round: number;
  let from: number;
  let hw: number;
  let after: number;
  let sel = req.query.get('$select') ?? undefined;
  let exp = req.query.get('$expand') ?? undefined;
  const token = skiptoken ?? deltatoken;
  if (token) {
    const t = decode(token);
    if (t.l !== list.id) throw badRequest('BadRequest', 'The delta token belongs to another list.');
    if ((skiptoken && t.t !== 'n') || (deltatoken && t.t !== 'd')) throw badRequest('BadRequest', 'The delta token is malformed.');
    if (t.m !== mb.incarnation || !ctx.store.roundIsLive(mb, key, t.r)) {
      throw new GraphHttpError(410, 'SyncStateNotFound', 'The sync state generation is not found. Please do a full sync.');
    }
    sel = t.sel;
    exp = t.exp;
    if (t.t === 'n') {
      round = t.r;
      from = t.from;
      hw = t.hw;
      after = t.after ?? t.from;
    } else {
      round = ctx.store.startRound(mb, key);
      from = t.hw;
      hw = state.seq;
      after = from;
    }
  } else {
    round = ctx.store.startRound(mb, key);
    from = INITIAL_ROUND;
    hw = state.seq;
    after = 0;
  }
  const opts = taskRenderOptions(req, sel ?? null, exp ?? null);
  const candidates = Object.values(state.entries)
    .filter((e) => e.listId === list.id && e.seq > after && e.seq <= hw && !(from === INITIAL_ROUND && e.removed))
    .sort((a, b) => a.seq - b.seq);
  const pageEntries = candidates.slice(0, pageSize);
  const value = pageEntries.map((e) => {
    const t = state.tasks[e.id];
    return e.removed || !t ? { '@odata.type': '#microsoft.graph.todoTask', id: e.id, '@removed': { reason: 'deleted' } } : renderTask(t, opts);
  });
  const base: TaskToken = { t: 'd', m: mb.incarnation, l: list.id, r: round, from, hw, ...(sel ? { sel } : {}), ...(exp ? { exp } : {}) };
  const link = `${ctx.graphBaseUrl}${req.rawPath}`;
  const body: Record<string, unknown> = { '@odata.context': `${ctx.graphBaseUrl}/$metadata#Collection(todoTask)`, value };
  if (candidates.length > pageSize) body['@odata.nextLink'] = `${link}?$skiptoken=${encode({ ...base, t: 'n', after: pageEntries[pageEntries.length - 1].seq })}`;
  else body['@odata.deltaLink'] = `${link}?$deltatoken=${encode(base)}`;
  return ok(body, prefer.maxPageSize ? { 'Preference-Applied': `odata.maxpagesize=${prefer.maxPageSize}` } : undefined);
}

// ---- admin (acting as the user) ------------------------------------------------------------------

export type EmulatorTask = Record<string, unknown> & { id: string; listId: string };

export interface TodoAdmin {
  /** Tasks of the mailbox, or of one list by displayName ('Tasks' = the default list); linkedResources included. */
  listTasks(upn: string, listName?: string): EmulatorTask[];
  /** As the user would. A missing list is created; null = the default list. */
  createTask(upn: string, listName: string | null, task: Record<string, unknown>): EmulatorTask;
  updateTask(upn: string, id: string, patch: Record<string, unknown>): EmulatorTask;
  deleteTask(upn: string, id: string): void;
}

export function todoAdmin(store: Store): TodoAdmin {
  const render = (t: StoredTask): EmulatorTask => ({ ...renderTask(t, { zoneName: 'UTC', zone: 'UTC', expandLinked: true }), listId: t.listId }) as EmulatorTask;
  const task = (upn: string, id: string) => {
    const state = todoState(store, store.mailbox(upn));
    const t = state.tasks[id];
    if (!t) throw notFound();
    return { state, t };
  };
  const listId = (state: TodoState, name: string | null | undefined, create: boolean): string => {
    if (!name) return state.defaultListId;
    const l = listByName(state, name);
    if (l) return l.id;
    if (!create) throw notFound(`No To Do list named '${name}'.`);
    return createList(store, state, name).id;
  };
  return {
    listTasks(upn, name) {
      const state = todoState(store, store.mailbox(upn));
      const id = name === undefined ? undefined : listId(state, name, false);
      return Object.values(state.tasks).filter((t) => !id || t.listId === id).map(render);
    },
    createTask(upn, name, body) {
      const state = todoState(store, store.mailbox(upn));
      return render(createTask(store, state, listId(state, name, true), parseTaskBody(body, true)));
    },
    updateTask(upn, id, patch) {
      const { state, t } = task(upn, id);
      return render(updateTask(store, state, t, parseTaskBody(patch, false)));
    },
    deleteTask(upn, id) {
      const { state, t } = task(upn, id);
      deleteTask(store, state, t);
    },
  };
}
