/**
 * Planning one record type of one cycle, without I/O: staged rows of both sides → records (through the type's
 * field mapper) → the policy's field limits and scope rules → reconcile(). Used by the `plan` activity and by the
 * dry run (`cxsync plan`), so both decide the same way.
 */
import { closeEmailSlots, CONTACT_EXCHANGE_ONLY, CONTACT_FIELD_LIMITS } from './contact';
import { EVENT_LIMITS } from './event';
import { TASK_LIMITS } from './task';
import { isoInstant, parseWallTime, resolveTimeZone, wallToInstant } from './timezone';
import { fingerprint } from './fingerprint';
import { logs, outOfScope, reconcilePolicyFor, type Policy, type ScopeTraits } from './policy';
import { PLAN_SLICE, reconcileSteps, runSteps, type MappingState, type ReconcileOutput, type Side, type SideChange } from './reconcile';
import type { Result } from './result';

export interface StagedItem {
  id: string;
  removed: boolean;
  changeKey: string | null;
  payload: Record<string, unknown> | null;
  /** How often the item was given back for re-planning (the other side kept changing under its write). */
  replans?: number;
}

/** An item given back this often is logged and skipped until it changes again: never a re-plan loop. */
export const MAX_REPLANS = 3;

/** Staged CRM payload keys the cycle adds (not record fields): the row version and the left-scope flag. */
export const CRM_VERSION_KEY = 'cxsyncVersion';
export const LEFT_SCOPE_KEY = 'cxsyncLeftScope';

/** Record fields only Exchange holds, per type (see ReconcileInput.exchangeOnly). */
export const EXCHANGE_ONLY_FIELDS: Record<string, readonly string[] | undefined> = {
  contact: CONTACT_EXCHANGE_ONLY,
};

/** A record's fingerprint over the fields both sides hold, so the two sides' fingerprints compare. */
export function syncedFingerprint(recordType: string, record: unknown): string {
  const only = EXCHANGE_ONLY_FIELDS[recordType];
  if (!only || !record || typeof record !== 'object') return fingerprint(record);
  return fingerprint(Object.fromEntries(Object.entries(record).filter(([k]) => !only.includes(k))));
}

/** The pure part of a record type's adapter. */
export interface RecordParser<R> {
  fromExchange(payload: Record<string, unknown>): Result<R>;
  fromCrm(payload: Record<string, unknown>): Result<R>;
  exchangeModifiedAt(payload: Record<string, unknown>): string | undefined;
}

/**
 * The body field of each type on each side (payload keys) and its limit: "too-long body" in the policy's field
 * limits. Types not listed have no truncatable body yet; their validators reject over-long fields (skip and log).
 */
export const BODY_FIELDS: Record<string, { crm: string; exchange: string; limit: number } | undefined> = {
  contact: { crm: 'notes', exchange: 'personalNotes', limit: CONTACT_FIELD_LIMITS.notes },
  // Events and tasks: the adapters stage Exchange bodies as plain text in `bodyText`.
  event: { crm: 'description', exchange: 'bodyText', limit: EVENT_LIMITS.body },
  task: { crm: 'description', exchange: 'bodyText', limit: TASK_LIMITS.body },
};

/** The key new items are merged by (merge by email), per type. */
export const MATCH_KEYS: Record<string, ((record: unknown) => string | undefined) | undefined> = {
  contact: (r) => {
    const email = (r as { email?: unknown }).email;
    return typeof email === 'string' && email ? email.toLowerCase() : undefined;
  },
};

function strings(v: unknown): string[] | undefined {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  if (typeof v === 'string') return v.split(/[,;]/).map((s) => s.trim()).filter(Boolean);
  return undefined;
}

/** Graph dateTimeTimeZone ({ dateTime, timeZone }) or an ISO string → ISO instant (UTC unless an offset is given). */
function graphInstant(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { dateTime?: unknown }).dateTime === 'string') {
    const dt = (v as { dateTime: string }).dateTime;
    return /Z|[+-]\d\d:\d\d$/.test(dt) ? dt : `${dt}Z`;
  }
  return undefined;
}

