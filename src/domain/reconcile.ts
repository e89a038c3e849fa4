/**
 * The reconciler: a pure, deterministic function from what changed on both sides (plus the mapping between
 * them and the policy) to the operations that make the sides agree, each with the reason for the decision.
 * Record types plug in by handing over records already normalised and fingerprinted by their field mapper.
 */

import { canonicalJson, fingerprint } from './fingerprint';

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
  /** Key for merging new items across sides (contacts: the normalised email); only used with `mergeByEmail`. */
  matchKey?: string;
  /** Set when the policy's scope rules leave this item out (see policy.ts `outOfScope`). */
  outOfScope?: OutOfScope;
  /** CRM only: the row version the feed read (CRM writes are conditional on it). */
  version?: string;
  /**
   * With `removed`: the record still exists but left this mailbox's scope (reassigned, cancelled, made a
   * to-do): not a delete. It is never deleted or re-created on the side it left.
   */
  leftScope?: boolean;
}

/** Why an item is out of scope, and what that means for an item already linked. */
export interface OutOfScope {
  reason: string;
  /** 'unlink': the pair stops syncing, both copies stay; 'ignore': this change is not synced, the link stays; 'sync': the rule applies to new items only. */
  mapped: 'unlink' | 'ignore' | 'sync';
}

export interface MappingState {
  crmId: string;
  exchangeId: string;
  crmFingerprint: string | null;
  exchangeFingerprint: string | null;
  exchangeChangeKey: string | null;
  /**
   * The last synced value of every synced field (the three-way merge's base); null or absent for mappings made
   * before bases were kept, which fall back to whole-record comparison by fingerprint.
   */
  base?: Record<string, unknown> | null;
}

export const DIRECTIONS = ['both', 'crm-to-exchange', 'exchange-to-crm'] as const;
export const CONFLICT_RULES = ['crm-wins', 'exchange-wins', 'keep-both', 'newest-wins'] as const;
export const DELETE_RULES = ['crm-master', 'exchange-master', 'delete-wins', 'keep-updated'] as const;
export type Direction = (typeof DIRECTIONS)[number];
export type ConflictRule = (typeof CONFLICT_RULES)[number];
export type DeleteRule = (typeof DELETE_RULES)[number];

export type WriteKind = 'create' | 'update' | 'delete';

export interface ReconcilePolicy {
  direction: Direction;
  conflict: ConflictRule;
  deleteVsUpdate: DeleteRule;
  /** Operations never carried out on a side, whatever the direction and the rules decide. */
  prevent?: Partial<Record<Side, Partial<Record<WriteKind, boolean>>>>;
  /** Link an item new in Exchange to an item new in the CRM with the same `matchKey` instead of copying each across. */
  mergeByEmail?: boolean;
  /** 'match-only' (filter "matching-crm"): an Exchange item is synced only when it links to a CRM item; never copied. */
  newExchangeItems?: 'copy' | 'match-only';
  /** Emptied-side guard: hold mirrored deletes when one side deletes ≥ `share` of the mapped items and ≥ `minItems`. */
  massDeleteGuard?: { minItems: number; share: number };
}

export const DEFAULT_RECONCILE_POLICY: ReconcilePolicy = { direction: 'both', conflict: 'crm-wins', deleteVsUpdate: 'keep-updated' };

export type Operation<R> =
  /** Create on `side` a copy of the other side's item `sourceId`. */
  | { kind: 'create'; side: Side; sourceId: string; record: R; fingerprint: string; reason: string }
  /**
   * `record`: what `side` should hold (the merge of both sides); `previous`: what `side` holds now as far as the
   * plan knows (its staged version, or the base), so a writer can send only what differs and leave everything
   * else — properties cxsync does not sync included — as it is. `base`: the mapping's new base once written.
   * `restore` (CRM side only): the CRM record was deleted and is written back under its own id, so that every
   * mailbox linked to it keeps one record instead of each re-creating its own copy.
   */
  | { kind: 'update'; side: Side; crmId: string; exchangeId: string; record: R; fingerprint: string; reason: string; previous?: R; base?: R; restore?: boolean }
  | { kind: 'delete'; side: Side; crmId: string; exchangeId: string; reason: string }
  /** Both sides are gone (or the link must go): drop the mapping only. */
  | { kind: 'unlink'; crmId: string; exchangeId: string; reason: string }
  /** Nothing to write on either side; bring the mapping's fingerprints and change key up to date. */
  | { kind: 'refresh'; crmId: string; exchangeId: string; crmFingerprint?: string; exchangeFingerprint?: string; exchangeChangeKey?: string; reason: string; base?: R }
  /** Two existing items are the same record (merge by email): create the mapping only. */
  | { kind: 'link'; crmId: string; exchangeId: string; crmFingerprint: string; exchangeFingerprint: string; exchangeChangeKey?: string; reason: string };

