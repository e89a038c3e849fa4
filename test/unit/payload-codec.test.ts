/**
 * Payload encryption (src/security/codec.ts): round trips through the SDK's data converter, rotation by key id,
 * tampering, configuration mistakes reported at start (src/config.ts), and the codec server's HTTP contract
 * (src/security/codec-server.ts) as the Temporal UI and CLI use it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { DefaultPayloadConverter, type Payload } from '@temporalio/common';
import { payloadToJSON } from '@temporalio/common/lib/proto-utils';
import { ConfigError, loadEnv } from '../../src/config';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING, parseCodecKeys, payloadCodec } from '../../src/security/codec';
import { createCodecServer, listen } from '../../src/security/codec-server';

const k1 = randomBytes(32).toString('base64');
const k2 = randomBytes(32).toString('base64');
const converter = new DefaultPayloadConverter();
const VALUE = { mailboxId: 'anna@contoso.com', subject: 'Renegotiate the Hallowmere lease' };

function problems(env: Record<string, string>): string[] {
  try {
    loadEnv(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('payload codec: AES-256-GCM with key ids', () => {
  it('encrypts the whole payload and decodes it back to the same value', async () => {
    const codec = payloadCodec({ CXSYNC_CODEC_KEYS: `2026-01:${k1}` })!;
    const [sealed] = await codec.encode([converter.toPayload(VALUE)]);
    assert.equal(Buffer.from(sealed.metadata!.encoding!).toString(), ENCRYPTED_ENCODING);
    assert.equal(Buffer.from(sealed.metadata!['encryption-key-id']!).toString(), '2026-01');
    const raw = Buffer.from(sealed.data!).toString('latin1');
    assert.ok(!raw.includes('Hallowmere') && !raw.includes('json/plain'), 'neither the value nor its original encoding is readable');
    const [opened] = await codec.decode([sealed]);
    assert.deepEqual(converter.fromPayload(opened), VALUE);
    // Random IVs: the same value never encrypts to the same bytes.
    const [again] = await codec.encode([converter.toPayload(VALUE)]);
    assert.notDeepEqual(Buffer.from(again.data!), Buffer.from(sealed.data!));
  });

  it('leaves payloads written before encryption was turned on as they are', async () => {
    const codec = payloadCodec({ CXSYNC_CODEC_KEYS: `a:${k1}` })!;
    const plain = converter.toPayload(VALUE);
    assert.deepEqual(await codec.decode([plain]), [plain]);
  });

  it('rotates by id: new payloads use CXSYNC_CODEC_KEY_ID, older ids still decode, a retired id is named', async () => {
    const old = payloadCodec({ CXSYNC_CODEC_KEYS: `old:${k1}` })!;
    const [fromOld] = await old.encode([converter.toPayload(VALUE)]);
    const rotated = payloadCodec({ CXSYNC_CODEC_KEYS: `old:${k1},new:${k2}`, CXSYNC_CODEC_KEY_ID: 'new' })!;
    const [fromNew] = await rotated.encode([converter.toPayload(VALUE)]);
    assert.equal(Buffer.from(fromNew.metadata!['encryption-key-id']!).toString(), 'new');
    assert.deepEqual((await rotated.decode([fromOld, fromNew])).map((p) => converter.fromPayload(p)), [VALUE, VALUE]);
    const onlyNew = payloadCodec({ CXSYNC_CODEC_KEYS: `new:${k2}` })!;
    await assert.rejects(onlyNew.decode([fromOld]), /encrypted with key old, which is not in CXSYNC_CODEC_KEYS/);
  });

  it('refuses altered data, another key under the same id, and a relabelled key id', async () => {
    const codec = payloadCodec({ CXSYNC_CODEC_KEYS: `a:${k1},b:${k2}`, CXSYNC_CODEC_KEY_ID: 'a' })!;
    const [sealed] = await codec.encode([converter.toPayload(VALUE)]);
    const flipped = Buffer.from(sealed.data!);
    flipped[20] ^= 1;
    await assert.rejects(codec.decode([{ ...sealed, data: flipped }]), /does not open with key a/);
    const wrong = payloadCodec({ CXSYNC_CODEC_KEYS: `a:${k2}` })!;
    await assert.rejects(wrong.decode([sealed]), /does not open with key a/);
    const relabelled: Payload = { ...sealed, metadata: { ...sealed.metadata, 'encryption-key-id': Buffer.from('b') } };
    await assert.rejects(codec.decode([relabelled]), /does not open with key b/);
  });
});

describe('payload codec: configuration checked at start', () => {
  it('is off with no keys, so npm start needs no configuration', () => {
    assert.equal(payloadCodec(loadEnv({})), undefined);
  });

  it('reports each mistake with the variable and without the key material', () => {
    const short = randomBytes(16).toString('base64');
    assert.deepEqual(problems({ CXSYNC_CODEC_KEYS: `a:${short}` }), ['CXSYNC_CODEC_KEYS key a is 16 bytes; AES-256-GCM needs 32 (openssl rand -base64 32)']);
    assert.deepEqual(problems({ CXSYNC_CODEC_KEYS: 'a:not*base64!' }), ['CXSYNC_CODEC_KEYS key a is not valid base64']);
    assert.deepEqual(problems({ CXSYNC_CODEC_KEYS: k1 }), ['CXSYNC_CODEC_KEYS entry 1 must be <key id>:<base64 key> (e.g. 2026-01:$(openssl rand -base64 32))']);
    assert.deepEqual(problems({ CXSYNC_CODEC_KEYS: `a:${k1},a:${k2}` }), ['CXSYNC_CODEC_KEYS key id a appears twice']);
    assert.deepEqual(problems({ CXSYNC_CODEC_KEYS: `a:${k1},b:${k2}` }), ['CXSYNC_CODEC_KEY_ID is required when CXSYNC_CODEC_KEYS holds more than one key: the id new payloads are encrypted with (one of a, b)']);
    assert.deepEqual(problems({ CXSYNC_CODEC_KEYS: `a:${k1}`, CXSYNC_CODEC_KEY_ID: 'c' }), ['CXSYNC_CODEC_KEY_ID c is not among the keys of CXSYNC_CODEC_KEYS (a)']);
    assert.deepEqual(problems({ CXSYNC_CODEC_KEY_ID: 'a' }), ['CXSYNC_CODEC_KEY_ID is set but CXSYNC_CODEC_KEYS is not: give the keys as id:base64key[,id:base64key…]']);
    assert.deepEqual(problems({ CXSYNC_CODEC_CORS_ORIGINS: 'http://localhost:8233/ui' }), ['CXSYNC_CODEC_CORS_ORIGINS http://localhost:8233/ui is not an origin (scheme://host[:port], no path), e.g. http://localhost:8233']);
    for (const p of problems({ CXSYNC_CODEC_KEYS: `a:${randomBytes(16).toString('base64')}` })) assert.ok(!p.includes(k1));
  });

  it('accepts base64url keys and a single key without a key id', () => {
    const url = randomBytes(32).toString('base64url');
    const r = parseCodecKeys(`k:${url}`, undefined);
    assert.deepEqual(r.problems, []);
    assert.equal(r.value?.encodeKeyId, 'k');
  });
});

describe('codec server: POST /decode and /encode for the Temporal UI and CLI', () => {
  const codec = new AesGcmPayloadCodec({ keys: new Map([['a', Buffer.from(k1, 'base64')]]), encodeKeyId: 'a' });
  let server: http.Server;
  let base: string;
  const TOKEN = 'a-long-enough-test-token';
  before(async () => {
    server = createCodecServer({ codec, corsOrigins: ['http://localhost:8233'], authToken: TOKEN });
    base = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const post = (path: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  it('decodes what the worker encoded, in Temporal JSON payload form', async () => {
    const sealed = await codec.encode([converter.toPayload(VALUE)]);
    const res = await post('/decode', { payloads: sealed.map((p) => payloadToJSON(p)) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    assert.equal(Buffer.from(body.payloads[0].metadata.encoding, 'base64').toString(), 'json/plain');
    assert.deepEqual(JSON.parse(Buffer.from(body.payloads[0].data, 'base64').toString()), VALUE);
  });

  it('encodes for the UI (signal inputs) and the result decodes', async () => {
    const res = await post('/encode', { payloads: [payloadToJSON(converter.toPayload(VALUE))] });
    const body = (await res.json()) as { payloads: unknown[] };
    assert.equal(Buffer.from((body.payloads[0] as { metadata: Record<string, string> }).metadata.encoding, 'base64').toString(), ENCRYPTED_ENCODING);
    const back = await post('/decode', body);
    const decoded = (await back.json()) as { payloads: { data: string }[] };
    assert.deepEqual(JSON.parse(Buffer.from(decoded.payloads[0].data, 'base64').toString()), VALUE);
  });

  it('answers the UI origin\'s preflight and names it in responses; other origins get no CORS grant', async () => {
    const pre = await fetch(`${base}/decode`, { method: 'OPTIONS', headers: { origin: 'http://localhost:8233', 'access-control-request-method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://localhost:8233');
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /x-namespace/);
    const other = await post('/decode', { payloads: [] }, { authorization: `Bearer ${TOKEN}`, origin: 'http://evil.example' });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });

  it('requires the bearer token when one is configured, and refuses malformed bodies', async () => {
    assert.equal((await post('/decode', { payloads: [] }, {})).status, 401);
    assert.equal((await post('/decode', { payloads: [] }, { authorization: 'Bearer wrong-token-of-some-length' })).status, 401);
    assert.equal((await post('/decode', { nope: 1 })).status, 400);
    assert.equal((await post('/nothing', { payloads: [] })).status, 404);
  });
});
