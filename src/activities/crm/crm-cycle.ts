/**
 * The CRM half of a cycle, the mirror of exchange/exchange-cycle.ts: pulling the CRM feed (staged with each
 * row's version) and applying the planned CRM writes, each conditional on the version the plan saw and on the
 * record still being in the mailbox's scope. A failed precondition never writes: the item goes back to the next
 * plan, as a 412 does on the Exchange side.
 */
import { sql, type Transaction } from 'kysely';
import { TemporalFailure } from '@temporalio/common';
import { errorSummary } from '../health';
import type { Db } from '../../db/connection';
import { REPLAN_PREFIX } from '../../db/exchange-state';
import type { Database } from '../../db/schema';
import type { OperationRow, StagedRow, SyncStore } from '../../db/sync-store';
import { CRM_VERSION_KEY, LEFT_SCOPE_KEY } from '../../domain/planning';
import type { CrmScope } from '../../domain/policy';
import type { RecordType } from '../../domain/status';
import type { CrmFeedItem, RecordTypeAdapter } from '../record-types/adapter';
import { checkWatermark, currentOrigin } from './feed-guard';
import type { CrmPrecondition } from './postgres-crm';

export interface CrmStepContext {
  db: Db;
  store: SyncStore;
  adapter: RecordTypeAdapter<unknown>;
  mailboxId: string;
  cycleId: string;
  recordType: RecordType;
  /** The mailbox's CRM user, and the policy's feed scope for the type. */
  ownerId: string;
  scope: CrmScope;
  /** Contacts only: the class given to contacts created in the CRM. */
  contactClass?: string | null;
  beat(details?: unknown): void;
}

/** A feed item as staged (and as the dry run plans it): with its version, and "left scope" apart from deleted. */
export function stagedCrmRow(c: CrmFeedItem): StagedRow {
  return {
    externalId: c.id,
    removed: c.removed,
    changeKey: null,
    payload: c.payload
      ? { ...c.payload, updatedAt: c.updatedAt, ...(c.version ? { [CRM_VERSION_KEY]: c.version } : {}) }
      : c.leftScope ? { [LEFT_SCOPE_KEY]: true } : null,
  };
}

/**
 * Reads the feed after the saved watermark and stages it with the new watermark pending, in one transaction.
 * A watermark that no longer counts in the CRM database's transaction counter (restored, replaced, rewound, or
 * saved before origins were kept: feed-guard.ts checkWatermark) is not read after: the feed is read in full,
 * which the mappings make duplicate-free, and the sync log says why.
 */
export async function pullCrmStep(ctx: CrmStepContext, saved: { watermark: string | null; origin: string | null }): Promise<number> {
  const { store, adapter, mailboxId, recordType, cycleId } = ctx;
  // The built-in CRM's watermarks start with their transaction id (events add their window after a ';').
  const check = await checkWatermark(ctx.db, { watermark: saved.watermark?.split(';')[0] ?? null, origin: saved.origin, recordType });
  const after = check.ok ? saved.watermark : null;
  // Taken before the read: a restore between the two then leaves an origin the next check finds different.
  const origin = await currentOrigin(ctx.db);
  const page = await adapter.crmChanges({ ownerId: ctx.ownerId, mailboxId, after, scope: ctx.scope });
  ctx.beat({ read: page.changes.length });
  await ctx.db.transaction().execute(async (tx) => {
    if (!check.ok) await store.log(tx, { mailboxId, cycleId, level: 'warn', recordType, side: 'crm', message: check.reason });
    await store.stage(tx, mailboxId, recordType, 'crm', page.changes.map(stagedCrmRow));
    await store.updateCursor(tx, mailboxId, recordType, { pending_crm_watermark: page.watermark, crm_watermark_origin: origin });
    for (const c of page.changes) {
      if (!c.hardDeleted) continue;
      const how = c.version ? 'was hard-deleted (DELETE or TRUNCATE, recorded in crm.tombstone)' : 'no longer exists (missing from a full read of the CRM)';
      await store.log(tx, { mailboxId, cycleId, level: 'info', recordType, side: 'crm', itemId: c.id, message: `the CRM record ${how}: handled as a CRM delete` });
    }
  });
  return page.changes.length;
}

interface CrmOpPayload {
  record?: unknown;
  fingerprint?: string;
  exchangeChangeKey?: string | null;
  crmFingerprint?: string;
  exchangeFingerprint?: string;
  /** The mapping's base once the operation is applied. */
  base?: unknown;
  /** The CRM row version the plan saw (null: unknown). */
  crmVersion?: string | null;
  /** An update that restores a deleted CRM record under its own id (see reconcile.ts, keep-updated). */
  restore?: boolean;
}

