/**
 * Contact field mapping: Microsoft Graph contact ↔ ContactRecord ↔ CRM contact row (src/domain/contact.ts).
 * The record is the common form both sides map to; fingerprints are computed on it, so a round trip through
 * either side must give back the very same record or every sync write would come back as a change.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CONTACT_FIELDS,
  CONTACT_FIELD_LIMITS,
  contactLabel,
  fromCrmContact,
  fromGraphContact,
  toCrmContact,
  toGraphContact,
  validateContact,
  type ContactRecord,
  type GraphContact,
} from '../../src/domain/contact';
import type { Result } from '../../src/domain/result';

const FULL: ContactRecord = {
  firstName: 'Ada',
  lastName: 'Lovelace',
  email: 'ada@example.com',
  email2: 'ada.second@example.org',
  email3: 'countess@example.net',
  phone: '+44 20 7946 0000',
  mobile: '+44 7700 900000',
  company: 'Analytical Engines Ltd',
  jobTitle: 'Programmer',
  department: 'Research',
  street: '12 St James’s Square',
  city: 'London',
  state: 'Greater London',
  postalCode: 'SW1Y 4JH',
  country: 'United Kingdom',
  notes: 'First line\nSecond line — with ünïcödé and an emoji 🧮',
};

const SPARSE: ContactRecord[] = [
  { firstName: 'Ada' },
  { lastName: 'Lovelace' },
  { company: 'Analytical Engines Ltd' },
  { email: 'ada@example.com' },
  { firstName: 'Ada', notes: 'only notes besides the name' },
  { lastName: 'Byron', city: 'London', country: 'United Kingdom' },
  { email: 'x@y.io', phone: '1', street: 'Main St 1' },
];

function value<T>(r: Result<T>): T {
  if (!r.ok) assert.fail(`expected ok, got error: ${r.error}`);
  return r.value;
}

function error<T>(r: Result<T>): string {
  if (r.ok) assert.fail(`expected an error, got ${JSON.stringify(r.value)}`);
  return r.error;
}

describe('contact mapping: round trips', () => {
  for (const rec of [FULL, ...SPARSE]) {
    it(`record → Graph → record is the identity (${contactLabel(rec)}, ${Object.keys(rec).length} fields)`, () => {
      assert.deepEqual(value(fromGraphContact(toGraphContact(rec))), rec);
    });
    it(`record → CRM row → record is the identity (${contactLabel(rec)}, ${Object.keys(rec).length} fields)`, () => {
      assert.deepEqual(value(fromCrmContact(toCrmContact(rec))), rec);
    });
  }

  it('a record is already in normal form: validating it again changes nothing', () => {
    for (const rec of [FULL, ...SPARSE]) assert.deepEqual(value(validateContact(rec)), rec);
  });

  it('Graph → record → CRM row → record → Graph keeps every synced property', () => {
    const g: GraphContact = toGraphContact(FULL);
    const viaCrm = value(fromCrmContact(toCrmContact(value(fromGraphContact(g)))));
    assert.deepEqual(toGraphContact(viaCrm), g);
  });

  it('fields at exactly their limit survive both round trips', () => {
    const rec: ContactRecord = {};
    for (const f of CONTACT_FIELDS) rec[f] = 'x'.repeat(CONTACT_FIELD_LIMITS[f]);
    rec.email = `${'a'.repeat(CONTACT_FIELD_LIMITS.email - '@example.com'.length)}@example.com`;
    rec.email2 = `${'b'.repeat(CONTACT_FIELD_LIMITS.email2 - '@example.com'.length)}@example.com`;
    rec.email3 = `${'c'.repeat(CONTACT_FIELD_LIMITS.email3 - '@example.com'.length)}@example.com`;
    assert.equal(rec.email.length, CONTACT_FIELD_LIMITS.email);
    assert.deepEqual(value(fromGraphContact(toGraphContact(rec))), rec);
    assert.deepEqual(value(fromCrmContact(toCrmContact(rec))), rec);
  });

  it('maps each Graph property to the field it belongs to', () => {
    const rec = value(
      fromGraphContact({
        givenName: 'Ada',
        surname: 'Lovelace',
        emailAddresses: [{ address: 'ada@example.com', name: 'Ada' }, { address: 'second@example.com' }],
        businessPhones: ['111', '222'],
        mobilePhone: '333',
        companyName: 'AE',
        jobTitle: 'Programmer',
        department: 'Research',
        businessAddress: { street: 'S', city: 'C', state: 'St', postalCode: 'P', countryOrRegion: 'Co' },
        personalNotes: 'N',
      }),
    );
    // The 2nd email slot is synced (email2); phones beyond the first stay Exchange's own (otherPhones).
    assert.deepEqual(rec, {
      firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.com', email2: 'second@example.com', phone: '111', otherPhones: ['222'], mobile: '333', company: 'AE',
      jobTitle: 'Programmer', department: 'Research', street: 'S', city: 'C', state: 'St', postalCode: 'P', country: 'Co', notes: 'N',
    });
  });

  it('maps each CRM column to the field it belongs to', () => {
    const row = toCrmContact(FULL);
    assert.deepEqual(row, {
      first_name: FULL.firstName, last_name: FULL.lastName, email: FULL.email, email2: FULL.email2, email3: FULL.email3, phone: FULL.phone, mobile: FULL.mobile,
      company: FULL.company, job_title: FULL.jobTitle, department: FULL.department, street: FULL.street, city: FULL.city,
      state: FULL.state, postal_code: FULL.postalCode, country: FULL.country, notes: FULL.notes,
    });
  });
});

describe('contact mapping: normalisation', () => {
  it('trims every field', () => {
    const rec = value(
      fromGraphContact({
        givenName: '  Ada ',
        surname: '\tLovelace\n',
        companyName: ' AE ',
        businessAddress: { city: '  London  ' },
        personalNotes: '\n note \n',
      }),
    );
    assert.deepEqual(rec, { firstName: 'Ada', lastName: 'Lovelace', company: 'AE', city: 'London', notes: 'note' });
  });

  it('lower-cases and trims the email address (Graph and CRM alike)', () => {
    assert.equal(value(fromGraphContact({ emailAddresses: [{ address: '  Ada.Lovelace@Example.COM ' }] })).email, 'ada.lovelace@example.com');
    assert.equal(value(fromCrmContact({ email: 'ADA@EXAMPLE.COM' })).email, 'ada@example.com');
  });

  it('drops empty, whitespace-only and null values instead of keeping empty strings', () => {
    const fromGraph = value(
      fromGraphContact({
        givenName: 'Ada',
        surname: '',
        mobilePhone: '   ',
        companyName: null,
        jobTitle: undefined,
        emailAddresses: [],
        businessPhones: [],
        businessAddress: { street: '', city: null, state: ' ' },
        personalNotes: '',
      }),
    );
    assert.deepEqual(fromGraph, { firstName: 'Ada' });
    assert.deepEqual(Object.keys(fromGraph), ['firstName']);

    const fromCrm = value(fromCrmContact({ first_name: 'Ada', last_name: '', email: null, phone: '  ', notes: '' }));
    assert.deepEqual(Object.keys(fromCrm), ['firstName']);
  });

  it('ignores non-string values where a string is expected', () => {
    const rec = value(fromGraphContact({ givenName: 'Ada', jobTitle: 42 as unknown as string, department: {} as unknown as string }));
    assert.deepEqual(rec, { firstName: 'Ada' });
  });

  it('what the Graph form and the CRM form of the same messy input give is equal', () => {
    const g = fromGraphContact({ givenName: ' Ada ', surname: '', emailAddresses: [{ address: 'ADA@Example.com ' }], businessAddress: null });
    const c = fromCrmContact({ first_name: 'Ada', last_name: '   ', email: ' ada@example.COM', street: null });
    assert.deepEqual(value(g), value(c));
  });
});

describe('contact mapping: validation names the field and the reason', () => {
  it('rejects a contact with no name, company or email', () => {
    const e = error(fromGraphContact({ jobTitle: 'Programmer', mobilePhone: '123' }));
    assert.match(e, /name/);
    assert.match(error(fromCrmContact({ first_name: '   ', last_name: '', notes: 'n' })), /name/);
    assert.match(error(fromGraphContact({})), /name/);
  });

  it('accepts a contact identified only by a company or only by an email', () => {
    assert.ok(fromCrmContact({ company: 'AE' }).ok);
    assert.ok(fromCrmContact({ email: 'a@b.co' }).ok);
  });

  for (const bad of ['not-an-email', 'a@b', 'two@@example.com', 'sp ace@example.com', '@example.com', 'ada@', 'a@b@c.com']) {
    it(`rejects the invalid email address ${JSON.stringify(bad)} naming the email field`, () => {
      const e = error(fromGraphContact({ givenName: 'Ada', emailAddresses: [{ address: bad }] }));
      assert.match(e, /\bemail\b/);
      assert.match(e, /not a valid email/);
      assert.match(error(fromCrmContact({ first_name: 'Ada', email: bad })), /\bemail\b/);
    });
  }

  for (const f of CONTACT_FIELDS.filter((x) => CONTACT_FIELD_LIMITS[x] < 10_000)) {
    it(`rejects a 10,000-character ${f}, naming the field and its limit`, () => {
      const long = f === 'email' ? `${'a'.repeat(9_988)}@example.com` : 'x'.repeat(10_000);
      assert.equal(long.length, 10_000);
      const e = error(validateContact({ firstName: 'Ada', [f]: long }));
      assert.match(e, new RegExp(`\\bfield ${f}\\b`));
      assert.match(e, /10000 characters/);
      assert.match(e, new RegExp(`limit is ${CONTACT_FIELD_LIMITS[f]}\\b`));
    });
  }

  it('rejects an over-long field arriving from Graph and from the CRM alike', () => {
    assert.match(error(fromGraphContact({ givenName: 'x'.repeat(10_000) })), /field firstName/);
    assert.match(error(fromGraphContact({ givenName: 'Ada', businessAddress: { city: 'c'.repeat(10_000) } })), /field city/);
    assert.match(error(fromCrmContact({ first_name: 'Ada', job_title: 'j'.repeat(10_000) })), /field jobTitle/);
  });

  it('accepts 10,000 characters of notes (limit 32,000) and rejects notes over the limit', () => {
    assert.equal(value(validateContact({ firstName: 'Ada', notes: 'n'.repeat(10_000) })).notes?.length, 10_000);
    const e = error(fromGraphContact({ givenName: 'Ada', personalNotes: 'n'.repeat(CONTACT_FIELD_LIMITS.notes + 1) }));
    assert.match(e, /field notes/);
  });

  it('measures the limit after trimming', () => {
    const padded = `  ${'x'.repeat(CONTACT_FIELD_LIMITS.firstName)}  `;
    assert.equal(value(validateContact({ firstName: padded })).firstName?.length, CONTACT_FIELD_LIMITS.firstName);
    assert.match(error(validateContact({ firstName: 'x'.repeat(CONTACT_FIELD_LIMITS.firstName + 1) })), /field firstName/);
  });

  it('ignores Graph properties it does not sync (unknown fields, OData annotations, read-only data)', () => {
    const g: GraphContact = {
      ...toGraphContact(FULL),
      id: 'AAMkAD...',
      changeKey: 'EQAAABYAAA',
      '@odata.etag': 'W/"EQAAABYAAA"',
      '@odata.type': '#microsoft.graph.contact',
      createdDateTime: '2024-01-01T00:00:00Z',
      lastModifiedDateTime: '2024-01-02T00:00:00Z',
      nickName: 'Enchantress of Numbers',
      homePhones: ['999'],
      imAddresses: ['ada@im'],
      categories: ['CRM'],
      singleValueExtendedProperties: [{ id: 'String {guid} Name cxsyncId', value: 'sync-1' }],
      someFutureProperty: { deeply: { nested: [1, 2, 3] } },
    };
    assert.deepEqual(value(fromGraphContact(g)), FULL);
  });

  it('ignores unknown CRM columns', () => {
    const row = { ...toCrmContact(FULL), id: 'c1', owner_id: 'u1', updated_at: new Date(0), deleted_at: null } as Parameters<typeof fromCrmContact>[0];
    assert.deepEqual(value(fromCrmContact(row)), FULL);
  });
});

describe('contact mapping: writes clear what the record does not have', () => {
  it('toGraphContact sends every synced property, cleared ones as null or an empty list', () => {
    const g = toGraphContact({ firstName: 'Ada' });
    assert.deepEqual(g, {
      givenName: 'Ada',
      surname: null,
      displayName: 'Ada',
      emailAddresses: [],
      businessPhones: [],
      mobilePhone: null,
      companyName: null,
      jobTitle: null,
      department: null,
      businessAddress: { street: null, city: null, state: null, postalCode: null, countryOrRegion: null },
      personalNotes: null,
    });
    // No property is left out (undefined would be dropped by JSON and leave the old value in Exchange).
    for (const [k, v] of Object.entries(g)) assert.notEqual(v, undefined, k);
    for (const [k, v] of Object.entries(g.businessAddress!)) assert.notEqual(v, undefined, `businessAddress.${k}`);
    assert.deepEqual(JSON.parse(JSON.stringify(g)), g);
  });

  it('an update built from an edited record clears the removed fields in Exchange', () => {
    const before = toGraphContact(FULL);
    const { email: _e, email2: _e2, email3: _e3, phone: _p, city: _c, notes: _n, ...rest } = FULL;
    const after = toGraphContact(rest);
    assert.deepEqual(before.emailAddresses, [{ address: FULL.email, name: 'Ada Lovelace' }, { address: FULL.email2, name: FULL.email2 }, { address: FULL.email3, name: FULL.email3 }]);
    assert.deepEqual(after.emailAddresses, []);
    assert.deepEqual(after.businessPhones, []);
    assert.equal(after.businessAddress?.city, null);
    assert.equal(after.personalNotes, null);
    assert.equal(after.businessAddress?.street, FULL.street);
    // And Exchange's answer reads back as the edited record.
    assert.deepEqual(value(fromGraphContact(after)), rest);
  });

  it("email slots have no gaps, as Outlook's have none: addresses move up on both sides alike", () => {
    assert.deepEqual(value(fromCrmContact({ last_name: 'L', email3: 'c@example.org' })), { lastName: 'L', email: 'c@example.org' });
    assert.deepEqual(value(fromCrmContact({ last_name: 'L', email: 'a@example.org', email3: 'c@example.org' })), { lastName: 'L', email: 'a@example.org', email2: 'c@example.org' });
    assert.deepEqual(value(fromGraphContact(toGraphContact({ lastName: 'L', email2: 'b@example.org' }))), { lastName: 'L', email: 'b@example.org' });
  });

  it('an address in two slots is kept once (in any case), the others moving up', () => {
    assert.deepEqual(value(fromCrmContact({ last_name: 'L', email: 'A@example.org', email2: 'a@example.org', email3: 'c@example.org' })), { lastName: 'L', email: 'a@example.org', email2: 'c@example.org' });
  });

  it('toCrmContact writes every column, cleared ones as null', () => {
    const row = toCrmContact({ company: 'AE' });
    assert.equal(Object.keys(row).length, CONTACT_FIELDS.length);
    for (const [k, v] of Object.entries(row)) assert.equal(v, k === 'company' ? 'AE' : null, k);
  });

  it('the display name follows the name, then company, then email', () => {
    assert.equal(toGraphContact({ firstName: 'Ada', lastName: 'Lovelace', company: 'AE' }).displayName, 'Ada Lovelace');
    assert.equal(toGraphContact({ lastName: 'Lovelace' }).displayName, 'Lovelace');
    assert.equal(toGraphContact({ company: 'AE', email: 'a@b.co' }).displayName, 'AE');
    assert.equal(toGraphContact({ email: 'a@b.co' }).displayName, 'a@b.co');
    assert.deepEqual(toGraphContact({ email: 'a@b.co' }).emailAddresses, [{ address: 'a@b.co', name: 'a@b.co' }]);
  });
});
