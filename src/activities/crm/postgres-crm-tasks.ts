/**
 * Database access for the built-in CRM's tasks (crm.tasks, the CRM's "Todo" activities): the change feed and
 * the sync's writes, on the same change-feed design as crm.contacts (xid8 change_txid, cxsync.writer).
 *
 * Status decides what is synced: a task whose status has no counterpart in the status map (Draft, Rejected
 * with Acumatica's table) is left out of the feed altogether — neither created, updated nor deleted elsewhere.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../db/schema';
import { exchangeStatusOf, toCrmTask, type TaskRecord, type TaskStatusMap } from '../../domain/task';
import { isoInstant, parseWallTime, resolveTimeZone, wallToInstant } from '../../domain/timezone';
import type { Result } from '../../domain/result';
import { goneForMailbox } from './feed-guard';
import { feedWindow } from './postgres-crm';

type Exec = Kysely<Database> | Transaction<Database>;

export interface CrmTaskChange {
  id: string;
  /** Deleted, or no longer owned by the mailbox's user. */
  removed: boolean;
  /** With `removed`: reassigned to another owner (not a delete). */
  leftScope?: boolean;
  /** With `removed`: the row is gone (hard-deleted, or missing after a restore). */
  hardDeleted?: boolean;
  /** change_txid; absent for a row gone without a tombstone. */
  version?: string;
  payload: Record<string, unknown> | null;
  updatedAt: string;
}

async function asWriter(tx: Exec, mailboxId: string): Promise<void> {
  await sql`select set_config('cxsync.writer', ${mailboxId}, true)`.execute(tx);
}

interface TaskRow {
  id: string;
  owner_id: string | null;
  version: string;
  subject: string;
  description: string | null;
  status: string;
  priority: string;
  due_date: string | null;
  reminder_local: string | null;
  time_zone: string | null;
  categories: string[];
  completed_at: Date | null;
  deleted_at: Date | null;
  updated_iso: string;
  mapped: boolean;
}

export class PostgresCrmTasks {
  constructor(private readonly db: Kysely<Database>) {}

