/**
 * The reconciler: a pure, deterministic function from what changed on both sides (plus the mapping between
 * them and the policy) to the operations that make the sides agree, each with the reason for the decision.
 * Record types plug in by handing over records already normalised and fingerprinted by their field mapper.
 */

export type Side = 'exchange' | 'crm';
export const otherSide = (s: Side): Side => (s === 'crm' ? 'exchange' : 'crm');

export interface SideChange<R> {
  /** The item's id on its side. */
  id: string;
  removed: boolean;
  record?: R;
  fingerprint?: string;
  /** Exchange only: the change key of the version seen. */
  changeKey?: string;
  /** ISO time of the last modification on that side, for "newest wins". */
  modifiedAt?: string;
}

export interface MappingState {
  crmId: string;
  exchangeId: string;
  crmFingerprint: string | null;
  exchangeFingerprint: string | null;
  exchangeChangeKey: string | null;
}

export type Direction = 'both' | 'crm-to-exchange' | 'exchange-to-crm';
export type ConflictRule = 'crm-wins' | 'exchange-wins' | 'newest-wins' | 'keep-both';
export type DeleteRule = 'crm-master' | 'exchange-master' | 'delete-wins' | 'keep-updated';

export interface ReconcilePolicy {
  direction: Direction;
  conflict: ConflictRule;
  deleteVsUpdate: DeleteRule;
}

export const DEFAULT_RECONCILE_POLICY: ReconcilePolicy = { direction: 'both', conflict: 'crm-wins', deleteVsUpdate: 'keep-updated' };

export type Operation<R> =
  /** Create on `side` a copy of the other side's item `sourceId`. */
  | { kind: 'create'; side: Side; sourceId: string; record: R; fingerprint: string; reason: string }
  | { kind: 'update'; side: Side; crmId: string; exchangeId: string; record: R; fingerprint: string; reason: string }
  | { kind: 'delete'; side: Side; crmId: string; exchangeId: string; reason: string }
  /** Both sides are gone (or the link must go): drop the mapping only. */
  | { kind: 'unlink'; crmId: string; exchangeId: string; reason: string }
  /** Nothing to write on either side; bring the mapping's fingerprints and change key up to date. */
  | { kind: 'refresh'; crmId: string; exchangeId: string; crmFingerprint?: string; exchangeFingerprint?: string; exchangeChangeKey?: string; reason: string };

export interface ConflictRecord {
  crmId: string;
  exchangeId: string;
  rule: string;
  outcome: string;
}

export interface ReconcileInput<R> {
  exchange: SideChange<R>[];
  crm: SideChange<R>[];
  /** Mapping rows for every id that appears in the changes (others may be included; they are ignored). */
  mappings: MappingState[];
  policy: ReconcilePolicy;
}

export interface ReconcileOutput<R> {
  operations: Operation<R>[];
  conflicts: ConflictRecord[];
}

const writes = (policy: ReconcilePolicy, side: Side): boolean =>
  policy.direction === 'both' || (side === 'exchange' ? policy.direction === 'crm-to-exchange' : policy.direction === 'exchange-to-crm');

function byId<R>(changes: SideChange<R>[]): Map<string, SideChange<R>> {
  // The last change wins when an id appears twice; callers stage one row per id, so this is a safety net.
  const m = new Map<string, SideChange<R>>();
  for (const c of changes) m.set(c.id, c);
  return m;
}

const sortKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function reconcile<R>(input: ReconcileInput<R>): ReconcileOutput<R> {
  const { policy } = input;
  const ex = byId(input.exchange);
  const crm = byId(input.crm);
  const ops: Operation<R>[] = [];
  const conflicts: ConflictRecord[] = [];
  const seenEx = new Set<string>();
  const seenCrm = new Set<string>();

  const mappings = [...input.mappings].sort((a, b) => sortKey(a.crmId, b.crmId));
  for (const m of mappings) {
    const e = ex.get(m.exchangeId);
    const c = crm.get(m.crmId);
    if (!e && !c) continue;
    seenEx.add(m.exchangeId);
    seenCrm.add(m.crmId);
    planMapped(m, e, c, policy, ops, conflicts);
  }

  // Unmapped items are new to the sync: copy them across where the direction allows.
  for (const id of [...ex.keys()].sort(sortKey)) {
    const e = ex.get(id)!;
    if (seenEx.has(id) || e.removed || !e.record) continue;
    if (writes(policy, 'crm')) {
      ops.push({ kind: 'create', side: 'crm', sourceId: id, record: e.record, fingerprint: e.fingerprint!, reason: 'new in Exchange' });
    }
  }
  for (const id of [...crm.keys()].sort(sortKey)) {
    const c = crm.get(id)!;
    if (seenCrm.has(id) || c.removed || !c.record) continue;
    if (writes(policy, 'exchange')) {
      ops.push({ kind: 'create', side: 'exchange', sourceId: id, record: c.record, fingerprint: c.fingerprint!, reason: 'new in CRM' });
    }
  }
  return { operations: ops, conflicts };
}

function planMapped<R>(
  m: MappingState,
  e: SideChange<R> | undefined,
  c: SideChange<R> | undefined,
  policy: ReconcilePolicy,
  ops: Operation<R>[],
  conflicts: ConflictRecord[],
): void {
  const ids = { crmId: m.crmId, exchangeId: m.exchangeId };
  // A change whose fingerprint equals the mapping's is an echo of our own write or a no-op edit.
  const exChanged = !!e && (e.removed || e.fingerprint !== m.exchangeFingerprint);
  const crmChanged = !!c && (c.removed || c.fingerprint !== m.crmFingerprint);

  if (!exChanged && !crmChanged) {
    ops.push({ kind: 'refresh', ...ids, exchangeChangeKey: e?.changeKey, reason: 'no change in synced fields' });
    return;
  }

  // --- one side changed ---
  if (exChanged && !crmChanged) {
    applyOneSide('exchange', e!, m, policy, ops);
    return;
  }
  if (crmChanged && !exChanged) {
    applyOneSide('crm', c!, m, policy, ops);
    return;
  }

  // --- both changed ---
  const E = e!;
  const C = c!;
  if (E.removed && C.removed) {
    ops.push({ kind: 'unlink', ...ids, reason: 'deleted on both sides' });
    return;
  }
  if (!E.removed && !C.removed) {
    if (E.fingerprint === C.fingerprint) {
      ops.push({ kind: 'refresh', ...ids, crmFingerprint: C.fingerprint, exchangeFingerprint: E.fingerprint, exchangeChangeKey: E.changeKey, reason: 'same edit on both sides' });
      return;
    }
    resolveConflict(m, E, C, policy, ops, conflicts);
    return;
  }
  // One deleted, the other updated.
  const deleted: Side = E.removed ? 'exchange' : 'crm';
  const updated = otherSide(deleted);
  const upd = updated === 'crm' ? C : E;
  let deleteWins: boolean;
  switch (policy.deleteVsUpdate) {
    case 'delete-wins': deleteWins = true; break;
    case 'keep-updated': deleteWins = false; break;
    case 'crm-master': deleteWins = deleted === 'crm'; break;
    case 'exchange-master': deleteWins = deleted === 'exchange'; break;
  }
  const rule = `delete-vs-update: ${policy.deleteVsUpdate}`;
  if (deleteWins && writes(policy, updated)) {
    ops.push({ kind: 'delete', side: updated, ...ids, reason: `deleted in ${label(deleted)}, updated in ${label(updated)}; ${rule} → delete` });
    conflicts.push({ ...ids, rule, outcome: `deleted in ${label(updated)} too` });
  } else if (!deleteWins && writes(policy, deleted)) {
    ops.push({ kind: 'unlink', ...ids, reason: `deleted in ${label(deleted)}, updated in ${label(updated)}; ${rule} → recreate` });
    ops.push({ kind: 'create', side: deleted, sourceId: updated === 'crm' ? m.crmId : m.exchangeId, record: upd.record!, fingerprint: upd.fingerprint!, reason: `recreated after delete in ${label(deleted)} (${rule})` });
    conflicts.push({ ...ids, rule, outcome: `recreated in ${label(deleted)}` });
  } else {
    ops.push({ kind: 'unlink', ...ids, reason: `deleted in ${label(deleted)}, updated in ${label(updated)}; ${rule}, direction ${policy.direction} → unlinked` });
    conflicts.push({ ...ids, rule, outcome: 'unlinked; each side keeps its state' });
  }
}