export interface ConflictRecord {
  crmId: string;
  exchangeId: string;
  rule: string;
  outcome: string;
}

export interface ReconcileInput<R> {
  /**
   * Record fields only Exchange holds (contacts: the user's own display name, phones beyond the first): kept in
   * the base so Exchange writes preserve them, never compared with or written to the CRM.
   */
  exchangeOnly?: readonly string[];
  /**
   * Makes a field-level merge a record as the record type's validation would (contacts: email slots without
   * gaps or repeats). Fields merged one by one from two sides can break a rule that spans fields, which each
   * side alone kept.
   */
  normalizeMerged?: (rec: Record<string, unknown>) => Record<string, unknown>;
  exchange: SideChange<R>[];
  crm: SideChange<R>[];
  /** Mapping rows for every id that appears in the changes (others may be included; they are ignored). */
  mappings: MappingState[];
  policy: ReconcilePolicy;
  /** Number of mapping rows of this mailbox and type, for the emptied-side guard (no guard when absent). */
  mappedTotal?: number;
  /** An operator's answer to a held mass delete: mirror the deletes, or unlink the deleted items and keep the other side's copies. */
  massDeleteDecision?: 'confirm' | 'discard';
  /**
   * Sides whose changes are only a slice of a round (more changes than the batch size; the rest comes next
   * cycle). A share of the mapped total cannot be judged from a slice, so for these sides the guard also holds
   * when the slice itself is (nearly) all deletions of mapped items.
   */
  partialRound?: Side[];
}

export interface SkippedItem {
  side: Side;
  id: string;
  reason: string;
}

/** A mass delete the emptied-side guard held back: nothing of it was planned. */
export interface HeldDeletes {
  side: Side;
  deleted: number;
  mapped: number;
  reason: string;
}

export interface ReconcileOutput<R> {
  operations: Operation<R>[];
  conflicts: ConflictRecord[];
  /** Items left out by the policy (scope rules, prevented creates, match-only), each with the reason. */
  skipped: SkippedItem[];
  /** Mass deletes held by the emptied-side guard; empty when none. */
  held: HeldDeletes[];
}

const directionWrites = (policy: ReconcilePolicy, side: Side): boolean =>
  policy.direction === 'both' || (side === 'exchange' ? policy.direction === 'crm-to-exchange' : policy.direction === 'exchange-to-crm');

/** Why the policy forbids writing `kind` to `side`: the direction, a prevent flag, or nothing (allowed). */
type Block = { by: 'direction' } | { by: 'prevent'; flag: string } | undefined;
function blocked(policy: ReconcilePolicy, side: Side, kind: WriteKind): Block {
  if (!directionWrites(policy, side)) return { by: 'direction' };
  if (policy.prevent?.[side]?.[kind]) return { by: 'prevent', flag: `prevent.${side}.${kind}` };
  return undefined;
}
/** The tail of a reason when a write is blocked, e.g. "direction crm-to-exchange does not write to CRM". */
function blockText(policy: ReconcilePolicy, b: NonNullable<Block>, side: Side, kind: WriteKind): string {
  return b.by === 'direction' ? `direction ${policy.direction} does not write to ${label(side)}` : `${kind} in ${label(side)} prevented (${b.flag})`;
}
/** Short form for "→ no write" style reasons: "direction both" or "prevent.crm.update". */
function blockShort(policy: ReconcilePolicy, b: NonNullable<Block>): string {
  return b.by === 'direction' ? `direction ${policy.direction}` : `${b.flag} set`;
}

function byId<R>(changes: SideChange<R>[]): Map<string, SideChange<R>> {
  // The last change wins when an id appears twice; callers stage one row per id, so this is a safety net.
  const m = new Map<string, SideChange<R>>();
  for (const c of changes) m.set(c.id, c);
  return m;
}

const sortKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface Out<R> {
  ops: Operation<R>[];
  conflicts: ConflictRecord[];
  skipped: SkippedItem[];
}

