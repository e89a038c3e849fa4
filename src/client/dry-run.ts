/**
 * `cxsync plan <mailbox>`: what the next cycle would do, planned exactly as the `plan` activity plans it
 * (src/domain/planning.ts), without applying, staging or saving anything.
 *
 * What it reads, per enabled record type:
 *   - the rows already staged for the mailbox's open cycle, if one is open (a pull that finished, or a round the
 *     emptied-side guard is holding);
 *   - Exchange: the delta from the saved cursor (the pending deltaLink of a finished round, the nextLink of a
 *     round in progress, or the last committed deltaLink), page by page, without saving the links it gets back;
 *     a mailbox that never synced is read in full. Reading a delta link is a read: Graph (and the emulator) may
 *     hand out new tokens, but cxsync keeps using its saved one.
 *   - CRM: the change feed after the saved (pending or committed) watermark, without saving the new one.
 * Fresh changes are laid over the staged ones the way staging merges them. If the mailbox never synced, its
 * dedicated folder is looked up by name and created, empty, when missing — the one write a dry run can make,
 * and the same one the first cycle makes (the default folder needs no creating).
 */
import type { RecordTypeAdapter } from '../activities/record-types/adapter';
import type { Db } from '../db/connection';
import { PolicyStore } from '../db/policy-store';
import { SyncStore, toMappingState, toStagedItem } from '../db/sync-store';
import { stagedCrmRow } from '../activities/crm/crm-cycle';
import { planCycle, type PlanNote, type StagedItem } from '../domain/planning';
import { crmScopeFor, typePolicy } from '../domain/policy';
import type { ConflictRecord, HeldDeletes, Operation, SkippedItem } from '../domain/reconcile';
import { RECORD_TYPES, type RecordType } from '../domain/status';
import { OperatorError } from './operator';

export interface PlannedOperation {
  kind: Operation<unknown>['kind'];
  side: 'exchange' | 'crm' | 'mapping';
  crmId: string | null;
  exchangeId: string | null;
  /** A short label of the record concerned (name), when known. */
  label: string | null;
  reason: string;
}

export interface TypeDryRun {
  recordType: RecordType;
  read: { exchangeStaged: number; exchangeFresh: number; exchangeFrom: string; crmStaged: number; crmFresh: number; crmFrom: string };
  operations: PlannedOperation[];
  conflicts: ConflictRecord[];
  skipped: SkippedItem[];
  held: HeldDeletes[];
  notes: PlanNote[];
}

export interface DryRunResult {
  mailbox: string;
  policy: string;
  /** Record types the policy leaves disabled. */
  disabled: RecordType[];
  types: TypeDryRun[];
}

