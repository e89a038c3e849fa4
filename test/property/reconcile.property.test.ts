/**
 * Model-based convergence test for the reconciler, in the spirit of vdirsyncer's SyncMachine.
 *
 * The model: two in-memory sides (id → record) and a mapping table, driven by random user actions (create, edit,
 * delete on either side, clock ticks) interleaved with sync cycles, under a random policy
 * (direction × conflict rule × delete-vs-update rule). A cycle does what the real one does (DESIGN.md, "One sync
 * cycle"), minus I/O:
 *   pull    each side reports the current state of every id changed since the last cycle (a delta/change feed).
 *           Exchange reports the sync's own writes too (Graph delta does); the CRM feed does so only in runs where
 *           `crmEchoes` is set (the real CRM feed suppresses them), so echo detection is exercised both ways;
 *   plan    reconcile() over those changes and the mapping rows that name a changed id (what sync-store.mappingsFor
 *           loads), each operation given a sync id;
 *   apply   each operation, failing at random and retried until it succeeds, as Temporal does. A CRM or mapping
 *           operation is one transaction: it fails before any effect. An Exchange operation can also fail *after*
 *           its effect (the response is lost), so the retry applies it a second time. Idempotence follows the
 *           real apply step: an Exchange create looks for its sync id first; a CRM create uses the sync id as the
 *           CRM id; an Exchange update/delete of an item that is already gone is an item failure that leaves the
 *           mapping alone (Graph 404 → `itemFailed`). The mapping is unique both ways, like sync.mapping; the
 *           model throws on a violation. Operations are applied CRM-and-mapping first, then Exchange (the real
 *           order), or in plan order (random per run): the plan must be right either way.
 * Policies also carry random prevent flags (create / update / delete per side), merge by email (new items with
 * the same email on both sides are linked, not copied) and the "matching-crm" filter (new Exchange items only
 * link). On every plan: no prevented operation, and under merge by email no create duplicates an item new on the
 * other side with the same email. Where a prevent flag or matching-crm is set, the sides may legitimately differ
 * (that is what the flag asks for), so convergence is checked as: no prevented write ever happened, the mapping
 * is 1:1 over live items with current fingerprints, and quiet cycles write nothing.
 * User actions happen between cycles only (a user editing an item between plan and apply is a lost-update race
 * the reconciler cannot see; that belongs to the apply step's change keys, not here).
 *
 * After the actions stop, cycles run until one writes nothing; then:
 *   - direction both: every live item on each side has exactly one mapped counterpart with an equal record; the
 *     mapping is 1:1 and names only live items; no unmapped live item remains (no duplicates, nothing lost);
 *   - a one-way direction never wrote to its source side; a mapped pair differs only where the user edited the
 *     target copy after the sync last wrote it; a live source item is unmapped only if it was mapped once (its
 *     target copy was deleted or split off by a conflict rule);
 *   - mapping fingerprints equal the fingerprints of the records they name;
 *   - another cycle with no changes plans nothing but refreshes, and so does a full resync (every live item
 *     staged again, as after an expired delta token) in direction both; in one way it may only re-copy orphaned
 *     source items to the target.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ContactRecord } from '../../src/domain/contact';
import { fingerprint } from '../../src/domain/fingerprint';
import {
  CONFLICT_RULES,
  DELETE_RULES,
  DIRECTIONS,
  reconcile,
  type ConflictRule,
  type DeleteRule,
  type Direction,
  type MappingState,
  type Operation,
  type ReconcilePolicy,
  type Side,
  type SideChange,
  type WriteKind,
} from '../../src/domain/reconcile';
import { prng } from '../../src/util/prng';

// ---- the model ---------------------------------------------------------------------------------------------

interface Item {
  record: ContactRecord;
  modifiedAt: string;
  changeKey: number;
  /** Set on items created by the sync: the sync id the create carried (Exchange extended property). */
  syncId?: string;
  /** The user edited this item after the sync last wrote it. */
  userEdited: boolean;
}

interface SideState {
  name: Side;
  items: Map<string, Item>;
  /** Ids changed since the last pull: what the delta / change feed will report. */
  dirty: Set<string>;
  /** Does the feed report the sync's own writes? */
  echoes: boolean;
  /** Effects the sync had on this side. */
  syncWrites: number;
  /** The sync's writes to this side by kind: a prevented kind must stay at 0. */
  writesByKind: Record<WriteKind, number>;
  everMapped: Set<string>;
  nextId: number;
}

