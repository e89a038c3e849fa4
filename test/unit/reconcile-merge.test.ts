/** The reconciler's field-level three-way merge against a mapping's base, and "left scope" versus "deleted". */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { reconcile, type MappingState, type SideChange } from '../../src/domain/reconcile';
import { closeEmailSlots, graphContactPatch, type ContactRecord } from '../../src/domain/contact';
import { syncedFingerprint } from '../../src/domain/planning';

const BASE: ContactRecord = { firstName: 'Ada', lastName: 'Lovelace', jobTitle: 'Start', phone: '1' };
const mapping: MappingState = { crmId: 'c1', exchangeId: 'e1', crmFingerprint: 'x', exchangeFingerprint: 'x', exchangeChangeKey: 'k0', base: BASE as Record<string, unknown> };
const ch = (id: string, record: ContactRecord): SideChange<ContactRecord> => ({ id, removed: false, record, fingerprint: syncedFingerprint('contact', record) });
const run = (e?: SideChange<ContactRecord>, c?: SideChange<ContactRecord>, conflict: 'crm-wins' | 'exchange-wins' = 'crm-wins') =>
  reconcile<ContactRecord>({
    exchange: e ? [e] : [], crm: c ? [c] : [], mappings: [mapping], exchangeOnly: ['displayName', 'otherPhones'],
    policy: { direction: 'both', conflict, deleteVsUpdate: 'keep-updated' },
  });

describe('three-way merge against the base', () => {
  it('edits to different fields on the two sides both survive, with no conflict', () => {
    const r = run(ch('e1', { ...BASE, jobTitle: 'Outlook' }), ch('c1', { ...BASE, phone: '2' }));
    assert.equal(r.conflicts.length, 0);
    const updates = r.operations.filter((o) => o.kind === 'update');
    assert.deepEqual(updates.map((o) => o.side).sort(), ['crm', 'exchange']);
    for (const u of updates) assert.deepEqual(u.kind === 'update' && u.record, { ...BASE, jobTitle: 'Outlook', phone: '2' });
  });

  it("each write's base holds only what that write makes agree: a refused CRM write leaves the Outlook edit a change", () => {
    const r = run(ch('e1', { ...BASE, jobTitle: 'Outlook' }), ch('c1', { ...BASE, phone: '2' }));
    const toEx = r.operations.find((o) => o.kind === 'update' && o.side === 'exchange');
    const toCrm = r.operations.find((o) => o.kind === 'update' && o.side === 'crm');
    // The Exchange write carries the phone; until the CRM write lands, the job title is not yet agreed.
    assert.deepEqual(toEx?.kind === 'update' && toEx.base, { ...BASE, phone: '2' });
    assert.deepEqual(toCrm?.kind === 'update' && toCrm.base, { ...BASE, jobTitle: 'Outlook' });
  });

  it('email slots merged field by field are closed up as Outlook holds them: no gap, no repeat (stories 4c, 4d)', () => {
    const m2 = { ...mapping, base: { ...BASE, email: 'old@example.org' } as Record<string, unknown> };
    const plan = (e: ContactRecord, c: ContactRecord, normalize?: (r: Record<string, unknown>) => Record<string, unknown>) =>
      reconcile<ContactRecord>({ exchange: [ch('e1', e)], crm: [ch('c1', c)], mappings: [m2], exchangeOnly: ['displayName', 'otherPhones'], normalizeMerged: normalize, policy: { direction: 'both', conflict: 'crm-wins', deleteVsUpdate: 'keep-updated' } });
    const slots = (r: ReturnType<typeof plan>) => r.operations.flatMap((o) => (o.kind === 'update' ? [[o.record.email, o.record.email2, o.record.email3]] : []));
    const x = 'x@example.org';
    // A gap: Outlook clears its only address while the CRM adds a second.
    const gap = [{ ...BASE }, { ...BASE, email: 'old@example.org', email2: x }] as const;
    assert.deepEqual(slots(plan(...gap)), [[undefined, x, undefined], [undefined, x, undefined]], 'picked field by field: a gap');
    const closed = (r: ReturnType<typeof plan>) => {
      assert.ok(slots(r).length > 0, 'a write');
      for (const s of slots(r)) assert.deepEqual(s, [x, undefined, undefined]);
    };
    closed(plan(...gap, closeEmailSlots));
    // A repeat: Outlook adds a second address while the CRM puts the same one first.
    const repeat = [{ ...BASE, email: 'old@example.org', email2: x }, { ...BASE, email: x }] as const;
    assert.deepEqual(slots(plan(...repeat)), [[x, x, undefined], [x, x, undefined]], 'picked field by field: a repeat');
    closed(plan(...repeat, closeEmailSlots)); // the CRM holds that already: only Outlook is written
  });

  it('the same field changed on both sides goes to the conflict rule, and only that field', () => {
    const r = run(ch('e1', { ...BASE, jobTitle: 'Outlook', lastName: 'King' }), ch('c1', { ...BASE, jobTitle: 'CRM' }));
    assert.equal(r.conflicts.length, 1);
    assert.match(r.conflicts[0].outcome, /fields jobTitle: CRM version kept/);
    const toEx = r.operations.find((o) => o.kind === 'update' && o.side === 'exchange');
    const toCrm = r.operations.find((o) => o.kind === 'update' && o.side === 'crm');
    assert.deepEqual(toEx?.kind === 'update' && toEx.record, { ...BASE, jobTitle: 'CRM', lastName: 'King' });
    assert.deepEqual(toCrm?.kind === 'update' && toCrm.record, { ...BASE, jobTitle: 'CRM', lastName: 'King' });
  });

  it('an Outlook-only field (extra phones, own display name) changes nothing in the CRM but joins the base', () => {
    const r = run(ch('e1', { ...BASE, otherPhones: ['9'], displayName: 'The Countess' }));
    assert.deepEqual(r.operations.map((o) => o.kind), ['refresh']);
    const op = r.operations[0];
    assert.deepEqual(op.kind === 'refresh' && op.base, { ...BASE, otherPhones: ['9'], displayName: 'The Countess' });
  });

  it('a CRM edit is written to Exchange as only the properties that changed', () => {
    const kept = { ...BASE, otherPhones: ['9'], displayName: 'The Countess' };
    const r = reconcile<ContactRecord>({
      exchange: [], crm: [ch('c1', { ...BASE, jobTitle: 'New' })], exchangeOnly: ['displayName', 'otherPhones'],
      mappings: [{ ...mapping, base: kept as Record<string, unknown> }], policy: { direction: 'both', conflict: 'crm-wins', deleteVsUpdate: 'keep-updated' },
    });
    const u = r.operations.find((o) => o.kind === 'update');
    assert.ok(u && u.kind === 'update' && u.previous);
    assert.deepEqual(graphContactPatch(u.record, u.previous), { jobTitle: 'New' }, 'phones, display name and the rest are not sent');
  });
});

