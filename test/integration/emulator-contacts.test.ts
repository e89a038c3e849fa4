/**
 * The Graph emulator exercised through the production client stack (@microsoft/microsoft-graph-client +
 * @azure/msal-node over HTTPS with the emulator's CA), so what passes here is what cxsync will see.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GraphError, RetryHandlerOptions, type Client } from '@microsoft/microsoft-graph-client';
import { Agent, fetch } from 'undici';
import { type GraphConnection } from '../../src/activities/exchange/graph-client';
import { startGraphEmulator, type GraphEmulator } from '../../src/emulator';
import { connect, raw, graphError } from '../helpers/emulator-client';

const UPN = 'alice@contoso.test';
const CXSYNC_PROP = 'String {66f5a359-4659-4830-9070-00047ec6ac6e} Name cxsyncId';
const noRetry = () => [new RetryHandlerOptions(0, 0)];

type DeltaPage = { value: Array<Record<string, unknown>>; '@odata.nextLink'?: string; '@odata.deltaLink'?: string };

/** Follows a delta round to its end; returns every page. */
async function deltaRound(client: Client, start: string, pageSize?: number): Promise<DeltaPage[]> {
  const pages: DeltaPage[] = [];
  let url: string | undefined = start;
  while (url) {
    let req = client.api(url);
    if (pageSize) req = req.header('Prefer', `odata.maxpagesize=${pageSize}`);
    const page = (await req.get()) as DeltaPage;
    pages.push(page);
    url = page['@odata.nextLink'];
  }
  return pages;
}

