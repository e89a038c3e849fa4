/**
 * Email sync with the CRM Email folder (Acumatica, bidirectional only; docs/RECORD_TYPES.md "Email sync (the
 * CRM Email folder)"): one step of a mailbox's cycle, after filing.
 *
 * 1. CRM → Exchange: the CRM email activities of the mailbox's user changed since the saved feed watermark
 *    (commit-order safe, without the mailbox's own writes; a watermark from a restored or replaced CRM database
 *    is not read after: feed-guard.ts, then a full read which the map keeps duplicate-free).
 *    - new: a received (non-draft) message in the folder with its participants, body, dates and Internet
 *      message id, stamped with a sync id derived from the activity. The map row is written before the Graph
 *      create, so an attempt that dies between the two looks the sync id up before creating again. Attachments
 *      follow (email.attachments): over 3 MB through an upload session (resumed where it stopped), over the
 *      policy's limit or refused by the mailbox skipped and logged — never failing the message or the cycle.
 *    - deleted in the CRM: the message is moved to Deleted Items (recoverable, never hard-deleted) when it is
 *      still in the folder; one the user moved elsewhere stays there.
 *    - edited in the CRM: Graph lets a received (non-draft) message change neither subject nor body, and cxsync
 *      maps no other field (categories, read state) to the CRM; so an edit changes nothing in the mailbox, and
 *      the message is never recreated (a new copy would be a second message to the user). Logged (verbose).
 *    - reassigned to another user (left scope): the message stays, logged.
 *    - filed by this mailbox from a drop folder: its message is in the mailbox already, not copied.
 * 2. Exchange → CRM: messages present in the folder (per-folder delta; removals confirmed by id; a periodic
 *    id-only re-scan as the backstop) that are not mapped and were not created by cxsync become CRM email
 *    activities — one per Internet message id (email-filing.ts activityOf), so a message also filed from a drop
 *    folder or by another mailbox stays one activity — linked to the CRM records matching its participants
 *    (email-records.ts resolution order; an ambiguous address is not linked, and logged), with contacts made
 *    for participants without a record when email.sync.contactsFromParticipants is on (never for excluded
 *    addresses or the own domain). A message moved out of the folder or deleted in Exchange leaves its activity
 *    as it is: CRM mail is never deleted because of an Outlook move; logged.
 *
 * Idempotent under retries: every step is recorded in sync.email_sync_map (0015) once done, the CRM creates are
 * idempotent on their ids, and the feed watermark and the delta link are saved only after everything they
 * delivered is done (a cycle cut short by the limit reads them again next cycle and skips what is mapped).
 */
import { gated } from './exchange/batch';
import { IMMUTABLE_IDS } from './exchange/contacts-api';
import { classifyGraphError, toActivityFailure } from './exchange/errors';
import { UploadInterrupted, type MailApi, type MailMessage } from './exchange/mail-api';
import type { CrmEmailActivity, CrmEmailActivityChange, CrmEmailStore, CrmRecordRef } from './crm/crm-store';
import { checkWatermark, currentOrigin } from './crm/feed-guard';
import { activityOf, copyAttachments, exclusionsFor, type EmailPolicy, type MailStepContext } from './email-filing';
import type { Db } from '../db/connection';
import type { EmailFilingStore } from '../db/email-filing-store';
import type { EmailSyncStore, SyncFolderRow, SyncMapRow } from '../db/email-sync-store';
import type { LogLevel } from '../db/sync-store';
import { createdRecordId, type Exclusions } from '../domain/email-filing';
import { attachmentSkipReason } from '../domain/email-records';
import { emailSyncId, messageFromActivity, participantsOf } from '../domain/email-sync';

/** The CRM as email sync needs it: CrmEmailStore and the bytes of a stored attachment. */
export interface EmailSyncCrm extends CrmEmailStore {
  attachmentContent(attachmentId: string): Promise<Buffer | null>;
}

/** `limit`: items that cost Graph writes or reads; `ownerId`: whose activities are synced. */
export interface EmailSyncContext extends MailStepContext {
  db: Db;
  crm: EmailSyncCrm;
  store: EmailSyncStore;
  /** Exclusions added by operators (sync.email_exclusion). */
  filing: EmailFilingStore;
}