describe('an Outlook-only edit and a CRM edit in the same plan', () => {
  it('the display name the user just set is not overwritten by the CRM name change', () => {
    const r = run(ch('e1', { ...BASE, displayName: 'The Countess' }), ch('c1', { ...BASE, firstName: undefined }));
    const u = r.operations.find((o) => o.kind === 'update' && o.side === 'exchange');
    assert.ok(u && u.kind === 'update' && u.previous);
    assert.deepEqual(graphContactPatch(u.record, u.previous), { givenName: null });
  });
});

describe('leaving scope is not a delete', () => {
  const left: SideChange<ContactRecord> = { id: 'c1', removed: true, leftScope: true };
  it('an unedited Outlook copy is removed; the CRM record is never written', () => {
    const r = run(ch('e1', BASE), left);
    assert.deepEqual(r.operations.map((o) => [o.kind, 'side' in o ? o.side : 'mapping']), [['delete', 'exchange']]);
  });
  it('an Outlook copy edited since the last sync is removed too, its edit on record, and nothing is re-created in the CRM (keep-updated)', () => {
    // Kept unlinked, the copy would be imported as a new CRM record at its next edit.
    const r = run(ch('e1', { ...BASE, jobTitle: 'Outlook' }), left);
    assert.deepEqual(r.operations.map((o) => [o.kind, 'side' in o ? o.side : 'mapping']), [['delete', 'exchange']]);
    assert.equal(r.conflicts.length, 1);
    assert.match(r.conflicts[0].outcome, /removed/);
  });
});
