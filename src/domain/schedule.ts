/**
 * Active hours of a sync schedule: the days and time range (in the user's time zone) during which scheduled
 * cycles may start. The worker turns a policy's active hours into concrete UTC windows (`activeWindows`, which
 * needs the time-zone database); the workflow only compares instants against those windows
 * (`nextAllowedTime`), so it stays deterministic and free of time-zone code. No zod here: workflow code imports
 * this module.
 */

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface ActiveHours {
  /** Days on which a window starts (a window that runs past midnight ends on the next day). */
  days: Weekday[];
  /** Local start time, HH:MM (00:00–23:59). */
  from: string;
  /** Local end time, HH:MM (00:00–24:00); earlier than `from` means the window runs past midnight. */
  to: string;
}

/** A window during which scheduled cycles may start, as ISO UTC instants (JSON-safe: it travels in workflow history). */
export interface TimeWindow {
  from: string;
  to: string;
}

/**
 * The earliest instant at or after `t` (epoch ms) that lies in one of the windows. Windows are computed for a
 * horizon well beyond the longest sync interval; if `t` lies beyond all of them, `t` is returned unchanged.
 */
export function nextAllowedTime(windows: readonly TimeWindow[], t: number): number {
  let best = Infinity;
  for (const w of windows) {
    const a = Date.parse(w.from);
    const b = Date.parse(w.to);
    if (t >= a && t < b) return t;
    if (a > t && a < best) best = a;
  }
  return best === Infinity ? t : best;
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$|^24:00$/;

export function parseHhMm(s: string): number | undefined {
  if (!HHMM.test(s)) return undefined;
  const [h, m] = s.split(':').map(Number);
  return h * 60 + m;
}

export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(tz, f);
  }
  return f;
}

/** The wall-clock fields of an instant in a time zone. */
function wallClock(tz: string, utcMs: number): { y: number; mo: number; d: number; h: number; mi: number; s: number } {
  const parts = formatter(tz).formatToParts(new Date(utcMs));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return { y: get('year'), mo: get('month') - 1, d: get('day'), h: get('hour') % 24, mi: get('minute'), s: get('second') };
}

/** Offset of the time zone from UTC at an instant, in ms (positive east of Greenwich). */
function offsetAt(tz: string, utcMs: number): number {
  const w = wallClock(tz, utcMs);
  return Date.UTC(w.y, w.mo, w.d, w.h, w.mi, w.s) - Math.floor(utcMs / 1000) * 1000;
}

/** The instant at which the wall clock in `tz` shows the given local time (minutes after local midnight). */
export function zonedTimeToUtc(tz: string, y: number, mo: number, d: number, minutes: number): number {
  const asUtc = Date.UTC(y, mo, d, 0, minutes);
  // Two passes settle the offset on either side of a daylight-saving change.
  let t = asUtc - offsetAt(tz, asUtc);
  t = asUtc - offsetAt(tz, t);
  return t;
}

/**
 * The active windows from one day before `now` to `horizonDays` days after it, in UTC, sorted. An empty
 * `days` list yields no windows (validation refuses it). `from` = `to` means the whole day.
 */
export function activeWindows(hours: ActiveHours, timeZone: string, now: Date, horizonDays = 15): TimeWindow[] {
  const from = parseHhMm(hours.from);
  const to = parseHhMm(hours.to);
  if (from === undefined || to === undefined) throw new Error(`invalid active hours ${hours.from}–${hours.to}`);
  const today = wallClock(timeZone, now.getTime());
  const out: { a: number; b: number }[] = [];
  for (let i = -1; i <= horizonDays; i++) {
    const day = new Date(Date.UTC(today.y, today.mo, today.d + i));
    const weekday = WEEKDAYS[day.getUTCDay()];
    if (!hours.days.includes(weekday)) continue;
    const y = day.getUTCFullYear();
    const mo = day.getUTCMonth();
    const d = day.getUTCDate();
    const a = zonedTimeToUtc(timeZone, y, mo, d, from);
    const b = to > from ? zonedTimeToUtc(timeZone, y, mo, d, to) : zonedTimeToUtc(timeZone, y, mo, d + 1, to);
    if (b > now.getTime()) out.push({ a, b });
  }
  out.sort((x, y2) => x.a - y2.a);
  // Merge windows that touch or overlap (e.g. every day 00:00–24:00) so "next allowed" never lands on a seam.
  const merged: { a: number; b: number }[] = [];
  for (const w of out) {
    const last = merged[merged.length - 1];
    if (last && w.a <= last.b) last.b = Math.max(last.b, w.b);
    else merged.push({ ...w });
  }
  return merged.map((w) => ({ from: new Date(w.a).toISOString(), to: new Date(w.b).toISOString() }));
}