interface Scenario {
  policy: ReconcilePolicy;
  crmEchoes: boolean;
  applyOrder: 'real' | 'plan';
  failSeed: number;
  actions: Action[];
}

type Action =
  | { t: 'create'; side: Side; rec: ContactRecord }
  | { t: 'edit'; side: Side; pick: number; rec: ContactRecord }
  | { t: 'delete'; side: Side; pick: number }
  /** Edit both copies of a linked pair (a conflict, or the same edit twice). */
  | { t: 'edit-pair'; pick: number; crmRec: ContactRecord; exRec: ContactRecord; first: Side; tick: boolean }
  /** Delete one copy of a linked pair and edit the other (delete-vs-update). */
  | { t: 'delete-edit-pair'; pick: number; deleted: Side; rec: ContactRecord }
  | { t: 'tick' }
  | { t: 'cycle' };

type Op = Operation<ContactRecord>;

/** What the runs exercised; printed with CXSYNC_PROPERTY_STATS=1 to check that the model is not vacuous. */
const stats: Record<string, number> = {};
const count = (k: string, n = 1) => void (stats[k] = (stats[k] ?? 0) + n);


class Model {
  readonly crm: SideState;
  readonly ex: SideState;
  /** sync.mapping, keyed by CRM id (the real table's conflict target), unique on Exchange id as well. */
  readonly mapping = new Map<string, MappingState>();
  clock = 0;
  syncIds = 0;
  readonly trace: string[] = [];
  private readonly rand: () => number;

  constructor(readonly sc: Scenario) {
    const side = (name: Side, echoes: boolean): SideState => ({ name, items: new Map(), dirty: new Set(), echoes, syncWrites: 0, writesByKind: { create: 0, update: 0, delete: 0 }, everMapped: new Set(), nextId: 1 });
    this.crm = side('crm', sc.crmEchoes);
    this.ex = side('exchange', true);
    this.rand = prng(sc.failSeed);
  }

  side(s: Side): SideState {
    return s === 'crm' ? this.crm : this.ex;
  }

  now(): string {
    return new Date(Date.UTC(2024, 0, 1) + this.clock * 1000).toISOString();
  }

  // ---- user actions ----

  act(a: Action): void {
    switch (a.t) {
      case 'tick':
        this.clock++;
        return;
      case 'cycle':
        this.cycle();
        return;
      case 'create': {
        const s = this.side(a.side);
        const id = `${a.side === 'crm' ? 'C' : 'E'}u${s.nextId++}`;
        s.items.set(id, { record: a.rec, modifiedAt: this.now(), changeKey: 1, userEdited: true });
        s.dirty.add(id);
        this.trace.push(`user creates ${id} = ${show(a.rec)}`);
        return;
      }
      case 'edit-pair':
      case 'delete-edit-pair': {
        // Choosing a pair by the mapping is only a way to pick ids; what happens is plain edits and deletes.
        const pairs = [...this.mapping.values()].filter((m) => this.crm.items.has(m.crmId) && this.ex.items.has(m.exchangeId)).sort((a, b) => (a.crmId < b.crmId ? -1 : 1));
        if (pairs.length === 0) return;
        const p = pairs[a.pick % pairs.length];
        const pick = (s: SideState, id: string) => [...s.items.keys()].sort().indexOf(id);
        if (a.t === 'edit-pair') {
          const edits: Action[] = [
            { t: 'edit', side: 'crm', pick: pick(this.crm, p.crmId), rec: a.crmRec },
            { t: 'edit', side: 'exchange', pick: pick(this.ex, p.exchangeId), rec: a.exRec },
          ];
          if (a.first === 'exchange') edits.reverse();
          this.act(edits[0]);
          if (a.tick) this.clock++; // the second edit is newer; without a tick they tie
          this.act(edits[1]);
        } else {
          const [del, upd] = a.deleted === 'crm' ? [this.crm, this.ex] : [this.ex, this.crm];
          const [delId, updId] = a.deleted === 'crm' ? [p.crmId, p.exchangeId] : [p.exchangeId, p.crmId];
          this.act({ t: 'edit', side: upd.name, pick: pick(upd, updId), rec: a.rec });
          this.act({ t: 'delete', side: del.name, pick: pick(del, delId) });
        }
        return;
      }
      case 'edit':
      case 'delete': {
        const s = this.side(a.side);
        const ids = [...s.items.keys()].sort();
        if (ids.length === 0) return;
        const id = ids[a.pick % ids.length];
        if (a.t === 'delete') {
          s.items.delete(id);
          this.trace.push(`user deletes ${id}`);
        } else {
          const it = s.items.get(id)!;
          s.items.set(id, { ...it, record: a.rec, modifiedAt: this.now(), changeKey: it.changeKey + 1, userEdited: true });
          this.trace.push(`user edits ${id} = ${show(a.rec)}`);
        }
        s.dirty.add(id);
        return;
      }
    }
  }

