import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  accountFromSender,
  attachmentSkipReason,
  domainFromWebsite,
  domainOfAddress,
  isPublicMailDomain,
  normaliseAddress,
  normaliseDomain,
  personName,
  resolveRecord,
  type RecordCandidate,
} from '../../src/domain/email-records';

const ME = 'user-me';
const OTHER = 'user-other';
const c = (type: RecordCandidate['type'], id: string, ownerId: string | null, match: RecordCandidate['match'] = 'address'): RecordCandidate => ({ type, id, ownerId, match });

describe('address and domain normalisation', () => {
  it('compares addresses case-insensitively, without display names, brackets or mailto:', () => {
    assert.equal(normaliseAddress('Anna.Berg@Contoso.COM'), 'anna.berg@contoso.com');
    assert.equal(normaliseAddress('  "Anna Berg" <Anna@Contoso.com> '), 'anna@contoso.com');
    assert.equal(normaliseAddress('mailto:ANNA@contoso.com'), 'anna@contoso.com');
    assert.equal(normaliseAddress('anna@contoso.com.'), 'anna@contoso.com');
    assert.equal(normaliseAddress('anna@bücher.de'), 'anna@xn--bcher-kva.de');
  });

  it('answers null for what is not an address', () => {
    for (const bad of [null, undefined, '', 'anna', '@contoso.com', 'anna@', 'an na@contoso.com', 'a@b@c.com', 'anna@contoso..com']) {
      assert.equal(normaliseAddress(bad), null, String(bad));
    }
  });

  it('takes the domain of an address and of a website', () => {
    assert.equal(domainOfAddress('Anna <anna@Sales.Contoso.com>'), 'sales.contoso.com');
    assert.equal(domainOfAddress('nobody'), null);
    assert.equal(domainFromWebsite('https://www.Contoso.com/about?x=1'), 'contoso.com');
    assert.equal(domainFromWebsite('contoso.com'), 'contoso.com');
    assert.equal(domainFromWebsite('www.fabrikam.co.uk/'), 'fabrikam.co.uk');
    assert.equal(domainFromWebsite(''), null);
    assert.equal(domainFromWebsite('not a website'), null);
    assert.equal(normaliseDomain('Contoso.COM.'), 'contoso.com');
    assert.equal(normaliseDomain('contoso.com/x'), null);
  });

  it('knows public mail providers, whose domain says nothing about a company', () => {
    assert.equal(isPublicMailDomain('gmail.com'), true);
    assert.equal(isPublicMailDomain('Hotmail.co.uk'), true);
    assert.equal(isPublicMailDomain('contoso.com'), false);
    assert.equal(isPublicMailDomain(null), false);
  });
});

