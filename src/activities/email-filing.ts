/**
 * Filing mail dropped into the drop folders (VAccounts, VContacts, VLeads by default; docs/RECORD_TYPES.md,
 * "Email"): one step of a mailbox's cycle, after its record types.
 *
 * Per folder, a message delta round names the messages present; each one not filed yet is filed to the CRM
 * record its counterpart's address matches (domain/email-filing.ts counterpartOf, domain/email-records.ts
 * resolveRecord), or to a record of the folder's type created from the sender when none matches. An ambiguous
 * match, an excluded or missing counterpart goes to the unresolved list (sync.email_unresolved) with the
 * reason, never guessed. Removals reported by delta are never read as deletes: filing only adds (a message
 * moved elsewhere stays filed; one moved into another drop folder is filed from there too, to the same
 * activity). A periodic id-only re-scan of each folder finds what delta stopped reporting (a message moved
 * A→B→A between two rounds is reported removed and never again).
 *
 * Nothing is filed twice: one CRM email activity per Internet message id whatever mailbox, folder or attempt
 * files it (filingSyncId; the CRM create is idempotent on it), one link per (activity, record), and
 * sync.mail_filed records each (mailbox, message, folder) once it is done. The delta link is saved only once
 * every message its round named is filed or listed: a round cut short by the batch size is read again next
 * cycle (filed messages are skipped), so nothing it named is lost.
 */
import type { MailApi, MailMessage } from './exchange/mail-api';
import { toActivityFailure } from './exchange/errors';
import type { CrmEmailStore, CrmRecordRef } from './crm/crm-store';
import type { EmailFilingStore, FilingDecision, UnresolvedEntry } from '../db/email-filing-store';
import { counterpartOf, createdRecordId, exclusionsOf, filingSyncId, FILING_ROLES, REPLY_FOLDERS, type Exclusions, type FiledAs, type FilingRole } from '../domain/email-filing';
import { attachmentSkipReason } from '../domain/email-records';
import type { Policy } from '../domain/policy';
import type { LogLevel } from '../db/sync-store';

export type EmailPolicy = Policy['email'];

/** What a mail step of the cycle works with (filing here, email sync in email-sync.ts). */
export interface MailStepContext {
  mail: MailApi;
  mailboxId: string;
  /** The mailbox's address (its id). */
  upn: string;
  /** The mailbox's CRM user: owner of activities and records created here. */
  ownerId: string;
  policy: EmailPolicy;
  /** Messages handled at most per cycle; the rest next cycle. */
  limit: number;
  /** How old a folder's last id re-scan may get before the next one. */
  rescanSeconds: number;
  log: (level: LogLevel, message: string, itemId?: string) => Promise<void>;
  beat: () => void;
}

export interface FilingContext extends MailStepContext {
  crm: CrmEmailStore;
  store: EmailFilingStore;
}

export interface FilingResult {
  filed: number;
  unresolved: number;
  recordsCreated: number;
  /** Messages left for the next cycle by the limit. */
  workRemaining: boolean;
}

type Outcome = { kind: 'filed'; createdRecord: boolean } | { kind: 'unresolved' } | { kind: 'skipped' };

/**
 * The writer tag of records created from a sender: not the mailbox's own, so that the mailbox's contact feed
 * (which leaves out its own writes) carries a contact created here to Outlook like any other new contact.
 */
const creatorTag = (mailboxId: string) => `${mailboxId} (email filing)`;