/** Scope traits of an Exchange item, from Graph's common item properties (contacts, events, To Do tasks). */
export function exchangeTraits(p: Record<string, unknown>): ScopeTraits {
  const sensitivity = typeof p.sensitivity === 'string' ? p.sensitivity.toLowerCase() : undefined;
  return {
    categories: strings(p.categories),
    private: sensitivity === undefined ? undefined : sensitivity === 'private' || sensitivity === 'confidential',
    start: graphInstant(p.start),
    end: graphInstant(p.end) ?? graphInstant(p.dueDateTime),
    recurring: p.type === 'seriesMaster' || (p.recurrence !== undefined && p.recurrence !== null) || undefined,
    open: typeof p.status === 'string' ? p.status !== 'completed' : undefined,
    modifiedAt: typeof p.lastModifiedDateTime === 'string' ? p.lastModifiedDateTime : undefined,
  };
}

/** A CRM wall time (start_local / end_local) in its time_zone as an ISO instant. */
function wallInstant(local: unknown, zone: unknown): string | undefined {
  if (typeof local !== 'string') return undefined;
  const wall = parseWallTime(local);
  if (!wall) return undefined;
  return isoInstant(wallToInstant(wall, resolveTimeZone(typeof zone === 'string' ? zone : undefined) ?? 'UTC'));
}

/**
 * Scope traits of a CRM row. The built-in CRM's contacts carry none of these (no private flag, no categories).
 * Read, where present: is_private / private (boolean) or visibility (private, confidential); categories (list
 * or comma-separated); start_at / starts_at or start_local (+ time_zone); end_at / ends_at / due_at or
 * end_local (+ time_zone); recurring / is_recurring or a recurrence; status (completed, done, canceled,
 * cancelled = not open) or completed_at; updatedAt (added by the feed).
 */
export function crmTraits(p: Record<string, unknown>): ScopeTraits {
  const bool = (...keys: string[]) => {
    for (const k of keys) if (typeof p[k] === 'boolean') return p[k] as boolean;
    return undefined;
  };
  const str = (...keys: string[]) => {
    for (const k of keys) if (typeof p[k] === 'string' && p[k]) return p[k] as string;
    return undefined;
  };
  const status = str('status')?.toLowerCase();
  const visibility = str('visibility')?.toLowerCase();
  return {
    categories: strings(p.categories),
    private: bool('is_private', 'private') ?? (visibility === undefined ? undefined : visibility === 'private' || visibility === 'confidential'),
    start: str('start_at', 'starts_at') ?? wallInstant(p.start_local, p.time_zone),
    end: str('end_at', 'ends_at', 'due_at') ?? wallInstant(p.end_local, p.time_zone),
    recurring: bool('recurring', 'is_recurring') ?? (p.recurrence !== undefined ? p.recurrence !== null : undefined),
    open: status !== undefined ? !['completed', 'done', 'canceled', 'cancelled'].includes(status) : p.completed_at !== undefined ? !p.completed_at : undefined,
    modifiedAt: str('updatedAt', 'updated_at'),
  };
}

export interface PlanNote {
  level: 'error' | 'warn' | 'info' | 'verbose';
  side?: Side;
  itemId?: string;
  message: string;
}

export interface CyclePlanInput<R> {
  recordType: string;
  exchange: StagedItem[];
  crm: StagedItem[];
  /** Mapping rows touching any staged id. */
  mappings: MappingState[];
  /** All mapping rows of the mailbox and type (emptied-side guard). */
  mappedTotal: number;
  policy: Policy;
  parser: RecordParser<R>;
  /** The type's first round: no saved delta link or CRM watermark yet. */
  firstSync: boolean;
  now: Date;
  massDeleteDecision?: 'confirm' | 'discard';
  /** Sides read only in part this cycle (a round longer than the batch size). */
  partialRound?: Side[];
}

export interface CyclePlan<R> extends ReconcileOutput<R> {
  /** Lines for the sync log (already filtered by the policy's log level; errors always kept). */
  notes: PlanNote[];
  exchangeChanges: Map<string, SideChange<R>>;
  crmChanges: Map<string, SideChange<R>>;
}

function cut(s: string, limit: number): string {
  let t = s.slice(0, limit);
  // Never leave half a surrogate pair at the end.
  const last = t.charCodeAt(t.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) t = t.slice(0, -1);
  return t;
}

export function planCycle<R>(input: CyclePlanInput<R>): CyclePlan<R> {
  return runSteps(planCycleSteps(input));
}

