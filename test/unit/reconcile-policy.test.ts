/**
 * Example tests for the policy-driven parts of the reconciler: prevent flags (alone and against every
 * direction × conflict × delete-vs-update pairing), merge by email (link), match-only new items, scope
 * (excluded / ignored / new-only), the emptied-side guard with its confirm and discard answers, and determinism.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
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
  type ReconcileInput,
  type ReconcilePolicy,
  type Side,
  type SideChange,
  type WriteKind,
} from '../../src/domain/reconcile';

type Op = Operation<ContactRecord>;

const SIDES: Side[] = ['crm', 'exchange'];
const KINDS: WriteKind[] = ['create', 'update', 'delete'];

const r = (firstName: string, email = `${firstName.toLowerCase()}@example.com`): ContactRecord => ({ firstName, email });
const fp = (name: string, email?: string) => fingerprint(r(name, email));

function live(id: string, name: string, extra: Partial<SideChange<ContactRecord>> = {}, email?: string): SideChange<ContactRecord> {
  const rec = r(name, email);
  return { id, removed: false, record: rec, fingerprint: fingerprint(rec), matchKey: rec.email, ...extra };
}
const gone = (id: string): SideChange<ContactRecord> => ({ id, removed: true });
function link(crmId: string, exchangeId: string, name: string): MappingState {
  return { crmId, exchangeId, crmFingerprint: fp(name), exchangeFingerprint: fp(name), exchangeChangeKey: 'ck0' };
}
function policy(p: Partial<ReconcilePolicy> = {}): ReconcilePolicy {
  return { direction: 'both', conflict: 'crm-wins', deleteVsUpdate: 'keep-updated', ...p };
}
function run(input: Partial<ReconcileInput<ContactRecord>>) {
  return reconcile<ContactRecord>({ exchange: [], crm: [], mappings: [], policy: policy(), ...input });
}
function show(op: Op): string {
  switch (op.kind) {
    case 'create': return `create ${op.side} from ${op.sourceId} = ${op.record.firstName}`;
    case 'update': return `update ${op.side} ${op.crmId}/${op.exchangeId} = ${op.record.firstName}`;
    case 'delete': return `delete ${op.side} ${op.crmId}/${op.exchangeId}`;
    case 'unlink': return `unlink ${op.crmId}/${op.exchangeId}`;
    case 'refresh': return `refresh ${op.crmId}/${op.exchangeId}`;
    case 'link': return `link ${op.crmId}/${op.exchangeId}`;
  }
}
const shows = (ops: Op[]) => ops.map(show);
// A restore writes a deleted CRM record back under its own id: prevent.crm.create governs it, as a re-create.
const writeOf = (op: Op): [Side, WriteKind] | undefined =>
  op.kind === 'update' && op.restore ? [op.side, 'create'] : op.kind === 'create' || op.kind === 'update' || op.kind === 'delete' ? [op.side, op.kind] : undefined;
const prevent = (side: Side, kind: WriteKind): ReconcilePolicy['prevent'] => ({ [side]: { [kind]: true } });

describe('reconcile: prevent flags', () => {
  it('prevent.exchange.create: a new CRM item is not copied, and the skip says why', () => {
    const out = run({ crm: [live('C1', 'Ann')], policy: policy({ prevent: prevent('exchange', 'create') }) });
    assert.deepEqual(out.operations, []);
    assert.deepEqual(out.skipped, [{ side: 'crm', id: 'C1', reason: 'new in CRM; create in Exchange prevented (prevent.exchange.create)' }]);
  });

  it('prevent.crm.create: a new Exchange item is not copied', () => {
    const out = run({ exchange: [live('E1', 'Ann')], policy: policy({ prevent: prevent('crm', 'create') }) });
    assert.deepEqual(out.operations, []);
    assert.equal(out.skipped[0].reason, 'new in Exchange; create in CRM prevented (prevent.crm.create)');
  });

  it('prevent.exchange.update: a CRM edit is not written; the mapping takes the CRM fingerprint so it is not re-planned', () => {
    const out = run({ crm: [live('C1', 'Ann2')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ prevent: prevent('exchange', 'update') }) });
    assert.deepEqual(out.operations, [
      { kind: 'refresh', crmId: 'C1', exchangeId: 'E1', crmFingerprint: fp('Ann2'), reason: 'changed in CRM; update in Exchange prevented (prevent.exchange.update)' },
    ]);
  });

  it('prevent.crm.update: an Exchange edit is not written', () => {
    const out = run({ exchange: [live('E1', 'Ann2', { changeKey: 'ck5' })], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ prevent: prevent('crm', 'update') }) });
    assert.deepEqual(shows(out.operations), ['refresh C1/E1']);
    assert.match(out.operations[0].reason, /update in CRM prevented \(prevent\.crm\.update\)/);
  });

  it('prevent.crm.delete: a delete in Exchange unlinks the CRM copy instead of deleting it', () => {
    const out = run({ exchange: [gone('E1')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ prevent: prevent('crm', 'delete') }) });
    assert.deepEqual(out.operations, [{ kind: 'unlink', crmId: 'C1', exchangeId: 'E1', reason: 'deleted in Exchange; delete in CRM prevented (prevent.crm.delete)' }]);
  });

  it('prevent.exchange.delete: a delete in the CRM unlinks the Exchange copy', () => {
    const out = run({ crm: [gone('C1')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ prevent: prevent('exchange', 'delete') }) });
    assert.deepEqual(shows(out.operations), ['unlink C1/E1']);
  });

  it('overrides the conflict rule: crm-wins with prevent.exchange.update writes nothing', () => {
    const out = run({ exchange: [live('E1', 'Ex')], crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ conflict: 'crm-wins', prevent: prevent('exchange', 'update') }) });
    assert.deepEqual(shows(out.operations), ['refresh C1/E1']);
    assert.equal(out.operations[0].reason, 'edited on both sides; conflict: crm-wins, prevent.exchange.update set → no write');
    assert.deepEqual(out.conflicts, [{ crmId: 'C1', exchangeId: 'E1', rule: 'conflict: crm-wins', outcome: 'no write (prevent.exchange.update)' }]);
  });

  it('overrides the delete rule (LinkPoint): delete-wins with prevent.exchange.delete unlinks instead of deleting', () => {
    const out = run({ exchange: [live('E1', 'Ex')], crm: [gone('C1')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ deleteVsUpdate: 'delete-wins', prevent: prevent('exchange', 'delete') }) });
    assert.deepEqual(shows(out.operations), ['unlink C1/E1']);
    assert.match(out.operations[0].reason, /delete-vs-update: delete-wins, prevent\.exchange\.delete set → unlinked/);
    assert.equal(out.conflicts[0].outcome, 'unlinked; each side keeps its state');
  });

  it('keep-updated with prevent.crm.create: the item deleted in the CRM is not re-created there', () => {
    const out = run({ exchange: [live('E1', 'Ex')], crm: [gone('C1')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ deleteVsUpdate: 'keep-updated', prevent: prevent('crm', 'create') }) });
    assert.deepEqual(shows(out.operations), ['unlink C1/E1']);
  });

  it('keep-both with prevent.crm.create: only the Exchange copy of the CRM version is made', () => {
    const out = run({ exchange: [live('E1', 'Ex')], crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ conflict: 'keep-both', prevent: prevent('crm', 'create') }) });
    assert.deepEqual(shows(out.operations), ['unlink C1/E1', 'create exchange from C1 = Cr']);
    assert.equal(out.conflicts[0].outcome, 'both versions kept (not copied to CRM: prevent.crm.create)');
  });

  /** Every branch at once, as in reconcile.test.ts. */
  function everything(p: ReconcilePolicy) {
    return run({
      exchange: [live('E-new', 'NewEx'), live('E1', 'Ex1'), gone('E2'), live('E3', 'Ann'), gone('E4'), live('E6', 'Ex6', { modifiedAt: '2024-02-01T00:00:00Z' }), gone('E7'), live('E8', 'Ex8')],
      crm: [live('C-new', 'NewCr'), live('C3', 'Cr3'), gone('C4'), live('C6', 'Cr6', { modifiedAt: '2024-01-01T00:00:00Z' }), live('C7', 'Cr7'), gone('C8'), gone('C9'), live('C10', 'Cr10')],
      mappings: ['1', '2', '3', '4', '6', '7', '8', '9', '10'].map((i) => link(`C${i}`, `E${i}`, 'Ann')),
      policy: p,
    });
  }

  for (const side of SIDES) {
    for (const kind of KINDS) {
      it(`prevent.${side}.${kind} holds under every direction × conflict × delete-vs-update pairing`, () => {
        for (const direction of DIRECTIONS) {
          for (const conflict of CONFLICT_RULES) {
            for (const deleteVsUpdate of DELETE_RULES) {
              const out = everything(policy({ direction, conflict, deleteVsUpdate, prevent: prevent(side, kind) }));
              for (const op of out.operations) {
                const w = writeOf(op);
                assert.ok(!(w && w[0] === side && w[1] === kind), `${direction} × ${conflict} × ${deleteVsUpdate}: planned ${show(op)}`);
                assert.ok(op.reason.length > 3);
              }
              // Every changed pair still gets a decision (nothing silently dropped).
              const named = new Set(out.operations.flatMap((o) => (o.kind === 'create' ? [] : [`${o.crmId}/${o.exchangeId}`])));
              for (const i of ['1', '2', '3', '4', '6', '7', '8', '9', '10']) assert.ok(named.has(`C${i}/E${i}`), `C${i}/E${i}`);
            }
          }
        }
      });
    }
  }

  it('all writes to a side prevented is a one-way sync away from it', () => {
    const all = { create: true, update: true, delete: true };
    const viaPrevent = everything(policy({ prevent: { crm: all } }));
    const viaDirection = everything(policy({ direction: 'crm-to-exchange' }));
    const writes = (ops: Op[]) => ops.filter((o) => writeOf(o)).map(show);
    assert.deepEqual(writes(viaPrevent.operations), writes(viaDirection.operations));
  });
});

