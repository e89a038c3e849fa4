/**
 * Recurrence of a calendar series, in Microsoft Graph's model (`patternedRecurrence`), which the CRM stores as
 * is: a pattern (daily, weekly, monthly or yearly, absolute or relative) and a range (end date, number of
 * occurrences, or none). The times of day come from the series' start; the zone is the series' zone.
 *
 * `occurrenceDates` expands a series the way Exchange does (a monthly "day 31" falls on the last day of shorter
 * months; a weekly series counts weeks from the week of its start date, weeks beginning on `firstDayOfWeek`).
 * The sync needs it to tell which expected occurrences Exchange no longer has (cancelled ones): Graph v1.0 lists
 * the instances that exist, never the ones that were cancelled.
 */
import { fail, ok, type Result } from './result';
import { addDays, type DateOnly } from './timezone';

export const DAYS_OF_WEEK = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;
export type DayOfWeek = (typeof DAYS_OF_WEEK)[number];
export const WEEK_INDEXES = ['first', 'second', 'third', 'fourth', 'last'] as const;
export type WeekIndex = (typeof WEEK_INDEXES)[number];
export const PATTERN_TYPES = ['daily', 'weekly', 'absoluteMonthly', 'relativeMonthly', 'absoluteYearly', 'relativeYearly'] as const;
export type PatternType = (typeof PATTERN_TYPES)[number];
export const RANGE_TYPES = ['endDate', 'noEnd', 'numbered'] as const;
export type RangeType = (typeof RANGE_TYPES)[number];

/** Only the fields that matter for the pattern's type are present (canonical form, so fingerprints compare). */
export interface RecurrencePattern {
  type: PatternType;
  interval: number;
  daysOfWeek?: DayOfWeek[];
  dayOfMonth?: number;
  month?: number;
  index?: WeekIndex;
  /** Weekly patterns with an interval above 1 only: which day a week starts on. */
  firstDayOfWeek?: DayOfWeek;
}

export interface RecurrenceRange {
  type: RangeType;
  startDate: DateOnly;
  endDate?: DateOnly;
  numberOfOccurrences?: number;
}

export interface Recurrence {
  pattern: RecurrencePattern;
  range: RecurrenceRange;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

function validDate(s: unknown): s is DateOnly {
  return typeof s === 'string' && DATE.test(s) && new Date(`${s}T00:00:00Z`).toISOString().slice(0, 10) === s;
}

function int(v: unknown): number | undefined {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) ? n : undefined;
}

/**
 * Validates and canonicalises a recurrence as Graph or the CRM hands it over (extra and irrelevant fields are
 * dropped; days of the week are sorted Sunday first; a weekly series' first day matters only with interval > 1).
 */