  // ---- one sync cycle ----

  pull(s: SideState, all = false): SideChange<ContactRecord>[] {
    const ids = all ? [...new Set([...s.items.keys(), ...s.dirty])] : [...s.dirty];
    s.dirty.clear();
    return ids.sort().map((id) => {
      const it = s.items.get(id);
      if (!it) return { id, removed: true };
      return {
        id,
        removed: false,
        record: structuredClone(it.record),
        fingerprint: fingerprint(it.record),
        modifiedAt: it.modifiedAt,
        ...(s.name === 'exchange' ? { changeKey: `ck${it.changeKey}` } : {}),
        ...(this.sc.policy.mergeByEmail && it.record.email ? { matchKey: it.record.email } : {}),
      };
    });
  }

  plan(all = false): { ops: Op[]; exchange: SideChange<ContactRecord>[] } {
    const exchange = this.pull(this.ex, all);
    const crm = this.pull(this.crm, all);
    const exIds = new Set(exchange.map((c) => c.id));
    const crmIds = new Set(crm.map((c) => c.id));
    const mappings = [...this.mapping.values()].filter((m) => crmIds.has(m.crmId) || exIds.has(m.exchangeId)).map((m) => ({ ...m }));
    const { operations, conflicts } = reconcile({ exchange, crm, mappings, policy: this.sc.policy });
    this.checkPlan(operations, exchange, crm, mappings);
    for (const o of operations) count(`op ${o.kind}${'side' in o ? ` ${o.side}` : ''}`);
    for (const c of conflicts) count(`${c.rule} → ${c.outcome}`);
    return { ops: operations, exchange };
  }

  /** Returns the operations it planned (and applied). */
  cycle(): Op[] {
    const { ops, exchange } = this.plan();
    this.trace.push(`cycle: ${ops.map(showOp).join('; ') || '(nothing)'}`);
    const exCk = new Map(exchange.map((c) => [c.id, c.changeKey]));
    // The operation row keeps the change key of the Exchange version seen (what plan() stores in the payload).
    const planned = ops.map((op) => ({
      op,
      syncId: `s${++this.syncIds}`,
      exchangeChangeKey: 'exchangeId' in op ? exCk.get(op.exchangeId) : op.kind === 'create' && op.side === 'crm' ? exCk.get(op.sourceId) : undefined,
    }));
    // The real applyBatch runs CRM and mapping operations first (in plan order), then the Exchange ones.
    const onExchange = (op: Op) => (op.kind === 'create' || op.kind === 'update' || op.kind === 'delete') && op.side === 'exchange';
    const order = this.sc.applyOrder === 'real' ? [...planned.filter((p) => !onExchange(p.op)), ...planned.filter((p) => onExchange(p.op))] : planned;
    for (const p of order) this.applyWithRetries(p.op, p.syncId, p.exchangeChangeKey);
    this.clock++;
    return ops;
  }

