/**
 * Planning a cycle under a policy (src/domain/planning.ts): field limits (truncate or skip the body), scope
 * read from Graph and CRM payloads, merge keys, log notes by level, and the guard's notes. Uses the real contact
 * field mapper.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fromCrmContact, fromGraphContact, type ContactRecord, type CrmContactFields, type GraphContact } from '../../src/domain/contact';
import { fingerprint } from '../../src/domain/fingerprint';
import { crmTraits, exchangeTraits, planCycle, type CyclePlanInput, type RecordParser, type StagedItem } from '../../src/domain/planning';
import { BUILTIN_POLICY, parsePolicy, type Policy } from '../../src/domain/policy';

const parser: RecordParser<ContactRecord> = {
  fromExchange: (p) => fromGraphContact(p as GraphContact),
  fromCrm: (p) => fromCrmContact(p as Partial<CrmContactFields>),
  exchangeModifiedAt: (p) => p.lastModifiedDateTime as string | undefined,
};

const policy = (doc: unknown): Policy => {
  const r = parsePolicy(doc);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

const ex = (id: string, payload: Record<string, unknown>): StagedItem => ({ id, removed: false, changeKey: `ck-${id}`, payload });
const crm = (id: string, payload: Record<string, unknown>): StagedItem => ({ id, removed: false, changeKey: null, payload });

function plan(input: Partial<CyclePlanInput<ContactRecord>>) {
  return planCycle<ContactRecord>({ recordType: 'contact', exchange: [], crm: [], mappings: [], mappedTotal: 0, policy: BUILTIN_POLICY, parser, firstSync: false, now: new Date('2024-06-15T12:00:00Z'), ...input });
}

describe('planning: field limits', () => {
  const long = 'n'.repeat(40_000);

  it('truncate (default): an over-long body is cut to its limit, the item syncs, and a warning is logged', () => {
    const out = plan({ crm: [crm('C1', { first_name: 'Long', email: 'long@x.org', notes: long })] });
    assert.equal(out.operations.length, 1);
    const op = out.operations[0];
    assert.ok(op.kind === 'create');
    assert.equal(op.record.notes?.length, 32_000);
    assert.deepEqual(out.notes, [{ level: 'warn', side: 'crm', itemId: 'C1', message: 'field notes is 40000 characters long; truncated to 32000 (fieldLimits.body is truncate)' }]);
  });

  it('truncate applies to the Exchange body field too, and the cut is stable (same fingerprint every time)', () => {
    const a = plan({ exchange: [ex('E1', { givenName: 'Long', personalNotes: long })] });
    const b = plan({ exchange: [ex('E1', { givenName: 'Long', personalNotes: long })] });
    assert.equal(a.exchangeChanges.get('E1')?.record?.notes?.length, 32_000);
    assert.equal(a.exchangeChanges.get('E1')?.fingerprint, b.exchangeChanges.get('E1')?.fingerprint);
  });

  it('skip: the item is skipped and logged as an error', () => {
    const out = plan({ policy: policy({ fieldLimits: { body: 'skip' } }), crm: [crm('C1', { first_name: 'Long', notes: long })] });
    assert.deepEqual(out.operations, []);
    assert.deepEqual(out.notes, [{ level: 'error', side: 'crm', itemId: 'C1', message: 'skipped: field notes is 40000 characters long; the limit is 32000 (fieldLimits.body is skip)' }]);
  });

  it('a too-long subject-like field (the name) is always skipped and logged', () => {
    const out = plan({ exchange: [ex('E1', { givenName: 'x'.repeat(300) })] });
    assert.deepEqual(out.operations, []);
    assert.match(out.notes[0].message, /^skipped: field firstName is 300 characters long; the limit is 255/);
    assert.equal(out.notes[0].level, 'error');
  });

  it('a body within its limit is untouched', () => {
    const out = plan({ crm: [crm('C1', { first_name: 'Short', notes: 'hello' })] });
    assert.deepEqual(out.notes, []);
  });
});

describe('planning: scope from payloads', () => {
  it('an Exchange contact with the DoNotSync category is not copied (logged at verbose only)', () => {
    const quiet = plan({ exchange: [ex('E1', { givenName: 'Ann', categories: ['DoNotSync'] })] });
    assert.deepEqual(quiet.operations, []);
    assert.deepEqual(quiet.skipped, [{ side: 'exchange', id: 'E1', reason: 'has the category DoNotSync (excludeCategory)' }]);
    assert.deepEqual(quiet.notes, [], 'default log level leaves verbose lines out');
    const verbose = plan({ policy: policy({ logLevel: 'verbose' }), exchange: [ex('E1', { givenName: 'Ann', categories: ['DoNotSync'] })] });
    assert.deepEqual(verbose.notes, [{ level: 'verbose', side: 'exchange', itemId: 'E1', message: 'not synced: has the category DoNotSync (excludeCategory)' }]);
  });

  it('filter category: only Exchange contacts in the category are copied to the CRM; CRM contacts all go to Exchange', () => {
    const out = plan({
      policy: policy({ contact: { filter: 'category' } }),
      exchange: [ex('E1', { givenName: 'In', categories: ['CRM'] }), ex('E2', { givenName: 'Out' })],
      crm: [crm('C1', { first_name: 'Crm' })],
    });
    assert.deepEqual(out.operations.map((o) => (o.kind === 'create' ? `${o.side} ${o.sourceId}` : o.kind)), ['crm E1', 'exchange C1']);
  });

  it('merge by email matches case-insensitively across the two field mappers', () => {
    const out = plan({ exchange: [ex('E1', { givenName: 'Ann', emailAddresses: [{ address: 'Ann@X.io' }] })], crm: [crm('C1', { first_name: 'Ann', email: 'ann@x.io' })] });
    assert.deepEqual(out.operations.map((o) => o.kind), ['link']);
    assert.deepEqual(out.notes, [], 'links are logged from informational up');
    const info = plan({ policy: policy({ logLevel: 'informational' }), exchange: [ex('E1', { givenName: 'Ann', emailAddresses: [{ address: 'ann@x.io' }] })], crm: [crm('C1', { first_name: 'Ann', email: 'ann@x.io' })] });
    assert.match(info.notes[0].message, /^linked to CRM C1: new on both sides with the same email ann@x.io/);
  });

  it('mergeByEmail false copies both', () => {
    const out = plan({ policy: policy({ contact: { mergeByEmail: false } }), exchange: [ex('E1', { givenName: 'Ann', emailAddresses: [{ address: 'ann@x.io' }] })], crm: [crm('C1', { first_name: 'Ann', email: 'ann@x.io' })] });
    assert.deepEqual(out.operations.map((o) => o.kind), ['create', 'create']);
  });

  it('Graph traits: sensitivity, categories, start/end (dateTimeTimeZone), recurrence, To Do status', () => {
    assert.deepEqual(exchangeTraits({ sensitivity: 'private', categories: ['A'], start: { dateTime: '2024-01-01T10:00:00.0000000', timeZone: 'UTC' }, end: { dateTime: '2024-01-01T11:00:00.0000000', timeZone: 'UTC' }, type: 'seriesMaster', lastModifiedDateTime: '2024-01-01T00:00:00Z' }), {
      categories: ['A'], private: true, start: '2024-01-01T10:00:00.0000000Z', end: '2024-01-01T11:00:00.0000000Z', recurring: true, open: undefined, modifiedAt: '2024-01-01T00:00:00Z',
    });
    assert.equal(exchangeTraits({ sensitivity: 'normal' }).private, false);
    assert.equal(exchangeTraits({}).private, undefined);
    assert.equal(exchangeTraits({ status: 'completed' }).open, false);
    assert.equal(exchangeTraits({ status: 'inProgress' }).open, true);
  });

  it('CRM traits of an event row: visibility, wall times in their zone, recurrence; of a task row: its status', () => {
    const t = crmTraits({ visibility: 'private', start_local: '2024-06-20T09:00:00', end_local: '2024-06-20T10:00:00', time_zone: 'Europe/Berlin', recurrence: { pattern: 'daily' } });
    assert.deepEqual({ private: t.private, start: t.start, end: t.end, recurring: t.recurring }, { private: true, start: '2024-06-20T07:00:00Z', end: '2024-06-20T08:00:00Z', recurring: true });
    assert.equal(crmTraits({ visibility: 'normal', recurrence: null }).recurring, false);
    assert.equal(crmTraits({ visibility: 'normal' }).private, false);
    assert.equal(crmTraits({ status: 'Canceled' }).open, false);
    assert.equal(crmTraits({ status: 'In Process' }).open, true);
  });

  it('CRM traits: the documented column names', () => {
    assert.deepEqual(crmTraits({ is_private: true, categories: 'A, B', start_at: 's', end_at: 'e', is_recurring: false, status: 'Done', updatedAt: 'u' }), {
      categories: ['A', 'B'], private: true, start: 's', end: 'e', recurring: false, open: false, modifiedAt: 'u',
    });
    assert.deepEqual(crmTraits({ first_name: 'x' }), { categories: undefined, private: undefined, start: undefined, end: undefined, recurring: undefined, open: undefined, modifiedAt: undefined });
  });
});

describe('planning: guard notes and record keeping', () => {
  it('held deletes produce a warning note and no operations', () => {
    const mappings = Array.from({ length: 10 }, (_, i) => ({ crmId: `C${i}`, exchangeId: `E${i}`, crmFingerprint: 'f', exchangeFingerprint: 'f', exchangeChangeKey: null }));
    const out = plan({ exchange: mappings.map((m) => ({ id: m.exchangeId, removed: true, changeKey: null, payload: null })), mappings, mappedTotal: 10 });
    assert.equal(out.held.length, 1);
    assert.deepEqual(out.operations, []);
    assert.match(out.notes[0].message, /^mass delete held: Exchange reports 10 of 10 synced items deleted/);
  });

  it('the operator’s decision is noted', () => {
    const out = plan({ massDeleteDecision: 'confirm' });
    assert.deepEqual(out.notes, [{ level: 'warn', message: 'mass delete confirmed by an operator' }]);
  });

  it('changes carry fingerprints of the mapped records and the Exchange change key', () => {
    const out = plan({ exchange: [ex('E1', { givenName: 'Ann', lastModifiedDateTime: '2024-01-01T00:00:00Z' })] });
    const e = out.exchangeChanges.get('E1')!;
    assert.equal(e.fingerprint, fingerprint({ firstName: 'Ann' }));
    assert.equal(e.changeKey, 'ck-E1');
    assert.equal(e.modifiedAt, '2024-01-01T00:00:00Z');
  });
});
