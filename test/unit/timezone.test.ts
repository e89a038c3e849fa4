/**
 * Time zones (src/domain/timezone.ts): IANA and Windows names, canonical zones, and wall time ↔ instant across
 * daylight-saving transitions in Europe/Berlin and America/New_York (gaps move forward, overlaps take the
 * earlier instant).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  addDays,
  canonicalTimeZone,
  convertWallTime,
  instantToWall,
  isKnownTimeZone,
  offsetMinutes,
  parseWallTime,
  resolveTimeZone,
  sameTimeZone,
  wallSecondsBetween,
  wallToInstant,
  windowsTimeZone,
} from '../../src/domain/timezone';

const iso = (ms: number) => new Date(ms).toISOString();

describe('zone names', () => {
  it('resolves Windows names, IANA names and aliases to IANA zones', () => {
    assert.equal(resolveTimeZone('W. Europe Standard Time'), 'Europe/Berlin');
    assert.equal(resolveTimeZone('w. europe standard time'), 'Europe/Berlin');
    assert.equal(resolveTimeZone('Eastern Standard Time'), 'America/New_York');
    assert.equal(resolveTimeZone('Pacific Standard Time'), 'America/Los_Angeles');
    assert.equal(resolveTimeZone('India Standard Time'), 'Asia/Kolkata');
    assert.equal(resolveTimeZone('UTC'), 'UTC');
    assert.equal(resolveTimeZone('tzone://Microsoft/Utc'), 'UTC');
    assert.equal(resolveTimeZone('Etc/UTC'), 'UTC');
    assert.equal(resolveTimeZone('Europe/Kyiv'), 'Europe/Kyiv');
    assert.equal(resolveTimeZone('Europe/Kiev'), 'Europe/Kyiv');
    assert.equal(resolveTimeZone('Asia/Calcutta'), 'Asia/Kolkata');
    assert.equal(resolveTimeZone('america/new_york'), 'America/New_York');
  });

  it('knows what it does not know', () => {
    assert.equal(resolveTimeZone('Mars/Olympus_Mons'), undefined);
    assert.equal(resolveTimeZone('tzone://Microsoft/Custom'), undefined);
    assert.equal(resolveTimeZone(''), undefined);
    assert.equal(resolveTimeZone(null), undefined);
    assert.equal(isKnownTimeZone('Europe/Berlin'), true);
    assert.equal(isKnownTimeZone('Nowhere'), false);
  });

  it('maps IANA zones to the Windows zone Exchange uses', () => {
    assert.equal(windowsTimeZone('Europe/Berlin'), 'W. Europe Standard Time');
    assert.equal(windowsTimeZone('Europe/Amsterdam'), 'W. Europe Standard Time');
    assert.equal(windowsTimeZone('America/New_York'), 'Eastern Standard Time');
    assert.equal(windowsTimeZone('America/Detroit'), 'Eastern Standard Time');
    assert.equal(windowsTimeZone('Asia/Kolkata'), 'India Standard Time');
    assert.equal(windowsTimeZone('UTC'), 'UTC');
    assert.equal(windowsTimeZone('Europe/London'), 'GMT Standard Time');
  });

  it('gives one canonical name per zone, so a renamed zone is not an edit', () => {
    assert.equal(canonicalTimeZone('Europe/Amsterdam'), 'Europe/Berlin');
    assert.equal(canonicalTimeZone('W. Europe Standard Time'), 'Europe/Berlin');
    assert.equal(canonicalTimeZone('Europe/Berlin'), 'Europe/Berlin');
    assert.equal(canonicalTimeZone('America/Toronto'), 'America/New_York');
    assert.equal(canonicalTimeZone('Eastern Standard Time'), 'America/New_York');
    assert.equal(canonicalTimeZone('Europe/Paris'), 'Europe/Paris');
    assert.ok(sameTimeZone('Europe/Rome', 'W. Europe Standard Time'));
    assert.ok(!sameTimeZone('Europe/Paris', 'Europe/Berlin'), 'Romance and W. Europe are different Windows zones');
    assert.ok(!sameTimeZone('Nowhere', 'Nowhere'));
    for (const z of ['Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Australia/Sydney', 'UTC', 'America/Sao_Paulo']) {
      assert.equal(canonicalTimeZone(canonicalTimeZone(z)), canonicalTimeZone(z), `${z}: canonical is a fixed point`);
    }
  });
});

describe('wall time', () => {
  it('parses Graph, PostgreSQL and short forms; rejects impossible dates', () => {
    assert.equal(parseWallTime('2025-03-30T09:00:00.0000000'), '2025-03-30T09:00:00');
    assert.equal(parseWallTime('2025-03-30 09:00:00'), '2025-03-30T09:00:00');
    assert.equal(parseWallTime('2025-03-30T09:00'), '2025-03-30T09:00:00');
    assert.equal(parseWallTime('2025-03-30'), '2025-03-30T00:00:00');
    assert.equal(parseWallTime('2025-02-30T09:00:00'), undefined);
    assert.equal(parseWallTime('2025-03-30T25:00:00'), undefined);
    assert.equal(parseWallTime('tomorrow'), undefined);
  });

  it('converts in Europe/Berlin across both DST changes of 2025', () => {
    // Winter (UTC+1), summer (UTC+2).
    assert.equal(iso(wallToInstant('2025-03-29T09:00:00', 'Europe/Berlin')), '2025-03-29T08:00:00.000Z');
    assert.equal(iso(wallToInstant('2025-03-31T09:00:00', 'Europe/Berlin')), '2025-03-31T07:00:00.000Z');
    assert.equal(iso(wallToInstant('2025-10-27T09:00:00', 'Europe/Berlin')), '2025-10-27T08:00:00.000Z');
    assert.equal(instantToWall(Date.parse('2025-03-31T07:00:00Z'), 'Europe/Berlin'), '2025-03-31T09:00:00');
    assert.equal(offsetMinutes(Date.parse('2025-01-15T12:00:00Z'), 'Europe/Berlin'), 60);
    assert.equal(offsetMinutes(Date.parse('2025-07-15T12:00:00Z'), 'Europe/Berlin'), 120);
  });

  it('converts in America/New_York across both DST changes of 2025', () => {
    assert.equal(iso(wallToInstant('2025-03-08T09:00:00', 'America/New_York')), '2025-03-08T14:00:00.000Z');
    assert.equal(iso(wallToInstant('2025-03-10T09:00:00', 'America/New_York')), '2025-03-10T13:00:00.000Z');
    assert.equal(iso(wallToInstant('2025-11-03T09:00:00', 'America/New_York')), '2025-11-03T14:00:00.000Z');
  });

  it('moves a time in a spring-forward gap forward by the gap', () => {
    // 02:30 does not exist in Berlin on 2025-03-30 (02:00 → 03:00) nor in New York on 2025-03-09.
    const b = wallToInstant('2025-03-30T02:30:00', 'Europe/Berlin');
    assert.equal(iso(b), '2025-03-30T01:30:00.000Z');
    assert.equal(instantToWall(b, 'Europe/Berlin'), '2025-03-30T03:30:00');
    const n = wallToInstant('2025-03-09T02:30:00', 'America/New_York');
    assert.equal(instantToWall(n, 'America/New_York'), '2025-03-09T03:30:00');
  });

  it('takes the earlier instant for a time that happens twice (fall back)', () => {
    assert.equal(iso(wallToInstant('2025-10-26T02:30:00', 'Europe/Berlin')), '2025-10-26T00:30:00.000Z');
    assert.equal(iso(wallToInstant('2025-11-02T01:30:00', 'America/New_York')), '2025-11-02T05:30:00.000Z');
  });

  it('round-trips every hour of a DST year in both zones (outside the gaps)', () => {
    for (const zone of ['Europe/Berlin', 'America/New_York']) {
      for (let t = Date.parse('2025-01-01T00:00:00Z'); t < Date.parse('2026-01-01T00:00:00Z'); t += 3_600_000) {
        const wall = instantToWall(t, zone);
        const back = wallToInstant(wall, zone);
        // In the repeated hour, the wall time maps to the earlier instant: same wall time either way.
        assert.equal(instantToWall(back, zone), wall, `${zone} ${iso(t)}`);
      }
    }
  });

  it('converts between zones: 09:00 Berlin is 03:00 New York except in the weeks the DST dates differ', () => {
    assert.equal(convertWallTime('2025-02-10T09:00:00', 'Europe/Berlin', 'America/New_York'), '2025-02-10T03:00:00');
    // US switched on 9 March, Europe on 30 March: five hours apart in between.
    assert.equal(convertWallTime('2025-03-17T09:00:00', 'Europe/Berlin', 'America/New_York'), '2025-03-17T04:00:00');
    assert.equal(convertWallTime('2025-04-07T09:00:00', 'Europe/Berlin', 'America/New_York'), '2025-04-07T03:00:00');
    assert.equal(convertWallTime('2025-06-02T09:00:00', 'Europe/Berlin', 'UTC'), '2025-06-02T07:00:00');
  });

  it('measures durations on the wall clock and adds days on the calendar', () => {
    assert.equal(wallSecondsBetween('2025-03-30T01:00:00', '2025-03-30T04:00:00'), 3 * 3600);
    assert.equal(addDays('2025-02-28', 1), '2025-03-01');
    assert.equal(addDays('2024-02-28', 1), '2024-02-29');
    assert.equal(addDays('2025-01-01', -1), '2024-12-31');
  });
});
