/**
 * What must hold once the sync is quiet, checked against both sides as the users see them and against the
 * reference model (intent.ts), never against the sync's own idea of what it did. Each violation names its
 * invariant, so a run can leave out one already known to fail (CXSYNC_MODEL_SKIP) and hunt for the others.
 */
import { isDeepStrictEqual } from 'node:util';
import { sql } from 'kysely';
import { MAILBOXES, type Mailbox } from './environment';
import type { Edit, RecordIntent } from './intent';
import { sideName, tagOf, World, type CrmRow } from './world';

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
  for (const [tag, n] of countBy(live, (r) => tagOf(r.last_name))) {
    if (!intent.byTag(tag)) v('duplicates', `CRM holds a contact nobody created: ${tag}`);
    else if (n > 1) v('duplicates', `CRM holds ${n} contacts ${tag}`);
  }
  for (const m of mailboxes) {
    for (const [tag, n] of countBy(items[m], (i) => tagOf(i.surname))) {
      if (!intent.byTag(tag)) v('duplicates', `Outlook ${m} holds a contact nobody created: ${tag}`);
      else if (n > 1) v('duplicates', `Outlook ${m} holds ${n} contacts ${tag}`);
    }
  }

  // ---- per record: deletes, scope, edits, unsynced data ----
  for (const rec of intent.records) {
    const rows = live.filter((r) => tagOf(r.last_name) === rec.tag);
    const copies = (m: Mailbox) => items[m].filter((i) => tagOf(i.surname) === rec.tag);
    const expected = intent.expected(rec);
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
  for (const field of world.fields) {
    if (rec.loose.has(field)) continue;
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
