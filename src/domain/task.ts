/**
 * The task as cxsync understands it, and the mapping to and from Microsoft To Do tasks (Graph `todoTask`) and
 * CRM task rows (the CRM's "Todo" activities).
 *
 * The common form speaks To Do's status vocabulary: the CRM's status goes through the status map (Acumatica's
 * table by default, configurable by policy) on the way in, so a CRM "Canceled" task and its Exchange echo
 * "completed" are the same record, not an edit. Writing back into the CRM keeps the CRM's own status when it
 * already maps to the status To Do has (a Canceled task stays Canceled, an Approved one stays Approved).
 *
 * Categories are not a synced field (the marking category and the user's own stay in To Do; the scope rules read
 * them from the raw items).
 *
 * The due date is a date (To Do keeps no time of day); the reminder is an instant (ISO, Z), written to Exchange
 * as wall time in the task's zone and stored in the CRM as wall time + IANA zone.
 */
import { bodyText, graphBody, normalizeText } from './body';
import { fail, ok, type Result } from './result';
import {
  canonicalTimeZone,
  instantToWall,
  isoInstant,
  parseWallTime,
  resolveTimeZone,
  wallToInstant,
  windowsTimeZone,
  type DateOnly,
  type WallTime,
} from './timezone';

export const EXCHANGE_TASK_STATUSES = ['notStarted', 'inProgress', 'completed', 'waitingOnOthers', 'deferred'] as const;
export type ExchangeTaskStatus = (typeof EXCHANGE_TASK_STATUSES)[number];
export const CRM_TASK_STATUSES = ['Draft', 'Open', 'In Process', 'Completed', 'Canceled', 'Pending Approval', 'Approved', 'Rejected'] as const;
export type CrmTaskStatus = (typeof CRM_TASK_STATUSES)[number];
export const IMPORTANCES = ['low', 'normal', 'high'] as const;
export type Importance = (typeof IMPORTANCES)[number];
export const CRM_PRIORITIES = ['Low', 'Medium', 'High'] as const;
export type CrmPriority = (typeof CRM_PRIORITIES)[number];

/**
 * Which status becomes which on the other side. A status with no entry is not synced: such a task is neither
 * created, updated nor deleted on the other side while it has that status (Acumatica: "No synchronization is
 * performed for any task whose status has no corresponding status").
 */
export interface TaskStatusMap {
  crmToExchange: Partial<Record<CrmTaskStatus, ExchangeTaskStatus>>;
  exchangeToCrm: Partial<Record<ExchangeTaskStatus, CrmTaskStatus>>;
}

/** Acumatica's correspondence of statuses. */
export const ACUMATICA_TASK_STATUS_MAP: TaskStatusMap = {
  crmToExchange: {
    Open: 'notStarted',
    'In Process': 'inProgress',
    Completed: 'completed',
    Canceled: 'completed',
    'Pending Approval': 'waitingOnOthers',
    Approved: 'inProgress',
  },
  exchangeToCrm: {
    notStarted: 'Open',
    inProgress: 'In Process',
    completed: 'Completed',
    waitingOnOthers: 'Pending Approval',
  },
};

/** Checks a policy-supplied map: known statuses on both sides, and every Exchange status it produces maps back. */
export function validateTaskStatusMap(map: TaskStatusMap): Result<TaskStatusMap> {
  for (const [c, e] of Object.entries(map.crmToExchange ?? {})) {
    if (!CRM_TASK_STATUSES.includes(c as CrmTaskStatus)) return fail(`task status map: "${c}" is not a CRM task status (${CRM_TASK_STATUSES.join(', ')})`);
    if (!EXCHANGE_TASK_STATUSES.includes(e as ExchangeTaskStatus)) return fail(`task status map: "${e}" is not a To Do status (${EXCHANGE_TASK_STATUSES.join(', ')})`);
    if (!map.exchangeToCrm?.[e as ExchangeTaskStatus]) return fail(`task status map: CRM ${c} becomes ${e} in Exchange, but ${e} does not map back to a CRM status`);
  }
  for (const [e, c] of Object.entries(map.exchangeToCrm ?? {})) {
    if (!EXCHANGE_TASK_STATUSES.includes(e as ExchangeTaskStatus)) return fail(`task status map: "${e}" is not a To Do status (${EXCHANGE_TASK_STATUSES.join(', ')})`);
    if (!CRM_TASK_STATUSES.includes(c as CrmTaskStatus)) return fail(`task status map: "${c}" is not a CRM task status (${CRM_TASK_STATUSES.join(', ')})`);
  }
  return ok(map);
}

export function exchangeStatusOf(crm: string | null | undefined, map: TaskStatusMap): ExchangeTaskStatus | undefined {
  return crm ? map.crmToExchange[crm as CrmTaskStatus] : undefined;
}

