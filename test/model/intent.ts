/**
 * The reference model: what the users meant, per logical record, whatever order the sync ran in.
 *
 * A record is known by its tag ("R3"), the first word of its last name on every side; edits of the last name
 * keep it, so duplicates and lost records can be counted on each side without trusting the sync's mappings.
 *
 * Per synced field the model keeps the *live* edits: those no later edit was made in knowledge of. An edit on a
 * side makes earlier edits of that field live on the same side obsolete, and those of other sides too when the
 * user could see them (the side showed that value when the user edited). Two or more live edits of a field
 * are concurrent: one of them ends up on every side, the others must be on record as the losing side of a
 * conflict. A single live edit of a field must end up on every side, whatever else was edited (field-level
 * merge). A delete is concurrent with an edit of another side the deleting user could not see yet, or made
 * after the delete (the other copy still existed): under keep-updated such a record survives, otherwise it is
 * gone on every side. A record reassigned out of the mailboxes' scope keeps its CRM row as it was then.
 *
 * Mail (runs with email): messages M1, M2, M3, each one Internet message id whatever copy, folder or mailbox
 * holds it. The model keeps what users did with them: the copies dropped (where each is now, the emulator
 * says), the mailbox whose filing first made the message's CRM activity (its owner), and a CRM user's delete or
 * subject edit of that activity, which must stand.
 */
import type { Mailbox } from './environment';

export type Side = 'crm' | Mailbox;
export type Value = string | null;
/** A side's synced fields as the domain mapper reads them (absent = null). */
export type Snapshot = Record<string, Value>;

export interface Edit {
  side: Side;
  value: Value;
  seq: number;
}

interface Deletion {
  side: Side;
  seq: number;
  /** An edit of another side the deleting user could not see, or made afterwards: the record must survive (keep-updated). */
  contested: boolean;
  /**
   * Per `side|field`, the edits of another side that stand against the delete, and the value that side must hold
   * again for the delete to lose nothing: for an edit pending at the delete, the value the deleting user saw; for
   * one made afterwards, the value that side held before its first such edit. An edit pending at the delete of a
   * field the deleting CRM user had edited too, unseen by each other, is not here: crm-wins settles that field
   * for the CRM's value (story 2f).
   */
  against: Map<string, Value>;
}

/** User data cxsync does not sync, where the user put it; it must still be there if that copy still is. */
export interface Kept {
  side: Side;
  /** Exchange item id, or CRM row id. */
  itemId: string;
  key: string;
  value: unknown;
}

export interface RecordIntent {
  tag: string;
  origin: Side;
  live: Map<string, Edit[]>;
  /** Every edit per field, live or not. */
  history: Map<string, Edit[]>;
  /** Fields whose outcome the model does not predict: a delete dropped the deleting side's pending edit. */
  loose: Set<string>;
  deletions: Deletion[];
  /** Reassigned to a user outside every mailbox's scope: the CRM row's synced fields at that moment. */
  leftScope?: Snapshot;
  kept: Kept[];
}

/** `either`: the record may be gone, or alive on every side (see Intent.expected). */
export type Expected = 'alive' | 'gone' | 'left-scope' | 'either';

export type MessageNo = 1 | 2 | 3;
/** Who sent a message: a CRM contact (R1), an address the CRM does not know, an address two CRM leads share. */
export type SenderKind = 'known' | 'unknown' | 'ambiguous';

export interface MailCopy {
  m: Mailbox;
  /** Its immutable id (the same through moves). */
  id: string;
}

export interface MessageIntent {
  n: MessageNo;
  internetMessageId: string;
  sender: { kind: SenderKind; address: string; name: string };
  copies: MailCopy[];
  /** The mailbox whose filing step first made the message's CRM activity: the activity's owner is its user. */
  firstFiler?: Mailbox;
  /** A CRM user deleted the message's activity: it stays deleted, and the message is not filed again. */
  deletedByUser: boolean;
  /** A CRM user's last edit of the activity's subject: filing the message again must not undo it. */
  subject?: string;
}

