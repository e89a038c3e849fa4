/**
 * The calendarView links cxsync saves carry the window of their round (src/activities/record-types/events.ts):
 * the fragment is never sent to Graph, and a link saved before the tag existed still parses.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseLink, tagLink } from '../../src/activities/record-types/events';

describe('calendarView round links', () => {
  const window = { start: '2025-02-10', end: '2026-03-09' };

  it('round-trips the window, the kind and the round through the saved link', () => {
    const link = tagLink('https://graph.microsoft.com/v1.0/users/a/calendars/c/calendarView/delta?$deltatoken=abc', { window, kind: 'delta', round: 'r1-_x' });
    assert.equal(link, 'https://graph.microsoft.com/v1.0/users/a/calendars/c/calendarView/delta?$deltatoken=abc#cxsync-window=2025-02-10..2026-03-09;kind=delta;round=r1-_x');
    assert.deepEqual(parseLink(link), { url: 'https://graph.microsoft.com/v1.0/users/a/calendars/c/calendarView/delta?$deltatoken=abc', window, kind: 'delta', round: 'r1-_x' });
  });

  it('replaces an earlier tag instead of stacking them', () => {
    const once = tagLink('https://g/delta?$skiptoken=1', { window, kind: 'next', round: 'a' });
    const twice = tagLink(once, { window: { start: '2025-02-17', end: '2026-03-16' }, kind: 'delta', round: 'b' });
    assert.equal((twice.match(/#/g) ?? []).length, 1);
    assert.equal(parseLink(twice).window?.start, '2025-02-17');
  });

  it('an untagged link is used as it is, with no window (the next round starts over the current one)', () => {
    assert.deepEqual(parseLink('https://g/delta?$deltatoken=x'), { url: 'https://g/delta?$deltatoken=x' });
    assert.deepEqual(parseLink('https://g/delta?$deltatoken=x#other'), { url: 'https://g/delta?$deltatoken=x' });
  });
});
