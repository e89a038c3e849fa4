/**
 * Example tests for the reconciler (src/domain/reconcile.ts): every branch, every conflict and delete-vs-update
 * rule in both orientations, every direction, and determinism. The property test in test/property/ checks that
 * the sides converge; these pin down what each decision is.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ContactRecord } from '../../src/domain/contact';
import { fingerprint } from '../../src/domain/fingerprint';
import {
  PLAN_SLICE,
  reconcileSteps,
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
  type SideChange,
} from '../../src/domain/reconcile';

type Op = Operation<ContactRecord>;


const r = (firstName: string): ContactRecord => ({ firstName, email: `${firstName.toLowerCase()}@example.com` });
const fp = (name: string) => fingerprint(r(name));

function live(id: string, name: string, extra: Partial<SideChange<ContactRecord>> = {}): SideChange<ContactRecord> {
  return { id, removed: false, record: r(name), fingerprint: fp(name), ...extra };
}
const gone = (id: string): SideChange<ContactRecord> => ({ id, removed: true });

/** A mapping last synced with the CRM at `crmName` and Exchange at `exName` (equal unless one-way drift). */
function link(crmId: string, exchangeId: string, crmName: string, exName = crmName, changeKey: string | null = 'ck0'): MappingState {
  return { crmId, exchangeId, crmFingerprint: fp(crmName), exchangeFingerprint: fp(exName), exchangeChangeKey: changeKey };
}

function policy(p: Partial<ReconcilePolicy> = {}): ReconcilePolicy {
  return { direction: 'both', conflict: 'crm-wins', deleteVsUpdate: 'keep-updated', ...p };
}

function run(input: Partial<ReconcileInput<ContactRecord>> & { policy?: ReconcilePolicy }) {
  return reconcile<ContactRecord>({ exchange: [], crm: [], mappings: [], policy: policy(), ...input });
}

/** A one-line, reason-free picture of an operation, to compare plans at a glance. */
function show(op: Op): string {
  switch (op.kind) {
    case 'create':
      assert.equal(op.fingerprint, fingerprint(op.record), 'create carries the fingerprint of its record');
      return `create ${op.side} from ${op.sourceId} = ${op.record.firstName}`;
    case 'update':
      assert.equal(op.fingerprint, fingerprint(op.record), 'update carries the fingerprint of its record');
      return `update ${op.side} ${op.crmId}/${op.exchangeId} = ${op.record.firstName}`;
    case 'delete':
      return `delete ${op.side} ${op.crmId}/${op.exchangeId}`;
    case 'unlink':
      return `unlink ${op.crmId}/${op.exchangeId}`;
    case 'refresh':
      return `refresh ${op.crmId}/${op.exchangeId}`;
    case 'link':
      return `link ${op.crmId}/${op.exchangeId}`;
  }
}
const shows = (ops: Op[]) => ops.map(show);

/** The side an operation writes to, if any. */
const writtenSide = (op: Op) => (op.kind === 'create' || op.kind === 'update' || op.kind === 'delete' ? op.side : undefined);

function assertReasons(ops: Op[]) {
  for (const op of ops) assert.ok(op.reason && op.reason.length > 3, `operation without a reason: ${JSON.stringify(op)}`);
}