  /** Properties of a plan that hold whatever the state: checked on every cycle. */
  checkPlan(ops: Op[], exchange: SideChange<ContactRecord>[] = [], crm: SideChange<ContactRecord>[] = [], mappings: MappingState[] = []): void {
    const source = this.sourceSide();
    const prevent = this.sc.policy.prevent;
    for (const op of ops) {
      // A restore re-creates a deleted CRM record: prevent.crm.create governs it.
      if ((op.kind === 'create' || op.kind === 'update' || op.kind === 'delete') && prevent?.[op.side]?.[op.kind === 'update' && op.restore ? 'create' : op.kind]) {
        throw new Error(`prevent.${op.side}.${op.kind} is set but the plan has ${showOp(op)}`);
      }
    }
    if (this.sc.policy.mergeByEmail) {
      // A create copying a new item never duplicates an item new on the other side with the same email: those
      // are linked. Per email k and target side T: creates on T ≤ max(0, new on the source − new on T).
      const mappedCrm = new Set(mappings.map((m) => m.crmId));
      const mappedEx = new Set(mappings.map((m) => m.exchangeId));
      const fresh = (xs: SideChange<ContactRecord>[], mapped: Set<string>) => {
        const n = new Map<string, number>();
        for (const x of xs) if (!x.removed && x.record?.email && !mapped.has(x.id)) n.set(x.record.email, (n.get(x.record.email) ?? 0) + 1);
        return n;
      };
      const newEx = fresh(exchange, mappedEx);
      const newCrm = fresh(crm, mappedCrm);
      const creates = new Map<string, number>();
      for (const op of ops) {
        if (op.kind !== 'create' || !op.record.email) continue;
        if ((op.side === 'crm' ? mappedEx : mappedCrm).has(op.sourceId)) continue; // a re-create or keep-both copy, not a new item
        const k = `${op.side} ${op.record.email}`;
        creates.set(k, (creates.get(k) ?? 0) + 1);
      }
      for (const [k, n] of creates) {
        const [target, email] = k.split(' ');
        const from = target === 'crm' ? newEx : newCrm;
        const there = target === 'crm' ? newCrm : newEx;
        if (n > Math.max(0, (from.get(email) ?? 0) - (there.get(email) ?? 0))) throw new Error(`merge by email: ${n} create(s) on ${target} for ${email} duplicate items new there: ${ops.map(showOp).join('; ')}`);
        count('merge-by-email creates checked');
      }
    }
    for (const op of ops) {
      if ((op.kind === 'create' || op.kind === 'update' || op.kind === 'delete') && op.side === source) {
        throw new Error(`direction ${this.sc.policy.direction} planned a write to its source side: ${showOp(op)}`);
      }
      if ((op.kind === 'create' || op.kind === 'update') && op.fingerprint !== fingerprint(op.record)) {
        throw new Error(`operation carries a fingerprint that is not its record's: ${showOp(op)}`);
      }
    }
  }

  sourceSide(): Side | undefined {
    const d = this.sc.policy.direction;
    return d === 'crm-to-exchange' ? 'crm' : d === 'exchange-to-crm' ? 'exchange' : undefined;
  }

  applyWithRetries(op: Op, syncId: string, exchangeChangeKey: string | undefined): void {
    for (let attempt = 0; ; attempt++) {
      const mayFail = attempt < 8;
      if (mayFail && this.rand() < 0.25) { count('attempt failed before its effect'); continue; } // timeout, 503, database restart
      const done = this.applyOnce(op, syncId, exchangeChangeKey, () => mayFail && this.rand() < 0.25);
      if (done) return;
      count('Exchange response lost after the effect');
    }
  }