export async function fileDroppedMail(ctx: FilingContext): Promise<FilingResult> {
  const result: FilingResult = { filed: 0, unresolved: 0, recordsCreated: 0, workRemaining: false };
  if (!ctx.policy.enabled) return result;
  const folders = await dropFolders(ctx);
  const exclusions = await exclusionsFor(ctx);
  let budget = ctx.limit;
  const count = (o: Outcome) => {
    if (o.kind === 'filed') {
      result.filed++;
      if (o.createdRecord) result.recordsCreated++;
    } else if (o.kind === 'unresolved') result.unresolved++;
    if (o.kind !== 'skipped') budget--;
  };

  // Operators' decisions first: they are what someone is waiting for.
  for (const entry of await ctx.store.unresolved(ctx.mailboxId, { decided: true })) {
    if (budget <= 0) return { ...result, workRemaining: true };
    count(await carryOut(ctx, exclusions, entry));
    ctx.beat();
  }

  for (const folder of folders) {
    // The cycle's limit is spent: reading this folder's round now (every page, read again next cycle) files nothing.
    if (budget <= 0) {
      result.workRemaining = true;
      continue;
    }
    const rescan = !folder.rescannedAt || Date.now() - folder.rescannedAt.getTime() >= ctx.rescanSeconds * 1000;
    let round;
    let ids: string[];
    try {
      round = await ctx.mail.deltaRound(ctx.upn, folder.folderId, folder.deltaLink ?? undefined);
      ids = round.changes.filter((c) => c.state === 'present').map((c) => c.id);
      if (rescan) ids = [...new Set([...ids, ...(await ctx.mail.folderMessageIds(ctx.upn, folder.folderId))])];
    } catch (err) {
      throw toActivityFailure(err, `reading the drop folder ${folder.folderName} of ${ctx.upn}`, { recordType: 'email' });
    }
    ctx.beat();
    const filed = await ctx.store.filed(ctx.mailboxId, folder.role, ids);
    // Listed messages wait for a decision. A re-scan looks at them again (the CRM may have changed meanwhile), but
    // at most once per re-scan period, and after the messages never looked at: else a folder holding a batch of
    // listed messages would spend every cycle re-listing them, and the re-scan (and what follows) never finish.
    const stale = (checkedAt: string) => rescan && Date.now() - Date.parse(checkedAt) >= ctx.rescanSeconds * 1000;
    const entries = (await ctx.store.unresolved(ctx.mailboxId)).filter((u) => u.role === folder.role);
    const listed = new Set(entries.map((u) => u.messageId));
    const recheck = new Set(entries.filter((u) => stale(u.checkedAt)).map((u) => u.messageId));
    const unseen = ids.filter((id) => !filed.has(id) && !listed.has(id));
    const todo = [...unseen, ...ids.filter((id) => recheck.has(id) && !filed.has(id))];
    const now = todo.slice(0, Math.max(0, budget));
    for (let i = 0; i < now.length; i += 20) {
      const chunk = now.slice(i, i + 20);
      let messages: Map<string, MailMessage | undefined>;
      try {
        messages = await ctx.mail.getMessages(ctx.upn, chunk);
      } catch (err) {
        throw toActivityFailure(err, `reading messages of the drop folder ${folder.folderName} of ${ctx.upn}`, { recordType: 'email', progressed: result.filed > 0 });
      }
      for (const id of chunk) {
        const m = messages.get(id);
        // Gone since the round named it (deleted, or moved out and reported by the other folder's round).
        if (!m) continue;
        count(await fileMessage(ctx, exclusions, m, folder.role));
        ctx.beat();
      }
    }
    if (now.length < todo.length) {
      // The round stays where it was: the next cycle reads it again and skips what is filed.
      result.workRemaining = true;
      continue;
    }
    await ctx.store.saveRound(ctx.mailboxId, folder.role, round.deltaLink, rescan);
  }
  if (ctx.policy.fileReplies) {
    const left = await fileReplies(ctx, Math.max(0, budget), (o) => count(o));
    if (left) result.workRemaining = true;
  }
  return result;
}

/**
 * Replies (email.fileReplies): Inbox and Sent Items are read by delta from the moment the setting was first seen
 * (never retroactively). A message there whose conversation holds a message this mailbox filed, and whose
 * In-Reply-To or References names one of them (or that carries neither header), is filed to the records those
 * were filed to: one activity per message as always. Returns true when the budget left messages for next cycle.
 */