function label(s: Side): string {
  return s === 'crm' ? 'CRM' : 'Exchange';
}

function applyOneSide<R>(from: Side, ch: SideChange<R>, m: MappingState, policy: ReconcilePolicy, ops: Operation<R>[]): void {
  const ids = { crmId: m.crmId, exchangeId: m.exchangeId };
  const to = otherSide(from);
  if (!writes(policy, to)) {
    // One-way sync away from `from`: its edits stay there. Keep the mapping current so they are not re-planned.
    if (ch.removed) ops.push({ kind: 'unlink', ...ids, reason: `deleted in ${label(from)}; direction ${policy.direction} does not write to ${label(to)}` });
    else ops.push({ kind: 'refresh', ...ids, ...(from === 'crm' ? { crmFingerprint: ch.fingerprint } : { exchangeFingerprint: ch.fingerprint, exchangeChangeKey: ch.changeKey }), reason: `changed in ${label(from)}; direction ${policy.direction} does not write to ${label(to)}` });
    return;
  }
  if (ch.removed) {
    ops.push({ kind: 'delete', side: to, ...ids, reason: `deleted in ${label(from)}` });
  } else {
    ops.push({ kind: 'update', side: to, ...ids, record: ch.record!, fingerprint: ch.fingerprint!, reason: `changed in ${label(from)}` });
  }
}

function instant(iso: string | undefined): number {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? -Infinity : t;
}

function resolveConflict<R>(m: MappingState, E: SideChange<R>, C: SideChange<R>, policy: ReconcilePolicy, ops: Operation<R>[], conflicts: ConflictRecord[]): void {
  const ids = { crmId: m.crmId, exchangeId: m.exchangeId };
  const rule = `conflict: ${policy.conflict}`;
  let winner: Side | 'both';
  switch (policy.conflict) {
    case 'crm-wins': winner = 'crm'; break;
    case 'exchange-wins': winner = 'exchange'; break;
    case 'keep-both': winner = 'both'; break;
    case 'newest-wins': {
      // Ties go to the CRM: a deterministic answer matters more than which side it favours. The two sides write
      // their times differently (Graph: whole seconds or 7 fractional digits; the CRM feed: 6), so compare
      // instants, not strings. A missing or unreadable time loses to a known one.
      winner = instant(E.modifiedAt) > instant(C.modifiedAt) ? 'exchange' : 'crm';
      break;
    }
  }
  if (winner === 'both') {
    // Each version keeps its own counterpart: the pair is split and each side's version is copied across.
    ops.push({ kind: 'unlink', ...ids, reason: `edited on both sides; ${rule}` });
    if (writes(policy, 'exchange')) ops.push({ kind: 'create', side: 'exchange', sourceId: m.crmId, record: C.record!, fingerprint: C.fingerprint!, reason: `CRM version kept as a copy (${rule})` });
    if (writes(policy, 'crm')) ops.push({ kind: 'create', side: 'crm', sourceId: m.exchangeId, record: E.record!, fingerprint: E.fingerprint!, reason: `Exchange version kept as a copy (${rule})` });
    conflicts.push({ ...ids, rule, outcome: 'both versions kept' });
    return;
  }
  const loser = otherSide(winner);
  const win = winner === 'crm' ? C : E;
  if (writes(policy, loser)) {
    ops.push({ kind: 'update', side: loser, ...ids, record: win.record!, fingerprint: win.fingerprint!, reason: `edited on both sides; ${rule} → ${label(winner)} version kept` });
    conflicts.push({ ...ids, rule, outcome: `${label(winner)} version written to ${label(loser)}` });
  } else {
    ops.push({ kind: 'refresh', ...ids, crmFingerprint: C.fingerprint, exchangeFingerprint: E.fingerprint, exchangeChangeKey: E.changeKey, reason: `edited on both sides; ${rule}, direction ${policy.direction} → no write` });
    conflicts.push({ ...ids, rule, outcome: 'no write (direction)' });
  }
}
