/**
 * Fingerprints of the synced fields of a record, computed on the common form both sides map to. Equal
 * fingerprints mean "nothing the sync cares about changed": the no-op filter in both directions.
 * FNV-1a 64-bit over canonical JSON: deterministic, dependency-free and usable inside workflow code.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function fingerprint(value: unknown): string {
  const text = canonicalJson(value);
  // 64-bit FNV-1a in two 32-bit halves (BigInt arithmetic per character made planning 100,000 items take
  // seconds). The prime is 2^40 + 0x1b3, so h * prime = h * 0x1b3 + (h << 40), carried from the low half.
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < text.length; i++) {
    lo = (lo ^ text.charCodeAt(i)) >>> 0;
    const t = lo * 0x1b3; // < 2^41: exact in a double
    hi = (Math.imul(hi, 0x1b3) + Math.floor(t / 0x100000000) + (lo << 8)) >>> 0;
    lo = t >>> 0;
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}