export interface EmailSyncResult {
  /** Messages created in the folder from CRM activities. */
  toExchange: number;
  /** Messages of the folder now CRM activities (new or linked to an existing one). */
  toCrm: number;
  /** Messages moved to Deleted Items because their activity was deleted in the CRM. */
  deletedInExchange: number;
  contactsCreated: number;
  /** Attachments not carried across (over a limit, refused, or only a placeholder in the CRM): each logged. */
  attachmentsSkipped: number;
  workRemaining: boolean;
}

/** The writer of contacts created from participants: not the mailbox's own, so its contact feed carries them to Outlook. */
const creatorTag = (mailboxId: string) => `${mailboxId} (email sync)`;
const PREFER = { Prefer: IMMUTABLE_IDS };

export async function syncEmailFolder(ctx: EmailSyncContext): Promise<EmailSyncResult> {
  const result: EmailSyncResult = { toExchange: 0, toCrm: 0, deletedInExchange: 0, contactsCreated: 0, attachmentsSkipped: 0, workRemaining: false };
  if (!ctx.policy.enabled || !ctx.policy.sync.enabled) return result;
  const folder = await syncFolder(ctx);
  const budget = { left: ctx.limit };
  await crmToExchange(ctx, folder, budget, result);
  await exchangeToCrm(ctx, folder, budget, result);
  return result;
}

/** The policy's sync folder, created under the top of the mailbox on first use (or when the policy renames it). */
async function syncFolder(ctx: EmailSyncContext): Promise<SyncFolderRow> {
  const name = ctx.policy.sync.folder;
  const known = await ctx.store.folder(ctx.mailboxId);
  if (known && known.folderName === name) return known;
  let ids: Map<string, string>;
  try {
    ids = await ctx.mail.ensureMailFolders(ctx.upn, [name]);
  } catch (err) {
    throw toActivityFailure(err, `creating the email sync folder ${name} of ${ctx.upn}`, { recordType: 'email' });
  }
  const id = ids.get(name) ?? [...ids.entries()].find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
  if (!id) throw new Error(`the email sync folder ${name} of ${ctx.upn} was neither found nor created`);
  await ctx.store.setFolder(ctx.mailboxId, name, id);
  await ctx.log('info', known ? `email sync folder is now ${name} (was ${known.folderName}); messages already in the old folder stay there` : `email sync folder ${name} ready`);
  return (await ctx.store.folder(ctx.mailboxId))!;
}

// ---- CRM → Exchange -----------------------------------------------------------------------------------

async function crmToExchange(ctx: EmailSyncContext, folder: SyncFolderRow, budget: { left: number }, result: EmailSyncResult): Promise<void> {
  // What an earlier attempt left half done comes first: a message created without its id recorded, attachments to go.
  for (const row of await ctx.store.unfinished(ctx.mailboxId)) {
    if (budget.left <= 0) {
      result.workRemaining = true;
      return;
    }
    const a = await ctx.crm.getEmailActivity(row.activityId);
    if (!a || a.deleted) continue; // the feed reports the delete; the row's message, if any, is found by its sync id then
    await toMessage(ctx, folder, a, { row, inserted: false }, false, result);
    budget.left--;
    ctx.beat();
  }

  const check = await checkWatermark(ctx.db, { watermark: folder.crmWatermark, origin: folder.crmWatermarkOrigin, recordType: 'email' });
  const after = check.ok ? folder.crmWatermark : null;
  if (!check.ok) await ctx.log('warn', check.reason);
  // Taken before the read: a restore between the two leaves an origin the next check finds different.
  const origin = await currentOrigin(ctx.db);
  const feed = await ctx.crm.emailActivityChanges({ ownerId: ctx.ownerId, mailboxId: ctx.mailboxId, after });
  ctx.beat();
  // The last report of each activity, in feed order.
  const last = new Map<string, CrmEmailActivityChange>();
  for (const c of feed.changes) {
    last.delete(c.id);
    last.set(c.id, c);
  }
  const ids = [...last.keys()];
  const rows = await ctx.store.byActivity(ctx.mailboxId, ids);
  const filed = await ctx.store.filedHere(ctx.mailboxId, ids.filter((id) => !rows.has(id)));
  for (const c of last.values()) {
    if (budget.left <= 0) {
      // The watermark stays: the next cycle reads these again and skips what is mapped.
      result.workRemaining = true;
      return;
    }
    if (await crmChange(ctx, folder, c, rows.get(c.id) ?? [], filed, after === null, result)) budget.left--;
    ctx.beat();
  }
  await ctx.store.saveWatermark(ctx.mailboxId, feed.watermark, origin);
}

