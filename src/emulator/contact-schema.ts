/** microsoft.graph.contact as Graph validates and renders it. */
import { badRequest, GraphHttpError } from './errors';
import type { ExtendedProperty, StoredItem } from './store';
import { selectAndExpand } from './query';

const STRING_FIELDS = [
  'birthday', 'fileAs', 'displayName', 'givenName', 'initials', 'middleName', 'nickName', 'surname', 'title',
  'yomiGivenName', 'yomiSurname', 'yomiCompanyName', 'generation', 'jobTitle', 'companyName', 'department',
  'officeLocation', 'profession', 'businessHomePage', 'assistantName', 'manager', 'mobilePhone', 'spouseName', 'personalNotes',
];
const STRING_ARRAY_FIELDS = ['categories', 'imAddresses', 'homePhones', 'businessPhones', 'children'];
const ADDRESS_FIELDS = ['homeAddress', 'businessAddress', 'otherAddress'];
const ADDRESS_KEYS = new Set(['street', 'city', 'state', 'countryOrRegion', 'postalCode']);
/** Accepted in a body and ignored, as Graph does for server-owned properties. */
const READ_ONLY = new Set(['id', 'changeKey', 'createdDateTime', 'lastModifiedDateTime', 'parentFolderId', '@odata.type', '@odata.etag', '@odata.context']);
const NAVIGATION = new Set(['singleValueExtendedProperties', 'multiValueExtendedProperties', 'photo', 'extensions']);

/** Graph's property order, so responses read like the real thing. */
const DEFAULTS: Array<[string, unknown]> = [
  ['categories', []], ['birthday', null], ['fileAs', ''], ['displayName', ''], ['givenName', null], ['initials', null],
  ['middleName', null], ['nickName', null], ['surname', null], ['title', null], ['yomiGivenName', null], ['yomiSurname', null],
  ['yomiCompanyName', null], ['generation', null], ['imAddresses', []], ['jobTitle', null], ['companyName', null],
  ['department', null], ['officeLocation', null], ['profession', null], ['businessHomePage', null], ['assistantName', null],
  ['manager', null], ['homePhones', []], ['mobilePhone', null], ['businessPhones', []], ['spouseName', null],
  ['personalNotes', ''], ['children', []], ['emailAddresses', []], ['homeAddress', {}], ['businessAddress', {}], ['otherAddress', {}],
];

const unknownProperty = (name: string, type = 'microsoft.graph.contact') =>
  badRequest(
    'RequestBodyRead',
    `The property '${name}' does not exist on type '${type}'. Make sure to only use property names that are defined by the type or mark the type as open type.`,
  );
const badValue = (name: string, expected: string) =>
  badRequest('RequestBodyRead', `Cannot convert the literal for property '${name}' to the expected type '${expected}'.`);

export interface ContactWrite {
  fields: Record<string, unknown>;
  ext: ExtendedProperty[];
}

export function parseContactBody(body: unknown): ContactWrite {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('RequestBodyRead', 'A supported MIME type could not be found that matches the content type of the response.');
  }
  const fields: Record<string, unknown> = {};
  let ext: ExtendedProperty[] = [];
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (READ_ONLY.has(k)) continue;
    if (STRING_FIELDS.includes(k)) {
      if (v !== null && typeof v !== 'string') throw badValue(k, 'Edm.String');
      fields[k] = v;
    } else if (STRING_ARRAY_FIELDS.includes(k)) {
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw badValue(k, 'Collection(Edm.String)');
      fields[k] = [...v];
    } else if (ADDRESS_FIELDS.includes(k)) {
      if (v === null) {
        fields[k] = {};
        continue;
      }
      if (typeof v !== 'object' || Array.isArray(v)) throw badValue(k, 'microsoft.graph.physicalAddress');
      for (const [ak, av] of Object.entries(v as Record<string, unknown>)) {
        if (!ADDRESS_KEYS.has(ak)) throw unknownProperty(ak, 'microsoft.graph.physicalAddress');
        if (av !== null && typeof av !== 'string') throw badValue(ak, 'Edm.String');
      }
      fields[k] = { ...(v as object) };
    } else if (k === 'emailAddresses') {
      if (!Array.isArray(v)) throw badValue(k, 'Collection(microsoft.graph.emailAddress)');
      fields[k] = v.map((e: unknown) => {
        if (!e || typeof e !== 'object') throw badValue(k, 'microsoft.graph.emailAddress');
        for (const ek of Object.keys(e)) if (ek !== 'address' && ek !== 'name') throw unknownProperty(ek, 'microsoft.graph.emailAddress');
        const { address, name } = e as { address?: unknown; name?: unknown };
        if ((address != null && typeof address !== 'string') || (name != null && typeof name !== 'string')) throw badValue(k, 'Edm.String');
        // Exchange fills in the display name of an address from the address itself.
        return { name: (name as string | undefined) ?? (address as string | undefined) ?? null, address: (address as string | undefined) ?? null };
      });
    } else if (k === 'singleValueExtendedProperties') {
      ext = parseExtendedProperties(v);
    } else if (NAVIGATION.has(k)) {
      throw badRequest('ErrorInvalidRequest', `Setting '${k}' is not supported by this emulator.`);
    } else {
      throw unknownProperty(k);
    }
  }
  return { fields, ext };
}

