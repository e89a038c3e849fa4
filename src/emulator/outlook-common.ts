/**
 * What the Outlook resources (calendar.ts, todo.ts, mail.ts) share beyond route-kit.ts: Prefer headers, If-Match
 * by a single change key and dateTimeTimeZone parsing.
 */
import type { EventTime } from './calendar-store';
import { GraphHttpError, badRequest } from './errors';
import type { GraphRequest } from './route-kit';
import { parsePrefer } from './query';
import { instantToWall, parseDateTime, resolveZone, zoneOrThrow } from './timezones';

/** `If-Match` with a stale etag → 412, as Exchange answers. */
export function checkIfMatch(req: GraphRequest, changeKey: string): void {
  const h = req.headers['if-match'];
  if (!h || h.trim() === '*') return;
  const want = h.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
  if (want !== changeKey) {
    throw new GraphHttpError(412, 'ErrorIrresolvableConflict', 'The change key passed in the request does not match the current change key of the item.');
  }
}

export const unknownProperty = (name: string, type: string) =>
  badRequest('RequestBodyRead', `The property '${name}' does not exist on type '${type}'. Make sure to only use property names that are defined by the type or mark the type as open type.`);
export const badValue = (name: string, expected: string) => badRequest('RequestBodyRead', `Cannot convert the literal for property '${name}' to the expected type '${expected}'.`);

export interface Prefs {
  maxPageSize?: number;
  /** Output zone: the name as the client wrote it, and its IANA zone. */
  zoneName: string;
  zone: string;
  bodyText: boolean;
  applied: string[];
}

export function preferences(req: GraphRequest): Prefs {
  const raw = req.headers['prefer'] ?? '';
  const p = parsePrefer(raw);
  const applied: string[] = [];
  let zoneName = 'UTC';
  let zone = 'UTC';
  const tz = /outlook\.timezone\s*=\s*(?:"([^"]*)"|([^,;\s]+))/i.exec(raw);
  if (tz) {
    const name = (tz[1] ?? tz[2]).trim();
    const resolved = resolveZone(name);
    // An unknown zone in the header is ignored (times stay in UTC), not refused.
    if (resolved) {
      zoneName = name;
      zone = resolved;
      applied.push(`outlook.timezone="${name}"`);
    }
  }
  const bt = /outlook\.body-content-type\s*=\s*"?(text|html)"?/i.exec(raw);
  if (bt) applied.push(`outlook.body-content-type="${bt[1].toLowerCase()}"`);
  if (p.maxPageSize) applied.unshift(`odata.maxpagesize=${p.maxPageSize}`);
  return { maxPageSize: p.maxPageSize, zoneName, zone, bodyText: bt?.[1].toLowerCase() === 'text', applied };
}

export function appliedHeader(p: Prefs, includePageSize: boolean): Record<string, string> {
  const list = includePageSize ? p.applied : p.applied.filter((a) => !a.startsWith('odata.maxpagesize'));
  return list.length ? { 'Preference-Applied': list.join(', ') } : {};
}

export function parseDateTimeTimeZone(v: unknown, name: string): EventTime {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw badValue(name, 'microsoft.graph.dateTimeTimeZone');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'dateTime' && k !== 'timeZone' && k !== '@odata.type') throw unknownProperty(k, 'microsoft.graph.dateTimeTimeZone');
  const timeZone = o.timeZone == null || o.timeZone === '' ? 'UTC' : o.timeZone;
  if (typeof timeZone !== 'string') throw badValue('timeZone', 'Edm.String');
  const zone = zoneOrThrow(timeZone);
  const parsed = typeof o.dateTime === 'string' ? parseDateTime(o.dateTime) : undefined;
  if (!parsed) throw badRequest('RequestBodyRead', `Cannot convert the literal '${String(o.dateTime)}' to the expected type 'Edm.String' (dateTime) of '${name}'.`);
  // An explicit offset names an instant; Exchange keeps it as the wall time it is in the given zone.
  const wall = 'wall' in parsed ? parsed.wall : instantToWall(zone, parsed.instant);
  return { wall, timeZone };
}

