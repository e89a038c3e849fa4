/**
 * Which CRM record an email address belongs to (issue 10, filing): address and domain normalisation, the
 * resolution order among several matching records, and the fields of a record created from a sender. Pure: the
 * PostgreSQL side (src/activities/crm/postgres-crm-email.ts) finds the candidates and applies these rules.
 */
import { domainToASCII } from 'node:url';

export type EmailRecordType = 'contact' | 'lead' | 'account';

/** Contact before lead before account: the person the mail is from before a prospect, a prospect before a company. */
export const RECORD_PRECEDENCE: readonly EmailRecordType[] = ['contact', 'lead', 'account'];

/**
 * An address as the CRM compares it: trimmed, without a `mailto:` prefix or angle brackets, lower-cased (the
 * built-in CRM compares addresses case-insensitively, as Exchange does), the domain in its ASCII (punycode) form.
 * Null for anything that is not `local@domain` with a dotted or single-label domain and no spaces.
 */
export function normaliseAddress(raw: string | null | undefined): string | null {
  if (!raw) return null;
  let s = raw.trim();
  const bracketed = /<([^<>]*)>\s*$/.exec(s);
  if (bracketed) s = bracketed[1].trim();
  s = s.replace(/^mailto:/i, '');
  const at = s.lastIndexOf('@');
  if (at <= 0 || at === s.length - 1 || /\s/.test(s)) return null;
  const local = s.slice(0, at);
  const domain = normaliseDomain(s.slice(at + 1));
  if (!domain || local.includes('@')) return null;
  return `${local.toLowerCase()}@${domain}`;
}

/** A domain as compared and stored (crm.accounts.domain): lower-case ASCII, no trailing dot; null when unusable. */
export function normaliseDomain(raw: string | null | undefined): string | null {
  if (!raw) return null;
  const trimmed = raw.trim().replace(/\.$/, '');
  if (!trimmed || /[\s/@:]/.test(trimmed)) return null;
  const ascii = domainToASCII(trimmed);
  if (!ascii) return null;
  return /^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(ascii) && !ascii.startsWith('-') ? ascii : null;
}

/** The domain of an address (normalised), or null when the address is not one. */
export function domainOfAddress(address: string | null | undefined): string | null {
  const a = normaliseAddress(address);
  return a ? a.slice(a.lastIndexOf('@') + 1) : null;
}