describe('Graph emulator: contacts through the real client', () => {
  let emu: GraphEmulator;
  let conn: GraphConnection;
  let client: Client;

  before(async () => {
    emu = await startGraphEmulator({ port: 0, maxTokenGenerations: 3 });
    emu.admin.ensureMailbox(UPN, 'Alice');
    conn = connect(emu);
    client = conn.client;
  });
  after(() => emu.close());

  test('issues tokens for the right secret and refuses a wrong one', async () => {
    assert.match(await conn.getToken(), /^[\w-]+\.[\w-]+\.[\w-]+$/);
    await assert.rejects(connect(emu, 'wrong-secret').getToken(), /invalid_client|AADSTS7000215/);
    const res = await fetch(emu.graphBaseUrl + `/users/${UPN}/contacts`, {
      headers: { Authorization: 'Bearer forged.token.value' },
      dispatcher: new Agent({ connect: { ca: emu.caCertPem } }),
    });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'InvalidAuthenticationToken');
  });

  test('creates a contact folder, finds it by name, refuses a duplicate', async () => {
    const created = await client.api(`/users/${UPN}/contactFolders`).post({ displayName: 'VContacts' });
    assert.equal(created.displayName, 'VContacts');
    const found = await client.api(`/users/${UPN}/contactFolders`).filter("displayName eq 'VContacts'").get();
    assert.deepEqual(found.value.map((f: { id: string }) => f.id), [created.id]);
    assert.equal((await client.api(`/users/${UPN}/contactFolders/${created.id}`).get()).displayName, 'VContacts');
    const dup = await graphError(client.api(`/users/${UPN}/contactFolders`).post({ displayName: 'VContacts' }));
    assert.equal(dup.statusCode, 409);
    assert.equal(dup.code, 'ErrorFolderExists');
  });

  test('contact CRUD changes changeKey and etag on every write', async () => {
    const c = await client.api(`/users/${UPN}/contacts`).post({
      givenName: 'Ada',
      surname: 'Lovelace',
      emailAddresses: [{ address: 'ada@example.com', name: 'Ada' }],
      businessPhones: ['+44 20 1234'],
      businessAddress: { city: 'London', countryOrRegion: 'UK' },
      categories: ['CRM'],
    });
    assert.equal(c.displayName, 'Ada Lovelace');
    assert.equal(c['@odata.etag'], `W/"${c.changeKey}"`);
    assert.match(c.id, /^[\w-]+$/);
    const got = await client.api(`/users/${UPN}/contacts/${c.id}`).get();
    assert.equal(got.changeKey, c.changeKey);
    assert.equal(got.parentFolderId, c.parentFolderId);

    const patched = await client.api(`/users/${UPN}/contacts/${c.id}`).patch({ jobTitle: 'Analyst' });
    assert.equal(patched.jobTitle, 'Analyst');
    assert.equal(patched.surname, 'Lovelace');
    assert.notEqual(patched.changeKey, c.changeKey);
    assert.equal(patched['@odata.etag'], `W/"${patched.changeKey}"`);

    const selected = await client.api(`/users/${UPN}/contacts/${c.id}`).select('givenName').get();
    assert.deepEqual(Object.keys(selected).sort(), ['@odata.etag', 'givenName', 'id']);

    await client.api(`/users/${UPN}/contacts/${c.id}`).delete();
    const gone = await graphError(client.api(`/users/${UPN}/contacts/${c.id}`).get());
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.code, 'ErrorItemNotFound');
  });

  test('unknown properties and bad JSON are refused in Graph error shape', async () => {
    const err = await graphError(client.api(`/users/${UPN}/contacts`).post({ givenName: 'X', favouriteColour: 'blue' }));
    assert.equal(err.statusCode, 400);
    assert.equal(err.code, 'RequestBodyRead');
    assert.match(err.message, /favouriteColour.*microsoft\.graph\.contact/);

    const res = await raw(emu, conn, `/users/${UPN}/contacts`, { method: 'POST', body: '{not json', headers: { 'client-request-id': 'abc-123' } });
    assert.equal(res.status, 400);
    const e = (res.body as { error: { code: string; innerError: Record<string, string> } }).error;
    assert.ok(e.code);
    assert.equal(e.innerError['client-request-id'], 'abc-123');
    assert.equal(e.innerError['request-id'], res.headers.get('request-id'));
    assert.equal(res.headers.get('client-request-id'), 'abc-123');

    const noUser = await graphError(client.api('/users/nobody@contoso.test/contacts').get());
    assert.equal(noUser.statusCode, 404);
    assert.equal(noUser.code, 'ErrorInvalidUser');
  });

  test('lists page with absolute nextLinks', async () => {
    const folder = await client.api(`/users/${UPN}/contactFolders`).post({ displayName: 'Paged' });
    for (let i = 0; i < 5; i++) await client.api(`/users/${UPN}/contactFolders/${folder.id}/contacts`).post({ givenName: `P${i}` });
    const first = await client.api(`/users/${UPN}/contactFolders/${folder.id}/contacts`).top(2).select('givenName').get();
    assert.equal(first.value.length, 2);
    assert.ok(first['@odata.nextLink'].startsWith(`${emu.graphBaseUrl}/`));
    const names: string[] = first.value.map((c: { givenName: string }) => c.givenName);
    let next: string | undefined = first['@odata.nextLink'];
    while (next) {
      const p = await client.api(next).get();
      names.push(...p.value.map((c: { givenName: string }) => c.givenName));
      next = p['@odata.nextLink'];
    }
    assert.deepEqual(names, ['P0', 'P1', 'P2', 'P3', 'P4']);
  });

  test('delta: multi-page first round, then an incremental round with an update and a deletion', async () => {
    const folder = await client.api(`/users/${UPN}/contactFolders`).post({ displayName: 'DeltaFolder' });
    const base = `/users/${UPN}/contactFolders/${folder.id}/contacts`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.api(base).post({ givenName: `D${i}` })).id);

    const first = await raw(emu, conn, `${base}/delta`, { headers: { Prefer: 'odata.maxpagesize=2' } });
    assert.equal(first.headers.get('preference-applied'), 'odata.maxpagesize=2');

    const pages = await deltaRound(client, `${base}/delta`, 2);
    assert.deepEqual(pages.map((p) => p.value.length), [2, 2, 1]);
    for (const p of pages.slice(0, -1)) {
      assert.ok(p['@odata.nextLink']?.startsWith(`${emu.graphBaseUrl}${base}/delta?$skiptoken=`), p['@odata.nextLink']);
      assert.equal(p['@odata.deltaLink'], undefined);
    }
    const last = pages[pages.length - 1];
    assert.equal(last['@odata.nextLink'], undefined);
    assert.ok(last['@odata.deltaLink']?.startsWith(`${emu.graphBaseUrl}${base}/delta?$deltatoken=`));
    assert.deepEqual(pages.flatMap((p) => p.value.map((c) => c.id)).sort(), [...ids].sort());

    emu.admin.updateContact(UPN, ids[1], { jobTitle: 'Changed' });
    await client.api(`${base}/${ids[3]}`).delete();
    const round2 = await deltaRound(client, last['@odata.deltaLink']!, 2);
    const changes = round2.flatMap((p) => p.value);
    assert.equal(changes.length, 2);
    assert.equal(changes.find((c) => c.id === ids[1])?.jobTitle, 'Changed');
    assert.deepEqual(changes.find((c) => c.id === ids[3]), { '@odata.type': '#microsoft.graph.contact', id: ids[3], '@removed': { reason: 'deleted' } });

    const round3 = await deltaRound(client, round2[round2.length - 1]['@odata.deltaLink']!);
    assert.deepEqual(round3.flatMap((p) => p.value), []);
    assert.ok(round3[0]['@odata.deltaLink']);
  });

  test('delta: changes made while a round is paged are not lost', async () => {
    const folder = await client.api(`/users/${UPN}/contactFolders`).post({ displayName: 'Concurrent' });
    const base = `/users/${UPN}/contactFolders/${folder.id}/contacts`;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await client.api(base).post({ givenName: `C${i}` })).id);
    const p1 = (await client.api(`${base}/delta`).header('Prefer', 'odata.maxpagesize=2').get()) as DeltaPage;
    const sent = p1.value.map((c) => c.id as string);
    const unsent = ids.find((id) => !sent.includes(id))!;
    emu.admin.updateContact(UPN, sent[0], { nickName: 'after-send' });
    emu.admin.updateContact(UPN, unsent, { nickName: 'before-send' });
    const newcomer = emu.admin.createContact(UPN, 'Concurrent', { givenName: 'New' });
    const rest = await deltaRound(client, p1['@odata.nextLink']!, 2);
    const round2 = await deltaRound(client, rest[rest.length - 1]['@odata.deltaLink']!);
    const seen = new Map<string, Record<string, unknown>>();
    for (const c of [...p1.value, ...rest.flatMap((p) => p.value), ...round2.flatMap((p) => p.value)]) seen.set(c.id as string, c);
    assert.equal(seen.get(sent[0])?.nickName, 'after-send');
    assert.equal(seen.get(unsent)?.nickName, 'before-send');
    // Without `Prefer: IdType="ImmutableId"` Graph answers with default ids (admin's restId).
    assert.ok(seen.has(newcomer.restId));
    assert.deepEqual([...seen.keys()].sort(), [...ids, newcomer.restId].sort());
  });

  test('delta: expired tokens answer 410 SyncStateNotFound', async () => {
    const base = `/users/${UPN}/contacts`;
    const firstLink = (await deltaRound(client, `${base}/delta`)).at(-1)!['@odata.deltaLink']!;
    // maxTokenGenerations is 3: three more rounds push the first one out.
    let link = firstLink;
    for (let i = 0; i < 3; i++) link = (await deltaRound(client, link)).at(-1)!['@odata.deltaLink']!;
    const evicted = await graphError(client.api(firstLink).get());
    assert.equal(evicted.statusCode, 410);
    assert.equal(evicted.code, 'SyncStateNotFound');

    await client.api(link).get(); // still live
    const fresh = (await deltaRound(client, `${base}/delta`)).at(-1)!['@odata.deltaLink']!;
    emu.admin.expireDeltaTokens(UPN);
    const expired = await graphError(client.api(fresh).get());
    assert.equal(expired.statusCode, 410);
    assert.equal(expired.code, 'SyncStateNotFound');
  });

  test('finds a contact by its extended property', async () => {
    const c = await client.api(`/users/${UPN}/contacts`).post({ givenName: 'Ext', singleValueExtendedProperties: [{ id: CXSYNC_PROP, value: 'crm-42' }] });
    const plain = await client.api(`/users/${UPN}/contacts/${c.id}`).get();
    assert.equal(plain.singleValueExtendedProperties, undefined);
    for (const any of ['any', 'Any']) {
      const found = await client
        .api(`/users/${UPN}/contacts`)
        .filter(`singleValueExtendedProperties/${any}(ep: ep/id eq '${CXSYNC_PROP}' and ep/value eq 'crm-42')`)
        .expand(`singleValueExtendedProperties($filter=id eq '${CXSYNC_PROP}')`)
        .get();
      assert.deepEqual(found.value.map((x: { id: string }) => x.id), [c.id]);
      assert.deepEqual(found.value[0].singleValueExtendedProperties, [{ id: CXSYNC_PROP, value: 'crm-42' }]);
    }
    const none = await client.api(`/users/${UPN}/contacts`).filter(`singleValueExtendedProperties/any(ep: ep/id eq '${CXSYNC_PROP}' and ep/value eq 'crm-43')`).get();
    assert.deepEqual(none.value, []);
  });

  test('injected 429 carries Retry-After; cxsync\'s client leaves retrying to Temporal', async () => {
    emu.admin.injectFault(UPN, { status: 429, count: 1, method: 'GET', pathPattern: '/contacts$', retryAfterSeconds: 7 });
    const err = await graphError(client.api(`/users/${UPN}/contacts`).middlewareOptions(noRetry()).get());
    assert.equal(err.statusCode, 429);
    assert.equal(err.code, 'TooManyRequests');
    assert.equal(err.headers?.get('retry-after'), '7');
    await client.api(`/users/${UPN}/contacts`).get(); // fault consumed

    emu.admin.injectFault(UPN, { status: 503, count: 1, retryAfterSeconds: 1 });
    const before = emu.requestCount(UPN);
    const e503 = await graphError(client.api(`/users/${UPN}/contacts`).top(1).get());
    assert.equal(e503.statusCode, 503);
    assert.equal(emu.requestCount(UPN) - before, 1, 'no hidden retry inside the client: one request, one answer');
  });

  test('a 504 with applyThenFail performs the create but loses the answer', async () => {
    emu.admin.injectFault(UPN, { status: 504, count: 1, method: 'POST', applyThenFail: true });
    const err = await graphError(
      client.api(`/users/${UPN}/contacts`).middlewareOptions(noRetry()).post({ givenName: 'Lost', singleValueExtendedProperties: [{ id: CXSYNC_PROP, value: 'crm-lost' }] }),
    );
    assert.equal(err.statusCode, 504);
    assert.equal(err.code, 'GatewayTimeout');
    const found = await client.api(`/users/${UPN}/contacts`).filter(`singleValueExtendedProperties/any(ep: ep/id eq '${CXSYNC_PROP}' and ep/value eq 'crm-lost')`).get();
    assert.equal(found.value.length, 1);
  });

  test('$batch runs sub-requests with per-request statuses', async () => {
    const out = await client.api('/$batch').post({
      requests: [
        { id: '1', method: 'POST', url: `/users/${UPN}/contacts`, headers: { 'Content-Type': 'application/json' }, body: { givenName: 'B1' } },
        { id: '2', method: 'POST', url: `/users/${UPN}/contacts`, headers: { 'Content-Type': 'application/json' }, body: { bogus: 1 } },
        { id: '3', method: 'GET', url: `/users/${UPN}/contacts/nope` },
      ],
    });
    assert.deepEqual(out.responses.map((r: { status: number }) => r.status), [201, 400, 404]);
    assert.equal(out.responses[1].body.error.code, 'RequestBodyRead');
  });

  test('admin HTTP API', async () => {
    const dispatcher = new Agent({ connect: { ca: emu.caCertPem } });
    const call = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(`${emu.origin}/admin${p}`, { method, body: body ? JSON.stringify(body) : undefined, headers: { 'Content-Type': 'application/json' }, dispatcher });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };
    assert.equal((await call('POST', '/mailboxes', { upn: 'bob@contoso.test', displayName: 'Bob' })).status, 201);
    const c = await call('POST', '/mailboxes/bob@contoso.test/contacts', { folder: 'VContacts', givenName: 'Zed' });
    assert.equal(c.status, 201);
    assert.equal((await call('PATCH', `/mailboxes/bob@contoso.test/contacts/${c.body.id}`, { surname: 'Z' })).body.surname, 'Z');
    assert.equal((await call('GET', '/mailboxes/bob@contoso.test/contacts?folder=VContacts')).body.value.length, 1);
    assert.equal((await call('DELETE', `/mailboxes/bob@contoso.test/contacts/${c.body.id}`)).status, 204);
    assert.ok((await call('GET', '/mailboxes')).body.value.some((m: { upn: string }) => m.upn === 'bob@contoso.test'));
    assert.equal((await call('GET', '/mailboxes/nobody@x.test/contacts')).status, 404);
    await dispatcher.close();
  });
});

