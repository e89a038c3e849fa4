/** Database access for the built-in CRM (schema `crm`): the only module that reads or writes crm.* tables. */
import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { Database } from '../../db/schema';
import type { CrmContactFields } from '../../domain/contact';
import { CRM_TODO_TYPE } from '../../domain/event';
import type { CrmScope } from '../../domain/policy';
import type { CrmContactChange, CrmFeedPage, CrmStore, CrmUser } from './crm-store';
import { goneForMailbox } from './feed-guard';

type Exec = Kysely<Database> | Transaction<Database>;

const CONTACT_COLUMNS = [
  'first_name', 'last_name', 'email', 'email2', 'email3', 'phone', 'mobile', 'company', 'job_title', 'department',
  'street', 'city', 'state', 'postal_code', 'country', 'notes',
] as const;

function pickFields(row: Record<string, unknown>): CrmContactFields {
  const out = {} as Record<string, string | null>;
  for (const c of CONTACT_COLUMNS) out[c] = (row[c] as string | null) ?? null;
  return out as unknown as CrmContactFields;
}

function toUser(r: { id: string; email: string; display_name: string; workgroup: string | null; time_zone: string }): CrmUser {
  return { id: r.id, email: r.email, displayName: r.display_name, workgroup: r.workgroup, timeZone: r.time_zone };
}

/** Whether contact `c` is in the feed's scope for the user `ownerId`. */
function inScope(scope: CrmScope, ownerId: string) {
  switch (scope) {
    case 'all':
      return sql<boolean>`true`;
    case 'workgroup':
      // Owned by the user, or by anyone sharing the user's (non-null) workgroup.
      return sql<boolean>`(c.owner_id = ${ownerId}::uuid or c.owner_id in (
        select w.id from crm.users w join crm.users me on me.id = ${ownerId}::uuid
        where me.workgroup is not null and w.workgroup = me.workgroup))`;
    case 'owned':
      return sql<boolean>`(c.owner_id = ${ownerId}::uuid)`;
  }
}

/**
 * Which rows of a feed table a read covers. Incremental (`after` set): the window [after, upper) of change_txid,
 * without the mailbox's own writes (echoes). Full (`after` null): every row, unbounded above and with the
 * mailbox's own writes: rows restored from another cluster keep that cluster's change_txid, which may lie above
 * this counter (feed-guard.ts), and after a restore the mailbox's own earlier writes are no longer known to
 * match its mappings. Reading a row the mappings already hold is a no-op for the planner, so nothing is
 * duplicated; rows committed at or above `upper` are read once more by the next read.
 */
export function feedWindow(alias: RawBuilder<unknown>, after: string | null, upper: string, mailboxId: string): RawBuilder<boolean> {
  if (after === null) return sql<boolean>`true`;
  return sql<boolean>`(${alias}.change_txid >= ${after}::xid8 and ${alias}.change_txid < ${upper}::xid8 and ${alias}.changed_by is distinct from ${mailboxId})`;
}

export type CrmPrecondition = 'ok' | 'changed' | 'gone' | 'left-scope';

/** What a CRM write is conditional on: the row version the plan saw, and the mailbox's scope. */
export interface CrmWriteGuard {
  /** crm.*.change_txid as the plan saw it; null: unknown (a mapping made before versions were kept). */
  version: string | null;
  ownerId: string;
  scope: CrmScope;
  /**
   * A restore (keep-updated after a CRM delete): the plan saw the record deleted, so a deleted or missing row
   * is what is expected, and a live one means someone restored it meanwhile ('changed').
   */
  restore?: boolean;
}

const CRM_TABLES = { contact: sql.table('crm.contacts'), event: sql.table('crm.events'), task: sql.table('crm.tasks') } as const;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The precondition of a CRM write, checked in the write's transaction with the row locked until it commits:
 * the row still exists, is still in the mailbox's scope, and still has the version the plan saw. Anything
 * else leaves the item for re-planning, as a 412 does on the Exchange side.
 */
export async function crmPrecondition(tx: Exec, recordType: keyof typeof CRM_TABLES, id: string, guard: CrmWriteGuard): Promise<CrmPrecondition> {
  if (!UUID.test(id)) return 'gone';
  // Events: a cancelled meeting or one made a to-do left the calendar's scope (see postgres-crm-events.ts).
  const extra = recordType === 'event' ? sql<boolean>`(c.status = 'Canceled' or c.event_type = ${CRM_TODO_TYPE})` : sql<boolean>`false`;
  const r = await sql<{ version: string; deleted: boolean; in_scope: boolean; excluded: boolean }>`
    select c.change_txid::text as version, c.deleted_at is not null as deleted, ${inScope(guard.scope, guard.ownerId)} as in_scope, ${extra} as excluded
    from ${CRM_TABLES[recordType]} c where c.id = ${id}::uuid for update`.execute(tx);
  const row = r.rows[0];
  if (guard.restore) {
    if (!row) return 'ok';
    if (!row.deleted) return 'changed';
    return row.in_scope && !row.excluded ? 'ok' : 'left-scope';
  }
  if (!row || row.deleted) return 'gone';
  if (!row.in_scope || row.excluded) return 'left-scope';
  if (guard.version !== null && row.version !== guard.version) return 'changed';
  return 'ok';
}

/**
 * A watermark moved back to just before `version`, so the next feed read sees the change that made a write's
 * precondition fail even if an earlier read had already passed it. Every built-in feed's watermark starts with
 * its transaction id (events add their window after a ';'). Re-read rows the plan has seen are no-ops.
 */
export function rewindWatermark(watermark: string | null, version: string): string | null {
  if (!watermark) return watermark;
  const [xid, ...rest] = watermark.split(';');
  if (!/^\d+$/.test(xid) || !/^\d+$/.test(version) || BigInt(version) >= BigInt(xid)) return watermark;
  return [version, ...rest].join(';');
}

