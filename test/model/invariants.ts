/**
 * What must hold once the sync is quiet, checked against both sides as the users see them and against the
 * reference model (intent.ts), never against the sync's own idea of what it did. Each violation names its
 * invariant, so a run can leave out one already known to fail (CXSYNC_MODEL_SKIP) and hunt for the others.
 *
 * Email (runs with email; checkEmail): against the mail users dropped and moved (the emulator's folders as they
 * are now), what CRM users did to the activities (intent.ts MessageIntent) and the CRM's own rows. Nothing filed
 * twice, nothing lost, a CRM user's edit or delete stands, one activity for a message several mailboxes file.
 * Contacts the sync created from a sender (tag Mn) are left out of the contact checks' "nobody created it".
 */
import { isDeepStrictEqual } from 'node:util';
import { sql } from 'kysely';
import { DROP_FOLDERS, MAILBOXES, type DropFolder, type Mailbox } from './environment';
import type { Edit, RecordIntent } from './intent';
import { EMAIL_SLOT, FILED_TYPES, isSenderTag, sideName, tagOf, World, type CrmRow } from './world';

export const INVARIANTS = {
  agree: 'both sides agree on every synced field of every linked pair',
  duplicates: 'no duplicates on either side',
  edits: 'every user edit is present, or on record as the losing side of a conflict',
  merge: 'edits of different fields on the two sides are both kept (field-level merge)',
  unsynced: 'what cxsync does not sync keeps what the user set',
  deletes: 'deleting is mirrored; a live record has one linked copy per side',
  'left-scope': 'a contact that left scope keeps its CRM row: intact, new owner, not duplicated',
  termination: 'quiescence is reached within a bounded number of cycles',
  messages: 'no message was sent that event.invitations forbids (meetings made before enrolment mail no one)',
  'email-once': 'nothing filed twice: one CRM email activity per message (live or deleted), one record made per sender and type',
  'email-lost': "nothing lost: every message in a drop folder is filed, linked to a record of that folder's type, or listed with an ambiguous sender",
  'email-user': "a CRM user's edit or delete of an email activity stands; no one else deletes one",
  'email-shared': 'a message filed by several mailboxes or from several folders is one activity, owned by whoever filed it first, linked to what each filed it to',
} as const;
export type Invariant = keyof typeof INVARIANTS;

export interface Violation {
  invariant: Invariant;
  message: string;
}

interface ConflictRow {
  mailbox_id: string;
  rule: string;
  outcome: string;
  crm_version: Record<string, unknown> | null;
  exchange_version: Record<string, unknown> | null;
}

export interface CheckOptions {
  conflictRule?: string;
}

