/**
 * Fingerprints of synced fields (src/domain/fingerprint.ts). They are stored in sync.mapping and compared with
 * fingerprints computed by later releases: a change to the algorithm or the canonical form would turn every
 * mapped item into a "change" (and, on both sides at once, into a conflict). The pinned values below must never
 * change; if they must, that is a migration, not a test update.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalJson, fingerprint } from '../../src/domain/fingerprint';
import { CONTACT_FIELDS, fromCrmContact, fromGraphContact, toCrmContact, toGraphContact, type ContactRecord } from '../../src/domain/contact';

const FULL: ContactRecord = {
  firstName: 'Ada',
  lastName: 'Lovelace',
  email: 'ada@example.com',
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
  notes: 'Émigré 🧮',
};

/** Textbook FNV-1a 64 over char codes, to show fingerprint() is that hash of canonicalJson(). */
function fnv1a64(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) h = ((h ^ BigInt(text.charCodeAt(i))) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, '0');
}

describe('fingerprint: stable across releases (values are stored)', () => {
  it('the reference FNV-1a 64 matches the published test vectors', () => {
    assert.equal(fnv1a64(''), 'cbf29ce484222325');
    assert.equal(fnv1a64('a'), 'af63dc4c8601ec8c');
    assert.equal(fnv1a64('foobar'), '85944171f73967e8');
  });

  it('is FNV-1a 64 of the canonical JSON, as 16 lower-case hex digits', () => {
    for (const v of [FULL, { firstName: 'Ada' }, {}, 'x', 42, null, [1, 'a', { b: 2 }]]) {
      const fp = fingerprint(v);
      assert.match(fp, /^[0-9a-f]{16}$/);
      assert.equal(fp, fnv1a64(canonicalJson(v)));
    }
  });

  it('the 32-bit-halves implementation equals the reference on any JSON value and any UTF-16 text', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => fingerprint(v) === fnv1a64(canonicalJson(v))), { numRuns: 5000 });
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => fingerprint(s) === fnv1a64(canonicalJson(s))), { numRuns: 5000 });
  });

  it('pins the canonical form', () => {
    assert.equal(
      canonicalJson(FULL),
      '{"city":"London","company":"Analytical Engines Ltd","country":"United Kingdom","department":"Research",' +
        '"email":"ada@example.com","firstName":"Ada","jobTitle":"Programmer","lastName":"Lovelace",' +
        '"mobile":"+44 7700 900000","notes":"Émigré 🧮","phone":"+44 20 7946 0000","postalCode":"SW1Y 4JH",' +
        '"state":"Greater London","street":"12 St James’s Square"}',
    );
    assert.equal(canonicalJson({ b: [1, null, { d: '', c: 'x' }], a: { z: 1, y: undefined } }), '{"a":{"z":1},"b":[1,null,{"c":"x"}]}');
  });

  it('pins known values (computed once with the first release of this algorithm)', () => {
    assert.equal(fingerprint(FULL), '9cc6003f0d50d70e');
    assert.equal(fingerprint({ firstName: 'Ada' }), '95d3c01bb9f5351a');
    assert.equal(fingerprint({}), '08f44b07b5901a25');
    assert.equal(fingerprint(''), '07cc7607b4949e25');
    assert.equal(fingerprint(null), '5b9bc4ba528108e4');
  });

  it('gives the same answer every time', () => {
    const a = fingerprint(FULL);
    for (let i = 0; i < 10; i++) assert.equal(fingerprint(structuredClone(FULL)), a);
  });
});

describe('fingerprint: what counts as the same', () => {
  it('does not depend on key order', () => {
    const reversed = Object.fromEntries(Object.entries(FULL).reverse());
    assert.equal(fingerprint(reversed), fingerprint(FULL));
    assert.equal(fingerprint({ a: 1, b: { c: 2, d: 3 } }), fingerprint({ b: { d: 3, c: 2 }, a: 1 }));
  });

  it('treats empty string, undefined, null, [] and an absent key alike', () => {
    const base = fingerprint({ firstName: 'Ada' });
    for (const empty of ['', undefined, null, []]) {
      assert.equal(fingerprint({ firstName: 'Ada', lastName: empty }), base, `lastName = ${JSON.stringify(empty)}`);
      assert.equal(fingerprint({ lastName: empty, firstName: 'Ada' }), base);
    }
    assert.equal(fingerprint({ firstName: 'Ada', a: '', b: null, c: undefined, d: [] }), base);
  });

  it('treats a fully cleared record like the empty record', () => {
    const cleared = Object.fromEntries(CONTACT_FIELDS.map((f) => [f, f.length % 2 ? '' : null]));
    assert.equal(fingerprint(cleared), fingerprint({}));
  });

  it('is equal for the record read back from Graph and from the CRM after a write (echo detection)', () => {
    for (const rec of [FULL, { firstName: 'Ada' }, { email: 'a@b.co', city: 'X' }]) {
      const g = fromGraphContact(toGraphContact(rec));
      const c = fromCrmContact(toCrmContact(rec));
      assert.ok(g.ok && c.ok);
      assert.equal(fingerprint(g.value), fingerprint(rec));
      assert.equal(fingerprint(c.value), fingerprint(rec));
    }
  });
});

describe('fingerprint: what counts as a change', () => {
  const FULL_PINNED = FULL;

  // FULL is pinned above (stored fingerprints); fields added later get a value here.
  const ADDED: Partial<ContactRecord> = { email2: 'ada.second@example.org', email3: 'countess@example.net' };
  for (const f of CONTACT_FIELDS) {
    it(`changes when ${f} changes, is cleared, or is set`, () => {
      const FULL = { ...FULL_PINNED, ...ADDED };
      const base = fingerprint(FULL);
      assert.notEqual(fingerprint({ ...FULL, [f]: `${FULL[f]}!` }), base, 'edited');
      assert.notEqual(fingerprint({ ...FULL, [f]: FULL[f]!.toUpperCase() === FULL[f] ? `${FULL[f]}x` : FULL[f]!.toUpperCase() }), base, 'case');
      assert.notEqual(fingerprint({ ...FULL, [f]: undefined }), base, 'cleared');
      assert.notEqual(fingerprint({ firstName: 'Z', [f]: 'v' }), fingerprint({ firstName: 'Z' }), 'set');
    });
  }

  it('tells apart the same value in different fields', () => {
    assert.notEqual(fingerprint({ firstName: 'Ada' }), fingerprint({ lastName: 'Ada' }));
    assert.notEqual(fingerprint({ phone: '1', mobile: '2' }), fingerprint({ phone: '2', mobile: '1' }));
  });

  it('is not fooled by values that look like JSON or contain separators', () => {
    assert.notEqual(fingerprint({ a: 'x","b":"y' }), fingerprint({ a: 'x', b: 'y' }));
    assert.notEqual(fingerprint({ a: '1' }), fingerprint({ a: 1 }));
    assert.notEqual(fingerprint({ notes: 'a\nb' }), fingerprint({ notes: 'a b' }));
  });

  it('has no collisions over many small distinct records', () => {
    const seen = new Map<string, string>();
    for (let i = 0; i < 5000; i++) {
      const rec: ContactRecord = { firstName: `n${i}`, ...(i % 3 ? { email: `u${i % 97}@x.io` } : {}), ...(i % 5 ? { city: `c${i % 13}` } : {}) };
      const key = canonicalJson(rec);
      const fp = fingerprint(rec);
      assert.ok(!seen.has(fp) || seen.get(fp) === key, `collision: ${key} / ${seen.get(fp)}`);
      seen.set(fp, key);
    }
  });
});