describe('reconcile: merge by email', () => {
  const merge = (p: Partial<ReconcilePolicy> = {}) => policy({ mergeByEmail: true, ...p });

  it('links a new Exchange item to a new CRM item with the same email instead of copying both', () => {
    const out = run({ exchange: [live('E1', 'Ann', { changeKey: 'ck1' })], crm: [live('C1', 'Ann')], policy: merge() });
    assert.deepEqual(out.operations, [
      { kind: 'link', crmId: 'C1', exchangeId: 'E1', crmFingerprint: fp('Ann'), exchangeFingerprint: fp('Ann'), exchangeChangeKey: 'ck1', reason: 'new on both sides with the same email ann@example.com: linked (mergeByEmail)' },
    ]);
    assert.deepEqual(out.conflicts, []);
  });

  it('without mergeByEmail the same pair is copied both ways (the duplicate it prevents)', () => {
    const out = run({ exchange: [live('E1', 'Ann')], crm: [live('C1', 'Ann')] });
    assert.deepEqual(shows(out.operations), ['create crm from E1 = Ann', 'create exchange from C1 = Ann']);
  });

  it('versions that differ: linked, then the conflict rule decides whose version both get, recorded as a conflict', () => {
    const e = live('E1', 'Annie', { modifiedAt: '2024-01-02T00:00:00Z' }, 'ann@x.io');
    const c = live('C1', 'Ann', { modifiedAt: '2024-01-01T00:00:00Z' }, 'ann@x.io');
    const crmWins = run({ exchange: [e], crm: [c], policy: merge({ conflict: 'crm-wins' }) });
    assert.deepEqual(shows(crmWins.operations), ['link C1/E1', 'update exchange C1/E1 = Ann']);
    assert.deepEqual(crmWins.conflicts, [{ crmId: 'C1', exchangeId: 'E1', rule: 'merge by email; conflict: crm-wins', outcome: 'linked; CRM version written to Exchange' }]);
    assert.deepEqual(shows(run({ exchange: [e], crm: [c], policy: merge({ conflict: 'exchange-wins' }) }).operations), ['link C1/E1', 'update crm C1/E1 = Annie']);
    assert.deepEqual(shows(run({ exchange: [e], crm: [c], policy: merge({ conflict: 'newest-wins' }) }).operations), ['link C1/E1', 'update crm C1/E1 = Annie']);
    const kb = run({ exchange: [e], crm: [c], policy: merge({ conflict: 'keep-both' }) });
    assert.deepEqual(shows(kb.operations), ['link C1/E1', 'update exchange C1/E1 = Ann']);
    assert.match(kb.conflicts[0].rule, /a merge keeps one record: CRM version/);
  });

  it('a one-way direction links but never writes its source side', () => {
    const e = live('E1', 'Annie', {}, 'ann@x.io');
    const c = live('C1', 'Ann', {}, 'ann@x.io');
    const out = run({ exchange: [e], crm: [c], policy: merge({ direction: 'crm-to-exchange', conflict: 'exchange-wins' }) });
    assert.deepEqual(shows(out.operations), ['link C1/E1']);
    assert.equal(out.conflicts[0].outcome, 'linked; no write (direction crm-to-exchange)');
  });

  it('pairs several items with one email in id order; the rest are copied as usual', () => {
    const out = run({
      exchange: [live('E2', 'Ann', {}, 'a@x.io'), live('E1', 'Ann', {}, 'a@x.io')],
      crm: [live('C1', 'Ann', {}, 'a@x.io')],
      policy: merge(),
    });
    assert.deepEqual(shows(out.operations), ['link C1/E1', 'create crm from E2 = Ann']);
  });

  it('items without an email, and items already mapped, are never merged', () => {
    const noEmail = { ...live('E1', 'Ann'), matchKey: undefined };
    assert.deepEqual(shows(run({ exchange: [noEmail], crm: [{ ...live('C1', 'Ann'), matchKey: undefined }], policy: merge() }).operations), ['create crm from E1 = Ann', 'create exchange from C1 = Ann']);
    const mapped = run({ exchange: [live('E1', 'Ann')], crm: [live('C2', 'Ann')], mappings: [link('C1', 'E1', 'Ann')], policy: merge() });
    assert.deepEqual(shows(mapped.operations), ['refresh C1/E1', 'create exchange from C2 = Ann']);
  });

  it('prevent flags do not stop a link (it writes no item), but do stop the follow-up update', () => {
    const out = run({ exchange: [live('E1', 'Annie', {}, 'a@x.io')], crm: [live('C1', 'Ann', {}, 'a@x.io')], policy: merge({ prevent: { exchange: { update: true, create: true } } }) });
    assert.deepEqual(shows(out.operations), ['link C1/E1']);
    assert.equal(out.conflicts[0].outcome, 'linked; no write (prevent.exchange.update set)');
  });
});