export async function checkInvariants(world: World, mailboxes: Mailbox[], opts: CheckOptions = {}): Promise<Violation[]> {
  const { env, intent } = world;
  const out: Violation[] = [];
  const v = (invariant: Invariant, message: string) => out.push({ invariant, message });
  const rule = opts.conflictRule ?? 'crm-wins';
  const all = await world.crmRows({ all: true });
  const live = all.filter((r) => !r.deleted_at);
  const inScope = (r: CrmRow) => r.owner_id !== env.users.outside;
  const items = Object.fromEntries(mailboxes.map((m) => [m, world.outlookItems(m)])) as Record<Mailbox, ReturnType<World['outlookItems']>>;
  const mappings: Record<string, Array<{ crm_id: string; exchange_id: string }>> = {};
  for (const m of mailboxes) {
    mappings[m] = (await sql<{ crm_id: string; exchange_id: string }>`select crm_id, exchange_id from sync.mapping
      where mailbox_id = ${MAILBOXES[m]} and record_type = 'contact' order by crm_id`.execute(env.db)).rows;
  }
  const conflicts = (await sql<ConflictRow>`select mailbox_id, rule, outcome, crm_version, exchange_version from sync.conflict where record_type = 'contact' order by id`.execute(env.db)).rows;
  const diff = (a: Record<string, unknown>, b: Record<string, unknown>) => world.fields.filter((f) => a[f] !== b[f]).map((f) => `${f}: ${JSON.stringify(a[f])} vs ${JSON.stringify(b[f])}`);

  // ---- agree: linked pairs ----
  for (const m of mailboxes) {
    for (const map of mappings[m]) {
      const row = all.find((r) => r.id === map.crm_id);
      const item = items[m].find((i) => i.id === map.exchange_id);
      const label = `${m} link ${tagOf(row?.last_name) || map.crm_id} ↔ ${tagOf(item?.surname) || map.exchange_id}`;
      if (!row || row.deleted_at) v('deletes', `${label}: the CRM contact is ${row ? 'deleted' : 'missing'}`);
      else if (!inScope(row)) v('left-scope', `${label}: the CRM contact left the mailbox's scope but is still linked`);
      if (!item) v('deletes', `${label}: the Outlook contact is missing`);
      if (row && !row.deleted_at && item) {
        const d = diff(world.crmSnapshot(row), world.outlookSnapshot(item));
        if (d.length) v('agree', `${label}: CRM vs Outlook differ: ${d.join('; ')}`);
      }
    }
  }

  // ---- duplicates and strangers ----
  const countBy = <T>(xs: T[], key: (x: T) => string) => xs.reduce((acc, x) => acc.set(key(x), (acc.get(key(x)) ?? 0) + 1), new Map<string, number>());
  // A contact filing created from a sender (tag Mn) is nobody's but must not be there twice either.
  const made = (tag: string) => !!intent.byTag(tag) || (isSenderTag(tag) && intent.messages.size > 0);
  for (const [tag, n] of countBy(live, (r) => tagOf(r.last_name))) {
    if (!made(tag)) v('duplicates', `CRM holds a contact nobody created: ${tag}`);
    else if (n > 1) v('duplicates', `CRM holds ${n} contacts ${tag}`);
  }
  for (const m of mailboxes) {
    for (const [tag, n] of countBy(items[m], (i) => tagOf(i.surname))) {
      if (!made(tag)) v('duplicates', `Outlook ${m} holds a contact nobody created: ${tag}`);
      else if (n > 1) v('duplicates', `Outlook ${m} holds ${n} contacts ${tag}`);
    }
  }

  // ---- per record: deletes, scope, edits, unsynced data ----
  for (const rec of intent.records) {
    const rows = live.filter((r) => tagOf(r.last_name) === rec.tag);
    const copies = (m: Mailbox) => items[m].filter((i) => tagOf(i.surname) === rec.tag);
    const expected = intent.expected(rec);
    // A record that may be gone or alive is checked as alive unless nothing of it is left.
    if (expected === 'either' && rows.length === 0 && mailboxes.every((m) => copies(m).length === 0)) continue;
    if (expected === 'gone') {
      // After a write whose answer was lost, the sync may fairly take the delete for one concurrent with that
      // write (keep-updated): the record may survive, once on every side.
      if (intent.lostWriteAnswers && rows.length === 1 && mailboxes.every((m) => copies(m).length === 1)) continue;
      const where = [...(rows.length ? ['CRM'] : []), ...mailboxes.filter((m) => copies(m).length).map((m) => `Outlook ${m}`)];
      const d = rec.deletions[rec.deletions.length - 1];
      if (where.length) v('deletes', `${rec.tag} was deleted in ${sideName(d.side)} (nothing concurrent to keep it) but is still in ${where.join(', ')}`);
      continue;
    }
    if (expected === 'left-scope') {
      if (rows.length === 0) v('left-scope', `${rec.tag} was reassigned outside the mailboxes' scope, and its CRM row is ${all.some((r) => tagOf(r.last_name) === rec.tag) ? 'deleted' : 'gone'}`);
      for (const row of rows) {
        if (row.owner_id !== env.users.outside) v('left-scope', `${rec.tag} was reassigned outside the mailboxes' scope; a CRM row of it is owned by someone in scope (re-created?)`);
        else {
          const d = diff(rec.leftScope!, world.crmSnapshot(row));
          if (d.length) v('left-scope', `${rec.tag} left scope, and a mailbox wrote to its CRM row afterwards: ${d.join('; ')}`);
        }
      }
      continue;
    }
    if (rows.length === 0) v('deletes', `${rec.tag} should exist${rec.deletions.length ? ' (its delete met a concurrent edit: keep-updated)' : ''} but has no CRM contact`);
    const row = rows.length === 1 ? rows[0] : undefined;
    for (const m of mailboxes) {
      const c = copies(m);
      if (c.length === 0) v('deletes', `${rec.tag} should exist but has no copy in Outlook ${m}`);
      if (row && c.length === 1 && !mappings[m].some((x) => x.crm_id === row.id && x.exchange_id === c[0].id)) v('deletes', `${rec.tag}: the CRM contact and its Outlook ${m} copy are not linked`);
    }
    if (row) checkEdits(world, rec, world.crmSnapshot(row), conflicts, rule, v);
    checkKept(rec, all, items, mailboxes, v);
  }
  // ---- messages: every meeting of a run existed before enrolment, so Exchange must have mailed no one ----
  for (const m of mailboxes) {
    for (const msg of env.emulator.admin.sentMessages(MAILBOXES[m])) {
      v('messages', `Exchange sent a ${msg.kind} "${msg.subject}" from ${m} to ${msg.recipients.join(', ')}`);
    }
  }
  if (env.settings.email) out.push(...(await checkEmail(world, mailboxes, 'final')));
  return out;
}

