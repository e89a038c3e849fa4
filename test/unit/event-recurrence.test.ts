/**
 * Recurrence patterns (src/domain/recurrence.ts): canonical form and expansion the way Exchange expands them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lastOccurrenceDate, normalizeRecurrence, occurrenceDates, rangeOverlaps, type Recurrence } from '../../src/domain/recurrence';
import type { Result } from '../../src/domain/result';

function value<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got: ${r.error}`);
  return r.value;
}
const rec = (pattern: Record<string, unknown>, range: Record<string, unknown>): Recurrence => value(normalizeRecurrence({ pattern, range }));

describe('normalizeRecurrence', () => {
  it('keeps only the fields of the pattern type, days sorted Sunday first', () => {
    const r = rec({ type: 'weekly', interval: 1, daysOfWeek: ['Friday', 'monday'], dayOfMonth: 0, month: 0, index: 'first', firstDayOfWeek: 'monday' }, { type: 'noEnd', startDate: '2025-01-06', endDate: '0001-01-01', numberOfOccurrences: 0, recurrenceTimeZone: 'UTC' });
    assert.deepEqual(r, { pattern: { type: 'weekly', interval: 1, daysOfWeek: ['monday', 'friday'] }, range: { type: 'noEnd', startDate: '2025-01-06' } });
    const r2 = rec({ type: 'weekly', interval: 2, daysOfWeek: ['monday'] }, { type: 'endDate', startDate: '2025-01-06', endDate: '2025-06-30' });
    assert.equal(r2.pattern.firstDayOfWeek, 'sunday', 'first day of week matters with interval > 1');
    const r3 = rec({ type: 'relativeYearly', interval: 1, daysOfWeek: ['thursday'], index: 'fourth', month: 11, dayOfMonth: 3 }, { type: 'numbered', startDate: '2025-11-27', numberOfOccurrences: 5 });
    assert.deepEqual(r3.pattern, { type: 'relativeYearly', interval: 1, daysOfWeek: ['thursday'], index: 'fourth', month: 11 });
  });

  it('rejects what Graph would refuse, saying which field', () => {
    const err = (p: Record<string, unknown>, r: Record<string, unknown> = { type: 'noEnd', startDate: '2025-01-01' }) => {
      const res = normalizeRecurrence({ pattern: p, range: r });
      assert.equal(res.ok, false);
      return (res as { error: string }).error;
    };
    assert.match(err({ type: 'hourly', interval: 1 }), /pattern type "hourly"/);
    assert.match(err({ type: 'daily', interval: 0 }), /interval/);
    assert.match(err({ type: 'absoluteMonthly', interval: 1, dayOfMonth: 32 }), /dayOfMonth/);
    assert.match(err({ type: 'absoluteYearly', interval: 1, dayOfMonth: 1, month: 13 }), /month/);
    assert.match(err({ type: 'weekly', interval: 1, daysOfWeek: ['funday'] }), /funday/);
    assert.match(err({ type: 'daily', interval: 1 }, { type: 'endDate', startDate: '2025-01-01' }), /needs an endDate/);
    assert.match(err({ type: 'daily', interval: 1 }, { type: 'numbered', startDate: '2025-01-01', numberOfOccurrences: 0 }), /numberOfOccurrences/);
    assert.match(err({ type: 'daily', interval: 1 }, { type: 'endDate', startDate: '2025-02-01', endDate: '2025-01-01' }), /ends before it starts/);
  });
});

describe('occurrenceDates', () => {
  it('daily every 3 days, to an end date', () => {
    const r = rec({ type: 'daily', interval: 3 }, { type: 'endDate', startDate: '2025-03-28', endDate: '2025-04-10' });
    assert.deepEqual(occurrenceDates(r, '2025-01-01', '2025-12-31'), ['2025-03-28', '2025-03-31', '2025-04-03', '2025-04-06', '2025-04-09']);
    assert.equal(lastOccurrenceDate(r), '2025-04-10');
  });

  it('weekly on Monday and Wednesday, numbered, counting from the start even outside the asked window', () => {
    const r = rec({ type: 'weekly', interval: 1, daysOfWeek: ['monday', 'wednesday'] }, { type: 'numbered', startDate: '2025-03-05', numberOfOccurrences: 5 });
    assert.deepEqual(occurrenceDates(r, '2025-01-01', '2025-12-31'), ['2025-03-05', '2025-03-10', '2025-03-12', '2025-03-17', '2025-03-19']);
    assert.deepEqual(occurrenceDates(r, '2025-03-15', '2025-12-31'), ['2025-03-17', '2025-03-19']);
    assert.equal(lastOccurrenceDate(r), '2025-03-19');
  });

  it('every second week counts weeks from the week of the start, weeks starting on firstDayOfWeek', () => {
    const sun = rec({ type: 'weekly', interval: 2, daysOfWeek: ['sunday', 'tuesday'], firstDayOfWeek: 'sunday' }, { type: 'noEnd', startDate: '2025-03-04' });
    assert.deepEqual(occurrenceDates(sun, '2025-03-01', '2025-03-31'), ['2025-03-04', '2025-03-16', '2025-03-18', '2025-03-30']);
    const mon = rec({ type: 'weekly', interval: 2, daysOfWeek: ['sunday', 'tuesday'], firstDayOfWeek: 'monday' }, { type: 'noEnd', startDate: '2025-03-04' });
    assert.deepEqual(occurrenceDates(mon, '2025-03-01', '2025-03-31'), ['2025-03-04', '2025-03-09', '2025-03-18', '2025-03-23']);
  });

  it('monthly on day 31 falls on the last day of shorter months (as Outlook)', () => {
    const r = rec({ type: 'absoluteMonthly', interval: 1, dayOfMonth: 31 }, { type: 'numbered', startDate: '2025-01-31', numberOfOccurrences: 4 });
    assert.deepEqual(occurrenceDates(r, '2025-01-01', '2025-12-31'), ['2025-01-31', '2025-02-28', '2025-03-31', '2025-04-30']);
  });

  it('relative monthly: the last Friday, the first weekday', () => {
    const lastFri = rec({ type: 'relativeMonthly', interval: 1, daysOfWeek: ['friday'], index: 'last' }, { type: 'numbered', startDate: '2025-01-31', numberOfOccurrences: 3 });
    assert.deepEqual(occurrenceDates(lastFri, '2025-01-01', '2025-12-31'), ['2025-01-31', '2025-02-28', '2025-03-28']);
    const firstWeekday = rec({ type: 'relativeMonthly', interval: 1, daysOfWeek: ['monday', 'tuesday', 'wednesday', 'thursday', 'friday'], index: 'first' }, { type: 'numbered', startDate: '2025-03-03', numberOfOccurrences: 3 });
    assert.deepEqual(occurrenceDates(firstWeekday, '2025-01-01', '2025-12-31'), ['2025-03-03', '2025-04-01', '2025-05-01']);
  });

  it('yearly: absolute (29 February → 28th) and relative (fourth Thursday of November)', () => {
    const leap = rec({ type: 'absoluteYearly', interval: 1, dayOfMonth: 29, month: 2 }, { type: 'numbered', startDate: '2024-02-29', numberOfOccurrences: 3 });
    assert.deepEqual(occurrenceDates(leap, '2024-01-01', '2030-12-31'), ['2024-02-29', '2025-02-28', '2026-02-28']);
    const thanksgiving = rec({ type: 'relativeYearly', interval: 1, daysOfWeek: ['thursday'], index: 'fourth', month: 11 }, { type: 'numbered', startDate: '2025-11-27', numberOfOccurrences: 2 });
    assert.deepEqual(occurrenceDates(thanksgiving, '2025-01-01', '2030-12-31'), ['2025-11-27', '2026-11-26']);
  });

  it('a series with no end overlaps every later window; a finished one does not', () => {
    const open = rec({ type: 'daily', interval: 1 }, { type: 'noEnd', startDate: '2020-01-01' });
    assert.equal(lastOccurrenceDate(open), null);
    assert.ok(rangeOverlaps(open, '2030-01-01', '2030-02-01'));
    assert.ok(!rangeOverlaps(open, '2019-01-01', '2019-02-01'));
    const done = rec({ type: 'weekly', interval: 1, daysOfWeek: ['monday'] }, { type: 'numbered', startDate: '2025-01-06', numberOfOccurrences: 2 });
    assert.ok(!rangeOverlaps(done, '2025-02-01', '2025-03-01'));
    assert.ok(rangeOverlaps(done, '2025-01-10', '2025-01-13'));
  });
});