async function fileReplies(ctx: FilingContext, budget: number, count: (o: Outcome) => void): Promise<boolean> {
  let leftOver = false;
  const known = new Map((await ctx.store.dropFolders(ctx.mailboxId)).map((f) => [f.role, f]));
  for (const role of REPLY_FOLDERS) {
    let folder = known.get(role);
    let round;
    try {
      if (!folder) {
        await ctx.store.setDropFolder(ctx.mailboxId, role, role, await ctx.mail.wellKnownFolderId(ctx.upn, role));
        folder = (await ctx.store.dropFolders(ctx.mailboxId)).find((f) => f.role === role)!;
      }
      round = await ctx.mail.deltaRound(ctx.upn, folder.folderId, folder.deltaLink ?? undefined);
    } catch (err) {
      throw toActivityFailure(err, `reading ${role === 'inbox' ? 'the Inbox' : 'Sent Items'} of ${ctx.upn} for replies`, { recordType: 'email' });
    }
    ctx.beat();
    const since = folder.since.getTime();
    const fresh = round.changes.flatMap((c) =>
      c.state === 'present' && c.conversationId && (!c.receivedDateTime || Date.parse(c.receivedDateTime) >= since) ? [{ id: c.id, conversationId: c.conversationId }] : [],
    );
    const threads = await ctx.store.filedInConversations(ctx.mailboxId, [...new Set(fresh.map((f) => f.conversationId))]);
    const inThread = fresh.filter((f) => threads.some((t) => t.conversationId === f.conversationId));
    const done = await ctx.store.filed(ctx.mailboxId, 'reply', inThread.map((f) => f.id));
    const todo = inThread.filter((f) => !done.has(f.id));
    const now = todo.slice(0, budget);
    budget -= now.length;
    const messages = now.length ? await ctx.mail.getMessages(ctx.upn, now.map((f) => f.id)).catch((err: unknown) => {
      throw toActivityFailure(err, `reading replies of ${ctx.upn}`, { recordType: 'email' });
    }) : new Map<string, MailMessage | undefined>();
    for (const f of now) {
      const m = messages.get(f.id);
      if (!m) continue;
      const filedHere = threads.filter((t) => t.conversationId === f.conversationId && t.internetMessageId !== m.internetMessageId);
      const named = new Set([...(m.inReplyTo ? [m.inReplyTo] : []), ...m.references]);
      const parents = named.size ? filedHere.filter((t) => t.internetMessageId && named.has(t.internetMessageId)) : filedHere;
      if (parents.length === 0) {
        // The same thread but a reply to nothing filed (another branch of it): left alone, not guessed.
        continue;
      }
      const records: CrmRecordRef[] = [];
      for (const a of new Set(parents.map((p) => p.activityId))) {
        for (const r of await ctx.crm.emailLinks(a)) if (!records.some((x) => x.type === r.type && x.id === r.id)) records.push(r);
      }
      if (records.length === 0) continue; // its parents lost every link (records deleted): nothing to file to
      count(await fileTo(ctx, m, 'reply', records, false, `a reply to email activity ${[...new Set(parents.map((p) => p.activityId))].join(', ')}`));
      ctx.beat();
    }
    if (now.length < todo.length) {
      leftOver = true;
      continue;
    }
    await ctx.store.saveRound(ctx.mailboxId, role, round.deltaLink, false);
  }
  return leftOver;
}

/** The drop folders of the policy, created in the mailbox on first use (or when the policy renames one). */
async function dropFolders(ctx: FilingContext) {
  const wanted = FILING_ROLES.flatMap((role) => (ctx.policy.dropFolders[role] ? [{ role, name: ctx.policy.dropFolders[role]! }] : []));
  const known = new Map((await ctx.store.dropFolders(ctx.mailboxId)).map((f) => [f.role, f]));
  const missing = wanted.filter((w) => known.get(w.role)?.folderName !== w.name);
  if (missing.length) {
    let ids: Map<string, string>;
    try {
      ids = await ctx.mail.ensureMailFolders(ctx.upn, missing.map((m) => m.name));
    } catch (err) {
      throw toActivityFailure(err, `creating the drop folders ${missing.map((m) => m.name).join(', ')} of ${ctx.upn}`, { recordType: 'email' });
    }
    for (const m of missing) {
      const id = ids.get(m.name) ?? [...ids.entries()].find(([n]) => n.toLowerCase() === m.name.toLowerCase())?.[1];
      if (!id) throw new Error(`the drop folder ${m.name} of ${ctx.upn} was neither found nor created`);
      await ctx.store.setDropFolder(ctx.mailboxId, m.role, m.name, id);
      await ctx.log('info', `drop folder ${m.name} (${m.role}) ready`);
    }
  }
  const rows = await ctx.store.dropFolders(ctx.mailboxId);
  return wanted.map((w) => ({ ...rows.find((r) => r.role === w.role)!, role: w.role }));
}