/**
 * The email invariants. `phase` 'delta': the run is quiet and no id re-scan has run since its commands, so delta
 * alone (a removal confirmed by id, never read as a delete: a copy moved out of a folder and back between two
 * rounds, which Graph reports removed there and never again, is still there) must have filed every copy; a listed
 * one waits for the re-scan to be looked at again. 'final': after a re-scan, every copy in a drop folder is filed
 * or listed with an ambiguous sender.
 */
export async function checkEmail(world: World, mailboxes: Mailbox[], phase: 'delta' | 'final'): Promise<Violation[]> {
  const { env, intent } = world;
  const out: Violation[] = [];
  const when = phase === 'delta' ? ' (before the re-scan)' : '';
  const v = (invariant: Invariant, message: string) => out.push({ invariant, message: `${message}${when}` });
  const owner = Object.fromEntries(Object.entries(env.users).map(([m, id]) => [id, m]));
  const mailboxOf = Object.fromEntries(Object.entries(MAILBOXES).map(([m, upn]) => [upn, m as Mailbox]));
  const unresolved = (await sql<{ mailbox_id: string; role: string; internet_message_id: string | null; reason: string }>`
    select mailbox_id, role, internet_message_id, reason from sync.email_unresolved order by id`.execute(env.db)).rows;
  const filed = (await sql<{ mailbox_id: string; role: string; activity_id: string | null; internet_message_id: string | null }>`
    select mailbox_id, role, activity_id::text, internet_message_id from sync.mail_filed where role <> 'reply'`.execute(env.db)).rows;
  const inFolders = mailboxes.flatMap((m) => world.mailInDropFolders(m).map((x) => ({ ...x, m })));

  for (const msg of intent.messages.values()) {
    const name = `M${msg.n}`;
    const rows = await world.activitiesOf(msg);
    const live = rows.filter((a) => !a.deleted_at);
    const links = live.length
      ? (await sql<{ record_type: string }>`select record_type from crm.email_links where email_activity_id = ${live[0].id}::uuid`.execute(env.db)).rows.map((r) => r.record_type)
      : [];

    // ---- nothing filed twice ----
    if (rows.length > 1) v('email-once', `${name} has ${rows.length} CRM email activities (${rows.map((a) => `${a.id}${a.deleted_at ? ' deleted' : ''} owned by ${owner[a.owner_id ?? ''] ?? a.owner_id}`).join(', ')}): one message, filed more than once`);
    const a = msg.sender.address;
    const domain = a.slice(a.indexOf('@') + 1);
    const counts = (await sql<{ contacts: number; leads: number; accounts: number }>`select
        (select count(*)::int from crm.contacts where deleted_at is null and lower(email) = ${a}) as contacts,
        (select count(*)::int from crm.leads where deleted_at is null and lower(email) = ${a}) as leads,
        (select count(*)::int from crm.accounts where deleted_at is null and domain = ${domain}) as accounts`.execute(env.db)).rows[0];
    // R1 and a contact made from M1's sender after R1 was gone may both live (R1 restored by keep-updated), and M3's
    // two leads are the run's own.
    if (msg.sender.kind === 'unknown' && counts.contacts > 1) v('email-once', `${name}'s unknown sender ${a} became ${counts.contacts} CRM contacts`);
    if (msg.sender.kind !== 'ambiguous' && counts.leads > 1) v('email-once', `${name}'s sender ${a} became ${counts.leads} CRM leads`);
    if (counts.accounts > 1) v('email-once', `${name}'s sender domain ${domain} became ${counts.accounts} CRM accounts`);

    // ---- a CRM user's edit or delete stands ----
    if (msg.deletedByUser && live.length) v('email-user', `a CRM user deleted ${name}'s activity, yet it has a live one (${live.map((x) => x.id).join(', ')}): restored or filed again`);
    for (const x of rows) if (x.deleted_at && !msg.deletedByUser) v('email-user', `${name}'s activity ${x.id} is deleted, though no CRM user deleted it`);
    if (msg.firstFiler && rows.length === 0) v('email-user', `${name}'s activity, made when ${msg.firstFiler} filed it, is gone from the CRM`);
    if (msg.subject !== undefined && live.length && live[0].subject !== msg.subject) {
      v('email-user', `a CRM user set the subject of ${name}'s activity to ${JSON.stringify(msg.subject)}; it is ${JSON.stringify(live[0].subject)}`);
    }

    // ---- one activity, owned by the first to file it, linked to what each filed it to ----
    if (rows.length === 1 && msg.firstFiler && rows[0].owner_id !== env.users[msg.firstFiler]) {
      v('email-shared', `${name} was first filed by ${msg.firstFiler}, yet its activity is owned by ${owner[rows[0].owner_id ?? ''] ?? rows[0].owner_id}`);
    }
    for (const f of filed.filter((x) => x.internet_message_id === msg.internetMessageId && x.activity_id)) {
      const who = mailboxOf[f.mailbox_id] ?? f.mailbox_id;
      if (!rows.some((x) => x.id === f.activity_id)) v('email-shared', `${who} filed a copy of ${name} from its ${f.role} folder as activity ${f.activity_id}, which is not ${name}'s activity (${rows.map((x) => x.id).join(', ') || 'none'})`);
      const folder = (Object.keys(DROP_FOLDERS) as DropFolder[]).find((k) => DROP_FOLDERS[k] === f.role)!;
      if (!msg.deletedByUser && live.length && !links.some((t) => FILED_TYPES[folder].includes(t))) {
        v('email-shared', `${who} filed ${name} from ${folder}, yet its activity is linked to no ${FILED_TYPES[folder].join(' or ')} (links: ${links.join(', ') || 'none'})`);
      }
    }

    // ---- nothing lost: every copy in a drop folder is filed there, or listed ----
    if (msg.deletedByUser) continue;
    const places = new Map<string, { m: Mailbox; folder: DropFolder }>();
    for (const x of inFolders.filter((y) => y.n === msg.n)) places.set(`${x.m}/${x.folder}`, { m: x.m, folder: x.folder });
    for (const { m, folder } of places.values()) {
      if (live.length && links.some((t) => FILED_TYPES[folder].includes(t))) continue;
      const listed = unresolved.filter((u) => u.mailbox_id === MAILBOXES[m] && u.role === DROP_FOLDERS[folder] && u.internet_message_id === msg.internetMessageId);
      const ambiguous = listed.find((u) => /share the address/.test(u.reason));
      if (ambiguous) continue;
      if (phase === 'delta' && listed.length) continue; // a listed message is looked at again by the next re-scan
      const what = live.length ? `its activity is linked to no ${FILED_TYPES[folder].join(' or ')} (links: ${links.join(', ') || 'none'})` : rows.length ? 'its activity is deleted' : 'it has no CRM activity';
      v('email-lost', `${name} (from a ${msg.sender.kind} sender, ${a}) is in ${m}'s ${folder}${listed.length ? `, listed: ${listed.map((u) => u.reason).join('; ')},` : ''} and ${what}`);
    }
  }
  return out;
}