/** The domain of a website as entered in a CRM (`https://www.contoso.com/about`, `contoso.com`), or null. */
export function domainFromWebsite(website: string | null | undefined): string | null {
  if (!website) return null;
  const s = website.trim();
  if (!s) return null;
  try {
    const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`);
    return normaliseDomain(u.hostname.replace(/^www\./i, ''));
  } catch {
    return null;
  }
}

/**
 * Mail providers whose domain says nothing about the company: an account is never matched by one of these
 * domains, and an account created from a sender at one gets no domain (else every later sender at gmail.com
 * would be filed to it).
 */
const PUBLIC_MAIL_DOMAINS = new Set([
  'gmail.com', 'googlemail.com', 'outlook.com', 'hotmail.com', 'live.com', 'msn.com', 'yahoo.com', 'ymail.com',
  'icloud.com', 'me.com', 'mac.com', 'aol.com', 'gmx.com', 'gmx.net', 'gmx.de', 'web.de', 'proton.me',
  'protonmail.com', 'pm.me', 'yandex.ru', 'yandex.com', 'mail.ru', 'qq.com', '163.com', '126.com', 'zoho.com',
  'fastmail.com', 'tutanota.com', 'hey.com', 'mail.com', 't-online.de', 'orange.fr', 'free.fr', 'laposte.net',
  'libero.it', 'btinternet.com', 'comcast.net', 'verizon.net', 'att.net',
]);

export function isPublicMailDomain(domain: string | null | undefined): boolean {
  const d = normaliseDomain(domain);
  if (!d) return false;
  return PUBLIC_MAIL_DOMAINS.has(d) || /^(hotmail|outlook|live|yahoo)\.[a-z.]+$/.test(d);
}

/** A record that matched an address: by one of its address fields, or (accounts) by the address's domain. */
export interface RecordCandidate {
  type: EmailRecordType;
  id: string;
  ownerId: string | null;
  match: 'address' | 'domain';
}

export type Resolution<T extends RecordCandidate> =
  | { kind: 'none' }
  /** `rule`: why this one won, for the sync log ("the only match", "owned by the mailbox's user", …). */
  | { kind: 'resolved'; record: T; rule: string }
  /** Several records tie at the best rank: the caller reports it and files nothing (never a guess). */
  | { kind: 'ambiguous'; candidates: T[]; reason: string };

/** Rank of a candidate: lower wins. Ownership first, then record type, then an address match before a domain match. */
function rankOf(c: RecordCandidate, userId: string): [number, number, number] {
  return [c.ownerId === userId ? 0 : 1, RECORD_PRECEDENCE.indexOf(c.type), c.match === 'address' ? 0 : 1];
}

const TYPE_PLURAL: Record<EmailRecordType, string> = { contact: 'contacts', lead: 'leads', account: 'accounts' };

/**
 * The resolution order, applied in turn until one record is left:
 * 1. records owned by the mailbox's user before anyone else's;
 * 2. contact before lead before account (RECORD_PRECEDENCE);
 * 3. an account whose own address matches before one that matches by domain.
 * Several records left at the best rank are ambiguous: returned as such, never picked among.
 * The same record given twice (it matched in two address slots) counts once.
 */
export function resolveRecord<T extends RecordCandidate>(candidates: readonly T[], userId: string): Resolution<T> {
  const seen = new Set<string>();
  const unique = candidates.filter((c) => {
    const k = `${c.type}:${c.id}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  if (unique.length === 0) return { kind: 'none' };
  if (unique.length === 1) return { kind: 'resolved', record: unique[0], rule: 'the only match' };
  const ranked = unique.map((c) => ({ c, r: rankOf(c, userId) }));
  const cmp = (a: number[], b: number[]) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  ranked.sort((a, b) => cmp(a.r, b.r) || (a.c.id < b.c.id ? -1 : a.c.id > b.c.id ? 1 : 0));
  const best = ranked[0].r;
  const tied = ranked.filter((x) => cmp(x.r, best) === 0).map((x) => x.c);
  const owned = best[0] === 0 ? ' owned by the mailbox\'s user' : '';
  const how = best[2] === 1 ? ' matching by domain' : '';
  if (tied.length > 1) {
    return { kind: 'ambiguous', candidates: tied, reason: `${tied.length} ${TYPE_PLURAL[tied[0].type]}${owned}${how} share the address` };
  }
  const winner = tied[0];
  const second = ranked[1].r;
  const rule =
    second[0] !== best[0] ? 'owned by the mailbox\'s user'
    : second[1] !== best[1] ? `${winner.type} before ${RECORD_PRECEDENCE[second[1]]}`
    : 'address before domain';
  return { kind: 'resolved', record: winner, rule };
}

export interface Sender {
  address: string;
  /** The display name the message gives, if any. */
  name?: string | null;
}

/** First and last name of a person from a display name (`Anna Berg`, `Berg, Anna`) or, without one, the address. */
export function personName(sender: Sender): { firstName: string | null; lastName: string } {
  const name = (sender.name ?? '').replace(/^["']+|["']+$/g, '').replace(/\s+/g, ' ').trim();
  const address = normaliseAddress(sender.address);
  if (!name || (address && name.toLowerCase() === address) || name.includes('@')) {
    // No usable name: the local part is what a user would recognise (vtiger requires a last name).
    const local = (address ?? sender.address).split('@')[0] || sender.address;
    return { firstName: null, lastName: local };
  }
  const comma = /^([^,]+),\s*(.+)$/.exec(name);
  if (comma) return { firstName: comma[2], lastName: comma[1] };
  const parts = name.split(' ');
  if (parts.length === 1) return { firstName: null, lastName: parts[0] };
  return { firstName: parts.slice(0, -1).join(' '), lastName: parts[parts.length - 1] };
}

/** The fields of an account created from a sender: named and identified by the sender's domain (not a public mail one). */
export function accountFromSender(sender: Sender): { name: string; domain: string | null; email: string } {
  const email = normaliseAddress(sender.address) ?? sender.address.trim();
  const domain = domainOfAddress(email);
  const companyDomain = domain && !isPublicMailDomain(domain) ? domain : null;
  const person = (sender.name ?? '').trim() || email.split('@')[0];
  return { name: companyDomain ?? person, domain: companyDomain, email };
}

/**
 * Why an attachment of `sizeBytes` is not stored under a per-policy limit (`limitBytes`, null: no limit), or null
 * when it is. The caller stores the skipped one as a placeholder with this reason: never a failed message.
 */
export function attachmentSkipReason(sizeBytes: number, limitBytes: number | null): string | null {
  if (limitBytes === null || sizeBytes <= limitBytes) return null;
  return `${sizeBytes} bytes is over the policy's attachment size limit of ${limitBytes} bytes`;
}
