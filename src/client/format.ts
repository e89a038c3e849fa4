/** Human-readable renderings for the CLI. */

const KEY_FIELDS = ['firstName', 'lastName', 'email', 'company', 'jobTitle', 'phone', 'mobile', 'subject', 'start', 'end', 'status'];

function text(v: unknown): string {
  if (v === undefined || v === null || v === '') return '-';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  const one = s.replace(/\s+/g, ' ');
  return one.length > 36 ? `${one.slice(0, 35)}…` : one;
}

/**
 * A conflict as a small table: both versions' fields side by side (key fields first, then any other field that
 * differs), a '*' marking the fields that differ, then the rule applied and the outcome.
 */
export function formatConflict(r: {
  at: Date;
  record_type: string;
  crm_id: string;
  exchange_id: string;
  rule: string;
  outcome: string;
  crm_version: Record<string, unknown> | null;
  exchange_version: Record<string, unknown> | null;
}): string {
  const c = r.crm_version ?? {};
  const e = r.exchange_version ?? {};
  const all = [...new Set([...Object.keys(c), ...Object.keys(e)])];
  const differs = (k: string) => JSON.stringify(c[k] ?? null) !== JSON.stringify(e[k] ?? null);
  const fields = [...KEY_FIELDS.filter((k) => all.includes(k)), ...all.filter((k) => !KEY_FIELDS.includes(k) && differs(k)).sort()];
  const w = Math.max(8, ...fields.map((f) => f.length));
  const lines = [
    `${r.at.toISOString()}  ${r.record_type}  CRM ${r.crm_id}  ⇄  Exchange ${r.exchange_id}`,
    `  rule:    ${r.rule}`,
    `  outcome: ${r.outcome}`,
    `    ${'field'.padEnd(w)}  ${'CRM'.padEnd(36)}  Exchange`,
  ];
  if (!r.crm_version) lines.push('    (CRM version: deleted or not available)');
  if (!r.exchange_version) lines.push('    (Exchange version: deleted or not available)');
  for (const f of fields) lines.push(`  ${differs(f) ? '*' : ' '} ${f.padEnd(w)}  ${text(c[f]).padEnd(36)}  ${text(e[f])}`);
  return lines.join('\n');
}