/** One activity's change; true when it cost Graph requests (counts against the limit). */
async function crmChange(
  ctx: EmailSyncContext,
  folder: SyncFolderRow,
  c: CrmEmailActivityChange,
  rows: SyncMapRow[],
  filed: ReadonlySet<string>,
  fullRead: boolean,
  result: EmailSyncResult,
): Promise<boolean> {
  if (c.removed && c.leftScope) {
    if (rows.some((r) => r.origin === 'crm' && r.state === 'in-folder')) await ctx.log('info', `CRM email activity ${c.id} now belongs to another user: its message stays in ${folder.folderName}`);
    return false;
  }
  if (c.removed) return deleteInExchange(ctx, folder, c.id, rows, result);
  const a = c.activity!;
  const own = rows.find((r) => r.origin === 'crm');
  if (own && (!own.messageId || !own.complete)) {
    await toMessage(ctx, folder, a, { row: own, inserted: false }, fullRead, result);
    return true;
  }
  if (rows.length > 0) {
    if (rows.every((r) => r.state === 'crm-deleted')) {
      await ctx.log('info', `CRM email activity ${a.id} was restored in the CRM: its message is not brought back from where the delete put it`);
    } else {
      // Graph refuses subject and body changes on a received (non-draft) message; nothing else is mapped.
      await ctx.log('verbose', `CRM email activity ${a.id} changed in the CRM: its message keeps its subject and body (Graph cannot change a received message), and is not recreated`);
    }
    return false;
  }
  if (filed.has(a.id)) {
    await ctx.log('verbose', `CRM email activity ${a.id} was filed by this mailbox from a drop folder: its message is in the mailbox already, not copied to ${folder.folderName}`);
    return false;
  }
  const syncId = emailSyncId(ctx.mailboxId, a.id);
  await toMessage(ctx, folder, a, await ctx.store.planCrmCreate(ctx.mailboxId, a.id, syncId), fullRead, result);
  return true;
}

/**
 * Creates (or finds again) the message of an activity and carries its attachments. `inserted` false: an earlier
 * attempt wrote the row and may have created the message; so may a full read's (the map may have been lost):
 * the sync id is looked up before creating.
 */
async function toMessage(
  ctx: EmailSyncContext,
  folder: SyncFolderRow,
  a: CrmEmailActivity,
  plan: { row: SyncMapRow; inserted: boolean },
  fullRead: boolean,
  result: EmailSyncResult,
): Promise<void> {
  const { row } = plan;
  let messageId = row.messageId;
  if (!messageId) {
    let r: { id: string; created: boolean };
    try {
      r = await ctx.mail.createMessage(ctx.upn, folder.folderId, messageFromActivity(a, ctx.upn), row.syncId!, { retry: !plan.inserted || fullRead });
    } catch (err) {
      throw toActivityFailure(err, `creating the message of a CRM email activity in ${folder.folderName} of ${ctx.upn}`, { recordType: 'email', progressed: result.toExchange > 0 });
    }
    messageId = r.id;
    await ctx.store.setMessage(row.id, messageId);
    if (r.created) result.toExchange++;
    await ctx.log('info', r.created ? `CRM email activity ${a.id} copied to ${folder.folderName} as a received message` : `CRM email activity ${a.id}: its message, created by an earlier attempt, found by its sync id`, messageId);
  }
  if (ctx.policy.attachments.enabled) await attachmentsToMessage(ctx, a.id, { ...row, messageId }, plan.inserted && row.messageId === null, result);
  await ctx.store.complete(row.id);
}

/**
 * The activity's attachments onto its message, each once: recorded per attachment in the map row, and an upload
 * session cut short (UploadInterrupted) recorded with where it stopped, so the next attempt goes on from there.
 * `fresh`: the message was created by this very call, so it has none yet; otherwise one an earlier attempt may
 * have added without recording it is recognised by its name.
 */