  /**
   * One attempt. `lostResponse()` decides whether an Exchange call's answer is lost after it took effect; then
   * the bookkeeping (mapping row, operation done) does not happen and the attempt reports false.
   */
  applyOnce(op: Op, syncId: string, exchangeChangeKey: string | undefined, lostResponse: () => boolean): boolean {
    switch (op.kind) {
      case 'unlink':
        this.mapping.delete(op.crmId);
        return true;
      case 'link':
        this.upsertMapping({ crmId: op.crmId, exchangeId: op.exchangeId, crmFingerprint: op.crmFingerprint, exchangeFingerprint: op.exchangeFingerprint, exchangeChangeKey: op.exchangeChangeKey ?? null });
        return true;
      case 'refresh': {
        const m = this.mapping.get(op.crmId);
        if (m) {
          if (op.crmFingerprint !== undefined) m.crmFingerprint = op.crmFingerprint;
          if (op.exchangeFingerprint !== undefined) m.exchangeFingerprint = op.exchangeFingerprint;
          if (op.exchangeChangeKey !== undefined) m.exchangeChangeKey = op.exchangeChangeKey;
        }
        return true;
      }
      case 'create': {
        if (op.side === 'exchange') {
          let id = [...this.ex.items].find(([, it]) => it.syncId === syncId)?.[0];
          if (id) count('Exchange create found by sync id on retry');
          if (!id) {
            id = `Es${this.ex.nextId++}`;
            this.write(this.ex, id, { record: structuredClone(op.record), modifiedAt: this.now(), changeKey: 1, syncId, userEdited: false }, 'create');
          }
          if (lostResponse()) return false;
          this.upsertMapping({ crmId: op.sourceId, exchangeId: id, crmFingerprint: op.fingerprint, exchangeFingerprint: op.fingerprint, exchangeChangeKey: `ck${this.ex.items.get(id)!.changeKey}` });
        } else {
          // The sync id doubles as the CRM id: a retried create is a no-op.
          const id = `C${syncId}`;
          if (!this.crm.items.has(id)) this.write(this.crm, id, { record: structuredClone(op.record), modifiedAt: this.now(), changeKey: 1, syncId, userEdited: false }, 'create');
          this.upsertMapping({ crmId: id, exchangeId: op.sourceId, crmFingerprint: op.fingerprint, exchangeFingerprint: op.fingerprint, exchangeChangeKey: exchangeChangeKey ?? null });
        }
        return true;
      }
      case 'update': {
        const s = this.side(op.side);
        const id = op.side === 'crm' ? op.crmId : op.exchangeId;
        const it = s.items.get(id);
        if (!it) {
          if (op.side === 'exchange') { count('Exchange update 404'); return true; } // Graph 404: item failure, mapping left alone
          // keep-updated after a CRM delete: the record is written back under its own id.
          if (op.restore) { count('CRM record restored'); this.write(s, id, { record: structuredClone(op.record), modifiedAt: this.now(), changeKey: 1, syncId, userEdited: false }, 'create'); }
        } else {
          this.write(s, id, { ...it, record: structuredClone(op.record), modifiedAt: this.now(), changeKey: it.changeKey + 1, userEdited: false }, 'update');
        }
        if (op.side === 'exchange' && lostResponse()) return false;
        const m = this.mapping.get(op.crmId);
        if (m) {
          m.crmFingerprint = op.fingerprint;
          m.exchangeFingerprint = op.fingerprint;
          const ck = op.side === 'exchange' ? `ck${this.ex.items.get(id)!.changeKey}` : exchangeChangeKey;
          if (ck !== undefined) m.exchangeChangeKey = ck;
        }
        return true;
      }
      case 'delete': {
        const s = this.side(op.side);
        const id = op.side === 'crm' ? op.crmId : op.exchangeId;
        if (!s.items.has(id)) {
          if (op.side === 'exchange') { count('Exchange delete 404 (retried delete)'); return true; } // item failure, mapping left alone
        } else {
          s.items.delete(id);
          s.syncWrites++;
          s.writesByKind.delete++;
          if (s.echoes) s.dirty.add(id);
        }
        if (op.side === 'exchange' && lostResponse()) return false;
        this.mapping.delete(op.crmId);
        return true;
      }
    }
  }

  write(s: SideState, id: string, it: Item, kind: WriteKind): void {
    s.items.set(id, it);
    s.syncWrites++;
    s.writesByKind[kind]++;
    if (s.echoes) s.dirty.add(id);
  }

  upsertMapping(m: MappingState): void {
    for (const other of this.mapping.values()) {
      if (other.exchangeId === m.exchangeId && other.crmId !== m.crmId) {
        throw new Error(`sync.mapping unique violation: Exchange id ${m.exchangeId} is already linked to ${other.crmId}, cannot link it to ${m.crmId}`);
      }
    }
    this.mapping.set(m.crmId, { ...m });
    this.crm.everMapped.add(m.crmId);
    this.ex.everMapped.add(m.exchangeId);
  }
}

function show(r: ContactRecord): string {
  return [r.firstName, r.email, r.city].filter(Boolean).join('/');
}

function showOp(op: Op): string {
  switch (op.kind) {
    case 'create': return `create ${op.side} from ${op.sourceId} = ${show(op.record)}`;
    case 'update': return `update ${op.side} ${op.crmId}/${op.exchangeId} = ${show(op.record)}`;
    case 'delete': return `delete ${op.side} ${op.crmId}/${op.exchangeId}`;
    case 'unlink': return `unlink ${op.crmId}/${op.exchangeId}`;
    case 'refresh': return `refresh ${op.crmId}/${op.exchangeId}`;
    case 'link': return `link ${op.crmId}/${op.exchangeId}`;
  }
}

const writesSomething = (ops: Op[]) => ops.some((o) => o.kind !== 'refresh');

// ---- the check ---------------------------------------------------------------------------------------------