function checkEdits(world: World, rec: RecordIntent, final: Record<string, string | null>, conflicts: ConflictRow[], rule: string, v: (i: Invariant, m: string) => void): void {
  const mine = conflicts.filter((c) => tagOf(c.crm_version?.lastName) === rec.tag || tagOf(c.exchange_version?.lastName) === rec.tag);
  const recorded = (e: Edit, field: string) =>
    mine.some((c) => {
      const version = e.side === 'crm' ? c.crm_version : c.mailbox_id === MAILBOXES[e.side] ? c.exchange_version : null;
      return !!version && ((version[field] as string | undefined) ?? null) === e.value;
    });
  const show = (e: Edit) => `${JSON.stringify(e.value)} (${sideName(e.side)}, #${e.seq})`;
  const closed = closedEmailGap(world, rec, final);
  for (const field of world.fields) {
    if (rec.loose.has(field) || closed.has(field)) continue;
    const edits = rec.live.get(field) ?? [];
    const now = final[field];
    if (edits.length === 0) {
      if (now !== null) v('edits', `${rec.tag}.${field} is ${JSON.stringify(now)} though nobody set it`);
      continue;
    }
    if (edits.length === 1) {
      const [e] = edits;
      if (now === e.value) continue;
      // Another side's edit of the same field the user saw only because a write was done whose answer was lost
      // (an applied fault) is one the sync could not know was seen: a conflict over it is fair.
      const sameField = world.intent.lostWriteAnswers && (rec.history.get(field) ?? []).some((x) => x.side !== e.side && x.seq > world.intent.commandsFrom);
      if (recorded(e, field) && sameField) continue;
      if (recorded(e, field)) v('merge', `${rec.tag}.${field}: the edit ${show(e)} lost a whole-record conflict although no other side edited ${field}; it is ${JSON.stringify(now)}`);
      else v('edits', `${rec.tag}.${field}: the edit ${show(e)} is lost (no conflict on record); it is ${JSON.stringify(now)}`);
      continue;
    }
    const winner = edits.find((e) => e.value === now);
    const crm = edits.filter((e) => e.side === 'crm');
    if (!winner) v('edits', `${rec.tag}.${field} is ${JSON.stringify(now)}, none of the concurrent edits ${edits.map(show).join(', ')}`);
    else if (rule === 'crm-wins' && crm.length && !crm.some((e) => e.value === now)) v('edits', `${rec.tag}.${field}: ${rule}, yet the CRM edit ${show(crm[0])} lost to ${show(winner)}`);
    for (const e of edits) {
      if (e.value !== now && !recorded(e, field)) v('edits', `${rec.tag}.${field}: the edit ${show(e)} lost to ${winner ? show(winner) : JSON.stringify(now)} with no conflict on record`);
    }
  }
}

