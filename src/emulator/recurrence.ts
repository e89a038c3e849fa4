/**
 * microsoft.graph.patternedRecurrence: validation, Graph's normalized rendering, and the dates a series falls on.
 * Dates are day numbers (timezones.ts); the time of day comes from the series master.
 */
import { badRequest } from './errors';
import { formatDate, parseDate, weekday } from './timezones';

export type PatternType = 'daily' | 'weekly' | 'absoluteMonthly' | 'relativeMonthly' | 'absoluteYearly' | 'relativeYearly';
export type RangeType = 'endDate' | 'noEnd' | 'numbered';
const PATTERN_TYPES: PatternType[] = ['daily', 'weekly', 'absoluteMonthly', 'relativeMonthly', 'absoluteYearly', 'relativeYearly'];
const RANGE_TYPES: RangeType[] = ['endDate', 'noEnd', 'numbered'];
export const DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const INDEXES = ['first', 'second', 'third', 'fourth', 'last'];

export interface PatternedRecurrence {
  pattern: {
    type: PatternType;
    interval: number;
    month: number;
    dayOfMonth: number;
    daysOfWeek: string[];
    firstDayOfWeek: string;
    index: string;
  };
  range: {
    type: RangeType;
    startDate: string;
    endDate: string;
    recurrenceTimeZone: string;
    numberOfOccurrences: number;
  };
}

const invalid = (message: string) => badRequest('ErrorPropertyValidationFailure', message);
const unknownProperty = (name: string, type: string) =>
  badRequest('RequestBodyRead', `The property '${name}' does not exist on type '${type}'. Make sure to only use property names that are defined by the type or mark the type as open type.`);

function obj(v: unknown, name: string): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw badRequest('RequestBodyRead', `Cannot convert the literal for property '${name}' to the expected type.`);
  return v as Record<string, unknown>;
}

/** Validates a request's recurrence and fills in Graph's defaults. `startTimeZone` is the master's start zone. */
export function parseRecurrence(v: unknown, startTimeZone: string): PatternedRecurrence {
  const r = obj(v, 'recurrence');
  for (const k of Object.keys(r)) if (k !== 'pattern' && k !== 'range' && k !== '@odata.type') throw unknownProperty(k, 'microsoft.graph.patternedRecurrence');
  const p = obj(r.pattern, 'pattern');
  const g = obj(r.range, 'range');
  const patternKeys = new Set(['type', 'interval', 'month', 'dayOfMonth', 'daysOfWeek', 'firstDayOfWeek', 'index', '@odata.type']);
  for (const k of Object.keys(p)) if (!patternKeys.has(k)) throw unknownProperty(k, 'microsoft.graph.recurrencePattern');
  const rangeKeys = new Set(['type', 'startDate', 'endDate', 'recurrenceTimeZone', 'numberOfOccurrences', '@odata.type']);
  for (const k of Object.keys(g)) if (!rangeKeys.has(k)) throw unknownProperty(k, 'microsoft.graph.recurrenceRange');

  const type = PATTERN_TYPES.find((t) => t.toLowerCase() === String(p.type ?? '').toLowerCase());
  if (!type) throw invalid(`The recurrence pattern type '${String(p.type)}' is not valid.`);
  const interval = p.interval === undefined ? 1 : Number(p.interval);
  if (!Number.isInteger(interval) || interval < 1 || interval > 999) throw invalid('The recurrence pattern interval must be between 1 and 999.');
  const daysOfWeek = ((p.daysOfWeek ?? []) as unknown[]).map((d) => String(d).toLowerCase());
  if (!Array.isArray(p.daysOfWeek ?? []) || daysOfWeek.some((d) => !DAYS.includes(d))) throw invalid('daysOfWeek contains a value that is not a day of the week.');
  const firstDayOfWeek = String(p.firstDayOfWeek ?? 'sunday').toLowerCase();
  if (!DAYS.includes(firstDayOfWeek)) throw invalid(`firstDayOfWeek '${String(p.firstDayOfWeek)}' is not valid.`);
  const index = String(p.index ?? 'first').toLowerCase();
  if (!INDEXES.includes(index)) throw invalid(`index '${String(p.index)}' is not valid.`);
  const month = p.month === undefined ? 0 : Number(p.month);
  const dayOfMonth = p.dayOfMonth === undefined ? 0 : Number(p.dayOfMonth);
  if (!Number.isInteger(month) || month < 0 || month > 12) throw invalid('month must be between 1 and 12.');
  if (!Number.isInteger(dayOfMonth) || dayOfMonth < 0 || dayOfMonth > 31) throw invalid('dayOfMonth must be between 1 and 31.');
  if ((type === 'weekly' || type === 'relativeMonthly' || type === 'relativeYearly') && daysOfWeek.length === 0) throw invalid(`A ${type} recurrence pattern needs daysOfWeek.`);
  if ((type === 'absoluteMonthly' || type === 'absoluteYearly') && dayOfMonth === 0) throw invalid(`An ${type} recurrence pattern needs dayOfMonth.`);
  if ((type === 'absoluteYearly' || type === 'relativeYearly') && month === 0) throw invalid(`A ${type} recurrence pattern needs month.`);

  const rangeType = RANGE_TYPES.find((t) => t.toLowerCase() === String(g.type ?? '').toLowerCase());
  if (!rangeType) throw invalid(`The recurrence range type '${String(g.type)}' is not valid.`);
  const startDay = typeof g.startDate === 'string' ? parseDate(g.startDate) : undefined;
  if (startDay === undefined) throw invalid('The recurrence range needs a startDate (yyyy-MM-dd).');
  let endDate = '0001-01-01';
  if (rangeType === 'endDate') {
    const endDay = typeof g.endDate === 'string' ? parseDate(g.endDate) : undefined;
    if (endDay === undefined) throw invalid('An endDate recurrence range needs an endDate (yyyy-MM-dd).');
    if (endDay < startDay) throw invalid('The recurrence range endDate is before its startDate.');
    endDate = formatDate(endDay);
  }
  const numberOfOccurrences = rangeType === 'numbered' ? Number(g.numberOfOccurrences) : 0;
  if (rangeType === 'numbered' && (!Number.isInteger(numberOfOccurrences) || numberOfOccurrences < 1 || numberOfOccurrences > 999)) {
    throw invalid('A numbered recurrence range needs numberOfOccurrences between 1 and 999.');
  }
  const recurrenceTimeZone = typeof g.recurrenceTimeZone === 'string' && g.recurrenceTimeZone ? g.recurrenceTimeZone : startTimeZone;
  const ordered = DAYS.filter((d) => daysOfWeek.includes(d));
  return {
    pattern: { type, interval, month, dayOfMonth, daysOfWeek: ordered, firstDayOfWeek, index },
    range: { type: rangeType, startDate: formatDate(startDay), endDate, recurrenceTimeZone, numberOfOccurrences },
  };
}