const thread = (m: MailMessage) => ({ conversationId: m.conversationId, internetMessageId: m.internetMessageId });

/** The mailbox's exclusions: the policy's lists, the operators' (sync.email_exclusion) and its own domain. Also used by email-sync.ts. */
export async function exclusionsFor(ctx: Pick<FilingContext, 'store' | 'mailboxId' | 'upn' | 'policy'>): Promise<Exclusions> {
  const rows = await ctx.store.exclusionsFor(ctx.mailboxId);
  return exclusionsOf({
    mailboxAddress: ctx.upn,
    ownDomain: ctx.policy.exclude.ownDomain,
    addresses: [...ctx.policy.exclude.addresses, ...rows.filter((r) => r.kind === 'address').map((r) => r.value)],
    domains: [...ctx.policy.exclude.domains, ...rows.filter((r) => r.kind === 'domain').map((r) => r.value)],
  });
}

function unresolvedOf(m: MailMessage, role: FiledAs, reason: string, candidates: CrmRecordRef[] = []) {
  return {
    messageId: m.id,
    role,
    internetMessageId: m.internetMessageId,
    subject: m.subject,
    senderAddress: m.from?.address ?? null,
    senderName: m.from?.name ?? null,
    receivedAt: m.receivedDateTime,
    reason,
    candidates,
  };
}

async function list(ctx: FilingContext, m: MailMessage, role: FiledAs, reason: string, candidates: CrmRecordRef[] = []): Promise<Outcome> {
  await ctx.store.addUnresolved(ctx.mailboxId, unresolvedOf(m, role, reason, candidates));
  await ctx.log('warn', `message not filed, listed in cxsync email unresolved ${ctx.mailboxId}: ${reason}`, m.id);
  return { kind: 'unresolved' };
}

/**
 * Where a dropped message's counterpart is looked for, in turn: records of the folder's type (an account by its
 * address or domain), then, for a person's folder, the other kind of person, so that a contact dropped into
 * VLeads is filed to the contact instead of being created again as a lead. Nothing found: a record of the
 * folder's type is created.
 */
function searchOrder(role: FilingRole): Array<readonly FilingRole[]> {
  if (role === 'contact') return [['contact'], ['lead']];
  if (role === 'lead') return [['lead'], ['contact']];
  return [['account']];
}

/** Files one message found in the drop folder of `role`, or lists it with the reason. */
async function fileMessage(ctx: FilingContext, ex: Exclusions, m: MailMessage, role: FilingRole): Promise<Outcome> {
  const who = counterpartOf(m, ctx.upn, ex);
  if (who.kind === 'none') return list(ctx, m, role, who.reason);
  let lookup;
  for (const types of searchOrder(role)) {
    lookup = await ctx.crm.findRecordsByAddress({ address: who.party.address, userId: ctx.ownerId, types });
    if (lookup.resolution.kind !== 'none') break;
  }
  const r = lookup!.resolution;
  if (r.kind === 'ambiguous') {
    return list(ctx, m, role, `${r.reason} ${lookup!.address}: choose with cxsync email file`, r.candidates.map((c) => ({ type: c.type, id: c.id })));
  }
  let record: CrmRecordRef;
  let createdRecord = false;
  if (r.kind === 'resolved') {
    record = { type: r.record.type, id: r.record.id };
  } else {
    const made = await ctx.crm.createRecordFromSender({ mailboxId: creatorTag(ctx.mailboxId), id: createdRecordId(ctx.mailboxId, role, m.id), type: role, ownerId: ctx.ownerId, sender: who.party });
    record = made.record;
    createdRecord = made.created;
    if (made.created) await ctx.log('info', `created ${role} ${record.id} from ${who.direction === 'incoming' ? 'the sender' : 'the recipient'} of a dropped message`, m.id);
  }
  return fileTo(ctx, m, role, [record], createdRecord, r.kind === 'resolved' ? r.rule : 'created from the sender');
}