type GiveBack = Exclude<CrmPrecondition, 'ok'> | 'pair';
const WHY: Record<GiveBack, string> = {
  pair: "the same plan's Exchange write met a newer version; the pair is planned again",
  changed: 'the CRM record was edited after planning',
  gone: 'the CRM record was deleted after planning',
  'left-scope': "the CRM record left this mailbox's scope after planning",
};

/**
 * One CRM or mapping operation, inside the caller's transaction with its `done` mark. Returns false when the
 * precondition failed and the operation was given back for re-planning.
 */
export async function applyLocalOp(ctx: CrmStepContext, tx: Transaction<Database>, op: OperationRow): Promise<boolean> {
  const { store, adapter, mailboxId, recordType } = ctx;
  const p = (op.payload ?? {}) as CrmOpPayload;
  if (op.side === 'crm' && (await store.siblingGivenBack(tx, op))) {
    await giveBack(ctx, tx, op, 'pair', null);
    return false;
  }
  if (op.side === 'crm' && op.kind !== 'create') {
    const pre = await adapter.crmPrecondition(tx, op.crm_id!, { version: p.crmVersion ?? null, ownerId: ctx.ownerId, scope: ctx.scope, restore: p.restore });
    if (pre !== 'ok') {
      await giveBack(ctx, tx, op, pre, p.crmVersion ?? null);
      return false;
    }
  }
  // Created from Exchange: contacts get the policy's class.
  const classOpts = ctx.contactClass !== undefined ? { contactClass: ctx.contactClass } : undefined;
  if (op.side === 'crm') {
    if (op.kind === 'create') {
      // The sync id doubles as the CRM id, so a retried create is a no-op.
      // Created from Exchange: owned by the mailbox's user whatever the feed's scope; contacts get the policy's class.
      await adapter.createInCrm(tx, mailboxId, op.sync_id, ctx.ownerId, p.record, classOpts);
      await store.upsertMapping(tx, {
        mailbox_id: mailboxId, record_type: recordType, crm_id: op.sync_id, exchange_id: op.exchange_id!, sync_id: op.sync_id,
        crm_fingerprint: p.fingerprint!, exchange_fingerprint: p.fingerprint!, exchange_change_key: p.exchangeChangeKey ?? null,
        base: p.base ?? p.record, crm_version: await adapter.crmVersion(tx),
      });
    } else if (op.kind === 'update') {
      // A restore whose row was hard-deleted creates it again under the same id.
      if (p.restore && !(await adapter.crmUndelete(tx, mailboxId, op.crm_id!))) await adapter.createInCrm(tx, mailboxId, op.crm_id!, ctx.ownerId, p.record, classOpts);
      else await adapter.updateInCrm(tx, mailboxId, op.crm_id!, p.record);
      await store.updateMapping(tx, mailboxId, recordType, op.crm_id!, {
        crm_fingerprint: p.fingerprint, exchange_fingerprint: p.fingerprint, exchange_change_key: p.exchangeChangeKey ?? undefined,
        base: p.base, crm_version: await adapter.crmVersion(tx),
      });
    } else if (op.kind === 'delete') {
      await adapter.deleteInCrm(tx, mailboxId, op.crm_id!);
      await store.deleteMapping(tx, mailboxId, recordType, op.crm_id!);
    }
  } else if (op.kind === 'unlink') await store.deleteMapping(tx, mailboxId, recordType, op.crm_id!);
  else if (op.kind === 'link') {
    // Merge by email: two existing items are one record; only the mapping is created.
    await store.upsertMapping(tx, {
      mailbox_id: mailboxId, record_type: recordType, crm_id: op.crm_id!, exchange_id: op.exchange_id!, sync_id: op.sync_id,
      crm_fingerprint: p.crmFingerprint ?? null, exchange_fingerprint: p.exchangeFingerprint ?? null, exchange_change_key: p.exchangeChangeKey ?? null,
      base: p.base ?? null, crm_version: p.crmVersion ?? null,
    });
  } else {
    await store.updateMapping(tx, mailboxId, recordType, op.crm_id!, {
      crm_fingerprint: p.crmFingerprint, exchange_fingerprint: p.exchangeFingerprint, exchange_change_key: p.exchangeChangeKey ?? undefined,
      base: p.base, crm_version: p.crmVersion ?? undefined,
    });
  }
  await store.finishOperation(tx, op.id, 'done');
  return true;
}

/**
 * One CRM or mapping operation in a savepoint of the caller's transaction: an error about this operation (a
 * CRM write that throws: a constraint, a trigger, a status that cannot map) is rolled back alone and counted,
 * and the others of the chunk go on. Below `attempts` the operation stays pending for the next apply; at the
 * limit it is marked failed with the error (class, SQLSTATE, constraint: no record content) and logged, so a
 * poison item never stops the mailbox (`cxsync retry` sets it back to pending). An error the savepoint cannot
 * survive (the connection is gone) fails the activity, which Temporal retries.
 */