/** Items planned between two yields of a stepped plan: small enough that a yield comes every few milliseconds. */
export const PLAN_SLICE = 200;

/** Runs a stepped computation (reconcileSteps, planCycleSteps) to its end without yielding to anyone. */
export function runSteps<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

export function reconcile<R>(input: ReconcileInput<R>): ReconcileOutput<R> {
  return runSteps(reconcileSteps(input));
}

/**
 * reconcile() as a generator that pauses every PLAN_SLICE items, so that an activity planning 100,000 items can
 * give its event loop back (heartbeats, other mailboxes' activities) between slices. Pure and deterministic:
 * the pauses carry nothing, and the result is the same however the caller drives it.
 */
export function* reconcileSteps<R>(input: ReconcileInput<R>): Generator<void, ReconcileOutput<R>, void> {
  let n = 0;
  const { policy } = input;
  const ex = byId(input.exchange);
  const crm = byId(input.crm);
  const out: Out<R> = { ops: [], conflicts: [], skipped: [] };
  const seenEx = new Set<string>();
  const seenCrm = new Set<string>();

  const mappings = [...input.mappings].sort((a, b) => sortKey(a.crmId, b.crmId));

  // Emptied-side guard: a side reporting (nearly) every mapped item deleted is more likely a wiped folder, a
  // reassigned owner or a broken feed than a user's intent. Hold those deletes until an operator decides.
  const held: HeldDeletes[] = [];
  const heldSides = new Set<Side>();
  if (policy.massDeleteGuard && input.mappedTotal !== undefined && input.mappedTotal > 0) {
    for (const side of ['exchange', 'crm'] as Side[]) {
      const mine = side === 'exchange' ? ex : crm;
      const theirs = side === 'exchange' ? crm : ex;
      let deleted = 0;
      for (const m of mappings) {
        if (++n % PLAN_SLICE === 0) yield;
        const own = mine.get(side === 'exchange' ? m.exchangeId : m.crmId);
        const other = theirs.get(side === 'exchange' ? m.crmId : m.exchangeId);
        if (own?.removed && !other?.removed) deleted++;
      }
      const { minItems, share } = policy.massDeleteGuard;
      const slice = mine.size;
      const ofMapped = deleted >= share * input.mappedTotal;
      const ofSlice = !!input.partialRound?.includes(side) && deleted >= share * slice;
      if (deleted >= minItems && (ofMapped || ofSlice)) {
        const pct = Math.round((deleted / input.mappedTotal) * 100);
        const reason = ofMapped
          ? `${label(side)} reports ${deleted} of ${input.mappedTotal} synced items deleted (${pct} %, guard: ≥ ${Math.round(share * 100)} % and ≥ ${minItems})`
          : `${label(side)} reports ${deleted} synced items deleted in ${slice} changes read so far of a round not yet finished (of ${input.mappedTotal} synced; guard: ≥ ${Math.round(share * 100)} % of the changes and ≥ ${minItems})`;
        if (input.massDeleteDecision === undefined) held.push({ side, deleted, mapped: input.mappedTotal, reason });
        heldSides.add(side);
      }
    }
  }

  for (const m of mappings) {
    if (++n % PLAN_SLICE === 0) yield;
    const e = ex.get(m.exchangeId);
    const c = crm.get(m.crmId);
    if (!e && !c) continue;
    seenEx.add(m.exchangeId);
    seenCrm.add(m.crmId);
    const ids = { crmId: m.crmId, exchangeId: m.exchangeId };
    const massDeleted = (['exchange', 'crm'] as Side[]).find((side) => heldSides.has(side) && (side === 'exchange' ? e : c)?.removed && !(side === 'exchange' ? c : e)?.removed);
    if (massDeleted) {
      if (input.massDeleteDecision === undefined) {
        out.skipped.push({ side: massDeleted, id: massDeleted === 'exchange' ? m.exchangeId : m.crmId, reason: `delete held by the emptied-side guard (awaits an operator's decision)` });
        continue;
      }
      if (input.massDeleteDecision === 'discard') {
        out.ops.push({ kind: 'unlink', ...ids, reason: `deleted in ${label(massDeleted)} in a mass delete an operator discarded: the ${label(otherSide(massDeleted))} copy is kept, unlinked` });
        continue;
      }
      // 'confirm': plan it like any other delete.
    }
    planMapped(m, e, c, policy, out, input.exchangeOnly ?? [], input.normalizeMerged);
  }

  // Unmapped items are new to the sync: link them by email, copy them across where the policy allows.
  const newEx: SideChange<R>[] = [];
  const newCrm: SideChange<R>[] = [];
  for (const [map, seen, list, side] of [[ex, seenEx, newEx, 'exchange'], [crm, seenCrm, newCrm, 'crm']] as const) {
    for (const id of [...map.keys()].sort(sortKey)) {
      if (++n % PLAN_SLICE === 0) yield;
      const ch = map.get(id)!;
      if (seen.has(id) || ch.removed || !ch.record) continue;
      if (ch.outOfScope) {
        out.skipped.push({ side, id, reason: ch.outOfScope.reason });
        continue;
      }
      list.push(ch);
    }
  }

  const linkedEx = new Set<string>();
  const linkedCrm = new Set<string>();
  if (policy.mergeByEmail) {
    const byKey = (list: SideChange<R>[]) => {
      const m = new Map<string, SideChange<R>[]>();
      for (const ch of list) if (ch.matchKey) m.set(ch.matchKey, [...(m.get(ch.matchKey) ?? []), ch]);
      return m;
    };
    const crmByKey = byKey(newCrm);
    for (const [key, exs] of [...byKey(newEx)].sort(([a], [b]) => sortKey(a, b))) {
      if (++n % PLAN_SLICE === 0) yield;
      const crms = crmByKey.get(key) ?? [];
      // Items arrive sorted by id, so pairing the n-th with the n-th is deterministic.
      for (let i = 0; i < Math.min(exs.length, crms.length); i++) {
        mergePair(crms[i], exs[i], key, policy, out);
        linkedEx.add(exs[i].id);
        linkedCrm.add(crms[i].id);
      }
    }
  }

  for (const e of newEx) {
    if (++n % PLAN_SLICE === 0) yield;
    if (linkedEx.has(e.id)) continue;
    if (policy.newExchangeItems === 'match-only') {
      out.skipped.push({ side: 'exchange', id: e.id, reason: 'new in Exchange and linked to no CRM record (filter matching-crm): not copied' });
      continue;
    }
    const b = blocked(policy, 'crm', 'create');
    if (b) {
      if (b.by === 'prevent') out.skipped.push({ side: 'exchange', id: e.id, reason: `new in Exchange; ${blockText(policy, b, 'crm', 'create')}` });
      continue;
    }
    out.ops.push({ kind: 'create', side: 'crm', sourceId: e.id, record: e.record!, fingerprint: e.fingerprint!, reason: 'new in Exchange' });
  }
  for (const c of newCrm) {
    if (++n % PLAN_SLICE === 0) yield;
    if (linkedCrm.has(c.id)) continue;
    const b = blocked(policy, 'exchange', 'create');
    if (b) {
      if (b.by === 'prevent') out.skipped.push({ side: 'crm', id: c.id, reason: `new in CRM; ${blockText(policy, b, 'exchange', 'create')}` });
      continue;
    }
    out.ops.push({ kind: 'create', side: 'exchange', sourceId: c.id, record: c.record!, fingerprint: c.fingerprint!, reason: 'new in CRM' });
  }
  return { operations: out.ops, conflicts: out.conflicts, skipped: out.skipped, held };
}