export function normalizeRecurrence(input: unknown): Result<Recurrence> {
  if (!input || typeof input !== 'object') return fail('recurrence is not an object');
  const { pattern: p, range: r } = input as { pattern?: Record<string, unknown>; range?: Record<string, unknown> };
  if (!p || !r) return fail('recurrence needs a pattern and a range');
  const type = p.type as PatternType;
  if (!PATTERN_TYPES.includes(type)) return fail(`recurrence pattern type "${String(p.type)}" is not one of ${PATTERN_TYPES.join(', ')}`);
  const interval = int(p.interval ?? 1);
  if (!interval || interval < 1 || interval > 999) return fail('recurrence interval must be a whole number from 1 to 999');
  const pattern: RecurrencePattern = { type, interval };

  const days = Array.isArray(p.daysOfWeek) ? [...new Set((p.daysOfWeek as unknown[]).map((d) => String(d).toLowerCase()))] : [];
  const badDay = days.find((d) => !DAYS_OF_WEEK.includes(d as DayOfWeek));
  if (badDay) return fail(`recurrence day "${badDay}" is not a day of the week`);
  const sortedDays = DAYS_OF_WEEK.filter((d) => days.includes(d));
  const needsDays = type === 'weekly' || type === 'relativeMonthly' || type === 'relativeYearly';
  if (needsDays) {
    if (!sortedDays.length) return fail(`a ${type} recurrence needs at least one day of the week`);
    pattern.daysOfWeek = sortedDays;
  }
  if (type === 'weekly' && interval > 1) {
    const f = String(p.firstDayOfWeek ?? 'sunday').toLowerCase() as DayOfWeek;
    if (!DAYS_OF_WEEK.includes(f)) return fail(`recurrence firstDayOfWeek "${String(p.firstDayOfWeek)}" is not a day of the week`);
    pattern.firstDayOfWeek = f;
  }
  if (type === 'absoluteMonthly' || type === 'absoluteYearly') {
    const d = int(p.dayOfMonth);
    if (!d || d < 1 || d > 31) return fail('recurrence dayOfMonth must be from 1 to 31');
    pattern.dayOfMonth = d;
  }
  if (type === 'absoluteYearly' || type === 'relativeYearly') {
    const m = int(p.month);
    if (!m || m < 1 || m > 12) return fail('recurrence month must be from 1 to 12');
    pattern.month = m;
  }
  if (type === 'relativeMonthly' || type === 'relativeYearly') {
    const i = String(p.index ?? 'first').toLowerCase() as WeekIndex;
    if (!WEEK_INDEXES.includes(i)) return fail(`recurrence index "${String(p.index)}" is not one of ${WEEK_INDEXES.join(', ')}`);
    pattern.index = i;
  }

  const rtype = r.type as RangeType;
  if (!RANGE_TYPES.includes(rtype)) return fail(`recurrence range type "${String(r.type)}" is not one of ${RANGE_TYPES.join(', ')}`);
  const startDate = String(r.startDate ?? '').slice(0, 10);
  if (!validDate(startDate)) return fail('recurrence range needs a startDate (YYYY-MM-DD)');
  const range: RecurrenceRange = { type: rtype, startDate };
  if (rtype === 'endDate') {
    const endDate = String(r.endDate ?? '').slice(0, 10);
    if (!validDate(endDate)) return fail('recurrence range of type endDate needs an endDate (YYYY-MM-DD)');
    if (endDate < startDate) return fail('recurrence range ends before it starts');
    range.endDate = endDate;
  }
  if (rtype === 'numbered') {
    const n = int(r.numberOfOccurrences);
    if (!n || n < 1 || n > 999) return fail('recurrence numberOfOccurrences must be from 1 to 999');
    range.numberOfOccurrences = n;
  }
  return ok({ pattern, range });
}

/** The Graph `patternedRecurrence` body for a canonical recurrence. */
export function toGraphRecurrence(rec: Recurrence, recurrenceTimeZone: string): Record<string, unknown> {
  const p = rec.pattern;
  return {
    pattern: {
      type: p.type,
      interval: p.interval,
      ...(p.daysOfWeek ? { daysOfWeek: p.daysOfWeek } : {}),
      ...(p.dayOfMonth ? { dayOfMonth: p.dayOfMonth } : {}),
      ...(p.month ? { month: p.month } : {}),
      ...(p.index ? { index: p.index } : {}),
      firstDayOfWeek: p.firstDayOfWeek ?? 'sunday',
    },
    range: {
      type: rec.range.type,
      startDate: rec.range.startDate,
      ...(rec.range.endDate ? { endDate: rec.range.endDate } : {}),
      ...(rec.range.numberOfOccurrences ? { numberOfOccurrences: rec.range.numberOfOccurrences } : {}),
      recurrenceTimeZone,
    },
  };
}

// ---- expansion ----------------------------------------------------------------------------------------

function ymd(d: DateOnly): [number, number, number] {
  return [+d.slice(0, 4), +d.slice(5, 7), +d.slice(8, 10)];
}
function fmt(y: number, m: number, d: number): DateOnly {
  return new Date(Date.UTC(y, m - 1, d)).toISOString().slice(0, 10);
}
function daysInMonth(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}
function weekday(d: DateOnly): number {
  const [y, m, dd] = ymd(d);
  return new Date(Date.UTC(y, m - 1, dd)).getUTCDay();
}
function dayNum(d: DateOnly): number {
  const [y, m, dd] = ymd(d);
  return Math.round(Date.UTC(y, m - 1, dd) / 86_400_000);
}

