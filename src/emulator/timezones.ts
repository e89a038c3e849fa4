/**
 * Time zones as Outlook sees them: Windows names ("W. Europe Standard Time") or IANA names ("Europe/Berlin"),
 * resolved to an IANA zone for Intl. A "wall" time is a local date-time written as if it were UTC epoch
 * milliseconds (Date.UTC(y, m, d, h, mi, s)), so calendar arithmetic on it never sees daylight saving.
 */
import { GraphHttpError } from './errors';

/** The Windows zones people actually use, → the IANA zone CLDR maps them to (territory "001"). */
const WINDOWS_TO_IANA: Record<string, string> = {
  'utc': 'UTC',
  'coordinated universal time': 'UTC',
  'gmt standard time': 'Europe/London',
  'greenwich standard time': 'Atlantic/Reykjavik',
  'w. europe standard time': 'Europe/Berlin',
  'central europe standard time': 'Europe/Budapest',
  'central european standard time': 'Europe/Warsaw',
  'romance standard time': 'Europe/Paris',
  'e. europe standard time': 'Europe/Chisinau',
  'fle standard time': 'Europe/Kiev',
  'gtb standard time': 'Europe/Bucharest',
  'turkey standard time': 'Europe/Istanbul',
  'russian standard time': 'Europe/Moscow',
  'israel standard time': 'Asia/Jerusalem',
  'south africa standard time': 'Africa/Johannesburg',
  'egypt standard time': 'Africa/Cairo',
  'arabian standard time': 'Asia/Dubai',
  'arab standard time': 'Asia/Riyadh',
  'india standard time': 'Asia/Calcutta',
  'se asia standard time': 'Asia/Bangkok',
  'singapore standard time': 'Asia/Singapore',
  'china standard time': 'Asia/Shanghai',
  'taipei standard time': 'Asia/Taipei',
  'tokyo standard time': 'Asia/Tokyo',
  'korea standard time': 'Asia/Seoul',
  'aus eastern standard time': 'Australia/Sydney',
  'e. australia standard time': 'Australia/Brisbane',
  'w. australia standard time': 'Australia/Perth',
  'new zealand standard time': 'Pacific/Auckland',
  'eastern standard time': 'America/New_York',
  'central standard time': 'America/Chicago',
  'mountain standard time': 'America/Denver',
  'us mountain standard time': 'America/Phoenix',
  'pacific standard time': 'America/Los_Angeles',
  'alaskan standard time': 'America/Anchorage',
  'hawaiian standard time': 'Pacific/Honolulu',
  'atlantic standard time': 'America/Halifax',
  'canada central standard time': 'America/Regina',
  'central standard time (mexico)': 'America/Mexico_City',
  'e. south america standard time': 'America/Sao_Paulo',
  'argentina standard time': 'America/Buenos_Aires',
  'sa pacific standard time': 'America/Bogota',
};

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** The IANA zone (or 'UTC') for a Windows or IANA name; undefined when neither knows it. */
export function resolveZone(name: string): string | undefined {
  const n = name.trim();
  if (!n) return undefined;
  const win = WINDOWS_TO_IANA[n.toLowerCase()];
  if (win) return win;
  if (/^(utc|etc\/utc|gmt|etc\/gmt|z)$/i.test(n)) return 'UTC';
  // Outlook's IANA support is for real zone ids, not offsets like "+02:00".
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)+$/.test(n)) return undefined;
  try {
    return formatter(n).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

export const timeZoneNotSupported = (name: string) =>
  new GraphHttpError(400, 'TimeZoneNotSupportedException', `A valid TimeZone value must be specified. The following TimeZone value is not supported: '${name}'.`);

export function zoneOrThrow(name: string): string {
  const z = resolveZone(name);
  if (!z) throw timeZoneNotSupported(name);
  return z;
}

/** Zone offset (ms, east positive) at an instant. */
export function offsetAt(zone: string, instant: number): number {
  if (zone === 'UTC') return 0;
  const whole = instant - (((instant % 1000) + 1000) % 1000);
  const p: Record<string, number> = {};
  for (const part of formatter(zone).formatToParts(new Date(whole))) if (part.type !== 'literal') p[part.type] = Number(part.value);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - whole;
}

export function instantToWall(zone: string, instant: number): number {
  return instant + offsetAt(zone, instant);
}

/**
 * The instant a local wall time denotes. Ambiguous times (the repeated hour when clocks go back) take the first
 * instant; times that do not exist (the skipped hour) move forward by the gap, as Exchange does.
 */
export function wallToInstant(zone: string, wall: number): number {
  if (zone === 'UTC') return wall;
  const offsets = [...new Set([offsetAt(zone, wall - 14 * 3_600_000), offsetAt(zone, wall), offsetAt(zone, wall + 14 * 3_600_000)])].sort((a, b) => b - a);
  for (const o of offsets) if (offsetAt(zone, wall - o) === o) return wall - o;
  return wall - Math.min(...offsets);
}

const WALL_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** "2024-03-31T09:00:00.0000000" → wall ms; with a "Z" or an offset, the instant it names (as `instant`). */
export function parseDateTime(s: string): { wall: number } | { instant: number } | undefined {
  const m = WALL_RE.exec(s.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, sec, frac, off] = m;
  const wall = Date.UTC(+y, +mo - 1, +d, +h, +mi, sec ? +sec : 0, frac ? Math.floor(Number(`0.${frac}`) * 1000) : 0);
  const check = new Date(wall);
  if (check.getUTCMonth() !== +mo - 1 || check.getUTCDate() !== +d || +h > 23 || +mi > 59 || (sec && +sec > 59)) return undefined;
  if (!off) return { wall };
  if (off === 'Z') return { instant: wall };
  const om = /^([+-])(\d{2}):?(\d{2})$/.exec(off)!;
  const offset = (om[1] === '-' ? -1 : 1) * (Number(om[2]) * 60 + Number(om[3])) * 60_000;
  return { instant: wall - offset };
}

/** Graph's dateTime rendering: seven fractional digits, no offset. */
export function formatWall(wall: number): string {
  const iso = new Date(wall).toISOString();
  return `${iso.slice(0, 19)}.${iso.slice(20, 23)}0000`;
}

/** DateTimeOffset as Graph writes timestamps: UTC, whole seconds, "Z". */
export function formatInstant(instant: number): string {
  return new Date(instant).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---- civil dates as day numbers (days since 1970-01-01) --------------------------------------------

export const DAY_MS = 86_400_000;

export function dayOfWall(wall: number): number {
  return Math.floor(wall / DAY_MS);
}

export function parseDate(s: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3]);
  const d = new Date(ms);
  if (d.getUTCMonth() !== +m[2] - 1 || d.getUTCDate() !== +m[3]) return undefined;
  return ms / DAY_MS;
}

export function formatDate(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** 0 = Sunday … 6 = Saturday. */
export function weekday(day: number): number {
  return (((day + 4) % 7) + 7) % 7;
}