/** Decides which version of an edited pair wins under the conflict rule; 'both' for keep-both. */
function conflictWinner<R>(policy: ReconcilePolicy, E: SideChange<R>, C: SideChange<R>): Side | 'both' {
  switch (policy.conflict) {
    case 'crm-wins': return 'crm';
    case 'exchange-wins': return 'exchange';
    case 'keep-both': return 'both';
    case 'newest-wins':
      // Ties go to the CRM: a deterministic answer matters more than which side it favours. The two sides write
      // their times differently (Graph: whole seconds or 7 fractional digits; the CRM feed: 6), so compare
      // instants, not strings. A missing or unreadable time loses to a known one.
      return instant(E.modifiedAt) > instant(C.modifiedAt) ? 'exchange' : 'crm';
  }
}

/** Two new items with the same email: link them; if they differ, the conflict rule says whose version both get. */
function mergePair<R>(C: SideChange<R>, E: SideChange<R>, key: string, policy: ReconcilePolicy, out: Out<R>): void {
  const ids = { crmId: C.id, exchangeId: E.id };
  const reason = `new on both sides with the same email ${key}: linked (mergeByEmail)`;
  out.ops.push({ kind: 'link', ...ids, crmFingerprint: C.fingerprint!, exchangeFingerprint: E.fingerprint!, exchangeChangeKey: E.changeKey, reason });
  if (C.fingerprint === E.fingerprint) return;
  // A merge keeps one record, so keep-both (which would duplicate) falls back to the CRM version.
  const w = conflictWinner(policy, E, C);
  const winner: Side = w === 'both' ? 'crm' : w;
  const rule = `merge by email; conflict: ${policy.conflict}${w === 'both' ? ' (a merge keeps one record: CRM version)' : ''}`;
  const loser = otherSide(winner);
  const win = winner === 'crm' ? C : E;
  const b = blocked(policy, loser, 'update');
  if (!b) {
    out.ops.push({ kind: 'update', side: loser, ...ids, record: win.record!, fingerprint: win.fingerprint!, reason: `merged by email; versions differ; ${label(winner)} version kept (${rule})` });
    out.conflicts.push({ ...ids, rule, outcome: `linked; ${label(winner)} version written to ${label(loser)}` });
  } else {
    out.conflicts.push({ ...ids, rule, outcome: `linked; no write (${blockShort(policy, b)})` });
  }
}