/** The `index`-th of the days of the month that fall on one of `days` (e.g. the last weekday). */
function nthInMonth(y: number, m: number, days: DayOfWeek[], index: WeekIndex): DateOnly {
  const want = new Set(days.map((d) => DAYS_OF_WEEK.indexOf(d)));
  const matches: number[] = [];
  for (let d = 1; d <= daysInMonth(y, m); d++) if (want.has(new Date(Date.UTC(y, m - 1, d)).getUTCDay())) matches.push(d);
  const i = index === 'last' ? matches.length - 1 : WEEK_INDEXES.indexOf(index);
  return fmt(y, m, matches[Math.min(i, matches.length - 1)]);
}

/** Candidate dates in pattern order, from the range's start, unbounded; callers stop it. */
function* candidates(rec: Recurrence): Generator<DateOnly> {
  const p = rec.pattern;
  const start = rec.range.startDate;
  const [sy, sm] = ymd(start);
  switch (p.type) {
    case 'daily':
      for (let k = 0; ; k++) yield addDays(start, k * p.interval);
    case 'weekly': {
      const first = DAYS_OF_WEEK.indexOf(p.firstDayOfWeek ?? 'sunday');
      const weekStart = addDays(start, -((weekday(start) - first + 7) % 7));
      const order = [...p.daysOfWeek!].map((d) => (DAYS_OF_WEEK.indexOf(d) - first + 7) % 7).sort((a, b) => a - b);
      for (let w = 0; ; w += p.interval) for (const off of order) yield addDays(weekStart, w * 7 + off);
    }
    case 'absoluteMonthly':
      for (let k = 0; ; k += p.interval) {
        const y = sy + Math.floor((sm - 1 + k) / 12);
        const m = ((sm - 1 + k) % 12) + 1;
        yield fmt(y, m, Math.min(p.dayOfMonth!, daysInMonth(y, m)));
      }
    case 'relativeMonthly':
      for (let k = 0; ; k += p.interval) {
        const y = sy + Math.floor((sm - 1 + k) / 12);
        const m = ((sm - 1 + k) % 12) + 1;
        yield nthInMonth(y, m, p.daysOfWeek!, p.index ?? 'first');
      }
    case 'absoluteYearly':
      for (let k = 0; ; k += p.interval) yield fmt(sy + k, p.month!, Math.min(p.dayOfMonth!, daysInMonth(sy + k, p.month!)));
    case 'relativeYearly':
      for (let k = 0; ; k += p.interval) yield nthInMonth(sy + k, p.month!, p.daysOfWeek!, p.index ?? 'first');
  }
}

/**
 * The dates of the occurrences that fall in [from, to] (inclusive), in order. `maxScan` bounds the work for
 * series that started long ago (a daily series over ten years is 3,650 candidates).
 */
export function occurrenceDates(rec: Recurrence, from: DateOnly, to: DateOnly, maxScan = 50_000): DateOnly[] {
  const out: DateOnly[] = [];
  const { range } = rec;
  const last = range.type === 'endDate' ? range.endDate! : undefined;
  let count = 0;
  let scanned = 0;
  for (const d of candidates(rec)) {
    if (++scanned > maxScan) break;
    if (d < range.startDate) continue;
    if (last && d > last) break;
    if (d > to) break;
    count++;
    if (range.type === 'numbered' && count > range.numberOfOccurrences!) break;
    if (d >= from) out.push(d);
  }
  return out;
}

/** The date of the last occurrence, or null when the series never ends. */
export function lastOccurrenceDate(rec: Recurrence): DateOnly | null {
  if (rec.range.type === 'noEnd') return null;
  if (rec.range.type === 'endDate') {
    const all = occurrenceDates(rec, rec.range.endDate!, rec.range.endDate!);
    // The end date itself may not be an occurrence; the series is over by then either way.
    return all[0] ?? rec.range.endDate!;
  }
  const all = occurrenceDates(rec, rec.range.startDate, '9999-12-31', 100_000);
  return all[all.length - 1] ?? rec.range.startDate;
}

/** True when some occurrence may fall in [from, to] (cheap: compares the range, not each occurrence). */
export function rangeOverlaps(rec: Recurrence, from: DateOnly, to: DateOnly): boolean {
  if (rec.range.startDate > to) return false;
  const last = lastOccurrenceDate(rec);
  return last === null || last >= from;
}

/** Days from one date to another. */
export function daysBetween(a: DateOnly, b: DateOnly): number {
  return dayNum(b) - dayNum(a);
}