function runScenario(sc: Scenario): void {
  const m = new Model(sc);
  const fail = (msg: string): never => {
    throw new Error(`${msg}\npolicy ${JSON.stringify(sc.policy)}, crmEchoes ${sc.crmEchoes}, apply order ${sc.applyOrder}\n  ${m.trace.join('\n  ')}`);
  };
  try {
    for (const a of sc.actions) m.act(a);

    // Changes stop: cycle until a cycle writes nothing (its echoes drained). Three suffice: the user's last
    // changes, the echoes of the sync's writes (and a retried Exchange delete's mapping cleanup), then quiet.
    let settled = false;
    for (let i = 0; i < 3 && !settled; i++) settled = !writesSomething(m.cycle());
    if (!settled) fail('did not settle within 3 quiet cycles');
    count('runs');
    count(`runs ${sc.policy.direction}`);
    count('live items at the end', m.crm.items.size + m.ex.items.size);
    count('mapped pairs at the end', m.mapping.size);
  } catch (err) {
    if ((err as Error).message.includes('\n  ')) throw err;
    fail((err as Error).message);
  }

  const { crm, ex } = m;
  const rows = [...m.mapping.values()];
  const source = m.sourceSide();
  const target = source === undefined ? undefined : source === 'crm' ? ex : crm;
  const prevent = sc.policy.prevent;
  // Prevent flags and matching-crm ask for sides that may differ: check what they promise instead of convergence.
  const relaxed = (['crm', 'exchange'] as Side[]).some((sd) => (['create', 'update', 'delete'] as WriteKind[]).some((k) => prevent?.[sd]?.[k])) || sc.policy.newExchangeItems === 'match-only';
  if (relaxed) count('runs with prevent flags or matching-crm');
  if (sc.policy.mergeByEmail) count('runs with merge by email');
  for (const sd of [crm, ex]) {
    for (const k of ['create', 'update', 'delete'] as WriteKind[]) {
      if (prevent?.[sd.name]?.[k] && sd.writesByKind[k] !== 0) fail(`prevent.${sd.name}.${k} is set but the sync made ${sd.writesByKind[k]} such write(s)`);
    }
  }

  // The mapping is 1:1 and names live items on both sides, with their current fingerprints.
  const exIds = new Set<string>();
  for (const r of rows) {
    if (exIds.has(r.exchangeId)) fail(`Exchange id ${r.exchangeId} mapped twice`);
    exIds.add(r.exchangeId);
    const c = crm.items.get(r.crmId);
    const e = ex.items.get(r.exchangeId);
    if (!c || !e) fail(`mapping ${r.crmId}/${r.exchangeId} names a deleted item (CRM ${c ? 'live' : 'gone'}, Exchange ${e ? 'live' : 'gone'})`);
    if (r.crmFingerprint !== fingerprint(c!.record)) fail(`mapping ${r.crmId}/${r.exchangeId}: stale CRM fingerprint`);
    if (r.exchangeFingerprint !== fingerprint(e!.record)) fail(`mapping ${r.crmId}/${r.exchangeId}: stale Exchange fingerprint`);
    const differ = fingerprint(c!.record) !== fingerprint(e!.record);
    if (source === undefined && differ && !relaxed) {
      fail(`pair ${r.crmId}/${r.exchangeId} did not converge: CRM ${show(c!.record)}, Exchange ${show(e!.record)}`);
    }
    if (source !== undefined && differ && !relaxed) {
      const t = target === crm ? c! : e!;
      if (!t.userEdited) fail(`pair ${r.crmId}/${r.exchangeId} differs though the target copy was not edited by the user: CRM ${show(c!.record)}, Exchange ${show(e!.record)}`);
    }
  }
  const crmMapped = new Set(rows.map((r) => r.crmId));
  for (const s of [crm, ex]) {
    const mapped = s === crm ? crmMapped : exIds;
    for (const id of s.items.keys()) {
      if (mapped.has(id)) continue;
      if (relaxed) continue;
      if (source === undefined) fail(`live ${s.name} item ${id} has no counterpart (direction both)`);
      if (s.name === source && !s.everMapped.has(id)) fail(`live ${s.name} item ${id} was never copied to the target`);
    }
  }
  if (source !== undefined && m.side(source).syncWrites !== 0) fail(`direction ${sc.policy.direction} wrote ${m.side(source).syncWrites} times to its source side`);
  if (source === undefined && !relaxed && crm.items.size !== ex.items.size) fail(`sides hold ${crm.items.size} CRM and ${ex.items.size} Exchange items`);

  // Another cycle without changes plans only refreshes (here: nothing, the feeds are empty)...
  const again = m.cycle();
  if (again.some((o) => o.kind !== 'refresh')) fail(`a quiet cycle planned writes: ${again.map(showOp).join('; ')}`);

  // ...and so does a full resync (every live item staged again, as after an expired delta token), except that a
  // one-way sync may copy its orphaned source items to the target again.
  const { ops } = m.plan(true);
  // Merge by email may link orphans with the same email that a full resync sees as new on both sides (and align
  // their versions): that is a merge doing its job, not a write to a settled pair.
  const linkedNow = new Set(ops.flatMap((o) => (o.kind === 'link' ? [`${o.crmId}/${o.exchangeId}`] : [])));
  for (const o of ops) {
    if (o.kind === 'refresh' || o.kind === 'link') continue;
    if (o.kind === 'update' && linkedNow.has(`${o.crmId}/${o.exchangeId}`)) continue;
    if (source !== undefined && o.kind === 'create' && o.side !== source && !(o.side === 'crm' ? exIds : crmMapped).has(o.sourceId)) continue;
    // With prevent flags or matching-crm, orphans (unlinked by a prevented delete, or never copied) may be
    // copied or linked by a full resync: they are new to it. Never a write to a linked pair.
    if (relaxed && o.kind === 'create' && !(o.side === 'crm' ? exIds : crmMapped).has(o.sourceId)) continue;
    fail(`a full resync of settled sides planned ${showOp(o)}`);
  }
}