function planMapped<R>(m: MappingState, e: SideChange<R> | undefined, c: SideChange<R> | undefined, policy: ReconcilePolicy, out: Out<R>, exchangeOnly: readonly string[], normalizeMerged?: (rec: Rec) => Rec): void {
  const { ops, conflicts } = out;
  const ids = { crmId: m.crmId, exchangeId: m.exchangeId };

  // Scope: an excluded item (private, DoNotSync) splits the pair; a change outside a time window is not synced.
  for (const [ch, side] of [[e, 'exchange'], [c, 'crm']] as const) {
    const scope = ch && !ch.removed ? ch.outOfScope : undefined;
    if (scope?.mapped === 'unlink') {
      ops.push({ kind: 'unlink', ...ids, reason: `${label(side)} item excluded: ${scope.reason}; the pair is no longer synced, both copies stay` });
      return;
    }
  }
  if (e && !e.removed && e.outOfScope?.mapped === 'ignore') {
    out.skipped.push({ side: 'exchange', id: e.id, reason: e.outOfScope.reason });
    e = undefined;
  }
  if (c && !c.removed && c.outOfScope?.mapped === 'ignore') {
    out.skipped.push({ side: 'crm', id: c.id, reason: c.outOfScope.reason });
    c = undefined;
  }
  if (!e && !c) return;

  const base = m.base ?? undefined;
  const merge = base ? new FieldMerge(base, exchangeOnly, normalizeMerged) : undefined;
  // A change equal to the base (or, without a base, to the mapping's fingerprint) is an echo of our own write or
  // a no-op edit. Exchange-only fields (kept in the base for Exchange's sake) are not a change the CRM must see.
  const exDelta = merge && e && !e.removed ? merge.delta(e.record as Record<string, unknown>, 'exchange') : undefined;
  const crmDelta = merge && c && !c.removed ? merge.delta(c.record as Record<string, unknown>, 'crm') : undefined;
  const exChanged = !!e && (e.removed || (exDelta ? exDelta.synced.length > 0 : e.fingerprint !== m.exchangeFingerprint));
  const crmChanged = !!c && (c.removed || (crmDelta ? crmDelta.synced.length > 0 : c.fingerprint !== m.crmFingerprint));

  // Leaving the mailbox's scope is not a delete: the CRM record is neither deleted nor re-created. The Outlook
  // copy belonged to the scope and goes; kept unlinked it would come back as "new in Exchange" at its next edit
  // and be imported as a second record. An Outlook edit made since the last sync is recorded as the losing side.
  if (c?.removed && c.leftScope) {
    const why = "the CRM record left this mailbox's scope (reassigned, cancelled or no longer synced)";
    if (e?.removed) {
      ops.push({ kind: 'unlink', ...ids, reason: `${why}; deleted in Exchange too` });
      return;
    }
    const b = blocked(policy, 'exchange', 'delete');
    if (b) ops.push({ kind: 'unlink', ...ids, reason: `${why}; ${blockText(policy, b, 'exchange', 'delete')}: unlinked, the CRM record is not touched` });
    else ops.push({ kind: 'delete', side: 'exchange', ...ids, reason: `${why}: its Outlook copy is removed` });
    if (exChanged) conflicts.push({ ...ids, rule: 'left scope', outcome: `Outlook copy edited since the last sync: ${b ? 'kept unlinked' : 'removed'}; the edit is not applied to the CRM record` });
    return;
  }

  if (!exChanged && !crmChanged) {
    const newBase = merge && e && !e.removed ? merge.apply(exDelta!.all, e.record as Record<string, unknown>) : undefined;
    ops.push({ kind: 'refresh', ...ids, exchangeChangeKey: e?.changeKey, ...(newBase ? { base: newBase as R } : {}), reason: 'no change in synced fields' });
    return;
  }

  // --- one side changed ---
  if (exChanged && !crmChanged) {
    applyOneSide('exchange', e!, m, policy, ops, merge, exDelta?.all, c);
    return;
  }
  if (crmChanged && !exChanged) {
    applyOneSide('crm', c!, m, policy, ops, merge, crmDelta?.all, e);
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
    if (merge) {
      mergeFields(m, E, C, merge, policy, out);
      return;
    }
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
  // Prevent flags override the rule (LinkPoint): a prevented delete or re-create leaves the pair unlinked.
  const b = deleteWins ? blocked(policy, updated, 'delete') : blocked(policy, deleted, 'create');
  if (deleteWins && !b) {
    ops.push({ kind: 'delete', side: updated, ...ids, reason: `deleted in ${label(deleted)}, updated in ${label(updated)}; ${rule} → delete` });
    conflicts.push({ ...ids, rule, outcome: `deleted in ${label(updated)} too` });
  } else if (!deleteWins && !b && deleted === 'crm') {
    // Restored, not re-created: other mailboxes may link the same CRM record (scope all/workgroup), and a new
    // record per mailbox would turn one deleted contact into several.
    ops.push({ kind: 'update', side: 'crm', ...ids, record: upd.record!, fingerprint: upd.fingerprint!, base: upd.record!, restore: true, reason: `restored after delete in ${label(deleted)}, updated in ${label(updated)} (${rule})` });
    conflicts.push({ ...ids, rule, outcome: `restored in ${label(deleted)}` });
  } else if (!deleteWins && !b) {
    ops.push({ kind: 'unlink', ...ids, reason: `deleted in ${label(deleted)}, updated in ${label(updated)}; ${rule} → recreate` });
    ops.push({ kind: 'create', side: deleted, sourceId: updated === 'crm' ? m.crmId : m.exchangeId, record: upd.record!, fingerprint: upd.fingerprint!, reason: `recreated after delete in ${label(deleted)} (${rule})` });
    conflicts.push({ ...ids, rule, outcome: `recreated in ${label(deleted)}` });
  } else {
    ops.push({ kind: 'unlink', ...ids, reason: `deleted in ${label(deleted)}, updated in ${label(updated)}; ${rule}, ${blockShort(policy, b!)} → unlinked` });
    conflicts.push({ ...ids, rule, outcome: 'unlinked; each side keeps its state' });
  }
}

type Rec = Record<string, unknown>;
const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);