/** planCycle as a generator pausing every PLAN_SLICE items (see reconcileSteps): what the plan activity drives. */
export function* planCycleSteps<R>(input: CyclePlanInput<R>): Generator<void, CyclePlan<R>, void> {
  const { policy, recordType, parser } = input;
  const notes: PlanNote[] = [];
  const body = BODY_FIELDS[recordType];
  const matchKey = MATCH_KEYS[recordType];
  const rp = reconcilePolicyFor(policy, recordType);

  function* toChanges(side: Side, rows: StagedItem[]): Generator<void, Map<string, SideChange<R>>, void> {
    const out = new Map<string, SideChange<R>>();
    let n = 0;
    for (const r of rows) {
      if (++n % PLAN_SLICE === 0) yield;
      if ((r.replans ?? 0) >= MAX_REPLANS) {
        notes.push({ level: 'error', side, itemId: r.id, message: `skipped: the ${side === 'crm' ? 'Exchange' : 'CRM'} copy changed under ${r.replans} attempts to write this change; it is planned again when either side next changes it` });
        continue;
      }
      if (r.removed) {
        out.set(r.id, { id: r.id, removed: true, ...(r.payload?.[LEFT_SCOPE_KEY] ? { leftScope: true } : {}) });
        continue;
      }
      let payload = { ...(r.payload ?? {}) };
      if (body) {
        const key = side === 'crm' ? body.crm : body.exchange;
        const v = payload[key];
        if (typeof v === 'string' && v.trim().length > body.limit) {
          if (policy.fieldLimits.body === 'skip') {
            notes.push({ level: 'error', side, itemId: r.id, message: `skipped: field ${key} is ${v.trim().length} characters long; the limit is ${body.limit} (fieldLimits.body is skip)` });
            continue;
          }
          payload = { ...payload, [key]: cut(v.trim(), body.limit) };
          notes.push({ level: 'warn', side, itemId: r.id, message: `field ${key} is ${v.trim().length} characters long; truncated to ${body.limit} (fieldLimits.body is truncate)` });
        }
      }
      const parsed = side === 'crm' ? parser.fromCrm(payload) : parser.fromExchange(payload);
      if (!parsed.ok) {
        notes.push({ level: 'error', side, itemId: r.id, message: `skipped: ${parsed.error}` });
        continue;
      }
      const traits = side === 'crm' ? crmTraits(payload) : exchangeTraits(payload);
      const scope = outOfScope(policy, recordType, side, traits, { now: input.now, firstSync: input.firstSync });
      out.set(r.id, {
        id: r.id,
        removed: false,
        record: parsed.value,
        fingerprint: syncedFingerprint(recordType, parsed.value),
        ...(side === 'exchange'
          ? { changeKey: r.changeKey ?? undefined, modifiedAt: parser.exchangeModifiedAt(payload) }
          : { modifiedAt: typeof payload.updatedAt === 'string' ? payload.updatedAt : undefined, ...(typeof payload[CRM_VERSION_KEY] === 'string' ? { version: payload[CRM_VERSION_KEY] as string } : {}) }),
        ...(rp.mergeByEmail && matchKey ? { matchKey: matchKey(parsed.value) } : {}),
        ...(scope ? { outOfScope: scope } : {}),
      });
    }
    return out;
  }

  const exchangeChanges = yield* toChanges('exchange', input.exchange);
  const crmChanges = yield* toChanges('crm', input.crm);
  const result = yield* reconcileSteps<R>({
    exchangeOnly: EXCHANGE_ONLY_FIELDS[recordType],
    normalizeMerged: recordType === 'contact' ? closeEmailSlots : undefined,
    exchange: [...exchangeChanges.values()],
    crm: [...crmChanges.values()],
    mappings: input.mappings,
    policy: rp,
    mappedTotal: input.mappedTotal,
    massDeleteDecision: input.massDeleteDecision,
    partialRound: input.partialRound,
  });

  for (const s of result.skipped) notes.push({ level: 'verbose', side: s.side, itemId: s.id, message: `not synced: ${s.reason}` });
  for (const h of result.held) notes.push({ level: 'warn', side: h.side, message: `mass delete held: ${h.reason}; no deletes mirrored until an operator decides` });
  for (const op of result.operations) {
    if (op.kind === 'link') notes.push({ level: 'info', side: 'exchange', itemId: op.exchangeId, message: `linked to CRM ${op.crmId}: ${op.reason}` });
  }
  if (input.massDeleteDecision) notes.push({ level: 'warn', message: `mass delete ${input.massDeleteDecision === 'confirm' ? 'confirmed' : 'discarded'} by an operator` });

  return { ...result, notes: notes.filter((n) => logs(policy, n.level)), exchangeChanges, crmChanges };
}