  /** Tasks changed since `after`, ordered by transaction id; see postgres-crm.ts for why the feed is commit-order safe. */
  async changes(args: { ownerId: string; mailboxId: string; after: string | null; statusMap: TaskStatusMap }): Promise<{ changes: CrmTaskChange[]; watermark: string }> {
    const { ownerId, mailboxId, statusMap } = args;
    const hi = await sql<{ xmin: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as xmin`.execute(this.db);
    const upper = hi.rows[0].xmin;
    const rows = await sql<TaskRow>`
      select t.id::text as id, t.owner_id::text as owner_id, t.subject, t.description, t.status, t.priority,
        to_char(t.due_date, 'YYYY-MM-DD') as due_date, to_char(t.reminder_local, 'YYYY-MM-DD"T"HH24:MI:SS') as reminder_local,
        t.time_zone, t.categories, t.completed_at, t.deleted_at, t.change_txid::text as version,
        to_char(t.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as updated_iso,
        exists (select 1 from sync.mapping m where m.mailbox_id = ${mailboxId} and m.record_type = 'task' and m.crm_id = t.id::text) as mapped
      from crm.tasks t
      where ${feedWindow(sql`t`, args.after, upper, mailboxId)}
        and (t.owner_id = ${ownerId}::uuid or exists (
          select 1 from sync.mapping m where m.mailbox_id = ${mailboxId} and m.record_type = 'task' and m.crm_id = t.id::text))
      order by t.change_txid, t.id`.execute(this.db);
    const changes: CrmTaskChange[] = [];
    for (const r of rows.rows) {
      const removed = r.deleted_at != null || r.owner_id !== ownerId;
      if (removed && !r.mapped) continue;
      const exchangeStatus = exchangeStatusOf(r.status, statusMap);
      // No counterpart status: not synced at all while it has that status.
      if (!removed && !exchangeStatus) continue;
      const zone = resolveTimeZone(r.time_zone) ?? 'UTC';
      const reminder = parseWallTime(r.reminder_local);
      changes.push({
        id: r.id,
        removed,
        ...(removed && r.deleted_at == null ? { leftScope: true } : {}),
        version: r.version,
        updatedAt: r.updated_iso,
        payload: removed
          ? null
          : {
              subject: r.subject,
              description: r.description,
              status: r.status,
              exchange_status: exchangeStatus,
              priority: r.priority,
              due_date: r.due_date,
              reminder_local: r.reminder_local,
              time_zone: r.time_zone,
              categories: r.categories,
              // The keys the planner's scope rules read (src/domain/planning.ts crmTraits).
              due_at: r.due_date ? `${r.due_date}T00:00:00Z` : undefined,
              reminder_at: reminder ? isoInstant(wallToInstant(reminder, zone)) : undefined,
            },
      });
    }
    // Hard-deleted tasks (no row left): see feed-guard.ts goneForMailbox.
    for (const g of await goneForMailbox(this.db, 'tasks', { after: args.after, upper, mailboxId })) {
      changes.push({ id: g.id, removed: true, hardDeleted: true, ...(g.version ? { version: g.version } : {}), payload: null, updatedAt: new Date().toISOString() });
    }
    return { changes, watermark: upper };
  }

  /** Which of these ids name a live (not deleted) task. */
  async existing(ids: string[]): Promise<Set<string>> {
    const valid = ids.filter((i) => /^[0-9a-f-]{36}$/i.test(i));
    if (!valid.length) return new Set();
    const r = await sql<{ id: string }>`select id::text as id from crm.tasks where id = any(${valid}::uuid[]) and deleted_at is null`.execute(this.db);
    return new Set(r.rows.map((x) => x.id));
  }

  async userZone(email: string): Promise<string | undefined> {
    const r = await sql<{ time_zone: string }>`select time_zone from crm.users where lower(email) = ${email.toLowerCase()}`.execute(this.db);
    return r.rows[0]?.time_zone;
  }
}

async function ownerZone(tx: Exec, ownerId: string): Promise<string | undefined> {
  const r = await sql<{ time_zone: string }>`select time_zone from crm.users where id = ${ownerId}::uuid`.execute(tx);
  return r.rows[0]?.time_zone;
}

/** Writes made by the sync, inside the caller's transaction. */
export const crmTaskWrites = {
  /** Idempotent on `id`. A status without counterpart fails (the planner never asks for one). */
  async create(tx: Exec, mailboxId: string, id: string, ownerId: string, record: TaskRecord, map: TaskStatusMap): Promise<Result<boolean>> {
    const f = toCrmTask(record, map, { userZone: await ownerZone(tx, ownerId) });
    if (!f.ok) return f;
    await asWriter(tx, mailboxId);
    const v = f.value;
    const r = await sql`
      insert into crm.tasks (id, owner_id, subject, description, status, priority, due_date, reminder_local, time_zone, completed_at)
      values (${id}::uuid, ${ownerId}::uuid, ${v.subject}, ${v.description}, ${v.status}, ${v.priority}, ${v.due_date}::date,
        ${v.reminder_local}::timestamp, ${v.time_zone}, ${v.status === 'Completed' ? sql`now()` : null})
      on conflict (id) do nothing`.execute(tx);
    return { ok: true, value: Number(r.numAffectedRows ?? 0) > 0 };
  },

  /** False when the task no longer exists. Keeps the CRM status when it corresponds to To Do's, and the row's zone. */
  async update(tx: Exec, mailboxId: string, id: string, record: TaskRecord, map: TaskStatusMap): Promise<Result<boolean>> {
    const cur = await sql<{ status: string; time_zone: string | null; owner_id: string | null }>`
      select status, time_zone, owner_id::text as owner_id from crm.tasks where id = ${id}::uuid and deleted_at is null for update`.execute(tx);
    const row = cur.rows[0];
    if (!row) return { ok: true, value: false };
    const f = toCrmTask(record, map, { current: row, userZone: row.owner_id ? await ownerZone(tx, row.owner_id) : undefined });
    if (!f.ok) return f;
    await asWriter(tx, mailboxId);
    const v = f.value;
    await sql`
      update crm.tasks set subject = ${v.subject}, description = ${v.description}, status = ${v.status}, priority = ${v.priority},
        due_date = ${v.due_date}::date, reminder_local = ${v.reminder_local}::timestamp, time_zone = ${v.time_zone},
        completed_at = case when ${v.status} in ('Completed', 'Canceled') then coalesce(completed_at, now()) else null end
      where id = ${id}::uuid`.execute(tx);
    return { ok: true, value: true };
  },

  async delete(tx: Exec, mailboxId: string, id: string): Promise<void> {
    await asWriter(tx, mailboxId);
    await sql`update crm.tasks set deleted_at = now() where id = ${id}::uuid and deleted_at is null`.execute(tx);
  },
};