async function attachmentsToMessage(ctx: EmailSyncContext, activityId: string, row: SyncMapRow & { messageId: string }, fresh: boolean, result: EmailSyncResult): Promise<void> {
  const limit = ctx.policy.attachments.maxBytes;
  let present: Set<string> | undefined;
  const skip = async (id: string, name: string, reason: string) => {
    result.attachmentsSkipped++;
    await ctx.log('warn', `attachment "${name}" of CRM email activity ${activityId} not added to its message (placeholder): ${reason}`, row.messageId);
    await ctx.store.attachmentDone(row.id, id);
  };
  for (const att of await ctx.crm.emailAttachments(activityId)) {
    if (row.attachmentsDone.includes(att.id)) continue;
    if (att.skippedReason) {
      await skip(att.id, att.name, `the CRM holds only a placeholder for it (${att.skippedReason})`);
      continue;
    }
    const over = attachmentSkipReason(att.sizeBytes, limit);
    if (over) {
      await skip(att.id, att.name, over);
      continue;
    }
    const resume = row.upload?.attachmentId === att.id ? row.upload.progress : undefined;
    if (!resume && !fresh) {
      try {
        present ??= new Set((await ctx.mail.listAttachments(ctx.upn, row.messageId)).map((x) => x.name));
      } catch (err) {
        throw toActivityFailure(err, `listing the attachments of a message of ${ctx.upn}`, { recordType: 'email', progressed: true });
      }
      if (present.has(att.name)) {
        await ctx.store.attachmentDone(row.id, att.id);
        continue;
      }
    }
    const content = await ctx.crm.attachmentContent(att.id);
    if (!content) {
      await skip(att.id, att.name, 'its content is no longer in the CRM');
      continue;
    }
    let added;
    try {
      added = await ctx.mail.addAttachment(ctx.upn, row.messageId, { name: att.name, contentType: att.contentType ?? undefined, content, isInline: att.isInline, ...(att.contentId ? { contentId: att.contentId } : {}) }, limit, { resume });
    } catch (err) {
      if (err instanceof UploadInterrupted) await ctx.store.setUpload(row.id, { attachmentId: att.id, progress: err.progress });
      const g = classifyGraphError(err);
      // Refused for this item (400/413/422: not a fault of the connection): skipped and logged, never failing the message.
      if (g.kind === 'bad-item') {
        await skip(att.id, att.name, `Exchange refused it (${g.status} ${g.code})`);
        continue;
      }
      throw toActivityFailure(err, `adding an attachment to a message of ${ctx.upn}`, { recordType: 'email', progressed: true });
    }
    if (added.state === 'skipped') await skip(att.id, att.name, added.reason);
    else await ctx.store.attachmentDone(row.id, att.id);
    ctx.beat();
  }
}

/** An activity deleted in the CRM: its messages still in the folder go to Deleted Items; the others stay where the user put them. */
async function deleteInExchange(ctx: EmailSyncContext, folder: SyncFolderRow, activityId: string, rows: SyncMapRow[], result: EmailSyncResult): Promise<boolean> {
  const live = rows.filter((r) => r.state !== 'crm-deleted');
  if (live.length === 0) return false;
  for (const row of live) {
    let messageId = row.messageId;
    try {
      // A create that died before its id was recorded may still have made the message.
      if (!messageId && row.syncId) messageId = (await ctx.mail.findBySyncId(ctx.upn, row.syncId)) ?? null;
      const m = messageId ? await ctx.mail.getMessage(ctx.upn, messageId) : undefined;
      if (!m) {
        await ctx.log('info', `CRM email activity ${activityId} deleted in the CRM: its message is no longer in the mailbox`, messageId ?? undefined);
      } else if (m.parentFolderId === folder.folderId) {
        await moveMessage(ctx.mail, ctx.upn, m.id, 'deleteditems');
        result.deletedInExchange++;
        await ctx.log('info', `CRM email activity ${activityId} deleted in the CRM: its message moved to Deleted Items`, m.id);
      } else {
        await ctx.log('info', `CRM email activity ${activityId} deleted in the CRM: its message is outside ${folder.folderName}, where the user put it, and stays there`, m.id);
      }
    } catch (err) {
      throw toActivityFailure(err, `moving the message of a deleted CRM email activity to Deleted Items in ${ctx.upn}`, { recordType: 'email', progressed: result.deletedInExchange > 0 });
    }
    if (messageId && !row.messageId) await ctx.store.setMessage(row.id, messageId);
    await ctx.store.setState(row.id, 'crm-deleted');
  }
  return true;
}

