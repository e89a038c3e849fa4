import { canonicalJson } from './fingerprint';

/**
 * The top-level properties of `next` whose value differs from `previous` (both bodies of the same kind, e.g.
 * two Graph contacts). An update built from it sends only what changed, so whatever else the item holds —
 * properties cxsync does not sync, or ones it syncs that nobody changed — stays as the user left it.
 */
export function changedProperties<T extends Record<string, unknown>>(next: T, previous: T): Partial<T> {
  return Object.fromEntries(Object.entries(next).filter(([k, v]) => canonicalJson(v) !== canonicalJson(previous[k]))) as Partial<T>;
}
