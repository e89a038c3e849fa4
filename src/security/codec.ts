/**
 * Payload encryption (Temporal's payload-codec pattern): every payload the worker and the CLI send to Temporal —
 * workflow and activity inputs and results, signals, queries, memos — is sealed with AES-256-GCM before it leaves
 * the process, so the Temporal server, its database and anyone reading histories see ciphertext. Each payload
 * names the id of the key that sealed it: keys rotate by adding a new id for encoding while older ids stay
 * configured to open what is still in histories (docs/DEPLOYMENT.md, "Payload encryption").
 *
 * Off when no key is configured: payloads then travel as plain JSON, which is what `npm start` uses.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, ValueError, type Payload, type PayloadCodec } from '@temporalio/common';
import { JSONToPayload, payloadToJSON } from '@temporalio/common/lib/proto-utils';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
export const CIPHER_METADATA = 'encryption-cipher';
const CIPHER = 'AES-256-GCM';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

export interface CodecKeys {
  keys: Map<string, Buffer>;
  /** The key new payloads are sealed with. */
  encodeKeyId: string;
}

const utf8 = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

/**
 * Parses CXSYNC_CODEC_KEYS ("id:base64key,id:base64key") and CXSYNC_CODEC_KEY_ID. Problems name the variable and
 * the key id, never the key material. Returns undefined with no problems when neither is set (encryption off).
 */
export function parseCodecKeys(keysText: string | undefined, keyId: string | undefined): { value?: CodecKeys; problems: { variable: string; message: string }[] } {
  const problems: { variable: string; message: string }[] = [];
  const bad = (variable: string, message: string) => problems.push({ variable, message });
  if (!keysText) {
    if (keyId) bad('CXSYNC_CODEC_KEY_ID', 'is set but CXSYNC_CODEC_KEYS is not: give the keys as id:base64key[,id:base64key…]');
    return { problems };
  }
  const keys = new Map<string, Buffer>();
  const entries = keysText.split(',').map((e) => e.trim()).filter((e) => e !== '');
  entries.forEach((entry, i) => {
    const colon = entry.indexOf(':');
    const id = colon > 0 ? entry.slice(0, colon) : '';
    const b64 = colon > 0 ? entry.slice(colon + 1).trim() : '';
    if (!id || !b64) return bad('CXSYNC_CODEC_KEYS', `entry ${i + 1} must be <key id>:<base64 key> (e.g. 2026-01:$(openssl rand -base64 32))`);
    if (!KEY_ID.test(id)) return bad('CXSYNC_CODEC_KEYS', `key id of entry ${i + 1} must be 1-64 letters, digits, '.', '_' or '-'`);
    if (keys.has(id)) return bad('CXSYNC_CODEC_KEYS', `key id ${id} appears twice`);
    const normalised = b64.replace(/-/g, '+').replace(/_/g, '/');
    const key = Buffer.from(normalised, 'base64');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(normalised) || key.toString('base64').replace(/=+$/, '') !== normalised.replace(/=+$/, '')) {
      return bad('CXSYNC_CODEC_KEYS', `key ${id} is not valid base64`);
    }
    if (key.length !== KEY_BYTES) return bad('CXSYNC_CODEC_KEYS', `key ${id} is ${key.length} bytes; AES-256-GCM needs ${KEY_BYTES} (openssl rand -base64 32)`);
    keys.set(id, key);
  });
  if (entries.length === 0) bad('CXSYNC_CODEC_KEYS', 'holds no key: give id:base64key[,id:base64key…], or leave it unset to turn encryption off');
  if (problems.length) return { problems };
  let encodeKeyId = keyId;
  if (!encodeKeyId) {
    if (keys.size > 1) return { problems: [{ variable: 'CXSYNC_CODEC_KEY_ID', message: `is required when CXSYNC_CODEC_KEYS holds more than one key: the id new payloads are encrypted with (one of ${[...keys.keys()].join(', ')})` }] };
    encodeKeyId = [...keys.keys()][0];
  } else if (!keys.has(encodeKeyId)) {
    return { problems: [{ variable: 'CXSYNC_CODEC_KEY_ID', message: `${encodeKeyId} is not among the keys of CXSYNC_CODEC_KEYS (${[...keys.keys()].join(', ')})` }] };
  }
  return { value: { keys, encodeKeyId }, problems };
}

export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(private readonly keys: CodecKeys) {}

  get encodeKeyId(): string {
    return this.keys.encodeKeyId;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const id = this.keys.encodeKeyId;
    const key = this.keys.keys.get(id)!;
    return payloads.map((payload) => {
      // The whole payload (its metadata too: the encoding names the type of value) is sealed, as Temporal's sample does.
      const plain = Buffer.from(JSON.stringify(payloadToJSON(payload)), 'utf8');
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      // The key id is authenticated too: a payload relabelled with another id fails to open instead of mis-decoding.
      cipher.setAAD(Buffer.from(id, 'utf8'));
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING),
          [KEY_ID_METADATA]: Buffer.from(id),
          [CIPHER_METADATA]: Buffer.from(CIPHER),
        },
        data: sealed,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      // Payloads written before encryption was turned on stay readable.
      if (utf8(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) return payload;
      const id = utf8(payload.metadata?.[KEY_ID_METADATA]);
      if (!id) throw new ValueError('an encrypted payload carries no encryption-key-id');
      const key = this.keys.keys.get(id);
      if (!key) throw new ValueError(`a payload is encrypted with key ${id}, which is not in CXSYNC_CODEC_KEYS (keep retired keys there while histories still hold their payloads)`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new ValueError(`an encrypted payload (key ${id}) is truncated`);
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(id, 'utf8'));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new ValueError(`a payload does not open with key ${id}: wrong key material for that id, or the payload was altered`);
      }
      return JSONToPayload(JSON.parse(plain.toString('utf8')));
    });
  }
}

/** The codec for a validated environment, or undefined when encryption is off. */
export function payloadCodec(env: { CXSYNC_CODEC_KEYS?: string; CXSYNC_CODEC_KEY_ID?: string }): AesGcmPayloadCodec | undefined {
  const { value, problems } = parseCodecKeys(env.CXSYNC_CODEC_KEYS, env.CXSYNC_CODEC_KEY_ID);
  // loadEnv has already reported these; reaching here with problems means an unvalidated environment.
  if (problems.length) throw new Error(problems.map((p) => `${p.variable} ${p.message}`).join('; '));
  return value ? new AesGcmPayloadCodec(value) : undefined;
}

/** The data converter for Client and Worker options: the codec when configured, the SDK's default otherwise. */
export function dataConverterFor(codec: PayloadCodec | undefined): { payloadCodecs: PayloadCodec[] } | undefined {
  return codec ? { payloadCodecs: [codec] } : undefined;
}