// ---- generators --------------------------------------------------------------------------------------------

const side = fc.constantFrom<Side>('crm', 'exchange');
// A small value space, so that the same edit on both sides and edits back to an earlier value happen often.
const record: fc.Arbitrary<ContactRecord> = fc.record(
  { firstName: fc.constantFrom('Ann', 'Bob', 'Cy'), email: fc.constantFrom('a@x.io', 'b@x.io'), city: fc.constantFrom('Oslo', 'Rome') },
  { requiredKeys: ['firstName'] },
);
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('create' as const), side, rec: record }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('edit' as const), side, pick: fc.nat(20), rec: record }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('delete' as const), side, pick: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('edit-pair' as const), pick: fc.nat(20), crmRec: record, exRec: record, first: side, tick: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('delete-edit-pair' as const), pick: fc.nat(20), deleted: side, rec: record }) },
  { weight: 1, arbitrary: fc.constant({ t: 'tick' as const }) },
  { weight: 2, arbitrary: fc.constant({ t: 'cycle' as const }) },
);
const flag = fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
const sidePrevent = fc.record({ create: flag, update: flag, delete: flag });
const policy: fc.Arbitrary<ReconcilePolicy> = fc.record({
  direction: fc.constantFrom<Direction>(...DIRECTIONS),
  conflict: fc.constantFrom<ConflictRule>(...CONFLICT_RULES),
  deleteVsUpdate: fc.constantFrom<DeleteRule>(...DELETE_RULES),
  // Half the runs without any prevent flag, so plain convergence keeps its full weight.
  prevent: fc.oneof(fc.constant(undefined), fc.record({ crm: sidePrevent, exchange: sidePrevent })),
  mergeByEmail: fc.boolean(),
  newExchangeItems: fc.constantFrom<'copy' | 'match-only'>('copy', 'copy', 'copy', 'match-only'),
});
const scenario: fc.Arbitrary<Scenario> = fc.record({
  policy,
  crmEchoes: fc.boolean(),
  applyOrder: fc.constantFrom<'real' | 'plan'>('real', 'plan'),
  failSeed: fc.integer(),
  actions: fc.array(action, { maxLength: 40, size: 'medium' }),
});

const NUM_RUNS = Number(process.env.CXSYNC_PROPERTY_RUNS ?? 8000);