/** The message's activity (one per message), linked to `records`, with its attachments; then recorded as filed. */
async function fileTo(ctx: FilingContext, m: MailMessage, role: FiledAs, records: CrmRecordRef[], createdRecord: boolean, rule: string): Promise<Outcome> {
  const activity = await activityOf(ctx, m);
  if (activity.deleted) {
    // A CRM user deleted this message's activity: their decision stands, the message is not filed again.
    await ctx.store.markFiled(ctx.mailboxId, m.id, role, activity.id, thread(m));
    await ctx.log('info', `not filed again: its CRM email activity ${activity.id} was deleted in the CRM`, m.id);
    return { kind: 'skipped' };
  }
  const links = await ctx.crm.linkEmailActivity({ mailboxId: ctx.mailboxId, activityId: activity.id, records });
  const missing = links.filter((l) => l.outcome === 'missing');
  if (missing.length === links.length) {
    return list(ctx, m, role, `the record ${missing.map((l) => `${l.record.type} ${l.record.id}`).join(', ')} was deleted in the CRM while the message was filed; the next re-scan tries again`);
  }
  if (m.hasAttachments && ctx.policy.attachments.enabled) {
    // An activity that existed already (an attempt stopped part-way through its attachments, another copy or
    // mailbox filed it) keeps what it has: only the attachments it lacks are downloaded.
    const have = activity.created ? new Set<string>() : new Set((await ctx.crm.emailAttachments(activity.id)).map((a) => a.key));
    await copyAttachments(ctx, m, activity.id, have);
  }
  await ctx.store.markFiled(ctx.mailboxId, m.id, role, activity.id, thread(m));
  await ctx.log('info', `filed to ${records.map((x) => `${x.type} ${x.id}`).join(', ')} (${rule}) as email activity ${activity.id}`, m.id);
  return { kind: 'filed', createdRecord };
}

/**
 * The CRM activity of a message: one already holding its Internet message id (filed by another mailbox, or
 * logged in the CRM), else a new one under the message's sync id, which a retried or concurrent create finds.
 * Also used by email-sync.ts, so a message both filed and placed in the sync folder is one activity.
 */
export async function activityOf(ctx: Pick<FilingContext, 'crm' | 'mailboxId' | 'upn' | 'ownerId'>, m: MailMessage): Promise<{ id: string; created: boolean; deleted: boolean }> {
  if (m.internetMessageId) {
    const existing = await ctx.crm.findEmailActivitiesByMessageId(m.internetMessageId);
    const live = existing.find((a) => !a.deleted);
    if (live) return { id: live.id, created: false, deleted: false };
  }
  const own = ctx.upn.toLowerCase();
  const outgoing = (m.from?.address ?? '').toLowerCase() === own;
  const r = await ctx.crm.createEmailActivity({
    mailboxId: ctx.mailboxId,
    syncId: filingSyncId(m.internetMessageId, ctx.mailboxId, m.id),
    fields: {
      ownerId: ctx.ownerId,
      subject: m.subject,
      bodyText: m.body.contentType === 'text' ? m.body.content : null,
      bodyHtml: m.body.contentType === 'html' ? m.body.content : null,
      from: m.from,
      to: m.to,
      cc: m.cc,
      bcc: m.bcc,
      sentAt: m.sentDateTime,
      receivedAt: m.receivedDateTime,
      direction: outgoing ? 'outgoing' : 'incoming',
      internetMessageId: m.internetMessageId,
      conversationId: m.conversationId,
      inReplyTo: m.inReplyTo,
    },
  });
  return r;
}

/**
 * Stores the message's attachments on its activity; one over the policy's size limit (or without file
 * content) is kept as a placeholder naming why, logged, and never fails the message. Keyed by position, name
 * and size, which are the same in every mailbox's copy of the message. `skipKeys`: keys the activity holds
 * already (email-sync.ts resuming an interrupted copy), neither downloaded nor stored again.
 */