function daysInMonth(year: number, month0: number): number {
  return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
}

function dayNumber(year: number, month0: number, date: number): number {
  return Date.UTC(year, month0, date) / 86_400_000;
}

/** The n-th (or last) day of a month that falls on one of `days`. */
function relativeDay(year: number, month0: number, days: number[], index: string): number | undefined {
  const matches: number[] = [];
  for (let d = 1; d <= daysInMonth(year, month0); d++) {
    const n = dayNumber(year, month0, d);
    if (days.includes(weekday(n))) matches.push(n);
  }
  if (index === 'last') return matches[matches.length - 1];
  return matches[INDEXES.indexOf(index)];
}

/**
 * The series' dates in order, from range.startDate, never past `untilDay` (inclusive) nor past the range.
 * Months too short for dayOfMonth use their last day, as Outlook does.
 */
export function* occurrenceDays(rec: PatternedRecurrence, untilDay: number): Generator<number> {
  const { pattern: p, range: r } = rec;
  const start = parseDate(r.startDate)!;
  const last = r.type === 'endDate' ? Math.min(parseDate(r.endDate)!, untilDay) : untilDay;
  let remaining = r.type === 'numbered' ? r.numberOfOccurrences : Infinity;
  const days = p.daysOfWeek.map((d) => DAYS.indexOf(d));
  const sd = new Date(start * 86_400_000);
  const y0 = sd.getUTCFullYear();
  const m0 = sd.getUTCMonth();

  /** Candidate days of period k (ascending), or undefined past the last period worth looking at. */
  const period = (k: number): number[] => {
    switch (p.type) {
      case 'daily':
        return [start + k * p.interval];
      case 'weekly': {
        const fdow = DAYS.indexOf(p.firstDayOfWeek);
        const weekStart = start - ((weekday(start) - fdow + 7) % 7) + k * 7 * p.interval;
        return days.map((d) => weekStart + ((d - fdow + 7) % 7)).sort((a, b) => a - b);
      }
      case 'absoluteMonthly':
      case 'relativeMonthly': {
        const mIndex = m0 + k * p.interval;
        const year = y0 + Math.floor(mIndex / 12);
        const month0 = mIndex % 12;
        const d = p.type === 'absoluteMonthly' ? dayNumber(year, month0, Math.min(p.dayOfMonth, daysInMonth(year, month0))) : relativeDay(year, month0, days, p.index);
        return d === undefined ? [] : [d];
      }
      case 'absoluteYearly':
      case 'relativeYearly': {
        const year = y0 + k * p.interval;
        const month0 = p.month - 1;
        const d = p.type === 'absoluteYearly' ? dayNumber(year, month0, Math.min(p.dayOfMonth, daysInMonth(year, month0))) : relativeDay(year, month0, days, p.index);
        return d === undefined ? [] : [d];
      }
    }
  };

  for (let k = 0; k < 1_000_000 && remaining > 0; k++) {
    const candidates = period(k);
    let pastEnd = false;
    for (const d of candidates) {
      if (d < start) continue;
      if (d > last) {
        pastEnd = true;
        break;
      }
      yield d;
      if (--remaining <= 0) return;
    }
    // Monthly and yearly periods always move forward, so the first candidate past the end ends the series.
    if (pastEnd || (candidates.length && candidates[0] > last)) return;
    if (!candidates.length && (p.type === 'relativeMonthly' || p.type === 'relativeYearly')) {
      // "fourth Friday" always exists; a period without a match can only be an invalid combination.
      const approx = p.type === 'relativeMonthly' ? dayNumber(y0, m0 + k * p.interval, 1) : dayNumber(y0 + k * p.interval, 0, 1);
      if (approx > last) return;
    }
  }
}