/**
 * Field-level three-way merge against a mapping's base. A side's delta is the fields whose value differs from
 * the base; fields only Exchange holds never count as a CRM change (the CRM record simply lacks them).
 */
class FieldMerge {
  constructor(
    readonly base: Rec,
    readonly exchangeOnly: readonly string[],
    readonly normalize: (rec: Rec) => Rec = (rec) => rec,
  ) {}
  private keys(...recs: Rec[]): string[] {
    return [...new Set(recs.flatMap((r) => Object.keys(r)))].sort(sortKey);
  }
  /** `all`: changed fields; `synced`: those the other side holds (a change to sync). */
  delta(rec: Rec, side: Side): { all: string[]; synced: string[] } {
    const all = this.keys(this.base, rec).filter((k) => !(side === 'crm' && this.exchangeOnly.includes(k)) && !same(rec[k], this.base[k]));
    return { all, synced: all.filter((k) => !this.exchangeOnly.includes(k)) };
  }
  /** `onto` (default: the base) with `fields` taken from `rec`. */
  apply(fields: string[], rec: Rec, onto: Rec = this.base): Rec {
    const out: Rec = { ...onto };
    for (const k of fields) {
      if (rec[k] === undefined) delete out[k];
      else out[k] = rec[k];
    }
    return out;
  }
  /** Fields whose value in `target` differs from `held` (what a side must be sent). */
  needs(target: Rec, held: Rec, side: Side): string[] {
    return this.keys(target, held).filter((k) => !(side === 'crm' && this.exchangeOnly.includes(k)) && !same(target[k], held[k]));
  }
}

