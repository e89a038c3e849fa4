/**
 * Filing a message dropped into a drop folder (docs/RECORD_TYPES.md, "Email"): whose address decides, which
 * addresses are never filed, and the sync id that makes one CRM email activity per message whichever mailbox,
 * folder or retry files it. Pure: src/activities/email-filing.ts reads the mailbox and the CRM and applies these.
 */
import { createHash } from 'node:crypto';
import { domainOfAddress, normaliseAddress, normaliseDomain, type EmailRecordType } from './email-records';

/** The record type a drop folder files to. */
export type FilingRole = EmailRecordType;
export const FILING_ROLES: readonly FilingRole[] = ['account', 'contact', 'lead'];
/** How a message came to be filed: dropped into a folder of a record type, or a reply to a filed message. */
export type FiledAs = FilingRole | 'reply';
/** A folder filing reads: a drop folder, or Inbox and Sent Items for replies (email.fileReplies). */
export type FolderRole = FilingRole | 'inbox' | 'sentitems';
export const REPLY_FOLDERS: readonly ('inbox' | 'sentitems')[] = ['inbox', 'sentitems'];

export interface Exclusions {
  addresses: ReadonlySet<string>;
  domains: ReadonlySet<string>;
  /** The mailbox's own domain when the policy excludes it (email.exclude.ownDomain). */
  ownDomain: string | null;
}

/** Builds the exclusions of a mailbox from the policy's lists, the operator's (sync.email_exclusion) and its address. */
export function exclusionsOf(args: { mailboxAddress: string; ownDomain: boolean; addresses: readonly string[]; domains: readonly string[] }): Exclusions {
  return {
    addresses: new Set(args.addresses.map((a) => normaliseAddress(a)).filter((a): a is string => !!a)),
    domains: new Set(args.domains.map((d) => normaliseDomain(d)).filter((d): d is string => !!d)),
    ownDomain: args.ownDomain ? domainOfAddress(args.mailboxAddress) : null,
  };
}

/**
 * Why an address is never filed, or null when it may be. A domain excludes its subdomains too
 * (`contoso.com` excludes `eu.contoso.com`), as mail gateways read such lists.
 */
export function exclusionReason(address: string, ex: Exclusions): string | null {
  const a = normaliseAddress(address);
  if (!a) return 'not an email address';
  if (ex.addresses.has(a)) return `the address ${a} is excluded`;
  const domain = a.slice(a.lastIndexOf('@') + 1);
  const within = (d: string) => domain === d || domain.endsWith(`.${d}`);
  if (ex.ownDomain && within(ex.ownDomain)) return `${domain} is the mailbox's own domain (email.exclude.ownDomain)`;
  for (const d of ex.domains) if (within(d)) return `the domain ${d} is excluded`;
  return null;
}

export interface Party {
  address: string;
  name: string | null;
}

export interface FilingMessage {
  from: Party | null;
  to: readonly Party[];
  cc: readonly Party[];
}

export type Counterpart =
  | { kind: 'party'; party: Party; direction: 'incoming' | 'outgoing' }
  /** Nobody to file to: every address is the user's, excluded, or not an address. */
  | { kind: 'none'; reason: string };

/**
 * The person a dropped message is filed by: its sender, unless the mailbox's user sent it (or the sender is
 * excluded), then its first To recipient that is not excluded, then its first such Cc recipient. Mail the
 * user sent is thereby filed to the customer it went to, never to the user.
 */
export function counterpartOf(m: FilingMessage, mailboxAddress: string, ex: Exclusions): Counterpart {
  const own = normaliseAddress(mailboxAddress);
  const fromAddress = normaliseAddress(m.from?.address);
  const outgoing = !!fromAddress && fromAddress === own;
  const reasons: string[] = [];
  if (m.from && !outgoing) {
    const why = exclusionReason(m.from.address, ex);
    if (!why) return { kind: 'party', party: m.from, direction: 'incoming' };
    reasons.push(`sender: ${why}`);
  } else if (!m.from) {
    reasons.push('no sender');
  }
  for (const p of [...m.to, ...m.cc]) {
    if (normaliseAddress(p.address) === own) continue;
    const why = exclusionReason(p.address, ex);
    if (!why) return { kind: 'party', party: p, direction: outgoing ? 'outgoing' : 'incoming' };
    reasons.push(`${p.address}: ${why}`);
  }
  return { kind: 'none', reason: reasons.length ? `nobody to file to (${reasons.join('; ')})` : 'nobody to file to (only the mailbox itself)' };
}

/**
 * The sync id of a message's CRM email activity: derived from its Internet message id, so that the same
 * message filed by two mailboxes, from two folders or by a retried activity becomes one activity (the CRM's
 * create is idempotent on it). A message without one (a draft) gets an id of its own mailbox and item.
 */
export function filingSyncId(internetMessageId: string | null, mailboxId: string, messageId: string): string {
  const key = internetMessageId ? `imid:${internetMessageId.trim()}` : `item:${mailboxId}:${messageId}`;
  const h = createHash('sha256').update(key).digest();
  // An RFC 9562 version-8 (custom) UUID: the hash's bits with the version and variant set.
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The id of a CRM record created from the sender of one message, so that a retried create finds the first
 * (the CRM's create is idempotent on it). The next message from that sender matches the record by address.
 */
export function createdRecordId(mailboxId: string, role: FilingRole, messageId: string): string {
  return filingSyncId(null, mailboxId, `create:${role}:${messageId}`);
}
