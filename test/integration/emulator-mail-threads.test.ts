/**
 * The emulator threads delivered mail as Exchange does (src/emulator/mail-store.ts threadOf): a message whose
 * In-Reply-To or References names a message of the mailbox joins its conversation (`conversationId`), as does a
 * second copy of a message; anything else starts its own. Read through the real Graph client, with
 * conversationId and receivedDateTime selected on message delta as filing reads them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startGraphEmulator, type GraphEmulator } from '../../src/emulator';
import { connect } from '../helpers/emulator-client';

const UPN = 'tia@contoso.test';
const from = (address: string) => ({ emailAddress: { address, name: address } });

describe('Graph emulator: conversations', () => {
  let emu: GraphEmulator;
  before(async () => {
    emu = await startGraphEmulator({ port: 0 });
    emu.admin.ensureMailbox(UPN, 'Tia');
  });
  after(() => emu.close());

  test('a reply (In-Reply-To or References) and a copy join the conversation; an unrelated message does not', async () => {
    const client = connect(emu).client;
    const drop = (m: Record<string, unknown>) => emu.admin.dropMessage(UPN, 'inbox', { subject: 'x', body: { contentType: 'text', content: 'x' }, from: from('a@fabrikam.example'), ...m });
    drop({ internetMessageId: '<root@fabrikam.example>' });
    drop({ internetMessageId: '<r1@fabrikam.example>', internetMessageHeaders: [{ name: 'In-Reply-To', value: '<root@fabrikam.example>' }] });
    drop({ internetMessageId: '<r2@fabrikam.example>', internetMessageHeaders: [{ name: 'References', value: '<other@x.example> <R1@fabrikam.example>' }] });
    drop({ internetMessageId: '<root@fabrikam.example>' });
    drop({ internetMessageId: '<alone@fabrikam.example>', internetMessageHeaders: [{ name: 'In-Reply-To', value: '<unknown@x.example>' }] });
    const page = await client.api(`/users/${UPN}/mailFolders/inbox/messages/delta?$select=id,internetMessageId,conversationId,receivedDateTime`).get();
    const conv = (imid: string) => [...new Set((page.value as Array<{ internetMessageId: string; conversationId: string }>).filter((m) => m.internetMessageId === imid).map((m) => m.conversationId))];
    const [root] = conv('<root@fabrikam.example>');
    assert.ok(root);
    assert.deepEqual(conv('<root@fabrikam.example>'), [root], 'the copy is in the same conversation');
    assert.deepEqual(conv('<r1@fabrikam.example>'), [root]);
    assert.deepEqual(conv('<r2@fabrikam.example>'), [root], 'References, compared without case');
    assert.notEqual(conv('<alone@fabrikam.example>')[0], root);
    assert.ok((page.value as Array<{ receivedDateTime?: string }>).every((m) => typeof m.receivedDateTime === 'string'), 'receivedDateTime is selectable on delta');
  });
});