export async function applyLocalGuarded(ctx: CrmStepContext, tx: Transaction<Database>, op: OperationRow, attempts: number): Promise<'applied' | 'replanned' | 'pending' | 'failed'> {
  await sql`savepoint cxsync_op`.execute(tx);
  try {
    const applied = await applyLocalOp(ctx, tx, op);
    await sql`release savepoint cxsync_op`.execute(tx);
    return applied ? 'applied' : 'replanned';
  } catch (err) {
    if (err instanceof TemporalFailure) throw err; // lease lost, cancelled: not about this operation
    await sql`rollback to savepoint cxsync_op`.execute(tx);
    return countFailure(ctx, tx, op, err, attempts);
  }
}

/**
 * A chunk of CRM and mapping operations in one transaction (applyLocalGuarded for each). An error at commit (a
 * deferred constraint or trigger) names no operation: the chunk is then applied one operation per transaction,
 * and the one whose commit fails is counted like any other error about it.
 */
export async function applyLocalChunk(ctx: CrmStepContext, db: Db, chunk: OperationRow[], attempts: number): Promise<{ applied: number; failed: number }> {
  const count = (rs: string[]) => ({ applied: rs.filter((r) => r === 'applied').length, failed: rs.filter((r) => r === 'failed').length });
  try {
    return count(await db.transaction().execute(async (tx) => {
      const rs: string[] = [];
      for (const op of chunk) rs.push(await applyLocalGuarded(ctx, tx, op, attempts));
      return rs;
    }));
  } catch (err) {
    if (err instanceof TemporalFailure || chunk.length === 0) throw err;
    const rs: string[] = [];
    for (const op of chunk) {
      try {
        rs.push(await db.transaction().execute((tx) => applyLocalGuarded(ctx, tx, op, attempts)));
      } catch (one) {
        if (one instanceof TemporalFailure) throw one;
        rs.push(await db.transaction().execute((tx) => countFailure(ctx, tx, op, one, attempts)));
      }
    }
    return count(rs);
  }
}

/** An error about one operation: counted; at the limit the operation is marked failed and logged. */
async function countFailure(ctx: CrmStepContext, tx: Transaction<Database>, op: OperationRow, err: unknown, attempts: number): Promise<'pending' | 'failed'> {
  const why = errorSummary(err);
  const failures = await ctx.store.addOperationFailure(tx, op.id, why);
  if (failures < attempts) return 'pending';
  await ctx.store.finishOperation(tx, op.id, 'failed', why);
  await ctx.store.log(tx, {
    mailboxId: ctx.mailboxId, cycleId: ctx.cycleId, level: 'error', recordType: ctx.recordType, side: op.side === 'crm' ? 'crm' : undefined,
    itemId: op.crm_id ?? op.exchange_id ?? undefined,
    message: `${op.kind} failed after ${failures} attempts: ${why}; fix the cause, then run cxsync retry ${ctx.mailboxId}`,
  });
  return 'failed';
}

/**
 * A CRM write whose precondition failed: nothing is written, the mapping is left as it was, and the Exchange
 * change it carried goes back to the next plan, together with what the CRM now says (a deletion or a record
 * that left the scope is staged here; an edit comes with the next feed read, from the version the plan saw).
 */
async function giveBack(ctx: CrmStepContext, tx: Transaction<Database>, op: OperationRow, pre: GiveBack, seen: string | null): Promise<void> {
  const { store, mailboxId, recordType, cycleId } = ctx;
  if (pre === 'changed' && seen) {
    // The edit may be one the feed read already (its row consumed by an earlier plan): read again from the
    // version the plan saw, so the next plan has it whatever the watermark says.
    const cursor = await store.getCursor(mailboxId, recordType);
    await store.updateCursor(tx, mailboxId, recordType, {
      crm_watermark: ctx.adapter.crmRewind(cursor.crm_watermark, seen),
      pending_crm_watermark: ctx.adapter.crmRewind(cursor.pending_crm_watermark, seen),
    });
  }
  if (pre === 'gone' || pre === 'left-scope') {
    await store.stage(tx, mailboxId, recordType, 'crm', [{ externalId: op.crm_id!, removed: true, changeKey: null, payload: pre === 'left-scope' ? { [LEFT_SCOPE_KEY]: true } : null }]);
  }
  if (op.exchange_id) await store.unplan(tx, mailboxId, recordType, 'exchange', op.exchange_id);
  await store.finishOperation(tx, op.id, 'skipped', `${REPLAN_PREFIX} ${WHY[pre]}`);
  await store.log(tx, { mailboxId, cycleId, level: 'info', recordType, side: 'crm', itemId: op.crm_id ?? undefined, message: `${op.kind} not applied: ${WHY[pre]}; planned again against what is there now` });
}
