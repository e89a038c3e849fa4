/** The pure rules of filing (src/domain/email-filing.ts): exclusions, whose address files a message, sync ids. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { counterpartOf, createdRecordId, exclusionReason, exclusionsOf, filingSyncId } from '../../src/domain/email-filing';
import { BUILTIN_POLICY, parsePolicy } from '../../src/domain/policy';
import { ConfigError, loadEnv } from '../../src/config';

const ME = 'anna@contoso.com';
const ex = (over: Partial<Parameters<typeof exclusionsOf>[0]> = {}) => exclusionsOf({ mailboxAddress: ME, ownDomain: true, addresses: [], domains: [], ...over });
const p = (address: string, name: string | null = null) => ({ address, name });

describe('email filing rules', () => {
  it("excludes the mailbox's own domain and its subdomains, listed addresses and domains, case-insensitively", () => {
    const e = ex({ addresses: ['Boss@Fabrikam.example'], domains: ['@Noise.example'.replace('@', '')] });
    assert.match(exclusionReason('colleague@CONTOSO.com', e)!, /contoso\.com is the mailbox's own domain/);
    assert.match(exclusionReason('x@eu.contoso.com', e)!, /own domain/);
    assert.equal(exclusionReason('x@notcontoso.com', e), null, 'a suffix is not a subdomain');
    assert.match(exclusionReason('boss@fabrikam.example', e)!, /the address boss@fabrikam\.example is excluded/);
    assert.equal(exclusionReason('other@fabrikam.example', e), null);
    assert.match(exclusionReason('a@mail.noise.example', e)!, /the domain noise\.example is excluded/);
    assert.equal(exclusionReason('carla@fabrikam.example', ex({ ownDomain: false })), null);
    assert.equal(exclusionReason('carla@contoso.com', ex({ ownDomain: false })), null, 'ownDomain off');
    assert.equal(exclusionReason('not an address', e), 'not an email address');
  });

  it('files received mail by its sender, and mail the user sent by its first To (then Cc) recipient not excluded', () => {
    assert.deepEqual(counterpartOf({ from: p('carla@fabrikam.example', 'Carla'), to: [p(ME)], cc: [] }, ME, ex()), { kind: 'party', party: p('carla@fabrikam.example', 'Carla'), direction: 'incoming' });
    const sent = counterpartOf({ from: p('Anna@Contoso.com'), to: [p('team@contoso.com'), p('fay@adventure.example')], cc: [p('gil@proseware.example')] }, ME, ex());
    assert.deepEqual(sent, { kind: 'party', party: p('fay@adventure.example'), direction: 'outgoing' });
    const ccOnly = counterpartOf({ from: p(ME), to: [p('team@contoso.com')], cc: [p('gil@proseware.example')] }, ME, ex());
    assert.deepEqual(ccOnly, { kind: 'party', party: p('gil@proseware.example'), direction: 'outgoing' });
    // An excluded sender: a recipient other than the mailbox may still file it.
    const fromExcluded = counterpartOf({ from: p('colleague@contoso.com'), to: [p(ME), p('hal@wingtip.example')], cc: [] }, ME, ex());
    assert.deepEqual(fromExcluded, { kind: 'party', party: p('hal@wingtip.example'), direction: 'incoming' });
  });

  it('says why nobody can file a message', () => {
    const internal = counterpartOf({ from: p('colleague@contoso.com'), to: [p(ME)], cc: [] }, ME, ex());
    assert.equal(internal.kind, 'none');
    assert.match((internal as { reason: string }).reason, /^nobody to file to \(sender: contoso\.com is the mailbox's own domain/);
    const noSender = counterpartOf({ from: null, to: [p(ME)], cc: [] }, ME, ex());
    assert.match((noSender as { reason: string }).reason, /no sender/);
    const toSelf = counterpartOf({ from: p(ME), to: [p(ME)], cc: [] }, ME, ex());
    assert.match((toSelf as { reason: string }).reason, /only the mailbox itself/);
  });

  it('one sync id per Internet message id, whatever mailbox or copy; per item without one; always a UUID', () => {
    const a = filingSyncId('<m1@example.net>', 'anna@contoso.com', 'AAMk-1');
    assert.equal(filingSyncId(' <m1@example.net> ', 'ben@contoso.com', 'AAMk-2'), a);
    assert.notEqual(filingSyncId('<m2@example.net>', 'anna@contoso.com', 'AAMk-1'), a);
    assert.notEqual(filingSyncId(null, 'anna@contoso.com', 'AAMk-1'), filingSyncId(null, 'anna@contoso.com', 'AAMk-2'));
    assert.notEqual(createdRecordId('anna@contoso.com', 'lead', 'AAMk-1'), createdRecordId('anna@contoso.com', 'contact', 'AAMk-1'));
    fc.assert(
      fc.property(fc.option(fc.string(), { nil: null }), fc.string(), fc.string(), (imid, mb, id) => {
        assert.match(filingSyncId(imid, mb, id), /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      }),
    );
  });
});

describe('policy: the email section', () => {
  it('defaults: filing off, the three vtiger folders, attachments up to 10 MB, replies not filed, the own domain excluded', () => {
    // The email sync subsection has its own tests (test/unit/policy-email.test.ts).
    const { sync: _sync, ...filing } = BUILTIN_POLICY.email as typeof BUILTIN_POLICY.email & { sync?: unknown };
    assert.deepEqual(filing, {
      enabled: false,
      dropFolders: { account: 'VAccounts', contact: 'VContacts', lead: 'VLeads' },
      attachments: { enabled: true, maxBytes: 10 * 1024 * 1024 },
      fileReplies: false,
      exclude: { ownDomain: true, addresses: [], domains: [] },
    });
  });

  it('validation names the field and what it accepts', () => {
    const problem = (doc: unknown) => {
      const r = parsePolicy(doc);
      assert.equal(r.ok, false, JSON.stringify(doc));
      return (r as { error: string }).error;
    };
    assert.equal(problem({ email: { dropFolders: { lead: '' } } }), 'email.dropFolders.lead must not be empty; use null for no such folder (got "")');
    assert.equal(problem({ email: { dropFolders: { lead: 'Inbox/Leads' } } }), 'email.dropFolders.lead must be a folder name, not a path (no / or \\) (got "Inbox/Leads")');
    assert.equal(problem({ email: { dropFolders: { lead: 'vcontacts' } } }), 'email.dropFolders.lead must differ from dropFolders.contact (Exchange compares folder names without case)');
    assert.equal(problem({ email: { exclude: { addresses: ['nobody'] } } }), 'email.exclude.addresses.0 must be an email address such as anna@contoso.com (got "nobody")');
    assert.equal(problem({ email: { exclude: { domains: ['not a domain'] } } }), 'email.exclude.domains.0 must be a domain such as contoso.com (got "not a domain")');
    assert.match(problem({ email: { attachments: { maxBytes: 0 } } }), /^email\.attachments\.maxBytes /);
    const ok = parsePolicy({ email: { enabled: true, dropFolders: { account: null }, attachments: { maxBytes: null } } });
    assert.ok(ok.ok);
    assert.equal(ok.value.email.dropFolders.account, null);
  });
});

describe('configuration: CXSYNC_MAIL_RESCAN_SECONDS', () => {
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadEnv(env);
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };
  it('defaults to 6 hours and takes 60 s to 7 days, naming the variable and the range otherwise', () => {
    assert.equal(loadEnv({}).CXSYNC_MAIL_RESCAN_SECONDS, 21600);
    assert.equal(loadEnv({ CXSYNC_MAIL_RESCAN_SECONDS: '60' }).CXSYNC_MAIL_RESCAN_SECONDS, 60);
    assert.match(problems({ CXSYNC_MAIL_RESCAN_SECONDS: '10' })[0], /^CXSYNC_MAIL_RESCAN_SECONDS must be at least 60 seconds/);
    assert.match(problems({ CXSYNC_MAIL_RESCAN_SECONDS: 'hourly' })[0], /^CXSYNC_MAIL_RESCAN_SECONDS must be a number of seconds from 60 to 604800 \(default 21600\)/);
  });
});