describe('Graph emulator: Outlook throttling limits', () => {
  test('more than the concurrent limit per mailbox answers 429 ApplicationThrottled', async () => {
    const emu = await startGraphEmulator({ port: 0, latencyMs: 150, throttle: { concurrentRequests: 2, requestsPer10Minutes: 0 } });
    try {
      emu.admin.ensureMailbox(UPN);
      const { client } = connect(emu);
      await client.api(`/users/${UPN}/contacts`).get(); // token first, so the four below really overlap
      const results = await Promise.allSettled([1, 2, 3, 4].map(() => client.api(`/users/${UPN}/contacts`).middlewareOptions(noRetry()).get()));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2);
      for (const r of results) {
        if (r.status === 'rejected') {
          assert.equal((r.reason as GraphError).statusCode, 429);
          assert.equal((r.reason as GraphError).code, 'ApplicationThrottled');
        }
      }
    } finally {
      await emu.close();
    }
  });

  test('more than the 10-minute request budget answers 429 with a Retry-After', async () => {
    const emu = await startGraphEmulator({ port: 0, throttle: { requestsPer10Minutes: 3 } });
    try {
      emu.admin.ensureMailbox(UPN);
      const { client } = connect(emu);
      for (let i = 0; i < 3; i++) await client.api(`/users/${UPN}/contacts`).get();
      const err = await graphError(client.api(`/users/${UPN}/contacts`).middlewareOptions(noRetry()).get());
      assert.equal(err.statusCode, 429);
      assert.ok(Number(err.headers?.get('retry-after')) > 500);
    } finally {
      await emu.close();
    }
  });
});