describe('reconcile: new items', () => {
  it('copies an item new in Exchange to the CRM', () => {
    const out = run({ exchange: [live('E1', 'Ann')] });
    assert.deepEqual(shows(out.operations), ['create crm from E1 = Ann']);
    assert.equal(out.operations[0].reason, 'new in Exchange');
    assert.deepEqual(out.conflicts, []);
  });

  it('copies an item new in the CRM to Exchange', () => {
    const out = run({ crm: [live('C1', 'Bob')] });
    assert.deepEqual(shows(out.operations), ['create exchange from C1 = Bob']);
    assert.equal(out.operations[0].reason, 'new in CRM');
  });

  it('copies new items from both sides in one plan', () => {
    const out = run({ exchange: [live('E1', 'Ann'), live('E2', 'Cy')], crm: [live('C1', 'Bob')] });
    assert.deepEqual(shows(out.operations), ['create crm from E1 = Ann', 'create crm from E2 = Cy', 'create exchange from C1 = Bob']);
  });

  it('ignores a removal of an item it never mapped (created and deleted between cycles, or our own delete echoed)', () => {
    assert.deepEqual(run({ exchange: [gone('E9')], crm: [gone('C9')] }).operations, []);
  });

  it('ignores a change without a record (e.g. skipped as bad data)', () => {
    assert.deepEqual(run({ exchange: [{ id: 'E1', removed: false }] }).operations, []);
  });

  it('ignores mappings of ids that did not change', () => {
    assert.deepEqual(run({ mappings: [link('C1', 'E1', 'Ann')] }).operations, []);
  });
});