describe('reconcile: filter matching-crm (new Exchange items only link)', () => {
  it('a new Exchange item is linked when a CRM item matches, and otherwise not copied', () => {
    const out = run({
      exchange: [live('E1', 'Ann', {}, 'a@x.io'), live('E2', 'Bob', {}, 'b@x.io')],
      crm: [live('C1', 'Ann', {}, 'a@x.io'), live('C3', 'Cy', {}, 'c@x.io')],
      policy: policy({ mergeByEmail: true, newExchangeItems: 'match-only' }),
    });
    assert.deepEqual(shows(out.operations), ['link C1/E1', 'create exchange from C3 = Cy']);
    assert.deepEqual(out.skipped, [{ side: 'exchange', id: 'E2', reason: 'new in Exchange and linked to no CRM record (filter matching-crm): not copied' }]);
  });

  it('edits of linked items flow as usual', () => {
    const out = run({ exchange: [live('E1', 'Ann2')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ newExchangeItems: 'match-only' }) });
    assert.deepEqual(shows(out.operations), ['update crm C1/E1 = Ann2']);
  });
});

describe('reconcile: scope', () => {
  const excluded = { reason: 'has the category DoNotSync (excludeCategory)', mapped: 'unlink' as const };
  const ignored = { reason: 'ended more than 30 days ago (event window)', mapped: 'ignore' as const };
  const newOnly = { reason: 'not in the category CRM (filter category)', mapped: 'sync' as const };

  it('an excluded new item is skipped with its reason', () => {
    const out = run({ exchange: [live('E1', 'Ann', { outOfScope: excluded })], crm: [live('C1', 'Bob', { outOfScope: { ...excluded, reason: 'private item (excludePrivate)' } })] });
    assert.deepEqual(out.operations, []);
    assert.deepEqual(out.skipped, [
      { side: 'exchange', id: 'E1', reason: 'has the category DoNotSync (excludeCategory)' },
      { side: 'crm', id: 'C1', reason: 'private item (excludePrivate)' },
    ]);
  });

  it('a linked item that becomes excluded splits the pair; both copies stay', () => {
    const out = run({ exchange: [live('E1', 'Ann2', { outOfScope: excluded })], crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(out.operations, [{ kind: 'unlink', crmId: 'C1', exchangeId: 'E1', reason: 'Exchange item excluded: has the category DoNotSync (excludeCategory); the pair is no longer synced, both copies stay' }]);
    assert.deepEqual(out.conflicts, []);
  });

  it('a change outside a time window is ignored; the link stays and the other side still syncs', () => {
    const out = run({ exchange: [live('E1', 'Ann2', { outOfScope: ignored })], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(out.operations, []);
    assert.deepEqual(out.skipped, [{ side: 'exchange', id: 'E1', reason: ignored.reason }]);
    const both = run({ exchange: [live('E1', 'Ann2', { outOfScope: ignored })], crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(shows(both.operations), ['update exchange C1/E1 = Cr']);
  });

  it('a new-items-only rule (category designation) skips new items but not linked ones', () => {
    assert.deepEqual(run({ exchange: [live('E1', 'Ann', { outOfScope: newOnly })] }).skipped.map((s) => s.reason), [newOnly.reason]);
    assert.deepEqual(shows(run({ exchange: [live('E1', 'Ann2', { outOfScope: newOnly })], mappings: [link('C1', 'E1', 'Ann')] }).operations), ['update crm C1/E1 = Ann2']);
  });

  it('out-of-scope items are never merged by email', () => {
    const out = run({ exchange: [live('E1', 'Ann', { outOfScope: excluded })], crm: [live('C1', 'Ann')], policy: policy({ mergeByEmail: true }) });
    assert.deepEqual(shows(out.operations), ['create exchange from C1 = Ann']);
  });
});

describe('reconcile: emptied-side guard', () => {
  const guard = { minItems: 10, share: 0.9 };
  const pairs = (n: number) => Array.from({ length: n }, (_, i) => link(`C${String(i).padStart(2, '0')}`, `E${String(i).padStart(2, '0')}`, 'Ann'));

  it('holds when one side reports ≥ 90 % and ≥ 10 of the mapped items deleted: no deletes planned', () => {
    const mappings = pairs(12);
    const out = run({ exchange: mappings.slice(0, 11).map((m) => gone(m.exchangeId)), mappings, mappedTotal: 12, policy: policy({ massDeleteGuard: guard }) });
    assert.deepEqual(out.operations, []);
    assert.equal(out.held.length, 1);
    assert.deepEqual({ ...out.held[0], reason: undefined }, { side: 'exchange', deleted: 11, mapped: 12, reason: undefined });
    assert.match(out.held[0].reason, /Exchange reports 11 of 12 synced items deleted \(92 %, guard: ≥ 90 % and ≥ 10\)/);
    assert.equal(out.skipped.length, 11);
  });

  it('other changes in the same round still go through while deletes are held', () => {
    const mappings = pairs(10);
    const out = run({ crm: [...mappings.map((m) => gone(m.crmId)), live('C-new', 'New')], mappings, mappedTotal: 10, policy: policy({ massDeleteGuard: guard }) });
    assert.equal(out.held[0].side, 'crm');
    assert.deepEqual(shows(out.operations), ['create exchange from C-new = New']);
  });

  it('does not hold below either threshold, nor without a guard or a mapped total', () => {
    const m12 = pairs(12);
    assert.equal(run({ exchange: m12.slice(0, 10).map((m) => gone(m.exchangeId)), mappings: m12, mappedTotal: 12, policy: policy({ massDeleteGuard: guard }) }).held.length, 0, '83 %');
    const m9 = pairs(9);
    assert.equal(run({ exchange: m9.map((m) => gone(m.exchangeId)), mappings: m9, mappedTotal: 9, policy: policy({ massDeleteGuard: guard }) }).held.length, 0, 'fewer than 10');
    assert.equal(run({ exchange: m12.map((m) => gone(m.exchangeId)), mappings: m12, mappedTotal: 12 }).held.length, 0, 'no guard');
    assert.equal(run({ exchange: m12.map((m) => gone(m.exchangeId)), mappings: m12, policy: policy({ massDeleteGuard: guard }) }).held.length, 0, 'no total');
  });

  it('items deleted on both sides do not count (nothing to mirror)', () => {
    const m = pairs(10);
    const out = run({ exchange: m.map((x) => gone(x.exchangeId)), crm: m.map((x) => gone(x.crmId)), mappings: m, mappedTotal: 10, policy: policy({ massDeleteGuard: guard }) });
    assert.equal(out.held.length, 0);
    assert.equal(out.operations.filter((o) => o.kind === 'unlink').length, 10);
  });

  it('confirm: the deletes are mirrored', () => {
    const m = pairs(10);
    const out = run({ exchange: m.map((x) => gone(x.exchangeId)), mappings: m, mappedTotal: 10, policy: policy({ massDeleteGuard: guard }), massDeleteDecision: 'confirm' });
    assert.equal(out.held.length, 0);
    assert.deepEqual(out.operations.map((o) => `${o.kind} ${'side' in o ? o.side : ''}`), Array(10).fill('delete crm'));
  });

  it('discard: the deleted items are unlinked and the other side keeps its copies', () => {
    const m = pairs(10);
    const out = run({ exchange: m.map((x) => gone(x.exchangeId)), mappings: m, mappedTotal: 10, policy: policy({ massDeleteGuard: guard }), massDeleteDecision: 'discard' });
    assert.equal(out.held.length, 0);
    assert.ok(out.operations.every((o) => o.kind === 'unlink'));
    assert.equal(out.operations.length, 10);
    assert.match(out.operations[0].reason, /mass delete an operator discarded: the CRM copy is kept, unlinked/);
  });

  it('a slice of a round longer than the batch size: held when the slice is (nearly) all deletions of mapped items', () => {
    // 200 mapped; the pull read 20 changes of a longer round, all deletions: 10 % of the mapped total, but the
    // rest of the round is unknown, so a slice made of deletions is held rather than mirrored piece by piece.
    const m = pairs(200);
    const slice = m.slice(0, 20).map((x) => gone(x.exchangeId));
    const partial = run({ exchange: slice, mappings: m, mappedTotal: 200, policy: policy({ massDeleteGuard: guard }), partialRound: ['exchange'] });
    assert.equal(partial.held.length, 1);
    assert.match(partial.held[0].reason, /Exchange reports 20 synced items deleted in 20 changes read so far of a round not yet finished \(of 200 synced/);
    assert.deepEqual(partial.operations, []);
    // The same changes as a whole round are 10 % of the mapped items: mirrored.
    assert.equal(run({ exchange: slice, mappings: m, mappedTotal: 200, policy: policy({ massDeleteGuard: guard }) }).held.length, 0);
    // A slice that is mostly edits is not held.
    const mixed = [...m.slice(0, 10).map((x) => gone(x.exchangeId)), ...m.slice(10, 30).map((x) => live(x.exchangeId, 'Edited'))];
    assert.equal(run({ exchange: mixed, mappings: m, mappedTotal: 200, policy: policy({ massDeleteGuard: guard }), partialRound: ['exchange'] }).held.length, 0);
  });

  it('a decision without a tripped guard changes nothing', () => {
    const m = pairs(12);
    const out = run({ exchange: [gone(m[0].exchangeId)], mappings: m, mappedTotal: 12, policy: policy({ massDeleteGuard: guard }), massDeleteDecision: 'discard' });
    assert.deepEqual(shows(out.operations), [`delete crm ${m[0].crmId}/${m[0].exchangeId}`]);
  });
});

describe('reconcile with policy features: determinism', () => {
  it('the same input in any order gives the same output (links, skips, held)', () => {
    const input: ReconcileInput<ContactRecord> = {
      exchange: [live('E2', 'Bob', {}, 'b@x.io'), live('E1', 'Ann', {}, 'a@x.io'), live('E3', 'Cy', { outOfScope: { reason: 'x', mapped: 'unlink' } }), live('E5', 'Ex5')],
      crm: [live('C2', 'Bobby', {}, 'b@x.io'), live('C1', 'Ann', {}, 'a@x.io'), gone('C9')],
      mappings: [link('C5', 'E5', 'Ann'), link('C9', 'E9', 'Ann')],
      policy: policy({ mergeByEmail: true, conflict: 'newest-wins', prevent: { exchange: { delete: true } } }),
    };
    const expected = reconcile(input);
    for (let k = 0; k < 20; k++) {
      const rot = (xs: unknown[]) => [...xs.slice(k % xs.length), ...xs.slice(0, k % xs.length)];
      assert.deepEqual(reconcile({ ...input, exchange: rot(input.exchange) as SideChange<ContactRecord>[], crm: rot(input.crm) as SideChange<ContactRecord>[], mappings: rot(input.mappings) as MappingState[] }), expected);
    }
    assert.deepEqual(shows(expected.operations), ['update crm C5/E5 = Ex5', 'unlink C9/E9', 'link C1/E1', 'link C2/E2', 'update exchange C2/E2 = Bobby']);
  });
});
