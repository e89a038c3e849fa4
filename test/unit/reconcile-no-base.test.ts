/**
 * Mappings made before bases were kept (sync.mapping.base null): the reconciler compares whole records by
 * fingerprint (docs/ARCHITECTURE.md, "plan").
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { reconcile, type MappingState, type SideChange } from '../../src/domain/reconcile';
import type { ContactRecord } from '../../src/domain/contact';
import { syncedFingerprint } from '../../src/domain/planning';

const OLD: ContactRecord = { firstName: 'Ada', lastName: 'Lovelace', jobTitle: 'Start', phone: '1' };
const fp = (r: ContactRecord) => syncedFingerprint('contact', r);
const ch = (id: string, record: ContactRecord): SideChange<ContactRecord> => ({ id, removed: false, record, fingerprint: fp(record) });
const run = (base: Record<string, unknown> | null, e?: SideChange<ContactRecord>, c?: SideChange<ContactRecord>) =>
  reconcile<ContactRecord>({
    exchange: e ? [e] : [], crm: c ? [c] : [],
    mappings: [{ crmId: 'c1', exchangeId: 'e1', crmFingerprint: fp(OLD), exchangeFingerprint: fp(OLD), exchangeChangeKey: 'k0', base } satisfies MappingState],
    exchangeOnly: ['displayName', 'otherPhones'],
    policy: { direction: 'both', conflict: 'crm-wins', deleteVsUpdate: 'keep-updated' },
  });

describe('a mapping without a base', () => {
  it('edits to different fields on the two sides are a whole-record conflict (with a base they merge)', () => {
    const e = ch('e1', { ...OLD, jobTitle: 'Outlook' });
    const c = ch('c1', { ...OLD, phone: '2' });
    const without = run(null, e, c);
    assert.equal(without.conflicts.length, 1, 'no base: the two versions conflict');
    const toEx = without.operations.find((o) => o.kind === 'update' && o.side === 'exchange');
    assert.ok(toEx?.kind === 'update');
    assert.deepEqual(toEx.record, { ...OLD, phone: '2' }, 'crm-wins: the CRM version whole');
    const withBase = run(OLD as Record<string, unknown>, e, c);
    assert.equal(withBase.conflicts.length, 0, 'with a base the same edits merge');
  });

  it('a change equal to the mapping\'s fingerprint is an echo; another is an update', () => {
    assert.deepEqual(run(null, ch('e1', OLD)).operations.map((o) => o.kind), ['refresh']);
    const upd = run(null, undefined, ch('c1', { ...OLD, jobTitle: 'New' })).operations;
    assert.deepEqual(upd.map((o) => o.kind === 'update' && o.side), ['exchange']);
  });
});