export async function copyAttachments(
  ctx: Pick<FilingContext, 'mail' | 'crm' | 'upn' | 'mailboxId' | 'policy' | 'log' | 'beat'>,
  m: MailMessage,
  activityId: string,
  skipKeys: ReadonlySet<string> = new Set(),
): Promise<void> {
  let atts;
  try {
    atts = await ctx.mail.listAttachments(ctx.upn, m.id);
  } catch (err) {
    throw toActivityFailure(err, `listing the attachments of a message of ${ctx.upn}`, { recordType: 'email' });
  }
  const limit = ctx.policy.attachments.maxBytes;
  for (const [i, att] of atts.entries()) {
    const key = `${i}:${att.name}:${att.size}`;
    if (skipKeys.has(key)) continue;
    const common = { key, name: att.name, contentType: att.contentType, isInline: att.isInline };
    const over = attachmentSkipReason(att.size, limit);
    let got;
    try {
      got = over ? ({ state: 'skipped', reason: over } as const) : await ctx.mail.downloadAttachment(ctx.upn, m.id, att, limit);
    } catch (err) {
      throw toActivityFailure(err, `downloading an attachment of a message of ${ctx.upn}`, { recordType: 'email', progressed: true });
    }
    if (got.state === 'downloaded') {
      await ctx.crm.addEmailAttachment({ mailboxId: ctx.mailboxId, activityId, attachment: { ...common, content: got.content } });
    } else {
      await ctx.crm.addEmailAttachment({ mailboxId: ctx.mailboxId, activityId, attachment: { ...common, content: null, sizeBytes: att.size, skippedReason: got.reason } });
      await ctx.log('warn', `attachment ${i + 1} of the message kept as a placeholder: ${got.reason}`, m.id);
    }
    ctx.beat();
  }
}

/** Carries out an operator's decision on a listed message (cxsync email file|create|ignore-*). */
async function carryOut(ctx: FilingContext, ex: Exclusions, entry: UnresolvedEntry): Promise<Outcome> {
  const decision = entry.decision as FilingDecision;
  if ('ignore' in decision) {
    await ctx.store.markIgnored(ctx.mailboxId, entry.messageId, entry.role);
    await ctx.log('info', `message left unfiled, as decided by ${entry.decidedBy ?? 'an operator'}`, entry.messageId);
    return { kind: 'skipped' };
  }
  let m: MailMessage | undefined;
  try {
    m = await ctx.mail.getMessage(ctx.upn, entry.messageId);
  } catch (err) {
    throw toActivityFailure(err, `reading a listed message of ${ctx.upn}`, { recordType: 'email' });
  }
  if (!m) {
    await ctx.store.removeUnresolved(ctx.mailboxId, entry.messageId, entry.role);
    await ctx.log('warn', `the listed message is no longer in the mailbox: ${decisionText(decision)} not carried out`, entry.messageId);
    return { kind: 'skipped' };
  }
  if ('file' in decision) return fileTo(ctx, m, entry.role, decision.file, false, `as decided by ${entry.decidedBy ?? 'an operator'}`);
  const who = counterpartOf(m, ctx.upn, { ...ex, addresses: new Set(), domains: new Set(), ownDomain: null });
  if (who.kind === 'none') return list(ctx, m, entry.role, `cannot create a ${decision.create}: ${who.reason}`);
  const made = await ctx.crm.createRecordFromSender({ mailboxId: creatorTag(ctx.mailboxId), id: createdRecordId(ctx.mailboxId, decision.create, m.id), type: decision.create, ownerId: ctx.ownerId, sender: who.party });
  return fileTo(ctx, m, entry.role, [made.record], made.created, `created as decided by ${entry.decidedBy ?? 'an operator'}`);
}

function decisionText(d: FilingDecision): string {
  return 'file' in d ? `filing to ${d.file.map((r) => `${r.type} ${r.id}`).join(', ')}` : 'create' in d ? `creating a ${d.create}` : 'ignoring';
}