/** POST /messages/{id}/move: a soft delete into Deleted Items keeps the message recoverable (immutable id kept). */
async function moveMessage(mail: MailApi, upn: string, id: string, destinationId: string): Promise<void> {
  try {
    await gated(upn, () => mail.client.api(`/users/${encodeURIComponent(upn)}/messages/${encodeURIComponent(id)}/move`).headers(PREFER).post({ destinationId }));
  } catch (err) {
    // Gone meanwhile: nothing left to move.
    if (classifyGraphError(err).kind !== 'not-found') throw err;
  }
}

// ---- Exchange → CRM -----------------------------------------------------------------------------------

async function exchangeToCrm(ctx: EmailSyncContext, folder: SyncFolderRow, budget: { left: number }, result: EmailSyncResult): Promise<void> {
  const rescan = !folder.rescannedAt || Date.now() - folder.rescannedAt.getTime() >= ctx.rescanSeconds * 1000;
  let round;
  let present: string[];
  try {
    round = await ctx.mail.deltaRound(ctx.upn, folder.folderId, folder.deltaLink ?? undefined);
    present = round.changes.filter((c) => c.state === 'present').map((c) => c.id);
    if (rescan) present = [...new Set([...present, ...(await ctx.mail.folderMessageIds(ctx.upn, folder.folderId))])];
  } catch (err) {
    throw toActivityFailure(err, `reading the email sync folder ${folder.folderName} of ${ctx.upn}`, { recordType: 'email' });
  }
  ctx.beat();

  // Removals, confirmed by id: the activity stays; the map remembers where the message went.
  const left = round.changes.filter((c) => c.state !== 'present' && !present.includes(c.id));
  const leftRows = await ctx.store.byMessage(ctx.mailboxId, left.map((c) => c.id));
  for (const c of left) {
    const row = leftRows.get(c.id);
    if (!row || row.state === 'crm-deleted') continue;
    const state = c.state === 'gone' ? 'gone' : 'left-folder';
    if (row.state === state) continue;
    await ctx.store.setState(row.id, state);
    await ctx.log('info', `message ${c.state === 'gone' ? 'deleted in Exchange' : 'moved out of ' + folder.folderName}: its CRM email activity ${row.activityId} stays`, c.id);
  }

  const mapped = await ctx.store.byMessage(ctx.mailboxId, present);
  for (const id of present) {
    const row = mapped.get(id);
    if (row && (row.state === 'left-folder' || row.state === 'gone')) await ctx.store.setState(row.id, 'in-folder');
  }
  // Not mapped, or an import an earlier attempt left unfinished. cxsync's own messages (origin crm) are the CRM side's.
  const todo = present.filter((id) => {
    const row = mapped.get(id);
    return !row || (row.origin === 'exchange' && !row.complete);
  });
  const now = todo.slice(0, Math.max(0, budget.left));
  let exclusions: Exclusions | undefined;
  for (let i = 0; i < now.length; i += 20) {
    const chunk = now.slice(i, i + 20);
    let messages: Map<string, MailMessage | undefined>;
    try {
      messages = await ctx.mail.getMessages(ctx.upn, chunk);
    } catch (err) {
      throw toActivityFailure(err, `reading messages of the email sync folder ${folder.folderName} of ${ctx.upn}`, { recordType: 'email', progressed: result.toCrm > 0 });
    }
    for (const id of chunk) {
      budget.left--;
      const m = messages.get(id);
      if (!m) continue; // gone since the round named it
      exclusions ??= await exclusionsFor({ store: ctx.filing, mailboxId: ctx.mailboxId, upn: ctx.upn, policy: ctx.policy });
      await fromMessage(ctx, m, mapped.get(id), exclusions, result);
      ctx.beat();
    }
  }
  if (now.length < todo.length) {
    // The round stays where it was: the next cycle reads it again and skips what is mapped.
    result.workRemaining = true;
    return;
  }
  await ctx.store.saveRound(ctx.mailboxId, round.deltaLink, rescan);
}