function parseExtendedProperties(v: unknown): ExtendedProperty[] {
  if (!Array.isArray(v)) throw badValue('singleValueExtendedProperties', 'Collection(microsoft.graph.singleValueLegacyExtendedProperty)');
  return v.map((p: unknown) => {
    const { id, value } = (p ?? {}) as { id?: unknown; value?: unknown };
    if (typeof id !== 'string' || !/^(String|Integer|Boolean|SystemTime|Guid|Long|Double) (\{[0-9a-f-]{36}\} (Name|Id) .+|0x[0-9a-f]+)$/i.test(id)) {
      throw new GraphHttpError(400, 'ErrorInvalidExtendedPropertyValue', `The extended property id '${String(id)}' is not valid.`);
    }
    if (typeof value !== 'string') throw badValue('value', 'Edm.String');
    return { id, value };
  });
}

/** Exchange derives a display name when the client gives none. */
export function withDerivedDisplayName(fields: Record<string, unknown>): Record<string, unknown> {
  if (typeof fields.displayName === 'string' && fields.displayName) return fields;
  const parts = [fields.givenName, fields.middleName, fields.surname].filter((x) => typeof x === 'string' && x);
  const derived = parts.length ? parts.join(' ') : ((fields.emailAddresses as Array<{ address?: string }> | undefined)?.[0]?.address ?? '');
  return { ...fields, displayName: derived };
}

export interface RenderOptions {
  select?: string[];
  /** Lower-cased extended property ids requested by $expand; `'*'` = all of them. */
  expandExt?: string[] | '*';
  /** Which id to show: the immutable one (`Prefer: IdType="ImmutableId"`) or the default one (the default). */
  immutableId?: boolean;
  /**
   * Delta rounds only: render just the properties written after this sequence number (plus id, etag, changeKey
   * and lastModifiedDateTime), as Graph may do for an updated item in an incremental round.
   */
  changedSince?: number;
}

/** The server-owned properties an incremental delta item always carries. */
const ALWAYS = new Set(['@odata.etag', 'id', 'changeKey', 'lastModifiedDateTime']);

export function renderContact(item: StoredItem, opts: RenderOptions = {}): Record<string, unknown> {
  const full: Record<string, unknown> = {
    '@odata.etag': `W/"${item.changeKey}"`,
    id: opts.immutableId ? item.id : item.restId,
    createdDateTime: item.createdDateTime,
    lastModifiedDateTime: item.lastModifiedDateTime,
    changeKey: item.changeKey,
    parentFolderId: item.folderId,
  };
  for (const [k, d] of DEFAULTS) full[k] = k in item.fields ? item.fields[k] : d;
  for (const [k, v] of Object.entries(item.fields)) if (!(k in full)) full[k] = v;
  let out = full;
  if (opts.changedSince !== undefined) {
    const since = opts.changedSince;
    out = Object.fromEntries(Object.entries(full).filter(([k]) => ALWAYS.has(k) || (item.fieldSeq[k] ?? 0) > since));
  }
  return selectAndExpand(full, out, item.ext, opts);
}

export function validateSelect(select: string[]): void {
  const known = new Set(['id', 'changeKey', 'createdDateTime', 'lastModifiedDateTime', 'parentFolderId', ...DEFAULTS.map(([k]) => k)]);
  for (const s of select) {
    if (!known.has(s)) throw badRequest('RequestBroker--ParseUri', `Could not find a property named '${s}' on type 'microsoft.graph.contact'.`);
  }
}