/**
 * The email slots whose edits stand once the gap they left is closed. The world never makes an edit that leaves a
 * gap in one copy's slots, but two edits on two sides can, merged field by field: Outlook clears its only address
 * while a CRM user adds a second. Outlook's slots have no gaps, so the sync moves the later addresses up on both
 * sides (validateContact; stories.test.ts 4c): each edit still stands when the slots, gap closed, hold what the
 * edits say. Slots with concurrent edits of one field, or any slot the model does not predict, are left to the
 * per-field check.
 */
function closedEmailGap(world: World, rec: RecordIntent, final: Record<string, string | null>): Set<string> {
  const slots = Object.keys(EMAIL_SLOT).sort((a, b) => EMAIL_SLOT[a] - EMAIL_SLOT[b]);
  if (!slots.every((f) => world.fields.includes(f) && !rec.loose.has(f) && (rec.live.get(f) ?? []).length <= 1)) return new Set();
  const predicted = slots.map((f) => rec.live.get(f)?.[0]?.value ?? null);
  const filled = predicted.filter((v) => v !== null);
  const gapClosed = slots.map((_, i) => filled[i] ?? null);
  if (isDeepStrictEqual(gapClosed, predicted)) return new Set(); // no gap: the per-field check says it all
  return isDeepStrictEqual(slots.map((f) => final[f] ?? null), gapClosed) ? new Set(slots) : new Set();
}

function checkKept(rec: RecordIntent, all: CrmRow[], items: Record<string, ReturnType<World['outlookItems']>>, mailboxes: Mailbox[], v: (i: Invariant, m: string) => void): void {
  for (const k of rec.kept) {
    if (k.side === 'crm') {
      const row = all.find((r) => r.id === k.itemId && !r.deleted_at);
      if (row && row[k.key] !== k.value) v('unsynced', `${rec.tag}: the CRM column ${k.key} the user set to ${JSON.stringify(k.value)} is ${JSON.stringify(row[k.key])}`);
      continue;
    }
    if (!mailboxes.includes(k.side)) continue;
    const item = items[k.side].find((i) => i.id === k.itemId);
    if (!item) continue; // that copy is gone (deleted by the user, or replaced): nothing left to keep
    if (k.key === 'otherPhones' && !((item.businessPhones as string[] | undefined) ?? [])[0]) continue; // no first phone: extras would have moved up
    const now = World.outlookUnsynced(item, k.key);
    if (!isDeepStrictEqual(now, k.value)) v('unsynced', `${rec.tag}: Outlook ${k.side} ${k.key} the user set to ${JSON.stringify(k.value)} is ${JSON.stringify(now)}`);
  }
}
