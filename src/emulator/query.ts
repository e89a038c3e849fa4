/** The slice of OData query syntax cxsync and its tests use; anything else is refused the way Graph refuses it. */
import { badRequest } from './errors';
import type { StoredItem } from './store';
import type { ExtendedProperty } from './store';

const LITERAL = `'((?:[^']|'')*)'`;
const unquote = (s: string) => s.replace(/''/g, "'");

export type ItemFilter = (item: { fields: Record<string, unknown>; ext: StoredItem['ext'] }) => boolean;

const invalidFilter = (f: string) => badRequest('ErrorInvalidUrlQueryFilter', `The query filter '${f}' is not supported.`);

export function parseItemFilter(filter: string | null): ItemFilter | undefined {
  if (filter == null || filter.trim() === '') return undefined;
  const f = filter.trim();
  let m = new RegExp(`^(\\w+) eq ${LITERAL}$`, 'i').exec(f);
  if (m) {
    const [, field, value] = m;
    const want = unquote(value).toLowerCase();
    return (item) => String(item.fields[field] ?? '').toLowerCase() === want;
  }
  // singleValueExtendedProperties/any(ep: ep/id eq '...' and ep/value eq '...')
  m = new RegExp(`^singleValueExtendedProperties/any\\((\\w+):\\s*\\1/id eq ${LITERAL}\\s+and\\s+\\1/value eq ${LITERAL}\\)$`, 'i').exec(f);
  if (m) {
    const id = unquote(m[2]).toLowerCase();
    const value = unquote(m[3]);
    return (item) => item.ext[id]?.value === value;
  }
  m = new RegExp(`^emailAddresses/any\\((\\w+):\\s*\\1/address eq ${LITERAL}\\)$`, 'i').exec(f);
  if (m) {
    const address = unquote(m[2]).toLowerCase();
    return (item) => ((item.fields.emailAddresses as Array<{ address?: string | null }> | undefined) ?? []).some((e) => e.address?.toLowerCase() === address);
  }
  m = new RegExp(`^categories/any\\((\\w+):\\s*\\1 eq ${LITERAL}\\)$`, 'i').exec(f);
  if (m) {
    const cat = unquote(m[2]).toLowerCase();
    return (item) => ((item.fields.categories as string[] | undefined) ?? []).some((c) => c.toLowerCase() === cat);
  }
  throw invalidFilter(f);
}

export function parseSelect(select: string | null): string[] | undefined {
  if (!select) return undefined;
  return select.split(',').map((s) => s.trim()).filter(Boolean);
}

/** `$expand=singleValueExtendedProperties($filter=id eq '...' [or id eq '...'])` → the lower-cased ids. */
export function parseExpand(expand: string | null): string[] | '*' | undefined {
  if (!expand) return undefined;
  const m = /^singleValueExtendedProperties(?:\((.*)\))?$/i.exec(expand.trim());
  if (!m) throw badRequest('BadRequest', `Parsing OData Select and Expand failed: Could not find a property named '${expand}'.`);
  if (!m[1]) return '*';
  const ids = [...m[1].matchAll(new RegExp(`id eq ${LITERAL}`, 'gi'))].map((x) => unquote(x[1]).toLowerCase());
  if (!ids.length) throw badRequest('BadRequest', `Unsupported $expand option '${m[1]}'.`);
  return ids;
}

export function parseTop(top: string | null, max: number): number | undefined {
  if (top == null) return undefined;
  const n = Number(top);
  if (!Number.isInteger(n) || n < 0) throw badRequest('BadRequest', `Invalid value '${top}' for $top query option found.`);
  return Math.min(n, max);
}

/** `Prefer: odata.maxpagesize=50, IdType="ImmutableId"` → { maxPageSize: 50, immutableId: true }. */
export function parsePrefer(header: string | string[] | undefined): { maxPageSize?: number; immutableId: boolean } {
  const raw = Array.isArray(header) ? header.join(',') : (header ?? '');
  const m = /odata\.maxpagesize\s*=\s*(\d+)/i.exec(raw);
  return { maxPageSize: m ? Math.max(1, Number(m[1])) : undefined, immutableId: /IdType\s*=\s*"?ImmutableId"?/i.test(raw) };
}

/**
 * `$select` (the etag and id always kept) and `$expand` of singleValueExtendedProperties, applied to a rendered
 * item; `base` is what the select picks from (the full item, or a delta item's changed properties).
 */
export function selectAndExpand(
  full: Record<string, unknown>,
  base: Record<string, unknown>,
  ext: Record<string, ExtendedProperty>,
  opts: { select?: string[]; expandExt?: string[] | '*' },
): Record<string, unknown> {
  let out = base;
  if (opts.select) {
    out = { '@odata.etag': full['@odata.etag'], id: full.id };
    for (const s of opts.select) if (s in base) out[s] = base[s];
  }
  if (opts.expandExt) {
    const wanted = opts.expandExt;
    const props = Object.entries(ext)
      .filter(([k]) => wanted === '*' || wanted.includes(k))
      .map(([, p]) => ({ id: p.id, value: p.value }));
    if (props.length) out.singleValueExtendedProperties = props;
  }
  return out;
}