describe('reconcile: model-based convergence (SyncMachine-style)', () => {
  after(() => {
    if (process.env.CXSYNC_PROPERTY_STATS) console.log(Object.entries(stats).sort().map(([k, v]) => `${k}: ${v}`).join('\n'));
  });

  it(`converges under every policy with failing, retried operations (${NUM_RUNS} runs)`, () => {
    fc.assert(fc.property(scenario, runScenario), { numRuns: NUM_RUNS, includeErrorInReport: true });
  });

  it('every direction × conflict × delete-vs-update pairing converges', () => {
    // The same property with the policy fixed, so no pairing is left to chance.
    for (const direction of ['both', 'crm-to-exchange', 'exchange-to-crm'] as Direction[]) {
      for (const conflict of CONFLICT_RULES) {
        for (const deleteVsUpdate of ['crm-master', 'exchange-master', 'delete-wins', 'keep-updated'] as DeleteRule[]) {
          const fixed = scenario.map((s) => ({ ...s, policy: { direction, conflict, deleteVsUpdate } }));
          fc.assert(fc.property(fixed, runScenario), { numRuns: Math.max(20, Math.round(NUM_RUNS / 40)), includeErrorInReport: true });
        }
      }
    }
  });

  it('every prevent flag, alone, under every direction and conflict rule: never happens', () => {
    for (const sd of ['crm', 'exchange'] as Side[]) {
      for (const kind of ['create', 'update', 'delete'] as WriteKind[]) {
        for (const direction of ['both', 'crm-to-exchange', 'exchange-to-crm'] as Direction[]) {
          const fixed = scenario.map((s) => ({ ...s, policy: { ...s.policy, direction, prevent: { [sd]: { [kind]: true } }, newExchangeItems: 'copy' as const } }));
          fc.assert(fc.property(fixed, runScenario), { numRuns: Math.max(20, Math.round(NUM_RUNS / 40)), includeErrorInReport: true });
        }
      }
    }
  });

  it('merge by email under every direction × conflict rule, no prevent flags: converges, links instead of duplicating', () => {
    for (const direction of ['both', 'crm-to-exchange', 'exchange-to-crm'] as Direction[]) {
      for (const conflict of CONFLICT_RULES) {
        const fixed = scenario.map((s) => ({ ...s, policy: { ...s.policy, direction, conflict, prevent: undefined, mergeByEmail: true, newExchangeItems: 'copy' as const } }));
        fc.assert(fc.property(fixed, runScenario), { numRuns: Math.max(20, Math.round(NUM_RUNS / 40)), includeErrorInReport: true });
      }
    }
  });

  it('the prevent check catches a reconciler that ignores a flag', () => {
    const sc: Scenario = {
      policy: { direction: 'both', conflict: 'crm-wins', deleteVsUpdate: 'keep-updated', prevent: { exchange: { update: true } } },
      crmEchoes: false,
      applyOrder: 'real',
      failSeed: 1,
      actions: [{ t: 'create', side: 'crm', rec: { firstName: 'Ann' } }, { t: 'cycle' }, { t: 'edit', side: 'crm', pick: 0, rec: { firstName: 'Bob' } }],
    };
    runScenario(sc);
    const original = Model.prototype.plan;
    Model.prototype.plan = function (this: Model, all?: boolean) {
      const saved = this.sc.policy.prevent;
      this.sc.policy.prevent = undefined; // the sabotage: plan as if no flag were set
      try {
        return original.call(this, all);
      } finally {
        this.sc.policy.prevent = saved;
      }
    };
    try {
      assert.throws(() => runScenario(sc), /prevent\.exchange\.update is set but the sync made 1/);
    } finally {
      Model.prototype.plan = original;
    }
  });

  it('the model itself catches a broken reconciler (a plan that drops CRM edits does not converge)', () => {
    // Guard against a vacuous model: sabotage the plan and expect the property to fail.
    const sc: Scenario = {
      policy: { direction: 'both', conflict: 'crm-wins', deleteVsUpdate: 'keep-updated' },
      crmEchoes: false,
      applyOrder: 'real',
      failSeed: 1,
      actions: [{ t: 'create', side: 'crm', rec: { firstName: 'Ann' } }, { t: 'cycle' }, { t: 'edit', side: 'crm', pick: 0, rec: { firstName: 'Bob' } }],
    };
    const original = Model.prototype.plan;
    Model.prototype.plan = function (this: Model, all?: boolean) {
      const out = original.call(this, all);
      return { ...out, ops: out.ops.filter((o) => !(o.kind === 'update' && o.side === 'exchange')) };
    };
    try {
      assert.throws(() => runScenario(sc), /did not converge|stale/);
    } finally {
      Model.prototype.plan = original;
    }
    runScenario(sc);
  });
});