describe('reconcile: one side changed', () => {
  it('an edit in Exchange updates the CRM', () => {
    const out = run({ exchange: [live('E1', 'Ann2', { changeKey: 'ck1' })], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(shows(out.operations), ['update crm C1/E1 = Ann2']);
    assert.deepEqual(out.conflicts, []);
  });

  it('an edit in the CRM updates Exchange', () => {
    const out = run({ crm: [live('C1', 'Ann2')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(shows(out.operations), ['update exchange C1/E1 = Ann2']);
  });

  it('an edit on one side with an echo on the other is not a conflict', () => {
    const out = run({ exchange: [live('E1', 'Ann')], crm: [live('C1', 'Ann2')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(shows(out.operations), ['update exchange C1/E1 = Ann2']);
    assert.deepEqual(out.conflicts, []);
    const back = run({ exchange: [live('E1', 'Ann2')], crm: [live('C1', 'Ann')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(shows(back.operations), ['update crm C1/E1 = Ann2']);
  });

  it('a delete in Exchange deletes in the CRM', () => {
    const out = run({ exchange: [gone('E1')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(shows(out.operations), ['delete crm C1/E1']);
  });

  it('a delete in the CRM deletes in Exchange', () => {
    const out = run({ crm: [gone('C1')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(shows(out.operations), ['delete exchange C1/E1']);
  });

  it('a delete on one side with an echo on the other still deletes', () => {
    const out = run({ exchange: [live('E1', 'Ann')], crm: [gone('C1')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(shows(out.operations), ['delete exchange C1/E1']);
    assert.deepEqual(out.conflicts, []);
  });
});

describe('reconcile: echoes and no-ops', () => {
  it('an Exchange change equal to the mapping (our own write coming back) only refreshes the change key', () => {
    const out = run({ exchange: [live('E1', 'Ann', { changeKey: 'ck7' })], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(out.operations, [{ kind: 'refresh', crmId: 'C1', exchangeId: 'E1', exchangeChangeKey: 'ck7', reason: 'no change in synced fields' }]);
    assert.deepEqual(out.conflicts, []);
  });

  it('a CRM change equal to the mapping only refreshes', () => {
    const out = run({ crm: [live('C1', 'Ann')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(shows(out.operations), ['refresh C1/E1']);
  });

  it('echoes on both sides only refresh', () => {
    const out = run({ exchange: [live('E1', 'Ann')], crm: [live('C1', 'Ann')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(shows(out.operations), ['refresh C1/E1']);
  });

  it('the same edit on both sides refreshes both fingerprints and writes nothing', () => {
    const out = run({ exchange: [live('E1', 'Ann2', { changeKey: 'ck2' })], crm: [live('C1', 'Ann2')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(out.operations, [
      { kind: 'refresh', crmId: 'C1', exchangeId: 'E1', crmFingerprint: fp('Ann2'), exchangeFingerprint: fp('Ann2'), exchangeChangeKey: 'ck2', reason: 'same edit on both sides' },
    ]);
    assert.deepEqual(out.conflicts, []);
  });

  it('an echo is judged against each side’s own fingerprint in the mapping', () => {
    // After one-way drift the mapping holds different fingerprints per side; each side is compared with its own.
    const out = run({ exchange: [live('E1', 'Ex')], crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Cr', 'Ex')] });
    assert.deepEqual(shows(out.operations), ['refresh C1/E1']);
  });

  it('deleted on both sides: the mapping is dropped', () => {
    const out = run({ exchange: [gone('E1')], crm: [gone('C1')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(out.operations, [{ kind: 'unlink', crmId: 'C1', exchangeId: 'E1', reason: 'deleted on both sides' }]);
    assert.deepEqual(out.conflicts, []);
  });
});

describe('reconcile: edited on both sides (conflict rules)', () => {
  const base = (conflict: ConflictRule, eAt?: string, cAt?: string, direction: Direction = 'both') =>
    run({
      exchange: [live('E1', 'Ex', { modifiedAt: eAt, changeKey: 'ck2' })],
      crm: [live('C1', 'Cr', { modifiedAt: cAt })],
      mappings: [link('C1', 'E1', 'Ann')],
      policy: policy({ conflict, direction }),
    });

  it('crm-wins writes the CRM version to Exchange and records the conflict', () => {
    const out = base('crm-wins', '2024-01-02T00:00:00Z', '2024-01-01T00:00:00Z');
    assert.deepEqual(shows(out.operations), ['update exchange C1/E1 = Cr']);
    assert.deepEqual(out.conflicts, [{ crmId: 'C1', exchangeId: 'E1', rule: 'conflict: crm-wins', outcome: 'CRM version written to Exchange' }]);
    assertReasons(out.operations);
  });

  it('exchange-wins writes the Exchange version to the CRM', () => {
    const out = base('exchange-wins', '2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z');
    assert.deepEqual(shows(out.operations), ['update crm C1/E1 = Ex']);
    assert.deepEqual(out.conflicts, [{ crmId: 'C1', exchangeId: 'E1', rule: 'conflict: exchange-wins', outcome: 'Exchange version written to CRM' }]);
  });

  it('newest-wins: Exchange newer → Exchange version kept', () => {
    assert.deepEqual(shows(base('newest-wins', '2024-01-02T00:00:00Z', '2024-01-01T23:59:59Z').operations), ['update crm C1/E1 = Ex']);
  });

  it('newest-wins: CRM newer → CRM version kept', () => {
    assert.deepEqual(shows(base('newest-wins', '2024-01-01T00:00:00Z', '2024-01-01T00:00:01Z').operations), ['update exchange C1/E1 = Cr']);
  });

  it('newest-wins: a tie goes to the CRM, deterministically', () => {
    const out = base('newest-wins', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z');
    assert.deepEqual(shows(out.operations), ['update exchange C1/E1 = Cr']);
    assert.equal(out.conflicts[0].rule, 'conflict: newest-wins');
  });

  it('newest-wins: a missing time loses to a known one, and two missing times go to the CRM', () => {
    assert.deepEqual(shows(base('newest-wins', '2024-01-01T00:00:00Z', undefined).operations), ['update crm C1/E1 = Ex']);
    assert.deepEqual(shows(base('newest-wins', undefined, '2024-01-01T00:00:00Z').operations), ['update exchange C1/E1 = Cr']);
    assert.deepEqual(shows(base('newest-wins', undefined, undefined).operations), ['update exchange C1/E1 = Cr']);
  });

  it('newest-wins compares instants, not strings: the two sides format times differently', () => {
    // Graph: whole seconds (or 7 fractional digits); the CRM feed: 6 fractional digits.
    // CRM 0.4 s newer within the same second: as strings 'Z' > '.', which made Exchange win.
    assert.deepEqual(shows(base('newest-wins', '2024-05-01T10:00:00Z', '2024-05-01T10:00:00.400000Z').operations), ['update exchange C1/E1 = Cr']);
    // The same instant written two ways is a tie, and a tie goes to the CRM.
    assert.deepEqual(shows(base('newest-wins', '2024-05-01T10:00:00.500Z', '2024-05-01T10:00:00.500000Z').operations), ['update exchange C1/E1 = Cr']);
    assert.deepEqual(shows(base('newest-wins', '2024-05-01T10:00:00.5000000Z', '2024-05-01T10:00:00.500000Z').operations), ['update exchange C1/E1 = Cr']);
    // Exchange genuinely newer, with 7 digits against 6.
    assert.deepEqual(shows(base('newest-wins', '2024-05-01T10:00:00.9000000Z', '2024-05-01T10:00:00.400000Z').operations), ['update crm C1/E1 = Ex']);
    // An offset is an instant like any other: 12:00+02:00 is 10:00Z, earlier than 10:30Z.
    assert.deepEqual(shows(base('newest-wins', '2024-05-01T12:00:00+02:00', '2024-05-01T10:30:00.000000Z').operations), ['update exchange C1/E1 = Cr']);
    // An unreadable time counts as unknown: it loses to a known one.
    assert.deepEqual(shows(base('newest-wins', 'not a time', '2024-05-01T10:00:00.000000Z').operations), ['update exchange C1/E1 = Cr']);
    assert.deepEqual(shows(base('newest-wins', '2024-05-01T10:00:00Z', 'not a time').operations), ['update crm C1/E1 = Ex']);
  });

  it('keep-both splits the pair and copies each version across: one copy of each version on each side', () => {
    const out = base('keep-both');
    assert.deepEqual(shows(out.operations), ['unlink C1/E1', 'create exchange from C1 = Cr', 'create crm from E1 = Ex']);
    assert.deepEqual(out.conflicts, [{ crmId: 'C1', exchangeId: 'E1', rule: 'conflict: keep-both', outcome: 'both versions kept' }]);

    // Applied: the CRM keeps C1 (Cr) and gains a copy of Ex linked to E1; Exchange keeps E1 (Ex) and gains a copy
    // of Cr linked to C1. Each version exists once on each side, each linked to its own counterpart.
    const crmSide = new Map([['C1', 'Cr']]);
    const exSide = new Map([['E1', 'Ex']]);
    const links = new Map([['C1', 'E1']]);
    for (const op of out.operations) {
      if (op.kind === 'unlink') links.delete(op.crmId);
      else if (op.kind === 'create' && op.side === 'exchange') { exSide.set('E-new', op.record.firstName!); links.set(op.sourceId, 'E-new'); }
      else if (op.kind === 'create' && op.side === 'crm') { crmSide.set('C-new', op.record.firstName!); links.set('C-new', op.sourceId); }
    }
    assert.deepEqual([...crmSide.values()].sort(), ['Cr', 'Ex']);
    assert.deepEqual([...exSide.values()].sort(), ['Cr', 'Ex']);
    for (const [c, e] of links) assert.equal(crmSide.get(c), exSide.get(e));
    assert.equal(links.size, 2);
  });

  it('a conflict between an edit and an echo does not arise (only real edits on both sides conflict)', () => {
    for (const conflict of CONFLICT_RULES) {
      const out = run({ exchange: [live('E1', 'Ann')], crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ conflict }) });
      assert.deepEqual(out.conflicts, [], conflict);
    }
  });
});

describe('reconcile: deleted on one side, edited on the other (delete-vs-update rules)', () => {
  /** 'delete' = the edit is deleted too; 'recreate' = the deleted side gets the edited version back. */
  const expected: Record<DeleteRule, { crmDeleted: 'delete' | 'recreate'; exchangeDeleted: 'delete' | 'recreate' }> = {
    'crm-master': { crmDeleted: 'delete', exchangeDeleted: 'recreate' },
    'exchange-master': { crmDeleted: 'recreate', exchangeDeleted: 'delete' },
    'delete-wins': { crmDeleted: 'delete', exchangeDeleted: 'delete' },
    'keep-updated': { crmDeleted: 'recreate', exchangeDeleted: 'recreate' },
  };

  for (const rule of DELETE_RULES) {
    it(`${rule}: deleted in CRM, edited in Exchange → ${expected[rule].crmDeleted}`, () => {
      const out = run({ exchange: [live('E1', 'Ex')], crm: [gone('C1')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ deleteVsUpdate: rule }) });
      if (expected[rule].crmDeleted === 'delete') {
        assert.deepEqual(shows(out.operations), ['delete exchange C1/E1']);
        assert.deepEqual(out.conflicts, [{ crmId: 'C1', exchangeId: 'E1', rule: `delete-vs-update: ${rule}`, outcome: 'deleted in Exchange too' }]);
      } else {
        // Restored under its own id (every mailbox linking it keeps one record), with the Exchange edit.
        assert.deepEqual(shows(out.operations), ['update crm C1/E1 = Ex']);
        assert.equal(out.operations[0].kind === 'update' && out.operations[0].restore, true);
        assert.deepEqual(out.conflicts, [{ crmId: 'C1', exchangeId: 'E1', rule: `delete-vs-update: ${rule}`, outcome: 'restored in CRM' }]);
      }
      assertReasons(out.operations);
    });

    it(`${rule}: deleted in Exchange, edited in CRM → ${expected[rule].exchangeDeleted}`, () => {
      const out = run({ exchange: [gone('E1')], crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ deleteVsUpdate: rule }) });
      if (expected[rule].exchangeDeleted === 'delete') {
        assert.deepEqual(shows(out.operations), ['delete crm C1/E1']);
        assert.deepEqual(out.conflicts, [{ crmId: 'C1', exchangeId: 'E1', rule: `delete-vs-update: ${rule}`, outcome: 'deleted in CRM too' }]);
      } else {
        assert.deepEqual(shows(out.operations), ['unlink C1/E1', 'create exchange from C1 = Cr']);
        assert.deepEqual(out.conflicts, [{ crmId: 'C1', exchangeId: 'E1', rule: `delete-vs-update: ${rule}`, outcome: 'recreated in Exchange' }]);
      }
    });
  }

  it('the unlink comes before the re-create, so applying in order never holds two mappings for one id', () => {
    for (const rule of DELETE_RULES) {
      for (const ops of [
        run({ exchange: [live('E1', 'Ex')], crm: [gone('C1')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ deleteVsUpdate: rule }) }).operations,
        run({ exchange: [gone('E1')], crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ deleteVsUpdate: rule }) }).operations,
      ]) {
        const u = ops.findIndex((o) => o.kind === 'unlink');
        const c = ops.findIndex((o) => o.kind === 'create');
        if (c >= 0) assert.ok(u >= 0 && u < c, rule);
      }
    }
  });
});

describe('reconcile: directions', () => {
  it('crm-to-exchange: Exchange-only items, edits and deletes are never written to the CRM', () => {
    const p = policy({ direction: 'crm-to-exchange' });
    assert.deepEqual(run({ exchange: [live('E1', 'Ann')], policy: p }).operations, []);
    const edit = run({ exchange: [live('E1', 'Ex', { changeKey: 'ck2' })], mappings: [link('C1', 'E1', 'Ann')], policy: p });
    assert.deepEqual(edit.operations, [
      { kind: 'refresh', crmId: 'C1', exchangeId: 'E1', exchangeFingerprint: fp('Ex'), exchangeChangeKey: 'ck2', reason: 'changed in Exchange; direction crm-to-exchange does not write to CRM' },
    ]);
    assert.deepEqual(shows(run({ exchange: [gone('E1')], mappings: [link('C1', 'E1', 'Ann')], policy: p }).operations), ['unlink C1/E1']);
    // CRM changes still flow.
    assert.deepEqual(shows(run({ crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')], policy: p }).operations), ['update exchange C1/E1 = Cr']);
    assert.deepEqual(shows(run({ crm: [gone('C1')], mappings: [link('C1', 'E1', 'Ann')], policy: p }).operations), ['delete exchange C1/E1']);
    assert.deepEqual(shows(run({ crm: [live('C2', 'New')], policy: p }).operations), ['create exchange from C2 = New']);
  });

  it('exchange-to-crm: CRM-only items, edits and deletes are never written to Exchange', () => {
    const p = policy({ direction: 'exchange-to-crm' });
    assert.deepEqual(run({ crm: [live('C1', 'Ann')], policy: p }).operations, []);
    const edit = run({ crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')], policy: p });
    assert.deepEqual(edit.operations, [
      { kind: 'refresh', crmId: 'C1', exchangeId: 'E1', crmFingerprint: fp('Cr'), reason: 'changed in CRM; direction exchange-to-crm does not write to Exchange' },
    ]);
    assert.deepEqual(shows(run({ crm: [gone('C1')], mappings: [link('C1', 'E1', 'Ann')], policy: p }).operations), ['unlink C1/E1']);
    assert.deepEqual(shows(run({ exchange: [live('E1', 'Ex')], mappings: [link('C1', 'E1', 'Ann')], policy: p }).operations), ['update crm C1/E1 = Ex']);
    assert.deepEqual(shows(run({ exchange: [gone('E1')], mappings: [link('C1', 'E1', 'Ann')], policy: p }).operations), ['delete crm C1/E1']);
    assert.deepEqual(shows(run({ exchange: [live('E2', 'New')], policy: p }).operations), ['create crm from E2 = New']);
  });

  it('a conflict won by the source side of a one-way sync writes nothing and refreshes both fingerprints', () => {
    const out = run({
      exchange: [live('E1', 'Ex', { changeKey: 'ck2' })],
      crm: [live('C1', 'Cr')],
      mappings: [link('C1', 'E1', 'Ann')],
      policy: policy({ direction: 'crm-to-exchange', conflict: 'exchange-wins' }),
    });
    assert.deepEqual(out.operations, [
      { kind: 'refresh', crmId: 'C1', exchangeId: 'E1', crmFingerprint: fp('Cr'), exchangeFingerprint: fp('Ex'), exchangeChangeKey: 'ck2', reason: 'edited on both sides; conflict: exchange-wins, direction crm-to-exchange → no write' },
    ]);
    assert.deepEqual(out.conflicts, [{ crmId: 'C1', exchangeId: 'E1', rule: 'conflict: exchange-wins', outcome: 'no write (direction)' }]);
  });

  it('keep-both in a one-way sync only copies towards the target', () => {
    const c2e = run({ exchange: [live('E1', 'Ex')], crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ direction: 'crm-to-exchange', conflict: 'keep-both' }) });
    assert.deepEqual(shows(c2e.operations), ['unlink C1/E1', 'create exchange from C1 = Cr']);
    const e2c = run({ exchange: [live('E1', 'Ex')], crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ direction: 'exchange-to-crm', conflict: 'keep-both' }) });
    assert.deepEqual(shows(e2c.operations), ['unlink C1/E1', 'create crm from E1 = Ex']);
  });

  it('delete-vs-update that would write to the source side unlinks instead', () => {
    // crm-to-exchange, deleted in CRM, edited in Exchange, keep-updated: re-creating in the CRM is forbidden.
    const a = run({ exchange: [live('E1', 'Ex')], crm: [gone('C1')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ direction: 'crm-to-exchange', deleteVsUpdate: 'keep-updated' }) });
    assert.deepEqual(shows(a.operations), ['unlink C1/E1']);
    assert.equal(a.conflicts[0].outcome, 'unlinked; each side keeps its state');
    // crm-to-exchange, deleted in Exchange, edited in CRM, delete-wins: deleting in the CRM is forbidden.
    const b = run({ exchange: [gone('E1')], crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ direction: 'crm-to-exchange', deleteVsUpdate: 'delete-wins' }) });
    assert.deepEqual(shows(b.operations), ['unlink C1/E1']);
    // ...while the same conflicts resolved towards Exchange are carried out.
    const c = run({ exchange: [live('E1', 'Ex')], crm: [gone('C1')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ direction: 'crm-to-exchange', deleteVsUpdate: 'delete-wins' }) });
    assert.deepEqual(shows(c.operations), ['delete exchange C1/E1']);
    const d = run({ exchange: [gone('E1')], crm: [live('C1', 'Cr')], mappings: [link('C1', 'E1', 'Ann')], policy: policy({ direction: 'crm-to-exchange', deleteVsUpdate: 'keep-updated' }) });
    assert.deepEqual(shows(d.operations), ['unlink C1/E1', 'create exchange from C1 = Cr']);
  });

  /** Every branch at once: new on both sides, edits, deletes, echoes, same edits, conflicts, delete-vs-update. */
  function everything(p: ReconcilePolicy) {
    return run({
      exchange: [
        live('E-new', 'NewEx'), gone('E-gone-new'),
        live('E1', 'Ex1'), gone('E2'), live('E3', 'Ann'), gone('E4'), live('E5', 'Same'), live('E6', 'Ex6', { modifiedAt: '2024-02-01T00:00:00Z' }),
        gone('E7'), live('E8', 'Ex8'),
      ],
      crm: [
        live('C-new', 'NewCr'), gone('C-gone-new'),
        live('C3', 'Cr3'), gone('C4'), live('C5', 'Same'), live('C6', 'Cr6', { modifiedAt: '2024-01-01T00:00:00Z' }),
        live('C7', 'Cr7'), gone('C8'), gone('C9'), live('C10', 'Cr10'),
      ],
      mappings: [
        link('C1', 'E1', 'Ann'), link('C2', 'E2', 'Ann'), link('C3', 'E3', 'Ann'), link('C4', 'E4', 'Ann'), link('C5', 'E5', 'Ann'),
        link('C6', 'E6', 'Ann'), link('C7', 'E7', 'Ann'), link('C8', 'E8', 'Ann'), link('C9', 'E9', 'Ann'), link('C10', 'E10', 'Ann'),
      ],
      policy: p,
    });
  }

  for (const direction of DIRECTIONS) {
    for (const conflict of CONFLICT_RULES) {
      for (const deleteVsUpdate of DELETE_RULES) {
        it(`${direction} × ${conflict} × ${deleteVsUpdate}: never writes to the source side; every changed pair gets a decision`, () => {
          const out = everything({ direction, conflict, deleteVsUpdate });
          const source = direction === 'crm-to-exchange' ? 'crm' : direction === 'exchange-to-crm' ? 'exchange' : undefined;
          for (const op of out.operations) assert.notEqual(writtenSide(op), source ?? 'none', show(op));
          assertReasons(out.operations);
          // Every mapped pair with a change on either side has an operation naming it.
          const named = new Set(out.operations.flatMap((o) => (o.kind === 'create' ? [] : [`${o.crmId}/${o.exchangeId}`])));
          for (let i = 1; i <= 10; i++) assert.ok(named.has(`C${i}/E${i}`), `C${i}/E${i} in ${direction}`);
          // New items: copied exactly when the direction allows.
          const creates = shows(out.operations).filter((s) => s.startsWith('create') && s.includes('New'));
          const expectCreates = [
            ...(direction !== 'crm-to-exchange' ? ['create crm from E-new = NewEx'] : []),
            ...(direction !== 'exchange-to-crm' ? ['create exchange from C-new = NewCr'] : []),
          ];
          assert.deepEqual(creates, expectCreates);
          // Each conflict names a pair and a rule of the policy.
          for (const c of out.conflicts) assert.ok(c.rule === `conflict: ${conflict}` || c.rule === `delete-vs-update: ${deleteVsUpdate}`, c.rule);
          // C3/E3: edited in CRM only (Exchange echo); C6/E6: conflict; C7/E7 and C8/E8: delete-vs-update; so 3 conflicts.
          assert.equal(out.conflicts.length, 3);
        });
      }
    }
  }
});

describe('reconcile: determinism', () => {
  function shuffle<T>(xs: T[], seed: number): T[] {
    const a = [...xs];
    let s = seed;
    for (let i = a.length - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      const j = s % (i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }

  const input: ReconcileInput<ContactRecord> = {
    exchange: [live('E-new2', 'N2'), live('E-new1', 'N1'), live('E1', 'Ex1'), gone('E2'), live('E3', 'Ex3', { modifiedAt: '2024-01-02T00:00:00Z' }), live('E4', 'Ex4')],
    crm: [live('C-new1', 'M1'), live('C-new0', 'M0'), live('C3', 'Cr3', { modifiedAt: '2024-01-03T00:00:00Z' }), gone('C4'), live('C5', 'Cr5')],
    mappings: [link('C1', 'E1', 'Ann'), link('C2', 'E2', 'Ann'), link('C3', 'E3', 'Ann'), link('C4', 'E4', 'Ann'), link('C5', 'E5', 'Ann'), link('C9', 'E9', 'Ann')],
    policy: policy({ conflict: 'keep-both', deleteVsUpdate: 'keep-updated' }),
  };

  it('the same input in any order gives the same output', () => {
    const expected = reconcile(input);
    assert.ok(expected.operations.length >= 8);
    for (let seed = 1; seed <= 50; seed++) {
      const shuffled = { ...input, exchange: shuffle(input.exchange, seed), crm: shuffle(input.crm, seed * 7), mappings: shuffle(input.mappings, seed * 13) };
      assert.deepEqual(reconcile(shuffled), expected);
    }
  });

  it('orders operations by mapping (CRM id), then new Exchange items, then new CRM items, each by id', () => {
    assert.deepEqual(shows(reconcile(input).operations), [
      'update crm C1/E1 = Ex1',
      'delete crm C2/E2',
      'unlink C3/E3',
      'create exchange from C3 = Cr3',
      'create crm from E3 = Ex3',
      'update crm C4/E4 = Ex4',
      'update exchange C5/E5 = Cr5',
      'create crm from E-new1 = N1',
      'create crm from E-new2 = N2',
      'create exchange from C-new0 = M0',
      'create exchange from C-new1 = M1',
    ]);
  });

  it('does not modify its input', () => {
    const copy = structuredClone(input);
    reconcile(input);
    assert.deepEqual(input, copy);
  });

  it('when an id is staged twice, the last change counts', () => {
    const out = run({ exchange: [live('E1', 'Old'), live('E1', 'Newer')], mappings: [link('C1', 'E1', 'Ann')] });
    assert.deepEqual(shows(out.operations), ['update crm C1/E1 = Newer']);
  });
});

describe('reconcile: planned in slices (heartbeats during 100,000-item plans)', () => {
  it('reconcileSteps pauses at least once per PLAN_SLICE items, and its result is reconcile()', () => {
    const n = 5 * PLAN_SLICE;
    const input: ReconcileInput<ContactRecord> = {
      exchange: Array.from({ length: n }, (_, i) => live(`E${i}`, `Ex${i}`)),
      crm: Array.from({ length: n }, (_, i) => live(`C${i}`, i % 2 ? `Cr${i}` : `Ex${i}`)),
      mappings: Array.from({ length: n / 2 }, (_, i) => link(`C${i}`, `E${i}`, 'Ann')),
      policy: policy({}),
    };
    const steps = reconcileSteps(input);
    let pauses = 0;
    let r = steps.next();
    for (; !r.done; r = steps.next()) pauses++;
    assert.ok(pauses >= (2 * n) / PLAN_SLICE - 1, `paused ${pauses} times for ${2 * n} items`);
    assert.deepEqual(r.value, reconcile(input));
  });
});
