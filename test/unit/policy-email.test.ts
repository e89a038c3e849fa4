/**
 * The policy's email.sync section (src/domain/policy.ts; docs/POLICIES.md "Email sync (the CRM Email folder)"):
 * its defaults, the folder name rules it shares with the drop folders, and the refusal of a sync folder that is
 * also a drop folder.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy } from '../../src/domain/policy';

const refused = (input: unknown): string => {
  const r = parsePolicy(input);
  assert.ok(!r.ok, `refused: ${JSON.stringify(input)}`);
  return r.error;
};

describe('policy: email.sync', () => {
  it('is off by default, with the folder CRM Email and no contacts made from participants', () => {
    const r = parsePolicy({});
    assert.ok(r.ok);
    assert.deepEqual(r.value.email.sync, { enabled: false, folder: 'CRM Email', contactsFromParticipants: false });
  });

  it('takes a folder name and the two switches', () => {
    const r = parsePolicy({ email: { enabled: true, sync: { enabled: true, folder: '  Acumatica Mail ', contactsFromParticipants: true } } });
    assert.ok(r.ok);
    assert.deepEqual(r.value.email.sync, { enabled: true, folder: 'Acumatica Mail', contactsFromParticipants: true });
  });

  it('refuses an empty folder name, a path and an overlong name, naming the field', () => {
    assert.match(refused({ email: { sync: { folder: '   ' } } }), /^email\.sync\.folder must not be empty/);
    assert.match(refused({ email: { sync: { folder: 'Inbox/CRM' } } }), /^email\.sync\.folder must be a folder name, not a path/);
    assert.match(refused({ email: { sync: { folder: 'x'.repeat(256) } } }), /^email\.sync\.folder /);
    assert.match(refused({ email: { sync: { folder: null } } }), /^email\.sync\.folder /);
  });

  it('refuses a sync folder that is also a drop folder (compared without case), naming both', () => {
    const e = refused({ email: { sync: { folder: 'vleads' } } });
    assert.match(e, /^email\.sync\.folder must differ from dropFolders\.lead \("VLeads"\): the sync folder is not a drop folder/);
    // A drop folder turned off frees its name.
    assert.ok(parsePolicy({ email: { dropFolders: { lead: null }, sync: { folder: 'VLeads' } } }).ok);
  });

  it('refuses unknown keys and non-boolean switches', () => {
    assert.match(refused({ email: { sync: { attachments: true } } }), /email\.sync/);
    assert.match(refused({ email: { sync: { enabled: 'yes' } } }), /^email\.sync\.enabled must be a boolean/);
    assert.match(refused({ email: { sync: { contactsFromParticipants: 1 } } }), /^email\.sync\.contactsFromParticipants must be a boolean/);
  });
});
