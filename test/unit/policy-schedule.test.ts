/** Active hours (src/domain/schedule.ts): local day/time ranges → UTC windows, and the next allowed instant. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { activeWindows, nextAllowedTime, zonedTimeToUtc, type ActiveHours } from '../../src/domain/schedule';

const weekdays: ActiveHours = { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00' };

describe('active hours: windows', () => {
  it('weekday office hours in Berlin (summer, UTC+2), starting on a Saturday', () => {
    const now = new Date('2024-06-15T10:00:00Z'); // Saturday
    const w = activeWindows(weekdays, 'Europe/Berlin', now, 7);
    assert.deepEqual(w.slice(0, 2), [
      { from: '2024-06-17T06:00:00.000Z', to: '2024-06-17T16:00:00.000Z' },
      { from: '2024-06-18T06:00:00.000Z', to: '2024-06-18T16:00:00.000Z' },
    ]);
    assert.equal(w.length, 5);
  });

  it('New York (UTC-4 in summer), the current window included', () => {
    const now = new Date('2024-06-17T14:00:00Z'); // Monday 10:00 in New York
    const w = activeWindows(weekdays, 'America/New_York', now, 2);
    assert.deepEqual(w[0], { from: '2024-06-17T12:00:00.000Z', to: '2024-06-17T22:00:00.000Z' });
  });

  it('a range past midnight belongs to the day it starts on', () => {
    const now = new Date('2024-01-05T12:00:00Z'); // Friday
    const w = activeWindows({ days: ['fri'], from: '22:00', to: '06:00' }, 'UTC', now, 3);
    assert.deepEqual(w, [{ from: '2024-01-05T22:00:00.000Z', to: '2024-01-06T06:00:00.000Z' }]);
  });

  it('whole days merge into one window (no seam at midnight); from = to is a whole day', () => {
    const now = new Date('2024-01-01T12:00:00Z');
    const w = activeWindows({ days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'], from: '00:00', to: '24:00' }, 'UTC', now, 3);
    assert.equal(w.length, 1);
    assert.equal(w[0].from, '2024-01-01T00:00:00.000Z', 'the window that ended at midnight is past');
    assert.equal(w[0].to, '2024-01-05T00:00:00.000Z');
    const same = activeWindows({ days: ['mon'], from: '09:00', to: '09:00' }, 'UTC', now, 3);
    assert.deepEqual(same, [{ from: '2024-01-01T09:00:00.000Z', to: '2024-01-02T09:00:00.000Z' }]);
  });

  it('follows daylight saving time: 08:00 Berlin is 07:00Z in winter and 06:00Z in summer', () => {
    assert.equal(new Date(zonedTimeToUtc('Europe/Berlin', 2024, 0, 15, 8 * 60)).toISOString(), '2024-01-15T07:00:00.000Z');
    assert.equal(new Date(zonedTimeToUtc('Europe/Berlin', 2024, 6, 15, 8 * 60)).toISOString(), '2024-07-15T06:00:00.000Z');
    // The week of the change (31 March 2024): Friday before in winter time, Monday after in summer time.
    const w = activeWindows(weekdays, 'Europe/Berlin', new Date('2024-03-29T00:00:00Z'), 4);
    assert.deepEqual(w.map((x) => x.from).slice(0, 2), ['2024-03-29T07:00:00.000Z', '2024-04-01T06:00:00.000Z']);
  });
});

describe('active hours: next allowed time', () => {
  const windows = [
    { from: '2024-06-17T06:00:00.000Z', to: '2024-06-17T16:00:00.000Z' },
    { from: '2024-06-18T06:00:00.000Z', to: '2024-06-18T16:00:00.000Z' },
  ];
  const at = (iso: string) => new Date(nextAllowedTime(windows, Date.parse(iso))).toISOString();

  it('inside a window: at once', () => {
    assert.equal(at('2024-06-17T10:00:00.000Z'), '2024-06-17T10:00:00.000Z');
    assert.equal(at('2024-06-17T06:00:00.000Z'), '2024-06-17T06:00:00.000Z');
  });
  it('before or between windows: the next window opens', () => {
    assert.equal(at('2024-06-15T10:00:00.000Z'), '2024-06-17T06:00:00.000Z');
    assert.equal(at('2024-06-17T16:00:00.000Z'), '2024-06-18T06:00:00.000Z');
  });
  it('beyond the horizon: unchanged (windows are recomputed every run)', () => {
    assert.equal(at('2024-07-01T00:00:00.000Z'), '2024-07-01T00:00:00.000Z');
    assert.equal(nextAllowedTime([], 5), 5);
  });
});