describe('Graph emulator: persistence', () => {
  test('contacts, certificate, tokens and deltaLinks survive a restart', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxsync-emu-'));
    try {
      let emu = await startGraphEmulator({ port: 0, dataDir });
      const port = Number(new URL(emu.origin).port);
      emu.admin.ensureMailbox(UPN);
      const conn = connect(emu);
      const created = await conn.client.api(`/users/${UPN}/contacts`).post({ givenName: 'Persisted' });
      const link = (await deltaRound(conn.client, `/users/${UPN}/contacts/delta`)).at(-1)!['@odata.deltaLink']!;
      const ca = emu.caCertPem;
      await emu.close();
      assert.ok(fs.existsSync(path.join(dataDir, 'state.json')));

      emu = await startGraphEmulator({ port, dataDir });
      try {
        assert.equal(emu.caCertPem, ca);
        assert.deepEqual(emu.admin.listContacts(UPN).map((c) => c.restId), [created.id]);
        emu.admin.updateContact(UPN, created.id, { surname: 'Again' });
        // Same settings → the cached connection and MSAL's cached token from before the restart.
        const round = await deltaRound(connect(emu).client, link);
        assert.deepEqual(round.flatMap((p) => p.value.map((c) => c.surname)), ['Again']);
      } finally {
        await emu.close();
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