/** A message of the folder not mapped yet (or whose import an earlier attempt left unfinished). */
async function fromMessage(ctx: EmailSyncContext, m: MailMessage, row: SyncMapRow | undefined, ex: Exclusions, result: EmailSyncResult): Promise<void> {
  if (!row && m.syncId) {
    // Created by cxsync: the copy of a CRM activity whose row has not recorded its id yet, or of another record type.
    const own = await ctx.store.bySyncId(ctx.mailboxId, m.syncId);
    if (own && !own.messageId) await ctx.store.setMessage(own.id, m.id);
    else if (!own) await ctx.log('verbose', 'a message cxsync created is in the email sync folder without a map row: not imported (the CRM side finds it by its sync id)', m.id);
    return;
  }
  if (m.isDraft) {
    await ctx.log('verbose', 'a draft in the email sync folder is not mail: not made a CRM email activity', m.id);
    return;
  }
  const activity = await activityOf(ctx, m);
  if (activity.deleted) {
    // A CRM user deleted this message's activity: their decision stands.
    const r = row ?? (await ctx.store.addPlaced(ctx.mailboxId, activity.id, m.id));
    await ctx.store.setState(r.id, 'crm-deleted');
    await ctx.store.complete(r.id);
    await ctx.log('info', `not made a CRM email activity again: its activity ${activity.id} was deleted in the CRM`, m.id);
    return;
  }
  const r = row ?? (await ctx.store.addPlaced(ctx.mailboxId, activity.id, m.id));
  const linked = await linkParticipants(ctx, m, activity.id, ex, result);
  if (ctx.policy.attachments.enabled && m.hasAttachments) {
    // Keys the activity holds already (filed from a drop folder, or an earlier attempt) are not copied again.
    const have = new Set((await ctx.crm.emailAttachments(activity.id)).map((x) => x.key));
    await copyAttachments(ctx, m, activity.id, have);
  }
  await ctx.store.complete(r.id);
  result.toCrm++;
  await ctx.log(
    'info',
    `${activity.created ? 'made' : 'matched to'} CRM email activity ${activity.id}${linked.length ? `, linked to ${linked.map((x) => `${x.type} ${x.id}`).join(', ')}` : ', linked to no record'}`,
    m.id,
  );
}

/**
 * Links the activity to the record of each participant (email-records.ts resolution order). An ambiguous address
 * is not linked, and logged; one without a record becomes a contact when the policy says so.
 */
async function linkParticipants(ctx: EmailSyncContext, m: MailMessage, activityId: string, ex: Exclusions, result: EmailSyncResult): Promise<CrmRecordRef[]> {
  const { parties, excluded } = participantsOf(m, ctx.upn, ex);
  if (excluded.length) await ctx.log('verbose', `not looked up in the CRM: ${excluded.map((e) => `${e.address} (${e.reason})`).join('; ')}`, m.id);
  const records: CrmRecordRef[] = [];
  for (const p of parties) {
    const lookup = await ctx.crm.findRecordsByAddress({ address: p.address, userId: ctx.ownerId });
    const r = lookup.resolution;
    if (r.kind === 'resolved') records.push({ type: r.record.type, id: r.record.id });
    else if (r.kind === 'ambiguous') {
      await ctx.log('warn', `${p.address} not linked: ${r.reason} (${r.candidates.map((c) => `${c.type} ${c.id}`).join(', ')}); link it in the CRM`, m.id);
    } else if (ctx.policy.sync.contactsFromParticipants) {
      const made = await ctx.crm.createRecordFromSender({
        mailboxId: creatorTag(ctx.mailboxId),
        id: createdRecordId(ctx.mailboxId, 'contact', `email-sync:${m.id}:${p.address}`),
        type: 'contact',
        ownerId: ctx.ownerId,
        sender: p,
      });
      records.push(made.record);
      if (made.created) {
        result.contactsCreated++;
        await ctx.log('info', `created contact ${made.record.id} from a participant of a message in the email sync folder`, m.id);
      }
    }
  }
  if (records.length === 0) return [];
  const links = await ctx.crm.linkEmailActivity({ mailboxId: ctx.mailboxId, activityId, records });
  return links.filter((l) => l.outcome !== 'missing').map((l) => l.record);
}
