/**
 * Email sync with the CRM Email folder (docs/RECORD_TYPES.md "Email sync (the CRM Email folder)"): the message a
 * CRM email activity becomes, the sync id stamped on it, and which participants of a placed message are looked
 * up in the CRM. Pure: src/activities/email-sync.ts reads the mailbox and the CRM and applies these.
 */
import { exclusionReason, filingSyncId, type Exclusions, type Party } from './email-filing';
import { normaliseAddress } from './email-records';

/**
 * The sync id stamped on the message created from `activityId` in `mailboxId`: derived, not random, so that a
 * full read of the CRM feed after the map was lost (a restored database, a mailbox removed and enrolled again)
 * finds the message created before (MailApi.findBySyncId) instead of creating a second one.
 */
export function emailSyncId(mailboxId: string, activityId: string): string {
  return filingSyncId(null, mailboxId, `email-sync:${activityId}`);
}

export interface ActivityForMessage {
  subject: string;
  bodyText: string | null;
  bodyHtml: string | null;
  from: Party | null;
  to: readonly Party[];
  cc: readonly Party[];
  bcc: readonly Party[];
  sentAt: string | null;
  receivedAt: string | null;
  direction: 'incoming' | 'outgoing';
  internetMessageId: string | null;
  inReplyTo: string | null;
  updatedAt: string;
}

export interface MessageForActivity {
  subject: string;
  body: { contentType: 'text' | 'html'; content: string };
  from: { address: string; name: string | null };
  to: Array<{ address: string; name: string | null }>;
  cc: Array<{ address: string; name: string | null }>;
  bcc: Array<{ address: string; name: string | null }>;
  receivedDateTime: string;
  sentDateTime: string;
  isRead: boolean;
  internetMessageId?: string;
  inReplyTo?: string;
}

const party = (p: Party) => ({ address: p.address, name: p.name ?? null });

/**
 * The received (not draft) message an activity becomes: its participants, body (HTML when the CRM has it) and
 * dates. An activity without a sender is mail the user sent (outgoing) or of unknown origin: the mailbox's own
 * address stands in, since Graph needs a sender. Without dates (mail typed into the CRM) the activity's last
 * change dates it. Read: a copy of mail the CRM already holds is not news to the user.
 */
export function messageFromActivity(a: ActivityForMessage, mailboxAddress: string): MessageForActivity {
  const received = a.receivedAt ?? a.sentAt ?? a.updatedAt;
  return {
    subject: a.subject,
    body: a.bodyHtml !== null && a.bodyHtml !== '' ? { contentType: 'html', content: a.bodyHtml } : { contentType: 'text', content: a.bodyText ?? '' },
    from: a.from ? party(a.from) : { address: mailboxAddress, name: null },
    to: a.to.map(party),
    cc: a.cc.map(party),
    bcc: a.bcc.map(party),
    receivedDateTime: received,
    sentDateTime: a.sentAt ?? received,
    isRead: true,
    ...(a.internetMessageId ? { internetMessageId: a.internetMessageId } : {}),
    ...(a.inReplyTo ? { inReplyTo: a.inReplyTo } : {}),
  };
}

export interface ParticipantMessage {
  from: Party | null;
  to: readonly Party[];
  cc: readonly Party[];
  bcc: readonly Party[];
}

/**
 * The participants of a placed message looked up in the CRM (and, with contactsFromParticipants, made contacts):
 * sender and every recipient, each address once, without the mailbox's own address and without excluded ones
 * (the own domain by default), which are returned apart with the reason.
 */
export function participantsOf(m: ParticipantMessage, mailboxAddress: string, ex: Exclusions): { parties: Party[]; excluded: Array<{ address: string; reason: string }> } {
  const own = normaliseAddress(mailboxAddress);
  const seen = new Set<string>();
  const parties: Party[] = [];
  const excluded: Array<{ address: string; reason: string }> = [];
  for (const p of [...(m.from ? [m.from] : []), ...m.to, ...m.cc, ...m.bcc]) {
    const a = normaliseAddress(p.address);
    if (!a || a === own || seen.has(a)) continue;
    seen.add(a);
    const why = exclusionReason(a, ex);
    if (why) excluded.push({ address: a, reason: why });
    else parties.push({ address: a, name: p.name ?? null });
  }
  return { parties, excluded };
}