/** The CRM status for a To Do status; the current CRM status is kept when it already corresponds to it. */
export function crmStatusFor(exchange: ExchangeTaskStatus, map: TaskStatusMap, current?: string | null): CrmTaskStatus | undefined {
  if (current && map.crmToExchange[current as CrmTaskStatus] === exchange) return current as CrmTaskStatus;
  return map.exchangeToCrm[exchange];
}

export interface TaskRecord {
  subject: string;
  body?: string;
  status: ExchangeTaskStatus;
  importance: Importance;
  dueDate?: DateOnly;
  /** ISO instant with Z, whole seconds. */
  reminder?: string;
}

export const TASK_LIMITS = { subject: 255, body: 32_000 } as const;

function clean(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

export interface TaskDraft {
  subject?: string | null;
  body?: string | null;
  status?: string | null;
  importance?: string | null;
  dueDate?: string | null;
  reminder?: string | null;
}

export function validateTask(d: TaskDraft): Result<TaskRecord> {
  const subject = clean(d.subject) ?? '';
  if (!subject) return fail('task has no subject: give it one');
  if (subject.length > TASK_LIMITS.subject) return fail(`field subject is ${subject.length} characters long; the limit is ${TASK_LIMITS.subject}: shorten it`);
  const status = d.status as ExchangeTaskStatus;
  if (!EXCHANGE_TASK_STATUSES.includes(status)) return fail(`task status "${d.status ?? ''}" has no counterpart in the status map: not synced`);
  const importance = (clean(d.importance)?.toLowerCase() ?? 'normal') as Importance;
  const rec: TaskRecord = { subject, status, importance: IMPORTANCES.includes(importance) ? importance : 'normal' };
  const body = normalizeText(d.body);
  // Cut over the limit, then normalised again: a cut ending in blanks would not read back as written.
  if (body) rec.body = body.length > TASK_LIMITS.body ? normalizeText(body.slice(0, TASK_LIMITS.body)) : body;
  if (d.dueDate) {
    const due = parseWallTime(d.dueDate);
    if (!due) return fail(`due date "${d.dueDate}" is not a date: correct it`);
    rec.dueDate = due.slice(0, 10);
  }
  if (d.reminder) {
    const t = Date.parse(d.reminder);
    if (!Number.isFinite(t)) return fail(`reminder "${d.reminder}" is not a date and time: correct it`);
    rec.reminder = isoInstant(t);
  }
  return ok(rec);
}

export function taskLabel(t: TaskRecord): string {
  return `${t.subject}${t.dueDate ? ` (due ${t.dueDate})` : ''}`;
}

// ---- Microsoft To Do ----------------------------------------------------------------------------------

export interface GraphDateTime {
  dateTime?: string | null;
  timeZone?: string | null;
}

export interface GraphTask {
  id?: string;
  title?: string | null;
  body?: { content?: string | null; contentType?: string | null } | null;
  /** Added by cxsync when it reads a task: the body as plain text (the policy's field limits apply to it). */
  bodyText?: string | null;
  status?: string | null;
  importance?: string | null;
  dueDateTime?: GraphDateTime | null;
  reminderDateTime?: GraphDateTime | null;
  isReminderOn?: boolean | null;
  categories?: string[] | null;
  linkedResources?: { id?: string; webUrl?: string | null; applicationName?: string | null; displayName?: string | null; externalId?: string | null }[] | null;
  lastModifiedDateTime?: string | null;
  [other: string]: unknown;
}

function graphInstant(dt: GraphDateTime | null | undefined): number | undefined {
  const wall = parseWallTime(dt?.dateTime);
  if (!wall) return undefined;
  return wallToInstant(wall, resolveTimeZone(dt?.timeZone) ?? 'UTC');
}

/**
 * To Do keeps a due date as midnight in the zone it was set in; read back in UTC that can be the evening
 * before. A due time off midnight is therefore read in the user's zone, which is where To Do put it.
 */
export function graphDueDate(dt: GraphDateTime | null | undefined, userZone: string): DateOnly | undefined {
  const wall = parseWallTime(dt?.dateTime);
  if (!wall) return undefined;
  if (wall.endsWith('T00:00:00')) return wall.slice(0, 10);
  const t = graphInstant(dt)!;
  const local = instantToWall(t, userZone);
  // Midnight in the user's zone, or the nearest midnight when the zone moved in between: round to the day.
  const hour = Number(local.slice(11, 13));
  const day = local.slice(0, 10);
  if (hour >= 12) return new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  return day;
}

export function fromGraphTask(g: GraphTask, opts: { userZone?: string } = {}): Result<TaskRecord> {
  const zone = resolveTimeZone(opts.userZone) ?? 'UTC';
  const reminderAt = g.isReminderOn ? graphInstant(g.reminderDateTime) : undefined;
  return validateTask({
    subject: g.title,
    body: typeof g.bodyText === 'string' ? g.bodyText : bodyText(g.body),
    status: g.status,
    importance: g.importance,
    dueDate: graphDueDate(g.dueDateTime, zone),
    reminder: reminderAt !== undefined ? new Date(reminderAt).toISOString() : undefined,
  });
}

/** Graph's name for a zone: the Windows name when there is one. */
function zoneName(zone: string): string {
  return windowsTimeZone(zone) ?? resolveTimeZone(zone) ?? 'UTC';
}

/**
 * The Graph body for a create or a full update. The due date goes as midnight UTC, which every reader gets
 * back as the same date; the reminder as wall time in the task's zone.
 */
export function toGraphTask(t: TaskRecord, opts: { zone?: string } = {}): GraphTask {
  const zone = resolveTimeZone(opts.zone) ?? 'UTC';
  return {
    title: t.subject,
    // HTML (Graph's todoTask update takes HTML bodies), links as anchors; an update sends it only when the
    // text changed (changedProperties), so a body the user formatted stays as it is.
    body: graphBody(t.body),
    status: t.status,
    importance: t.importance,
    dueDateTime: t.dueDate ? { dateTime: `${t.dueDate}T00:00:00`, timeZone: 'UTC' } : null,
    isReminderOn: !!t.reminder,
    reminderDateTime: t.reminder ? { dateTime: instantToWall(Date.parse(t.reminder), zone), timeZone: zoneName(zone) } : null,
  };
}

// ---- CRM rows -----------------------------------------------------------------------------------------

export interface CrmTaskFields {
  subject: string;
  description: string | null;
  status: CrmTaskStatus;
  priority: CrmPriority;
  due_date: DateOnly | null;
  /** Wall time in time_zone. */
  reminder_local: WallTime | null;
  time_zone: string | null;
}

export type CrmTaskPayload = Partial<CrmTaskFields> & { status?: string | null; priority?: string | null };

const PRIORITY_TO_IMPORTANCE: Record<CrmPriority, Importance> = { Low: 'low', Medium: 'normal', High: 'high' };
const IMPORTANCE_TO_PRIORITY: Record<Importance, CrmPriority> = { low: 'Low', normal: 'Medium', high: 'High' };

/** True when the task's CRM status has a counterpart in the map (otherwise it is not synced). */
export function crmTaskSynced(status: string | null | undefined, map: TaskStatusMap): boolean {
  return exchangeStatusOf(status, map) !== undefined;
}

export function fromCrmTask(p: CrmTaskPayload, map: TaskStatusMap): Result<TaskRecord> {
  const status = exchangeStatusOf(p.status, map);
  if (!status) return fail(`task status "${p.status ?? ''}" has no counterpart in the status map: not synced`);
  let reminder: string | undefined;
  if (p.reminder_local) {
    const wall = parseWallTime(p.reminder_local);
    const zone = resolveTimeZone(p.time_zone) ?? 'UTC';
    if (!wall) return fail(`reminder "${p.reminder_local}" is not a date and time: correct it`);
    reminder = isoInstant(wallToInstant(wall, zone));
  }
  return validateTask({
    subject: p.subject,
    body: p.description,
    status,
    importance: PRIORITY_TO_IMPORTANCE[(p.priority ?? 'Medium') as CrmPriority] ?? 'normal',
    dueDate: p.due_date ?? undefined,
    reminder,
  });
}

/**
 * CRM columns for a task record. `current` is the row as it is (for updates): its status is kept when it
 * corresponds to the record's, its zone is kept for the reminder; `userZone` is the zone of a new row.
 */
export function toCrmTask(t: TaskRecord, map: TaskStatusMap, opts: { current?: { status?: string | null; time_zone?: string | null }; userZone?: string } = {}): Result<CrmTaskFields> {
  const status = crmStatusFor(t.status, map, opts.current?.status);
  if (!status) return fail(`To Do status ${t.status} has no counterpart in the status map: not synced`);
  const zone = canonicalTimeZone(opts.current?.time_zone) ? opts.current!.time_zone! : resolveTimeZone(opts.userZone) ?? 'UTC';
  return ok({
    subject: t.subject,
    description: t.body ?? null,
    status,
    priority: IMPORTANCE_TO_PRIORITY[t.importance],
    due_date: t.dueDate ?? null,
    reminder_local: t.reminder ? instantToWall(Date.parse(t.reminder), zone) : null,
    time_zone: zone,
  });
}