/** The fingerprint of a merged record: the synced fields only, as the planner fingerprints each side. */
function syncedFingerprint(rec: Rec, exchangeOnly: readonly string[]): string {
  return fingerprint(Object.fromEntries(Object.entries(rec).filter(([k]) => !exchangeOnly.includes(k))));
}

/**
 * Both sides edited a linked pair: edits to different fields both survive; a field changed on both sides to
 * different values goes to the conflict rule (keep-both splits the pair, as without a base).
 */
function mergeFields<R>(m: MappingState, E: SideChange<R>, C: SideChange<R>, merge: FieldMerge, policy: ReconcilePolicy, out: Out<R>): void {
  const ids = { crmId: m.crmId, exchangeId: m.exchangeId };
  const ex = E.record as Rec;
  const crm = C.record as Rec;
  const exD = new Set(merge.delta(ex, 'exchange').all);
  const crmD = new Set(merge.delta(crm, 'crm').all);
  const clashes = [...exD].filter((k) => crmD.has(k) && !same(ex[k], crm[k]));
  const winner = clashes.length ? conflictWinner(policy, E, C) : undefined;
  if (winner === 'both') {
    resolveConflict(m, E, C, policy, out.ops, out.conflicts);
    return;
  }
  const picked: Rec = { ...merge.base };
  for (const k of new Set([...exD, ...crmD])) {
    const from = clashes.includes(k) ? (winner === 'crm' ? crm : ex) : exD.has(k) ? ex : crm;
    if (from[k] === undefined) delete picked[k];
    else picked[k] = from[k];
  }
  const merged = merge.normalize(picked);
  const base: Rec = { ...merged };
  const writes: Array<Extract<Operation<R>, { kind: 'update' }> & { need: string[] }> = [];
  for (const side of ['exchange', 'crm'] as Side[]) {
    const held = side === 'exchange' ? ex : crm;
    const need = merge.needs(merged, held, side);
    if (need.length === 0) continue;
    const b = blocked(policy, side, 'update');
    if (b) {
      // The write is not allowed: the base keeps what that side holds, so its difference is not lost from view.
      for (const k of need) {
        if (held[k] === undefined) delete base[k];
        else base[k] = held[k];
      }
      continue;
    }
    writes.push({
      kind: 'update', side, ...ids, record: merged as R, previous: held as R, fingerprint: syncedFingerprint(merged, merge.exchangeOnly), need,
      reason: `edited on both sides; fields ${need.join(', ')} written to ${label(side)}${clashes.length ? ` (conflict on ${clashes.join(', ')}: ${policy.conflict} → ${label(winner as Side)} version)` : ' (different fields: merged)'}`,
    });
  }
  // Each write is applied (or refused by its precondition) on its own: its base counts as agreed only what it
  // makes agree. The fields the other side's write carries keep their old base until that write is applied, so
  // if it is refused, the next plan still sees them as a change (and a conflict, when the other side moved too).
  for (const w of writes) {
    const wBase: Rec = { ...base };
    for (const k of writes.find((o) => o.side !== w.side)?.need ?? []) {
      if (merge.base[k] === undefined) delete wBase[k];
      else wBase[k] = merge.base[k];
    }
    w.base = wBase as R;
  }
  if (writes.length === 0) {
    out.ops.push({ kind: 'refresh', ...ids, crmFingerprint: C.fingerprint, exchangeFingerprint: E.fingerprint, exchangeChangeKey: E.changeKey, base: base as R, reason: clashes.length ? `edited on both sides; ${policy.conflict}: no write allowed` : 'same edit on both sides' });
  } else out.ops.push(...writes.map(({ need: _need, ...w }) => w));
  if (clashes.length) {
    out.conflicts.push({ ...ids, rule: `conflict: ${policy.conflict}`, outcome: `fields ${clashes.join(', ')}: ${label(winner as Side)} version kept; other fields merged` });
  }
}

function label(s: Side): string {
  return s === 'crm' ? 'CRM' : 'Exchange';
}