/**
 * Un-deletes a soft-deleted row (a keep-updated restore) as this mailbox's write; false when there is no row
 * (hard-deleted), which the caller then creates under the same id. An event series' occurrences stay deleted:
 * the update that follows writes the exceptions the record carries.
 */
export async function undeleteRow(tx: Exec, recordType: keyof typeof CRM_TABLES, mailboxId: string, id: string): Promise<boolean> {
  await asWriter(tx, mailboxId);
  const r = await sql`update ${CRM_TABLES[recordType]} set deleted_at = null where id = ${id}::uuid`.execute(tx);
  return Number(r.numAffectedRows ?? 0n) > 0;
}

/** The version the crm.stamp_change trigger gives every row this transaction writes. */
export async function txVersion(tx: Exec): Promise<string> {
  const r = await sql<{ v: string }>`select pg_current_xact_id()::text as v`.execute(tx);
  return r.rows[0].v;
}

/** Marks the current transaction's CRM writes as made by this mailbox's sync (read by the crm.stamp_change trigger). */
async function asWriter(tx: Exec, mailboxId: string): Promise<void> {
  await sql`select set_config('cxsync.writer', ${mailboxId}, true)`.execute(tx);
}

export class PostgresCrmStore implements CrmStore {
  constructor(private readonly db: Kysely<Database>) {}

  async findUserByEmail(email: string): Promise<CrmUser | undefined> {
    const r = await this.db.selectFrom('crm.users').selectAll().where(sql`lower(email)`, '=', email.toLowerCase()).executeTakeFirst();
    return r && toUser(r);
  }

  async getUser(id: string): Promise<CrmUser | undefined> {
    const r = await this.db.selectFrom('crm.users').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toUser(r);
  }

  /**
   * Contacts changed since `after`, ordered by transaction id. Reading only below the oldest transaction
   * still running (pg_snapshot_xmin) makes the feed commit-order safe: everything below it has finished, so
   * a late commit can never land behind the watermark.
   *
   * `scope` says which contacts are in: the user's own ('owned', the default), every live contact ('all'), or
   * those owned by any CRM user in the user's workgroup ('workgroup'; a user without a workgroup: their own).
   * Contacts already linked to this mailbox are read too, whatever their owner, so one that leaves the scope
   * (reassigned to someone outside it) arrives as a removal. Scope is judged when a contact changes: a user
   * moving to another workgroup does not re-scope contacts until they change.
   *
   * Hard-deleted contacts (no row left) come from crm.tombstone, or on a full read from the rows' absence (see
   * feed-guard.ts goneForMailbox), as removals marked `hardDeleted`.
   */
  async contactChanges({ ownerId, mailboxId, after, scope = 'owned' }: { ownerId: string; mailboxId: string; after: string | null; scope?: CrmScope }): Promise<CrmFeedPage> {
    const hi = await sql<{ xmin: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as xmin`.execute(this.db);
    const upper = hi.rows[0].xmin;
    const rows = await sql<Record<string, unknown>>`
      select c.*, c.change_txid::text as version, ${inScope(scope, ownerId)} as in_scope, to_char(c.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as updated_iso
      from crm.contacts c
      where ${feedWindow(sql`c`, after, upper, mailboxId)}
        and (${inScope(scope, ownerId)} or exists (
          select 1 from sync.mapping m where m.mailbox_id = ${mailboxId} and m.record_type = 'contact' and m.crm_id = c.id::text))
      order by c.change_txid, c.id`.execute(this.db);
    const changes: CrmContactChange[] = rows.rows.map((r) => {
      const leftScope = r.deleted_at == null && !r.in_scope;
      const removed = r.deleted_at != null || leftScope;
      return { id: String(r.id), removed, ...(leftScope ? { leftScope } : {}), version: String(r.version), fields: removed ? null : pickFields(r), updatedAt: String(r.updated_iso) };
    });
    for (const g of await goneForMailbox(this.db, 'contacts', { after, upper, mailboxId })) {
      changes.push({ id: g.id, removed: true, hardDeleted: true, ...(g.version ? { version: g.version } : {}), fields: null, updatedAt: new Date().toISOString() });
    }
    return { changes, watermark: upper };
  }
}

/** Writes made by the sync, inside the caller's transaction so the mapping and operation status commit with them. */
export const crmContactWrites = {
  /**
   * Idempotent on `id`: a retried create finds its first attempt. Returns false when the row already existed.
   * `contactClass`: set on the new contact (the policy's contact.contactClass); not a synced field.
   */
  async create(tx: Exec, mailboxId: string, id: string, ownerId: string, fields: CrmContactFields, contactClass: string | null = null): Promise<boolean> {
    await asWriter(tx, mailboxId);
    const r = await tx.insertInto('crm.contacts').values({ id, owner_id: ownerId, ...fields, contact_class: contactClass }).onConflict((oc) => oc.column('id').doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  },
  async update(tx: Exec, mailboxId: string, id: string, fields: CrmContactFields): Promise<boolean> {
    await asWriter(tx, mailboxId);
    const r = await tx.updateTable('crm.contacts').set(fields).where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  },
  async delete(tx: Exec, mailboxId: string, id: string): Promise<void> {
    await asWriter(tx, mailboxId);
    await tx.updateTable('crm.contacts').set({ deleted_at: new Date() }).where('id', '=', id).where('deleted_at', 'is', null).execute();
  },
  async get(tx: Exec, id: string): Promise<(CrmContactFields & { deleted: boolean }) | undefined> {
    const r = await tx.selectFrom('crm.contacts').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? { ...pickFields(r as unknown as Record<string, unknown>), deleted: r.deleted_at != null } : undefined;
  },
};
