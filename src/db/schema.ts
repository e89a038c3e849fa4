/** Kysely table types for both schemas. `sync.*` is the engine's state; `crm.*` is the built-in CRM. */
import type { ColumnType, Generated, JSONColumnType } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T extends object | null> = JSONColumnType<T, string, string>;

export interface PolicyTable {
  name: string;
  settings: Json<Record<string, unknown>>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface MailboxTable {
  id: string; // user principal name, lower-cased
  display_name: string | null;
  crm_user_id: string;
  policy_name: string | null;
  enrolled_at: Generated<Date>;
  /** Mass deletes held by the emptied-side guard, per record type (0002_policies). */
  held_deletes: Json<Record<string, HeldDeletesRow>> | null;
  /** An operator's answer to held deletes, per record type: 'confirm' or 'discard' (0002_policies). */
  delete_decision: Json<Record<string, 'confirm' | 'discard'>> | null;
}

export interface HeldDeletesRow {
  side: 'exchange' | 'crm';
  deleted: number;
  mapped: number;
  reason: string;
  cycleId: string;
  at: string;
}

export interface CursorTable {
  mailbox_id: string;
  record_type: string;
  exchange_folder_id: string | null;
  delta_link: string | null;
  pending_delta_link: string | null;
  next_link: string | null;
  crm_watermark: string | null;
  pending_crm_watermark: string | null;
  /**
   * crm.feed_origin() when the watermark was saved (0007_crm_restore_guard): which cluster, database and feed
   * tables its xid8 counts in; feed-guard.ts checkWatermark compares it. Null: unverifiable, one full read.
   */
  crm_watermark_origin: Generated<string | null>;
  /** The cycle that committed this type (0006): a resumed cycle skips the type instead of reading it again. */
  committed_cycle: Generated<string | null>;
  updated_at: Generated<Date>;
}

export interface StagedChangeTable {
  mailbox_id: string;
  record_type: string;
  side: 'exchange' | 'crm';
  external_id: string;
  removed: boolean;
  change_key: string | null;
  payload: Json<Record<string, unknown>> | null;
  staged_at: Generated<Date>;
  /** The cycle whose plan consumed the row (0006); null: still to plan. */
  planned_cycle: Generated<string | null>;
  /** How often the row was given back for re-planning (a failed precondition on the other side). */
  replans: Generated<number>;
}

export interface MappingTable {
  mailbox_id: string;
  record_type: string;
  crm_id: string;
  exchange_id: string;
  sync_id: string;
  crm_fingerprint: string | null;
  exchange_change_key: string | null;
  exchange_fingerprint: string | null;
  /** The last synced value of every synced field: the three-way merge's base (0006); null for older mappings. */
  base: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
  /** The CRM row version (change_txid) last seen or written (0006): CRM writes are conditional on it. */
  crm_version: ColumnType<string | null, string | null | undefined, string | null>;
  updated_at: Generated<Date>;
}

export interface OperationTable {
  id: Generated<string>;
  cycle_id: string;
  mailbox_id: string;
  record_type: string;
  seq: number;
  side: 'exchange' | 'crm' | 'mapping';
  kind: string;
  crm_id: string | null;
  exchange_id: string | null;
  sync_id: string;
  payload: Json<Record<string, unknown>> | null;
  reason: string;
  status: Generated<'pending' | 'done' | 'failed' | 'skipped'>;
  attempts: Generated<number>;
  error: string | null;
  done_at: Date | null;
  /** The cycle whose plan made the operation (0006); cycle_id moves with carry-over, this does not. */
  planned_cycle: Generated<string | null>;
  /** Errors met that were about this operation (0011); at the limit it is marked failed. */
  failures: Generated<number>;
}

/** The mailbox's current streak of failed activity attempts (0011); no row: the last attempt succeeded. */
export interface MailboxHealthTable {
  mailbox_id: string;
  failing_since: Date;
  attempts: number;
  record_type: string | null;
  activity: string;
  last_error: string;
  last_error_at: Date;
}

export interface CycleTable {
  id: Generated<string>;
  mailbox_id: string;
  started_at: Generated<Date>;
  ended_at: Date | null;
  status: 'running' | 'done' | 'failed';
  summary: Json<Record<string, unknown>> | null;
}

export interface ConflictTable {
  id: Generated<string>;
  cycle_id: string;
  mailbox_id: string;
  record_type: string;
  crm_id: string;
  exchange_id: string;
  rule: string;
  outcome: string;
  crm_version: Json<Record<string, unknown>> | null;
  exchange_version: Json<Record<string, unknown>> | null;
  at: Generated<Date>;
}

export interface LogTable {
  id: Generated<string>;
  mailbox_id: string;
  cycle_id: string | null;
  at: Generated<Date>;
  level: 'error' | 'warn' | 'info' | 'verbose';
  record_type: string | null;
  side: string | null;
  item_id: string | null;
  message: string;
}

export interface CrmUserTable {
  id: Generated<string>;
  email: string;
  display_name: string;
  workgroup: string | null;
  time_zone: Generated<string>;
}

export interface CrmContactTable {
  id: Generated<string>;
  owner_id: string | null;
  first_name: string | null;
  last_name: string | null;
  email: string | null;
  /** Outlook's 2nd and 3rd email slots (0006). */
  email2: string | null;
  email3: string | null;
  phone: string | null;
  mobile: string | null;
  company: string | null;
  job_title: string | null;
  department: string | null;
  street: string | null;
  city: string | null;
  state: string | null;
  postal_code: string | null;
  country: string | null;
  notes: string | null;
  /** Contact class given by the sync to contacts it imported from Exchange (policy contact.contactClass); not synced. */
  contact_class: Generated<string | null>;
  /** The account the contact belongs to (0013_crm_email); not synced. */
  account_id: Generated<string | null>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  deleted_at: Date | null;
  change_txid: Generated<string>;
  changed_by: Generated<string | null>;
}

/** Timestamps without time zone (wall times) are read as text by the CRM stores, never as Date. */
type WallTimestamp = ColumnType<string, string, string>;

export interface CrmEventTable {
  id: Generated<string>;
  owner_id: string | null;
  event_type: Generated<string>;
  status: Generated<'Open' | 'Completed' | 'Canceled'>;
  subject: Generated<string>;
  description: string | null;
  location: string | null;
  all_day: Generated<boolean>;
  start_local: WallTimestamp;
  end_local: WallTimestamp;
  time_zone: Generated<string>;
  visibility: Generated<string>;
  organizer_email: string | null;
  organizer_name: string | null;
  categories: Generated<string[]>;
  recurrence: Json<Record<string, unknown>> | null;
  series_id: string | null;
  original_start: WallTimestamp | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  deleted_at: Date | null;
  change_txid: Generated<string>;
  changed_by: Generated<string | null>;
}

export interface CrmEventAttendeeTable {
  event_id: string;
  email: string;
  name: string | null;
  contact_id: string | null;
  user_id: string | null;
  attendance: Generated<string>;
  response: Generated<string>;
}

export interface CrmTaskTable {
  id: Generated<string>;
  owner_id: string | null;
  contact_id: string | null;
  subject: string;
  description: string | null;
  status: Generated<string>;
  priority: Generated<string>;
  due_date: ColumnType<string | null, string | null, string | null>;
  reminder_local: WallTimestamp | null;
  time_zone: string | null;
  categories: Generated<string[]>;
  completed_at: Date | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  deleted_at: Date | null;
  change_txid: Generated<string>;
  changed_by: Generated<string | null>;
}

/** A hard-deleted CRM row (0007_crm_restore_guard), on the change feed's xid8 window like live rows. */
export interface CrmTombstoneTable {
  table_name: 'contacts' | 'events' | 'tasks' | 'email_activities';
  id: string;
  owner_id: string | null;
  change_txid: Generated<string>;
  deleted_at: Generated<Date>;
  /** cxsync.writer of the deleting transaction: the mailbox whose sync made the delete. */
  changed_by: string | null;
}

/** A company (0013_crm_email): mail is filed to it by its address or, for a sender without a record, its domain. */
export interface CrmAccountTable {
  id: Generated<string>;
  owner_id: string | null;
  name: string;
  /** Normalised (lower-case, no `www.`): src/domain/email-records.ts. */
  domain: string | null;
  website: string | null;
  email: string | null;
  phone: string | null;
  industry: string | null;
  street: string | null;
  city: string | null;
  state: string | null;
  postal_code: string | null;
  country: string | null;
  notes: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  deleted_at: Date | null;
  change_txid: Generated<string>;
  changed_by: Generated<string | null>;
}

/** A prospect (0013_crm_email). */
export interface CrmLeadTable {
  id: Generated<string>;
  owner_id: string | null;
  first_name: string | null;
  last_name: string | null;
  company: string | null;
  email: string | null;
  email2: string | null;
  phone: string | null;
  mobile: string | null;
  job_title: string | null;
  website: string | null;
  status: Generated<string>;
  source: string | null;
  street: string | null;
  city: string | null;
  state: string | null;
  postal_code: string | null;
  country: string | null;
  notes: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  deleted_at: Date | null;
  change_txid: Generated<string>;
  changed_by: Generated<string | null>;
}

export interface EmailRecipientJson {
  address: string;
  name: string | null;
}

/** One message as a CRM activity (0013_crm_email). */
export interface CrmEmailActivityTable {
  id: Generated<string>;
  owner_id: string | null;
  subject: Generated<string>;
  body_text: string | null;
  body_html: string | null;
  from_address: string | null;
  from_name: string | null;
  to_recipients: ColumnType<EmailRecipientJson[], string | undefined, string>;
  cc_recipients: ColumnType<EmailRecipientJson[], string | undefined, string>;
  bcc_recipients: ColumnType<EmailRecipientJson[], string | undefined, string>;
  sent_at: ColumnType<Date | null, Date | string | null, Date | string | null>;
  received_at: ColumnType<Date | null, Date | string | null, Date | string | null>;
  direction: 'incoming' | 'outgoing';
  internet_message_id: string | null;
  conversation_id: string | null;
  in_reply_to: string | null;
  /** The sync operation that created it (unique): a retried create finds it. */
  sync_id: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  deleted_at: Date | null;
  change_txid: Generated<string>;
  changed_by: Generated<string | null>;
}

/** An email activity filed to a record; one row per pair (0013_crm_email). */
export interface CrmEmailLinkTable {
  email_activity_id: string;
  record_type: 'account' | 'contact' | 'lead';
  record_id: string;
  linked_at: Generated<Date>;
  linked_by: Generated<string | null>;
}

/** An attachment with its size; `content` null and `skipped_reason` set when it was not stored (0013_crm_email). */
export interface CrmEmailAttachmentTable {
  id: Generated<string>;
  email_activity_id: string;
  attachment_key: Generated<string>;
  name: string;
  content_type: string | null;
  size_bytes: ColumnType<string, number | string, number | string>;
  is_inline: Generated<boolean>;
  content_id: string | null;
  content: Buffer | null;
  skipped_reason: string | null;
  created_at: Generated<Date>;
}

export interface EventInstanceTable {
  mailbox_id: string;
  instance_id: string;
  series_id: string;
}

/** Per mailbox and CRM meeting: are its attendees written to Outlook, or listed in the body (0009_event_invitations)? */
export interface EventInvitationTable {
  mailbox_id: string;
  crm_id: string;
  handling: 'invite' | 'list-in-body';
  reason: string;
  decided_at: Generated<Date>;
}

/** A drop folder of a mailbox (0014_email_filing). */
export interface MailFolderTable {
  mailbox_id: string;
  role: 'account' | 'contact' | 'lead' | 'inbox' | 'sentitems';
  folder_name: string;
  folder_id: string;
  delta_link: string | null;
  rescanned_at: Date | null;
  since: Generated<Date>;
}

/** A message filed from a drop folder (0014_email_filing). */
export interface MailFiledTable {
  mailbox_id: string;
  message_id: string;
  role: 'account' | 'contact' | 'lead' | 'reply';
  /** Null: left unfiled by an operator's decision. */
  activity_id: string | null;
  conversation_id: string | null;
  internet_message_id: string | null;
  filed_at: Generated<Date>;
}

/** A message that could not be filed, until it is or an operator decides (0014_email_filing). */
export interface EmailUnresolvedTable {
  id: Generated<string>;
  mailbox_id: string;
  message_id: string;
  role: 'account' | 'contact' | 'lead' | 'reply';
  internet_message_id: string | null;
  subject: string;
  sender_address: string | null;
  sender_name: string | null;
  received_at: Date | null;
  reason: string;
  candidates: Generated<unknown>;
  decision: unknown | null;
  decided_by: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** An address or domain never filed, for one mailbox or all (0014_email_filing). */
export interface EmailExclusionTable {
  id: Generated<string>;
  mailbox_id: string | null;
  kind: 'address' | 'domain';
  value: string;
  added_by: string | null;
  created_at: Generated<Date>;
}

/** A mailbox's email sync folder, its delta link and the CRM email feed's watermark (0015_email_sync). */
export interface EmailSyncFolderTable {
  mailbox_id: string;
  folder_name: string;
  folder_id: string;
  delta_link: string | null;
  rescanned_at: Date | null;
  crm_watermark: string | null;
  crm_watermark_origin: string | null;
  updated_at: Generated<Date>;
}

export type EmailSyncState = 'in-folder' | 'left-folder' | 'gone' | 'crm-deleted';

/** A message of the email sync folder and the CRM email activity it is (0015_email_sync). */
export interface EmailSyncMapTable {
  id: Generated<string>;
  mailbox_id: string;
  activity_id: string;
  message_id: string | null;
  origin: 'crm' | 'exchange';
  sync_id: string | null;
  state: Generated<EmailSyncState>;
  complete: Generated<boolean>;
  attachments_done: Generated<string[]>;
  upload: unknown | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface Database {
  'sync.policy': PolicyTable;
  'sync.mailbox': MailboxTable;
  'sync.cursor': CursorTable;
  'sync.staged_change': StagedChangeTable;
  'sync.mapping': MappingTable;
  'sync.operation': OperationTable;
  'sync.cycle': CycleTable;
  'sync.conflict': ConflictTable;
  'sync.log': LogTable;
  'sync.mailbox_health': MailboxHealthTable;
  'crm.users': CrmUserTable;
  'crm.contacts': CrmContactTable;
  'crm.events': CrmEventTable;
  'crm.event_attendees': CrmEventAttendeeTable;
  'crm.tasks': CrmTaskTable;
  'crm.tombstone': CrmTombstoneTable;
  'crm.accounts': CrmAccountTable;
  'crm.leads': CrmLeadTable;
  'crm.email_activities': CrmEmailActivityTable;
  'crm.email_links': CrmEmailLinkTable;
  'crm.email_attachments': CrmEmailAttachmentTable;
  'sync.event_instance': EventInstanceTable;
  'sync.event_invitation': EventInvitationTable;
  'sync.mail_folder': MailFolderTable;
  'sync.mail_filed': MailFiledTable;
  'sync.email_unresolved': EmailUnresolvedTable;
  'sync.email_exclusion': EmailExclusionTable;
  'sync.email_sync_folder': EmailSyncFolderTable;
  'sync.email_sync_map': EmailSyncMapTable;
}
