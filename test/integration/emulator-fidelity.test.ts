/**
 * The emulator behaves like Microsoft Graph where cxsync depends on it (issue 3), each assertion after the
 * documented behaviour: delta paging and tokens (delta-query-overview.md, contact-delta.md), throttling
 * (throttling-limits.md), JSON batching (json-batching.md), change keys and If-Match, immutable ids
 * (outlook-immutable-id.md), extended properties and master categories (outlookuser-post-mastercategories.md).
 * Exercised through the production client (@microsoft/microsoft-graph-client + MSAL over HTTPS).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Client } from '@microsoft/microsoft-graph-client';
import { type GraphConnection } from '../../src/activities/exchange/graph-client';
import { startGraphEmulator, type GraphEmulator } from '../../src/emulator';
import { connect, raw, graphError } from '../helpers/emulator-client';

const UPN = 'fidelity@contoso.test';
const IMMUTABLE = 'IdType="ImmutableId"';

type Page = { value: Array<Record<string, any>>; '@odata.nextLink'?: string; '@odata.deltaLink'?: string };

async function round(client: Client, start: string, pageSize?: number): Promise<Page[]> {
  const pages: Page[] = [];
  let url: string | undefined = start;
  while (url) {
    const page = (await client.api(url).header('Prefer', `${pageSize ? `odata.maxpagesize=${pageSize}, ` : ''}${IMMUTABLE}`).get()) as Page;
    pages.push(page);
    url = page['@odata.nextLink'];
  }
  return pages;
}

describe('Graph emulator fidelity', () => {
  let emu: GraphEmulator;
  let conn: GraphConnection;
  let client: Client;
  let folderSeq = 0;
  const newFolder = async () => {
    const f = await client.api(`/users/${UPN}/contactFolders`).post({ displayName: `F${++folderSeq}` });
    return { id: f.id as string, name: f.displayName as string, base: `/users/${UPN}/contactFolders/${f.id}/contacts` };
  };

  before(async () => {
    emu = await startGraphEmulator({ port: 0, maxTokenGenerations: 2 });
    emu.admin.ensureMailbox(UPN, 'Fidelity');
    conn = connect(emu);
    client = conn.client;
  });
  after(() => emu.close());

  test('delta paging: absolute https links, page size from Prefer, deltaLink only on the last page, the query kept in the token', async () => {
    const f = await newFolder();
    for (let i = 0; i < 5; i++) emu.admin.createContact(UPN, f.name, { givenName: `P${i}`, surname: 'Paged' });
    const first = await raw(emu, conn, `${f.base}/delta?$select=givenName`, { headers: { Prefer: `odata.maxpagesize=2, ${IMMUTABLE}` } });
    assert.equal(first.status, 200);
    assert.match(first.headers.get('preference-applied') ?? '', /odata\.maxpagesize=2/);
    const pages: Page[] = [first.body as Page];
    let next = first.body!['@odata.nextLink'] as string | undefined;
    while (next) {
      // Later requests name no $select: the token carries the original query.
      const p = (await client.api(next).header('Prefer', `odata.maxpagesize=2, ${IMMUTABLE}`).get()) as Page;
      pages.push(p);
      next = p['@odata.nextLink'];
    }
    assert.deepEqual(pages.map((p) => p.value.length), [2, 2, 1]);
    for (const p of pages.slice(0, -1)) {
      assert.match(p['@odata.nextLink']!, new RegExp(`^https://localhost:\\d+/v1\\.0${f.base}/delta\\?\\$skiptoken=`));
      assert.equal(p['@odata.deltaLink'], undefined);
    }
    assert.match(pages.at(-1)!['@odata.deltaLink']!, /^https:\/\/localhost:\d+\/v1\.0\/.*\$deltatoken=/);
    for (const c of pages.flatMap((p) => p.value)) assert.deepEqual(Object.keys(c).sort(), ['@odata.etag', 'givenName', 'id']);
    // Tokens are opaque strings, not ids or counters the client could compute.
    assert.doesNotMatch(pages.at(-1)!['@odata.deltaLink']!.split('deltatoken=')[1], /^\d+$/);
  });

  test('delta quirks: an empty page may carry a nextLink; an item may appear twice in a round; an update may carry only changed fields', async () => {
    const f = await newFolder();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(emu.admin.createContact(UPN, f.name, { givenName: `Q${i}`, surname: 'Quirk', jobTitle: 'Before' }).id);
    emu.admin.setDeltaQuirks(UPN, { emptyPages: true, repeatItems: true, partialUpdates: true });
    try {
      const r1 = await round(client, `${f.base}/delta`, 2);
      assert.equal(r1[0].value.length, 0, 'the first page is empty');
      assert.ok(r1[0]['@odata.nextLink'], 'and carries a nextLink');
      const sent = r1.flatMap((p) => p.value.map((c) => c.id as string));
      assert.ok(sent.length > ids.length, `an item is repeated: ${sent.length} entries for ${ids.length} items`);
      assert.deepEqual([...new Set(sent)].sort(), [...ids].sort());

      emu.admin.updateContact(UPN, ids[0], { jobTitle: 'After' });
      const r2 = await round(client, r1.at(-1)!['@odata.deltaLink']!, 10);
      const changed = r2.flatMap((p) => p.value).find((c) => c.id === ids[0])!;
      assert.equal(changed.jobTitle, 'After');
      assert.equal(changed.givenName, undefined, 'unchanged properties left out');
      assert.ok(changed.changeKey && changed['@odata.etag']);
    } finally {
      emu.admin.setDeltaQuirks(UPN, {});
    }
  });

  test('delta removal shape, and 410 SyncStateNotFound for an evicted deltaLink and for an old nextLink', async () => {
    const f = await newFolder();
    const a = emu.admin.createContact(UPN, f.name, { givenName: 'Gone' });
    emu.admin.createContact(UPN, f.name, { givenName: 'Stays' });
    const r1 = await round(client, `${f.base}/delta`, 1);
    const nextLink = r1[0]['@odata.nextLink']!;
    emu.admin.deleteContact(UPN, a.id);
    const r2 = await round(client, r1.at(-1)!['@odata.deltaLink']!);
    assert.deepEqual(r2.flatMap((p) => p.value), [{ '@odata.type': '#microsoft.graph.contact', id: a.id, '@removed': { reason: 'deleted' } }]);
    // maxTokenGenerations = 2: two more rounds evict the first one, its nextLink included.
    let link = r2.at(-1)!['@odata.deltaLink']!;
    for (let i = 0; i < 2; i++) link = (await round(client, link)).at(-1)!['@odata.deltaLink']!;
    const old = await raw(emu, conn, nextLink, { headers: { Prefer: IMMUTABLE } });
    assert.equal(old.status, 410);
    assert.equal(old.body!.error.code, 'SyncStateNotFound');
    assert.ok(old.body!.error.innerError['request-id'] && old.body!.error.innerError.date, 'Graph error shape');
    emu.admin.expireDeltaTokens(UPN);
    assert.equal((await graphError(client.api(link).get())).code, 'SyncStateNotFound');
  });

  test('@odata.etag is W/"changeKey"; If-Match with a stale key answers 412 ErrorIrresolvableConflict, for PATCH and DELETE', async () => {
    const c = await client.api(`/users/${UPN}/contacts`).header('Prefer', IMMUTABLE).post({ givenName: 'Etag' });
    assert.equal(c['@odata.etag'], `W/"${c.changeKey}"`);
    const url = `/users/${UPN}/contacts/${c.id}`;
    const ok = await raw(emu, conn, url, { method: 'PATCH', headers: { 'If-Match': c['@odata.etag'] }, body: { surname: 'One' } });
    assert.equal(ok.status, 200);
    assert.notEqual(ok.body!.changeKey, c.changeKey, 'a new changeKey on every write');
    const stale = await raw(emu, conn, url, { method: 'PATCH', headers: { 'If-Match': c['@odata.etag'] }, body: { surname: 'Two' } });
    assert.equal(stale.status, 412);
    assert.equal(stale.body!.error.code, 'ErrorIrresolvableConflict');
    assert.equal((await client.api(url).get()).surname, 'One', 'the refused write changed nothing');
    const staleDelete = await raw(emu, conn, url, { method: 'DELETE', headers: { 'If-Match': `W/"${c.changeKey}"` } });
    assert.equal(staleDelete.status, 412);
    assert.equal((await raw(emu, conn, url, { method: 'DELETE', headers: { 'If-Match': ok.body!['@odata.etag'] } })).status, 204);
  });

  test('Prefer IdType="ImmutableId": the immutable id survives a move, the default id changes and the old one is not found', async () => {
    const f1 = await newFolder();
    const f2 = await newFolder();
    const created = await raw(emu, conn, `${f1.base}`, { method: 'POST', headers: { Prefer: IMMUTABLE }, body: { givenName: 'Mover' } });
    assert.match(created.headers.get('preference-applied') ?? '', /IdType="ImmutableId"/);
    const immutableId = created.body!.id as string;
    const defaultId = (await client.api(`/users/${UPN}/contacts/${immutableId}`).get()).id as string;
    assert.notEqual(defaultId, immutableId, 'two id formats');
    const before = (await round(client, `${f1.base}/delta`)).at(-1)!['@odata.deltaLink']!;
    emu.admin.updateContact(UPN, immutableId, { folder: f2.name });
    const byImmutable = await client.api(`/users/${UPN}/contacts/${immutableId}`).header('Prefer', IMMUTABLE).get();
    assert.equal(byImmutable.id, immutableId);
    assert.equal(byImmutable.parentFolderId, f2.id);
    const newDefault = (await client.api(`/users/${UPN}/contacts/${immutableId}`).get()).id as string;
    assert.notEqual(newDefault, defaultId, 'a move gives a new default id');
    assert.equal((await graphError(client.api(`/users/${UPN}/contacts/${defaultId}`).get())).statusCode, 404);
    // The old folder's next round reports the item as removed, under the id format asked for.
    const removed = (await round(client, before)).flatMap((p) => p.value);
    assert.deepEqual(removed, [{ '@odata.type': '#microsoft.graph.contact', id: immutableId, '@removed': { reason: 'deleted' } }]);
  });

  test('extended properties on create, $filter with any() and $expand', async () => {
    const prop = 'String {66f5a359-4659-4830-9070-00047ec6ac6e} Name marker';
    const c = await client.api(`/users/${UPN}/contacts`).header('Prefer', IMMUTABLE).post({ givenName: 'Marked', singleValueExtendedProperties: [{ id: prop, value: 'm-1' }] });
    const found = await client
      .api(`/users/${UPN}/contacts`)
      .header('Prefer', IMMUTABLE)
      .filter(`singleValueExtendedProperties/any(ep: ep/id eq '${prop}' and ep/value eq 'm-1')`)
      .expand(`singleValueExtendedProperties($filter=id eq '${prop}')`)
      .get();
    assert.deepEqual(found.value.map((x: { id: string }) => x.id), [c.id]);
    assert.deepEqual(found.value[0].singleValueExtendedProperties, [{ id: prop, value: 'm-1' }]);
  });

  test('master categories: unique names, colours preset0..preset24, the name fixed once created', async () => {
    const base = `/users/${UPN}/outlook/masterCategories`;
    const c = await client.api(base).post({ displayName: 'CRM', color: 'preset9' });
    assert.equal(c.color, 'preset9');
    assert.ok(c.id);
    const dup = await graphError(client.api(base).post({ displayName: 'crm', color: 'preset1' }));
    assert.equal(dup.statusCode, 409);
    assert.equal((await graphError(client.api(base).post({ displayName: 'Bad', color: 'preset25' }))).statusCode, 400);
    assert.equal((await graphError(client.api(base).post({ displayName: 'Bad', color: 'red' }))).statusCode, 400);
    assert.equal((await client.api(`${base}/${c.id}`).patch({ color: 'preset24' })).color, 'preset24');
    assert.equal((await graphError(client.api(`${base}/${c.id}`).patch({ displayName: 'Renamed' }))).statusCode, 400);
    assert.deepEqual((await client.api(base).get()).value.map((x: { displayName: string; color: string }) => [x.displayName, x.color]), [['CRM', 'preset24']]);
    assert.deepEqual(emu.admin.listCategories(UPN).map((x) => x.displayName), ['CRM']);
    await client.api(`${base}/${c.id}`).delete();
    assert.deepEqual((await client.api(base).get()).value, []);
  });

  test('$batch: at most 20 requests, unique ids, outer 200 with a status per request, dependsOn with 424', async () => {
    const req = (id: string, extra: Record<string, unknown> = {}) => ({ id, method: 'GET', url: `/users/${UPN}/contacts?$top=1`, ...extra });
    const tooMany = await raw(emu, conn, '/$batch', { method: 'POST', body: { requests: Array.from({ length: 21 }, (_, i) => req(String(i))) } });
    assert.equal(tooMany.status, 400);
    assert.equal((await raw(emu, conn, '/$batch', { method: 'POST', body: { requests: [req('1'), req('1')] } })).status, 400);
    const out = await raw(emu, conn, '/$batch', {
      method: 'POST',
      body: {
        requests: [
          { id: 'a', method: 'GET', url: `/users/${UPN}/contacts/does-not-exist` },
          { id: 'b', method: 'POST', url: `/users/${UPN}/contacts`, dependsOn: ['a'], headers: { 'Content-Type': 'application/json' }, body: { givenName: 'Never' } },
          { id: 'c', method: 'POST', url: `/users/${UPN}/contacts`, headers: { 'Content-Type': 'application/json' }, body: { givenName: 'Batched' } },
        ],
      },
    });
    assert.equal(out.status, 200);
    const status = Object.fromEntries((out.body!.responses as Array<{ id: string; status: number }>).map((r) => [r.id, r.status]));
    assert.deepEqual(status, { a: 404, b: 424, c: 201 });
    assert.equal(emu.admin.listContacts(UPN).filter((x) => x.givenName === 'Never').length, 0, 'a dependent of a failed request does not run');
  });

  test('$batch runs up to 4 operations at a time, each in one of the mailbox\'s 4 slots; a 429 inside comes with Retry-After', async () => {
    const slow = await startGraphEmulator({ port: 0, latencyMs: 150, throttle: { concurrentRequests: 4, requestsPer10Minutes: 0 } });
    try {
      slow.admin.ensureMailbox(UPN);
      const sc = connect(slow);
      const reqs = (n: number, chain: boolean) =>
        Array.from({ length: n }, (_, i) => ({ id: String(i + 1), method: 'GET', url: `/users/${UPN}/contacts?$top=1`, ...(chain && i > 0 ? { dependsOn: [String(i)] } : {}) }));
      await raw(slow, sc, `/users/${UPN}/contacts`); // token
      let t = Date.now();
      await raw(slow, sc, '/$batch', { method: 'POST', body: { requests: reqs(8, false) } });
      const parallel = Date.now() - t;
      t = Date.now();
      await raw(slow, sc, '/$batch', { method: 'POST', body: { requests: reqs(4, true) } });
      const sequential = Date.now() - t;
      assert.ok(parallel < 8 * 150 * 0.6, `8 operations ran 4 at a time (${parallel} ms)`);
      assert.ok(parallel >= 2 * 150 * 0.9, `… but not more than 4 at a time (${parallel} ms)`);
      assert.ok(sequential >= 4 * 150 * 0.9, `dependsOn runs them one after another (${sequential} ms)`);
      // Two plain requests in flight leave 2 slots: a batch of 4 meets 429 MailboxConcurrency inside its 200.
      const busy = [raw(slow, sc, `/users/${UPN}/contacts`), raw(slow, sc, `/users/${UPN}/contacts`)];
      await new Promise((r) => setTimeout(r, 30));
      const out = await raw(slow, sc, '/$batch', { method: 'POST', body: { requests: reqs(4, false) } });
      await Promise.all(busy);
      assert.equal(out.status, 200);
      const throttled = (out.body!.responses as Array<{ status: number; headers: Record<string, string>; body: any }>).filter((r) => r.status === 429);
      assert.ok(throttled.length >= 1, 'some operations were over the limit');
      for (const r of throttled) {
        assert.equal(r.body.error.code, 'ApplicationThrottled');
        assert.ok(Number(r.headers['Retry-After']) >= 1);
      }
      assert.ok(slow.throttledCount(UPN) >= throttled.length);
    } finally {
      await slow.close();
    }
  });

  test('chaos: a seeded share of 429/503/504 answers (TooManyRequests body, Retry-After) and random latency, per mailbox', async () => {
    const other = 'calm@contoso.test';
    emu.admin.ensureMailbox(other);
    emu.admin.setChaos(UPN, { rate: 0.3, seed: 7 });
    emu.admin.setLatency(UPN, 5, 20);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 60; i++) {
        const r = await raw(emu, conn, `/users/${UPN}/contacts?$top=1`);
        statuses.push(r.status);
        if (r.status === 429) {
          assert.equal(r.body!.error.code, 'TooManyRequests');
          assert.ok(r.headers.get('retry-after'));
        }
      }
      const failed = statuses.filter((s) => s !== 200);
      assert.ok(failed.length >= 8 && failed.length <= 30, `about 30 % failed: ${failed.length}/60`);
      assert.deepEqual([...new Set(failed)].sort(), [429, 503, 504]);
      for (let i = 0; i < 10; i++) assert.equal((await raw(emu, conn, `/users/${other}/contacts?$top=1`)).status, 200, 'other mailboxes are unaffected');
    } finally {
      emu.admin.clearFaults(UPN);
    }
    assert.equal((await raw(emu, conn, `/users/${UPN}/contacts?$top=1`)).status, 200);
  });
});