export class Intent {
  readonly records: RecordIntent[] = [];
  /** The messages users dropped (runs with email), by number. */
  readonly messages = new Map<MessageNo, MessageIntent>();
  private seq = 0;
  /** Where the commands began (after the initial records were synced). */
  commandsFrom = 0;
  /**
   * A write was done but its answer lost (an applied fault): the user may have seen a value the sync does not
   * know it wrote, so the sync may fairly take an edit of that field for a conflict.
   */
  lostWriteAnswers = false;

  next(): number {
    return ++this.seq;
  }

  byTag(tag: string): RecordIntent | undefined {
    return this.records.find((r) => r.tag === tag);
  }

  /** The tag the next created record gets. */
  nextTag(): string {
    return `R${this.records.length + 1}`;
  }

  created(origin: Side, values: Snapshot): RecordIntent {
    const tag = this.nextTag();
    const rec: RecordIntent = { tag, origin, live: new Map(), history: new Map(), loose: new Set(), deletions: [], kept: [] };
    const seq = this.next();
    for (const [field, value] of Object.entries(values)) {
      if (value === null) continue;
      rec.live.set(field, [{ side: origin, value, seq }]);
      rec.history.set(field, [{ side: origin, value, seq }]);
    }
    this.records.push(rec);
    return rec;
  }

  /** `before`: the edited copy's synced fields just before the edit (what the user saw). */
  edited(rec: RecordIntent, side: Side, field: string, value: Value, before: Snapshot): void {
    if (before[field] === value) return; // setting what is there already (clearing an empty field) changes nothing
    const still = (rec.live.get(field) ?? []).filter((e) => e.side !== side && before[field] !== e.value);
    const edit = { side, value, seq: this.next() };
    still.push(edit);
    rec.live.set(field, still);
    rec.history.set(field, [...(rec.history.get(field) ?? []), edit]);
    rec.loose.delete(field);
    for (const d of rec.deletions) {
      if (d.side === side) continue;
      d.contested = true;
      const key = `${side}|${field}`;
      if (!d.against.has(key)) d.against.set(key, before[field] ?? null);
    }
  }

  deleted(rec: RecordIntent, side: Side, before: Snapshot): void {
    let contested = false;
    const against = new Map<string, Value>();
    for (const [field, edits] of rec.live) {
      const unseen = edits.filter((e) => e.side !== side && before[field] !== e.value);
      if (unseen.length) {
        contested = true;
        // Live edits of one field are concurrent: with one by the CRM among them, crm-wins decides for it.
        if (side !== 'crm' || !edits.some((e) => e.side === 'crm')) for (const e of unseen) against.set(`${e.side}|${field}`, before[field] ?? null);
      }
      const others = edits.filter((e) => e.side !== side);
      if (others.length === edits.length) continue;
      if (others.length) rec.live.set(field, others);
      else {
        rec.live.delete(field);
        rec.loose.add(field);
      }
    }
    rec.deletions.push({ side, seq: this.next(), contested, against });
  }

  leftScope(rec: RecordIntent, crm: Snapshot): void {
    rec.leftScope = crm;
  }

  keep(rec: RecordIntent, k: Kept): void {
    rec.kept = rec.kept.filter((x) => !(x.side === k.side && x.itemId === k.itemId && x.key === k.key));
    rec.kept.push(k);
  }

  expected(rec: RecordIntent): Expected {
    if (rec.leftScope) return 'left-scope';
    const last = rec.deletions[rec.deletions.length - 1];
    if (!last) return 'alive';
    if (!last.contested) return 'gone';
    // Every edit that stood against the delete was undone by its own side: keep-updated has nothing to keep, and
    // the delete may stand (stories.test.ts 2e, 2g). A cycle that read an edit in place (2e, 2g), or the delete
    // before the CRM edit that overrules a pending one (2f), may fairly have kept the record for it.
    return this.undone(rec, last) ? 'either' : 'alive';
  }

  private undone(rec: RecordIntent, d: Deletion): boolean {
    for (const [key, held] of d.against) {
      const [side, field] = key.split('|');
      const mine = (rec.history.get(field) ?? []).filter((e) => e.side === side && e.seq > d.seq);
      if (mine[mine.length - 1]?.value !== held) return false;
    }
    return true;
  }
}