function applyOneSide<R>(from: Side, ch: SideChange<R>, m: MappingState, policy: ReconcilePolicy, ops: Operation<R>[], merge?: FieldMerge, delta?: string[], other?: SideChange<R>): void {
  const ids = { crmId: m.crmId, exchangeId: m.exchangeId };
  const to = otherSide(from);
  const kind: WriteKind = ch.removed ? 'delete' : 'update';
  const b = blocked(policy, to, kind);
  // With a base, the target gets what it holds with the changed fields applied: the rest stays. What Exchange
  // holds is its staged version when there is one (it may carry Exchange-only fields newer than the base).
  const held = other && !other.removed && other.record && to === 'exchange' ? (other.record as Rec) : merge?.base;
  const merged = merge && delta && !ch.removed ? merge.apply(delta, ch.record as Rec, held) : undefined;
  if (b) {
    // One-way sync away from `from`, or a prevented write: the change stays there. Keep the mapping current so
    // it is not re-planned; a delete that cannot be mirrored unlinks the survivor.
    const why = blockText(policy, b, to, kind);
    if (ch.removed) ops.push({ kind: 'unlink', ...ids, reason: `deleted in ${label(from)}; ${why}` });
    else ops.push({ kind: 'refresh', ...ids, ...(from === 'crm' ? { crmFingerprint: ch.fingerprint } : { exchangeFingerprint: ch.fingerprint, exchangeChangeKey: ch.changeKey }), reason: `changed in ${label(from)}; ${why}` });
    return;
  }
  if (ch.removed) {
    ops.push({ kind: 'delete', side: to, ...ids, reason: `deleted in ${label(from)}` });
  } else if (merged && merge && held) {
    if (merge.needs(merged, held, to).length === 0) {
      // Only fields the other side does not hold changed (an Outlook-only field): the base takes them.
      ops.push({ kind: 'refresh', ...ids, ...(from === 'exchange' ? { exchangeFingerprint: ch.fingerprint, exchangeChangeKey: ch.changeKey } : { crmFingerprint: ch.fingerprint }), base: merged as R, reason: `changed in ${label(from)}; nothing ${label(to)} holds changed` });
      return;
    }
    ops.push({ kind: 'update', side: to, ...ids, record: merged as R, previous: held as R, base: merged as R, fingerprint: syncedFingerprint(merged, merge.exchangeOnly), reason: `changed in ${label(from)} (${delta!.filter((k) => !(to === 'crm' && merge.exchangeOnly.includes(k))).join(', ')})` });
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
  const winner = conflictWinner(policy, E, C);
  if (winner === 'both') {
    // Each version keeps its own counterpart: the pair is split and each side's version is copied across.
    ops.push({ kind: 'unlink', ...ids, reason: `edited on both sides; ${rule}` });
    const toEx = blocked(policy, 'exchange', 'create');
    const toCrm = blocked(policy, 'crm', 'create');
    if (!toEx) ops.push({ kind: 'create', side: 'exchange', sourceId: m.crmId, record: C.record!, fingerprint: C.fingerprint!, reason: `CRM version kept as a copy (${rule})` });
    if (!toCrm) ops.push({ kind: 'create', side: 'crm', sourceId: m.exchangeId, record: E.record!, fingerprint: E.fingerprint!, reason: `Exchange version kept as a copy (${rule})` });
    const notCopied = [toEx?.by === 'prevent' ? ' (not copied to Exchange: prevent.exchange.create)' : '', toCrm?.by === 'prevent' ? ' (not copied to CRM: prevent.crm.create)' : ''].join('');
    conflicts.push({ ...ids, rule, outcome: `both versions kept${notCopied}` });
    return;
  }
  const loser = otherSide(winner);
  const win = winner === 'crm' ? C : E;
  const b = blocked(policy, loser, 'update');
  if (!b) {
    ops.push({ kind: 'update', side: loser, ...ids, record: win.record!, fingerprint: win.fingerprint!, reason: `edited on both sides; ${rule} → ${label(winner)} version kept` });
    conflicts.push({ ...ids, rule, outcome: `${label(winner)} version written to ${label(loser)}` });
  } else {
    ops.push({ kind: 'refresh', ...ids, crmFingerprint: C.fingerprint, exchangeFingerprint: E.fingerprint, exchangeChangeKey: E.changeKey, reason: `edited on both sides; ${rule}, ${blockShort(policy, b)} → no write` });
    conflicts.push({ ...ids, rule, outcome: b.by === 'direction' ? 'no write (direction)' : `no write (${b.flag})` });
  }
}