/** Lays fresh changes over staged ones, as sync-store.stage does: a removal replaces, a partial update merges. */
function overlay(staged: StagedItem[], fresh: StagedItem[]): StagedItem[] {
  const byId = new Map(staged.map((s) => [s.id, s]));
  for (const f of fresh) {
    const prev = byId.get(f.id);
    if (!prev || f.removed || prev.removed || !prev.payload) byId.set(f.id, f);
    else byId.set(f.id, { ...f, payload: { ...prev.payload, ...(f.payload ?? {}) } });
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export async function dryRun(db: Db, adapters: Partial<Record<RecordType, RecordTypeAdapter<unknown>>>, mailboxId: string): Promise<DryRunResult> {
  const store = new SyncStore(db);
  const policies = new PolicyStore(db);
  const m = await store.getMailbox(mailboxId);
  if (!m) throw new OperatorError(`unknown mailbox ${mailboxId}: enroll it first (cxsync enroll ${mailboxId})`);
  const eff = await policies.effective(mailboxId);
  if (!eff.policy.ok) throw new OperatorError(`${eff.policy.error}: fix it with cxsync policy update ${eff.name} --file <policy.json>`);
  const policy = eff.policy.value;
  const result: DryRunResult = { mailbox: mailboxId, policy: eff.name, disabled: [], types: [] };

  for (const recordType of RECORD_TYPES) {
    const tp = typePolicy(policy, recordType);
    if (!tp.enabled) {
      result.disabled.push(recordType);
      continue;
    }
    const adapter = adapters[recordType];
    if (!adapter) throw new OperatorError(`the dry run cannot read ${recordType}s: no ${recordType} adapter in this build`);
    const cursor = await store.getCursor(mailboxId, recordType);

    // Exchange, read-only from the saved cursor.
    let folder = cursor.exchange_folder_id;
    if (!folder) folder = await adapter.ensureContainer(m.id, { name: tp.folder ?? '', useDefault: tp.folder === null });
    let link = cursor.pending_delta_link ?? cursor.next_link ?? cursor.delta_link ?? undefined;
    const exchangeFrom = cursor.pending_delta_link ? 'the pending delta link of the staged round' : cursor.next_link ? 'the saved next page of the round in progress' : cursor.delta_link ? 'the saved delta link' : 'the start (full read: never synced)';
    const exFresh: StagedItem[] = [];
    for (let pages = 0; ; pages++) {
      const page = await adapter.deltaPage(m.id, folder, link);
      for (const it of page.items) exFresh.push({ id: it.id, removed: it.removed, changeKey: it.changeKey, payload: it.payload });
      if (page.deltaLink || !page.nextLink) break;
      link = page.nextLink;
      if (pages > 10_000) throw new OperatorError('the Exchange delta did not end after 10,000 pages');
    }

    // CRM, read-only after the saved watermark.
    const after = cursor.pending_crm_watermark ?? cursor.crm_watermark;
    const feed = await adapter.crmChanges({ ownerId: m.crm_user_id, mailboxId, after, scope: crmScopeFor(policy, recordType) });
    const crmFresh: StagedItem[] = feed.changes.map(stagedCrmRow).map((r) => ({ id: r.externalId, removed: r.removed, changeKey: null, payload: r.payload }));

    const exStaged = (await store.staged(mailboxId, recordType, 'exchange')).map(toStagedItem);
    const crmStaged = (await store.staged(mailboxId, recordType, 'crm')).map(toStagedItem);
    const exchange = overlay(exStaged, exFresh);
    const crm = overlay(crmStaged, crmFresh);

    const mappingRows = await store.mappingsFor(mailboxId, recordType, crm.map((r) => r.id), exchange.map((r) => r.id));
    const plan = planCycle({
      recordType,
      exchange,
      crm,
      mappings: mappingRows.map(toMappingState),
      mappedTotal: Number((await store.countMappings(mailboxId, recordType)).n),
      policy,
      parser: adapter,
      firstSync: !cursor.delta_link && !cursor.crm_watermark,
      now: new Date(),
      massDeleteDecision: await policies.decision(mailboxId, recordType),
    });

    const labelOf = (crmId: string | null, exchangeId: string | null, record?: unknown): string | null => {
      const r = record ?? (crmId ? plan.crmChanges.get(crmId)?.record : undefined) ?? (exchangeId ? plan.exchangeChanges.get(exchangeId)?.record : undefined);
      return r ? adapter.label(r) : null;
    };
    const operations: PlannedOperation[] = plan.operations.map((op) => {
      switch (op.kind) {
        case 'create':
          return op.side === 'exchange'
            ? { kind: op.kind, side: op.side, crmId: op.sourceId, exchangeId: null, label: labelOf(null, null, op.record), reason: op.reason }
            : { kind: op.kind, side: op.side, crmId: null, exchangeId: op.sourceId, label: labelOf(null, null, op.record), reason: op.reason };
        case 'update':
          return { kind: op.kind, side: op.side, crmId: op.crmId, exchangeId: op.exchangeId, label: labelOf(null, null, op.record), reason: op.reason };
        case 'delete':
          return { kind: op.kind, side: op.side, crmId: op.crmId, exchangeId: op.exchangeId, label: labelOf(op.crmId, op.exchangeId), reason: op.reason };
        default:
          return { kind: op.kind, side: 'mapping', crmId: op.crmId, exchangeId: op.exchangeId, label: labelOf(op.crmId, op.exchangeId), reason: op.reason };
      }
    });
    result.types.push({
      recordType,
      read: { exchangeStaged: exStaged.length, exchangeFresh: exFresh.length, exchangeFrom, crmStaged: crmStaged.length, crmFresh: crmFresh.length, crmFrom: after ? 'the saved watermark' : 'the start (full read: never synced)' },
      operations,
      conflicts: plan.conflicts,
      skipped: plan.skipped,
      held: plan.held,
      notes: plan.notes,
    });
  }
  return result;
}
