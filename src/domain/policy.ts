/**
 * Sync policies (DESIGN.md, "Policy"; docs/POLICIES.md): what is synced, in which direction, how conflicts and
 * deletes are settled, which items are in scope, when cycles run. A policy file is JSON; every field is
 * optional and falls back to the built-in default, so `{ "contact": { "direction": "crm-to-exchange" } }` is a
 * complete policy. Validation names the field path and the values it accepts.
 *
 * Per-type settings live in sections keyed by record type ('contact', 'event', 'task'); a type's section is
 * read by the cycle only once the type is synced (src/domain/status.ts RECORD_TYPES), so the event and task
 * sections can be set ahead of time.
 */
import { z } from 'zod';
import { fail, ok, type Result } from './result';
import { isValidTimeZone, parseHhMm, WEEKDAYS } from './schedule';
import { INVITATION_POLICIES } from './invitations';
import { validateTaskStatusMap, type TaskStatusMap } from './task';
import { normaliseAddress, normaliseDomain } from './email-records';
import { CONFLICT_RULES, DELETE_RULES, DIRECTIONS, type ReconcilePolicy, type Side } from './reconcile';

// The rule names belong to the reconciler, which gives them their meaning.
export { CONFLICT_RULES, DELETE_RULES, DIRECTIONS } from './reconcile';
export const FILTERS = ['all', 'owned', 'workgroup', 'matching-crm', 'category'] as const;
export const LOG_LEVELS = ['none', 'default', 'informational', 'verbose'] as const;
export const BODY_RULES = ['truncate', 'skip'] as const;
export const CATEGORY_COLORS = Array.from({ length: 25 }, (_, i) => `preset${i}`) as [string, ...string[]];
export const POLICY_RECORD_TYPES = ['contact', 'event', 'task'] as const;
export type PolicyRecordType = (typeof POLICY_RECORD_TYPES)[number];
export type Filter = (typeof FILTERS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The name of the policy a mailbox without one uses. It is stored like any other and can be updated, not deleted. */
export const DEFAULT_POLICY_NAME = 'default';
export const POLICY_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/**
 * Filters each record type can honour today, refused rather than ignored otherwise. Contacts: the CRM contact
 * feed reads a scope (crmScopeFor): the user's own contacts, every contact ("all"), or those of the user's
 * workgroup; "matching-crm" matches contacts by email. Events and tasks: their CRM feeds read the items the user
 * owns (the event feed also re-enters items by window and reads attendees), so "all" and "workgroup" stay
 * refused there, as does "matching-crm" (matching by the attendees' CRM records is not built yet).
 */
export const SUPPORTED_FILTERS: Record<PolicyRecordType, readonly Filter[]> = {
  contact: ['all', 'owned', 'workgroup', 'matching-crm', 'category'],
  event: ['owned', 'category'],
  task: ['owned', 'category'],
};

/**
 * Which CRM records a type's feed reads: the user's own ("owned"), every one whoever owns it ("all"), or those
 * owned by any CRM user of the user's workgroup ("workgroup"; a user without a workgroup: only their own).
 */
export type CrmScope = 'owned' | 'all' | 'workgroup';

/** The CRM feed scope of a type's policy: its filter when that is "all" or "workgroup", else the user's own records. */
export function crmScopeFor(policy: Policy, recordType: string): CrmScope {
  const f = typePolicy(policy, recordType).filter;
  return f === 'all' || f === 'workgroup' ? f : 'owned';
}

/** Marks a refinement whose message should end with the value it got. */
const SHOW_VALUE = { showValue: true };

const enumOf = <T extends readonly [string, ...string[]]>(values: T) => z.enum(values as unknown as [T[number], ...T[number][]]);

const sidePrevent = z
  .object({ create: z.boolean().default(false), update: z.boolean().default(false), delete: z.boolean().default(false) })
  .strict()
  .default({});

const category = z
  .object({
    name: z.string().trim().min(1, 'must not be empty').max(255),
    color: z.enum(CATEGORY_COLORS),
  })
  .strict();

function typeSection(defaults: { folder: string }) {
  return {
    enabled: z.boolean().default(true),
    direction: enumOf(DIRECTIONS).default('both'),
    conflict: enumOf(CONFLICT_RULES).default('crm-wins'),
    deleteVsUpdate: enumOf(DELETE_RULES).default('keep-updated'),
    /** Operations never carried out on a side, whatever the direction and rules say. */
    prevent: z.object({ crm: sidePrevent, exchange: sidePrevent }).strict().default({}),
    filter: enumOf(FILTERS).default('owned'),
    /** The category designating Exchange items to sync with filter "category"; default: the marking category's name. */
    filterCategory: z.string().trim().min(1, 'must not be empty').max(255).nullable().default(null),
    excludePrivate: z.boolean().default(true),
    /** Items carrying this category are never synced; null turns the exclusion off. */
    excludeCategory: z.string().trim().min(1, 'must not be empty').max(255).nullable().default('DoNotSync'),
    /** Dedicated folder (created on first use), or null for the mailbox's default folder. */
    folder: z.string().trim().min(1, 'must not be empty; use null for the default folder').max(255).nullable().default(defaults.folder),
    /** Overrides the policy's marking category for this type. */
    category: category.nullable().default(null),
    /** Do not mark items exported to Exchange with the category. */
    syncWithoutCategory: z.boolean().default(false),
  };
}

const contactSection = z
  .object({
    ...typeSection({ folder: 'VContacts' }),
    /** Link a new Exchange contact to a new CRM contact with the same email instead of copying each across. */
    mergeByEmail: z.boolean().default(true),
    /** Contact class given to contacts cxsync creates in the CRM from Exchange (crm.contacts.contact_class); null for none. Not a synced field. */
    contactClass: z.string().trim().min(1, 'must not be empty').max(100).nullable().default(null),
  })
  .strict()
  .default({});

const eventSection = z
  .object({
    ...typeSection({ folder: 'VEvents' }),
    /** Events are synced from this many days in the past (at most 30) to this many in the future (at most 365). */
    window: z
      .object({ pastDays: z.number().int().min(0).max(30).default(30), futureDays: z.number().int().min(0).max(365).default(365) })
      .strict()
      .default({}),
    /** First sync (as Sage CRM): events modified or ending in the last N days, and recurring ones. */
    firstSync: z.object({ days: z.number().int().min(0).max(365).default(14), recurring: z.boolean().default(true) }).strict().default({}),
    /** Which meetings are written with their attendees, so that Exchange mails them (src/domain/invitations.ts). */
    invitations: enumOf(INVITATION_POLICIES).default('new-future'),
  })
  .strict()
  .default({});

const taskSection = z
  .object({
    ...typeSection({ folder: 'VTasks' }),
    /** First sync (as Sage CRM): tasks modified in the last N days, and open ones. */
    firstSync: z.object({ days: z.number().int().min(0).max(365).default(14), open: z.boolean().default(true) }).strict().default({}),
    /**
     * Which task status becomes which on the other side; a status without an entry is not synced. Null:
     * Acumatica's table (src/domain/task.ts ACUMATICA_TASK_STATUS_MAP).
     */
    statusMap: z
      .object({ crmToExchange: z.record(z.string(), z.string()), exchangeToCrm: z.record(z.string(), z.string()) })
      .strict()
      .superRefine((m, ctx) => {
        const r = validateTaskStatusMap(m as TaskStatusMap);
        if (!r.ok) ctx.addIssue({ code: 'custom', message: r.error.replace(/^task status map: /, '') });
      })
      .nullable()
      .default(null),
  })
  .strict()
  .default({});

/** A mail folder name as Exchange takes it: not empty, at most 255 characters, no path separator. */
const mailFolderName = z
  .string()
  .trim()
  .min(1, 'must not be empty; use null for no such folder')
  .max(255)
  .refine((n) => !/[\\/]/.test(n), { message: 'must be a folder name, not a path (no / or \\)', params: SHOW_VALUE });

const emailSection = z
  .object({
    /** File mail dropped into the drop folders (docs/RECORD_TYPES.md, "Email"). Off until a policy turns it on. */
    enabled: z.boolean().default(false),
    /**
     * The drop folders, created under the mailbox's top of information store on first use: a message dropped
     * into one is filed to the CRM record its sender matches, or to a new record of the folder's type. Null: no
     * folder for that type.
     */
    dropFolders: z
      .object({
        account: mailFolderName.nullable().default('VAccounts'),
        contact: mailFolderName.nullable().default('VContacts'),
        lead: mailFolderName.nullable().default('VLeads'),
      })
      .strict()
      .default({}),
    attachments: z
      .object({
        /** Store a filed message's attachments in the CRM; off: the message is filed without them. */
        enabled: z.boolean().default(true),
        /** Larger attachments are kept as a placeholder naming the limit (never failing the message); null: no limit. */
        maxBytes: z.number().int().min(1).max(150 * 1024 * 1024).nullable().default(10 * 1024 * 1024),
      })
      .strict()
      .default({}),
    /**
     * File replies to a filed message (in Inbox or Sent Items, same conversation, naming a filed message in
     * In-Reply-To or References) to the records it was filed to. Reads Inbox and Sent Items: one more request
     * each per cycle.
     */
    fileReplies: z.boolean().default(false),
    /** Addresses and domains never filed to (nor created as) a CRM record; operators add more with cxsync email ignore-*. */
    exclude: z
      .object({
        /** The domain of the mailbox's own address (internal mail). */
        ownDomain: z.boolean().default(true),
        addresses: z.array(z.string().refine((a) => normaliseAddress(a) !== null, { message: 'must be an email address such as anna@contoso.com', params: SHOW_VALUE })).default([]),
        domains: z.array(z.string().refine((d) => normaliseDomain(d) !== null, { message: 'must be a domain such as contoso.com', params: SHOW_VALUE })).default([]),
      })
      .strict()
      .default({}),
    /**
     * Email sync (Acumatica; docs/RECORD_TYPES.md "Email sync (the CRM Email folder)"): the CRM email activities
     * of the mailbox's user are kept in `folder`, and messages placed there become CRM email activities. Runs
     * only when `email.enabled` (the master switch) is on too; attachments follow `email.attachments`.
     */
    sync: z
      .object({
        enabled: z.boolean().default(false),
        folder: mailFolderName.default('CRM Email'),
        /** Participants of a message placed in the folder that match no CRM record become contacts (never excluded addresses). */
        contactsFromParticipants: z.boolean().default(false),
      })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((e, ctx) => {
    const names = Object.entries(e.dropFolders).filter(([, n]) => n !== null) as Array<[string, string]>;
    for (let i = 0; i < names.length; i++) {
      for (let j = 0; j < i; j++) {
        if (names[i][1].toLowerCase() === names[j][1].toLowerCase()) {
          ctx.addIssue({ code: 'custom', path: ['dropFolders', names[i][0]], message: `must differ from dropFolders.${names[j][0]} (Exchange compares folder names without case)` });
        }
      }
    }
    // The sync folder is two-way and never filed from: sharing a name with a drop folder would make one folder both.
    const same = names.find(([, n]) => n.toLowerCase() === e.sync.folder.toLowerCase());
    if (same) {
      ctx.addIssue({ code: 'custom', path: ['sync', 'folder'], message: `must differ from dropFolders.${same[0]} ("${same[1]}"): the sync folder is not a drop folder (Exchange compares folder names without case)` });
    }
  })
  .default({});

const activeHours = z
  .object({
    days: z.array(z.enum(WEEKDAYS)).min(1, 'must name at least one day').default([...WEEKDAYS]),
    from: z.string().refine((s) => parseHhMm(s) !== undefined && s !== '24:00', { message: 'must be a time HH:MM between 00:00 and 23:59', params: SHOW_VALUE }).default('00:00'),
    to: z.string().refine((s) => parseHhMm(s) !== undefined, { message: 'must be a time HH:MM between 00:00 and 24:00', params: SHOW_VALUE }).default('24:00'),
    /** IANA time zone; default: the CRM user's time zone. */
    timeZone: z.string().refine(isValidTimeZone, { message: 'must be an IANA time zone such as Europe/Berlin', params: SHOW_VALUE }).nullable().default(null),
  })
  .strict();

export const policySchema = z
  .object({
    description: z.string().max(500).default(''),
    /** Category (name and colour preset0..preset24) marking items exported to Exchange. */
    category: category.default({ name: 'CRM', color: 'preset7' }),
    schedule: z
      .object({
        /** Seconds between scheduled cycles; null: the worker's CXSYNC_SYNC_INTERVAL_SECONDS. */
        intervalSeconds: z.number().int().min(5).max(7 * 24 * 3600).nullable().default(null),
        /** When scheduled cycles may start; null: any time. sync-now is not limited. */
        activeHours: activeHours.nullable().default(null),
      })
      .strict()
      .default({}),
    /** Operations applied per batch and items per cycle and type; null: the worker's CXSYNC_BATCH_SIZE. */
    batchSize: z.number().int().min(1).max(10_000).nullable().default(null),
    fieldLimits: z
      .object({
        /** A body (notes, description) over its limit: cut to the limit, or skip the item. */
        body: enumOf(BODY_RULES).default('truncate'),
      })
      .strict()
      .default({}),
    logLevel: enumOf(LOG_LEVELS).default('default'),
    /** Emptied-side guard: when one side deletes at least `share` of the mapped items and at least `minItems`, hold. */
    massDeleteGuard: z
      .object({
        enabled: z.boolean().default(true),
        minItems: z.number().int().min(1).default(10),
        share: z.number().min(0.01).max(1).default(0.9),
      })
      .strict()
      .default({}),
    contact: contactSection,
    event: eventSection,
    task: taskSection,
    email: emailSection,
  })
  .strict()
  .superRefine((p, ctx) => {
    for (const t of POLICY_RECORD_TYPES) {
      const s = p[t];
      if (!SUPPORTED_FILTERS[t].includes(s.filter)) {
        ctx.addIssue({
          code: 'custom',
          path: [t, 'filter'],
          message: `"${s.filter}" is not available for ${t}s yet (${s.filter === 'matching-crm' ? `${t}s are not matched to CRM records yet` : `the CRM ${t} feed reads the items the user owns`}); use one of ${SUPPORTED_FILTERS[t].join(', ')}`,
        });
      }
    }
  });

export type Policy = z.output<typeof policySchema>;
export type PolicyInput = z.input<typeof policySchema>;
export type TypePolicy = Policy['contact'] | Policy['event'] | Policy['task'];

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function valueAt(input: unknown, path: (string | number)[]): unknown {
  let cur = input;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

/** One readable line per problem: the field path, what it accepts, and what it got. */
export function formatPolicyIssues(error: z.ZodError, input: unknown): string[] {
  return error.issues.map((i) => {
    const path = i.path.join('.');
    const at = path || 'policy';
    const got = ` (got ${describeValue(valueAt(input, i.path))})`;
    switch (i.code) {
      case 'invalid_enum_value':
        return `${at} must be one of ${i.options.join(', ')}${got}`;
      case 'invalid_literal':
        return `${at} must be ${JSON.stringify(i.expected)}${got}`;
      case 'invalid_type':
        if (i.received === 'undefined') return `${at} is required`;
        return `${at} must be ${i.expected === 'object' ? 'an object' : i.expected === 'array' ? 'a list' : `a ${i.expected}`}${got}`;
      case 'unrecognized_keys':
        return `${path ? `${path}: ` : ''}unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
      case 'too_small':
        if (i.type === 'array') return `${at} ${i.message}`;
        if (i.type === 'string') return `${at} ${i.message === 'must not be empty' || i.message.startsWith('must not be empty') ? i.message : `must be at least ${i.minimum} characters`}${got}`;
        return `${at} must be at least ${i.minimum}${got}`;
      case 'too_big':
        if (i.type === 'string') return `${at} must be at most ${i.maximum} characters long`;
        return `${at} must be at most ${i.maximum}${got}`;
      default:
        return `${at} ${i.message}${i.code === 'custom' && !i.params?.showValue ? '' : got}`;
    }
  });
}

/** Validates a policy document; missing fields take the built-in defaults. */
export function parsePolicy(input: unknown): Result<Policy> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return fail('a policy must be a JSON object, e.g. {"contact": {"direction": "both"}}');
  const r = policySchema.safeParse(input);
  if (!r.success) return fail(formatPolicyIssues(r.error, input).join('; '));
  return ok(r.data);
}

/** The built-in default policy, fully resolved. */
export const BUILTIN_POLICY: Policy = policySchema.parse({});

/** The settings of one record type. */
export function typePolicy(policy: Policy, recordType: string): TypePolicy {
  // email has a section but is not a synced record type (it has no direction, conflict rule or filter).
  const s = (POLICY_RECORD_TYPES as readonly string[]).includes(recordType) ? (policy as unknown as Record<string, TypePolicy | undefined>)[recordType] : undefined;
  if (!s) throw new Error(`the policy has no section for record type ${recordType}`);
  return s;
}

/** The category marking items of this type exported to Exchange, or null when they go unmarked. */
export function markingCategory(policy: Policy, recordType: string): { name: string; color: string } | null {
  const s = typePolicy(policy, recordType);
  if (s.syncWithoutCategory) return null;
  return s.category ?? policy.category;
}

/** What the reconciler needs of a type's policy. */
export function reconcilePolicyFor(policy: Policy, recordType: string): ReconcilePolicy {
  const s = typePolicy(policy, recordType);
  return {
    direction: s.direction,
    conflict: s.conflict,
    deleteVsUpdate: s.deleteVsUpdate,
    prevent: { crm: { ...s.prevent.crm }, exchange: { ...s.prevent.exchange } },
    // matching-crm matches contacts by email whether or not mergeByEmail is set.
    mergeByEmail: 'mergeByEmail' in s ? s.mergeByEmail || s.filter === 'matching-crm' : false,
    newExchangeItems: s.filter === 'matching-crm' ? 'match-only' : 'copy',
    massDeleteGuard: policy.massDeleteGuard.enabled ? { minItems: policy.massDeleteGuard.minItems, share: policy.massDeleteGuard.share } : undefined,
  };
}

/** Which sync-log levels a policy's log level records. Errors are always recorded: a hidden error is a silent failure. */
export function logs(policy: Policy, level: 'error' | 'warn' | 'info' | 'verbose'): boolean {
  const rank = { none: 0, default: 1, informational: 2, verbose: 3 }[policy.logLevel];
  const need = { error: 0, warn: 1, info: 2, verbose: 3 }[level];
  return need <= rank;
}

// ---- scope: which items a type's policy lets through ------------------------------------------------------

/** What scope rules look at, read from an item's payload on its side. Absent fields are "unknown": no rule fires. */
export interface ScopeTraits {
  categories?: string[];
  private?: boolean;
  /** Events: start and end instants (ISO). */
  start?: string;
  end?: string;
  recurring?: boolean;
  /** Tasks: not completed. */
  open?: boolean;
  modifiedAt?: string;
}

/** How a change that is out of scope is treated: skipped when unmapped; for a mapped pair, `mapped` says what happens. */
export interface OutOfScope {
  reason: string;
  /** 'unlink': the pair stops syncing, both copies stay; 'ignore': this change is not synced, the link stays; 'sync': rule does not apply to linked items. */
  mapped: 'unlink' | 'ignore' | 'sync';
}

const DAY = 24 * 3600 * 1000;

function instant(iso: string | undefined): number | undefined {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * The scope rules of a type's policy applied to one item. `firstSync` is true while the type's first round is
 * planned (no saved cursor yet). Rules, in order: private and DoNotSync exclusions (any item, either side);
 * the category designation (new Exchange items only); the event window; the first-sync window.
 */
export function outOfScope(policy: Policy, recordType: string, side: Side, traits: ScopeTraits, ctx: { now: Date; firstSync: boolean }): OutOfScope | undefined {
  const s = typePolicy(policy, recordType);
  const cats = (traits.categories ?? []).map((c) => c.toLowerCase());
  if (s.excludePrivate && traits.private) return { reason: 'private item (excludePrivate)', mapped: 'unlink' };
  if (s.excludeCategory && cats.includes(s.excludeCategory.toLowerCase())) return { reason: `has the category ${s.excludeCategory} (excludeCategory)`, mapped: 'unlink' };
  if (s.filter === 'category' && side === 'exchange') {
    const want = s.filterCategory ?? (s.category ?? policy.category).name;
    if (!cats.includes(want.toLowerCase())) return { reason: `not in the category ${want} (filter category)`, mapped: 'sync' };
  }
  const now = ctx.now.getTime();
  if (recordType === 'event') {
    const ev = s as Policy['event'];
    const start = instant(traits.start);
    const end = instant(traits.end) ?? start;
    if (!traits.recurring && end !== undefined && end < now - ev.window.pastDays * DAY) return { reason: `ended more than ${ev.window.pastDays} days ago (event window)`, mapped: 'ignore' };
    if (!traits.recurring && start !== undefined && start > now + ev.window.futureDays * DAY) return { reason: `starts more than ${ev.window.futureDays} days ahead (event window)`, mapped: 'ignore' };
    if (ctx.firstSync) {
      const days = ev.firstSync.days * DAY;
      const modified = instant(traits.modifiedAt);
      const recent = (modified !== undefined && modified >= now - days) || (end !== undefined && end >= now - days);
      if (!recent && !(ev.firstSync.recurring && traits.recurring)) return { reason: `first sync: not modified or ended in the last ${ev.firstSync.days} days${ev.firstSync.recurring ? ' and not recurring' : ''}`, mapped: 'ignore' };
    }
  }
  if (recordType === 'task' && ctx.firstSync) {
    const tk = s as Policy['task'];
    const modified = instant(traits.modifiedAt);
    const recent = modified !== undefined && modified >= now - tk.firstSync.days * DAY;
    if (!recent && !(tk.firstSync.open && traits.open)) return { reason: `first sync: not modified in the last ${tk.firstSync.days} days${tk.firstSync.open ? ' and not open' : ''}`, mapped: 'ignore' };
  }
  return undefined;
}