describe('resolution order: owned by the mailbox user, then contact before lead before account', () => {
  it('nothing matched, or one record', () => {
    assert.deepEqual(resolveRecord([], ME), { kind: 'none' });
    const only = c('account', 'a1', OTHER, 'domain');
    assert.deepEqual(resolveRecord([only], ME), { kind: 'resolved', record: only, rule: 'the only match' });
  });

  it('a record owned by the mailbox user wins over anyone else\'s, whatever its type', () => {
    const mine = c('account', 'a1', ME);
    const r = resolveRecord([c('contact', 'c1', OTHER), c('lead', 'l1', null), mine], ME);
    assert.deepEqual(r, { kind: 'resolved', record: mine, rule: "owned by the mailbox's user" });
  });

  it('among the same owner class: contact before lead before account', () => {
    const contact = c('contact', 'c1', OTHER);
    assert.deepEqual(resolveRecord([c('account', 'a1', OTHER), c('lead', 'l1', OTHER), contact], ME), { kind: 'resolved', record: contact, rule: 'contact before lead' });
    const lead = c('lead', 'l1', ME);
    assert.deepEqual(resolveRecord([c('account', 'a1', ME), lead], ME), { kind: 'resolved', record: lead, rule: 'lead before account' });
  });

  it("an account's own address before an account matching by domain", () => {
    const exact = c('account', 'a2', OTHER, 'address');
    assert.deepEqual(resolveRecord([c('account', 'a1', OTHER, 'domain'), exact], ME), { kind: 'resolved', record: exact, rule: 'address before domain' });
  });

  it('a tie at the best rank is ambiguous, never guessed, and names only the tied records', () => {
    const r = resolveRecord([c('contact', 'c2', ME), c('contact', 'c1', ME), c('lead', 'l1', ME), c('contact', 'c3', OTHER)], ME);
    assert.equal(r.kind, 'ambiguous');
    assert.deepEqual(r.kind === 'ambiguous' && r.candidates.map((x) => x.id), ['c1', 'c2']);
    assert.equal(r.kind === 'ambiguous' && r.reason, "2 contacts owned by the mailbox's user share the address");
    const byDomain = resolveRecord([c('account', 'a1', OTHER, 'domain'), c('account', 'a2', null, 'domain')], ME);
    assert.equal(byDomain.kind === 'ambiguous' && byDomain.reason, '2 accounts matching by domain share the address');
  });

  it('the same record matched twice counts once', () => {
    const x = c('contact', 'c1', OTHER);
    assert.deepEqual(resolveRecord([x, { ...x }], ME), { kind: 'resolved', record: x, rule: 'the only match' });
  });

  it('the order of the candidates does not change the outcome', () => {
    const list = [c('lead', 'l1', OTHER), c('contact', 'c1', null), c('account', 'a1', ME, 'domain'), c('account', 'a2', ME)];
    const expected = resolveRecord(list, ME);
    assert.equal(expected.kind === 'resolved' && expected.record.id, 'a2');
    for (let i = 0; i < 10; i++) {
      const shuffled = [...list].sort(() => Math.random() - 0.5);
      assert.deepEqual(resolveRecord(shuffled, ME), expected);
    }
  });
});

describe('records created from a sender', () => {
  it('splits a display name into first and last name, or uses the address', () => {
    assert.deepEqual(personName({ address: 'anna@contoso.com', name: 'Anna Maria Berg' }), { firstName: 'Anna Maria', lastName: 'Berg' });
    assert.deepEqual(personName({ address: 'anna@contoso.com', name: 'Berg, Anna' }), { firstName: 'Anna', lastName: 'Berg' });
    assert.deepEqual(personName({ address: 'anna@contoso.com', name: '"Cher"' }), { firstName: null, lastName: 'Cher' });
    assert.deepEqual(personName({ address: 'Anna.Berg@contoso.com', name: 'anna.berg@contoso.com' }), { firstName: null, lastName: 'anna.berg' });
    assert.deepEqual(personName({ address: 'anna@contoso.com' }), { firstName: null, lastName: 'anna' });
  });

  it('names an account by its domain, and gives none from a public mail provider', () => {
    assert.deepEqual(accountFromSender({ address: 'Anna@Contoso.com', name: 'Anna Berg' }), { name: 'contoso.com', domain: 'contoso.com', email: 'anna@contoso.com' });
    assert.deepEqual(accountFromSender({ address: 'bob@gmail.com', name: 'Bob Smith' }), { name: 'Bob Smith', domain: null, email: 'bob@gmail.com' });
    assert.deepEqual(accountFromSender({ address: 'bob@gmail.com' }), { name: 'bob', domain: null, email: 'bob@gmail.com' });
  });
});

describe('attachment size limit', () => {
  it('skips only what is over the limit, with the sizes in the reason', () => {
    assert.equal(attachmentSkipReason(10, null), null);
    assert.equal(attachmentSkipReason(1000, 1000), null);
    assert.equal(attachmentSkipReason(1001, 1000), "1001 bytes is over the policy's attachment size limit of 1000 bytes");
  });
});
