/**
 * Time zones, pure and dependency-free: IANA names (the CRM's), Windows names (what Exchange often reports in
 * `originalStartTimeZone`), and the conversion between local wall time in a zone and an instant, DST included.
 *
 * Events are stored and compared as local wall time + zone (DESIGN: "09:00 Europe/Berlin stays 09:00
 * Europe/Berlin"), so the only conversions are at the Graph boundary, and they go through `wallToInstant` /
 * `instantToWall`, which use the platform's tz database (Intl).
 *
 * Zones that are the same zone under another name (Europe/Amsterdam and Europe/Berlin both are Windows'
 * "W. Europe Standard Time") compare equal through `canonicalTimeZone`, so a zone renamed on its way through
 * Exchange is not mistaken for an edit.
 */

/**
 * Windows zone → IANA zones, the first being the zone CLDR names for territory 001. Derived from the Unicode
 * CLDR windowsZones mapping (Unicode License v3).
 */
const WINDOWS_ZONES = `
Dateline Standard Time|Etc/GMT+12
UTC-11|Etc/GMT+11 Pacific/Pago_Pago Pacific/Niue Pacific/Midway
Aleutian Standard Time|America/Adak
Hawaiian Standard Time|Pacific/Honolulu Pacific/Rarotonga Pacific/Tahiti Etc/GMT+10
Marquesas Standard Time|Pacific/Marquesas
Alaskan Standard Time|America/Anchorage America/Juneau America/Metlakatla America/Nome America/Sitka America/Yakutat
UTC-09|Etc/GMT+9 Pacific/Gambier
Pacific Standard Time (Mexico)|America/Tijuana
UTC-08|Etc/GMT+8 Pacific/Pitcairn
Pacific Standard Time|America/Los_Angeles America/Vancouver
US Mountain Standard Time|America/Phoenix America/Creston America/Dawson_Creek America/Fort_Nelson America/Hermosillo Etc/GMT+7
Mountain Standard Time (Mexico)|America/Mazatlan
Mountain Standard Time|America/Denver America/Edmonton America/Cambridge_Bay America/Inuvik America/Ciudad_Juarez America/Boise
Yukon Standard Time|America/Whitehorse America/Dawson
Central America Standard Time|America/Guatemala America/Belize America/Costa_Rica Pacific/Galapagos America/Tegucigalpa America/Managua America/El_Salvador Etc/GMT+6
Central Standard Time|America/Chicago America/Winnipeg America/Rankin_Inlet America/Resolute America/Matamoros America/Ojinaga America/Indiana/Knox America/Indiana/Tell_City America/Menominee America/North_Dakota/Beulah America/North_Dakota/Center America/North_Dakota/New_Salem
Easter Island Standard Time|Pacific/Easter
Central Standard Time (Mexico)|America/Mexico_City America/Bahia_Banderas America/Merida America/Monterrey America/Chihuahua
Canada Central Standard Time|America/Regina America/Swift_Current
SA Pacific Standard Time|America/Bogota America/Rio_Branco America/Eirunepe America/Coral_Harbour America/Guayaquil America/Jamaica America/Cayman America/Panama America/Lima Etc/GMT+5
Eastern Standard Time (Mexico)|America/Cancun
Eastern Standard Time|America/New_York America/Nassau America/Toronto America/Iqaluit America/Detroit America/Indiana/Petersburg America/Indiana/Vincennes America/Indiana/Winamac America/Kentucky/Monticello America/Louisville
Haiti Standard Time|America/Port-au-Prince
Cuba Standard Time|America/Havana
US Eastern Standard Time|America/Indianapolis America/Indiana/Marengo America/Indiana/Vevay
Turks And Caicos Standard Time|America/Grand_Turk
Paraguay Standard Time|America/Asuncion
Atlantic Standard Time|America/Halifax Atlantic/Bermuda America/Glace_Bay America/Goose_Bay America/Moncton America/Thule
Venezuela Standard Time|America/Caracas
Central Brazilian Standard Time|America/Cuiaba America/Campo_Grande
SA Western Standard Time|America/La_Paz America/Antigua America/Anguilla America/Aruba America/Barbados America/St_Barthelemy America/Kralendijk America/Manaus America/Boa_Vista America/Porto_Velho America/Blanc-Sablon America/Curacao America/Dominica America/Santo_Domingo America/Grenada America/Guadeloupe America/Guyana America/St_Kitts America/St_Lucia America/Marigot America/Martinique America/Montserrat America/Puerto_Rico America/Lower_Princes America/Port_of_Spain America/St_Vincent America/Tortola America/St_Thomas Etc/GMT+4
Pacific SA Standard Time|America/Santiago
Newfoundland Standard Time|America/St_Johns
Tocantins Standard Time|America/Araguaina
E. South America Standard Time|America/Sao_Paulo
SA Eastern Standard Time|America/Cayenne Antarctica/Rothera Antarctica/Palmer America/Fortaleza America/Belem America/Maceio America/Recife America/Santarem Atlantic/Stanley America/Paramaribo Etc/GMT+3
Argentina Standard Time|America/Buenos_Aires America/Argentina/La_Rioja America/Argentina/Rio_Gallegos America/Argentina/Salta America/Argentina/San_Juan America/Argentina/San_Luis America/Argentina/Tucuman America/Argentina/Ushuaia America/Catamarca America/Cordoba America/Jujuy America/Mendoza
Greenland Standard Time|America/Godthab
Montevideo Standard Time|America/Montevideo
Magallanes Standard Time|America/Punta_Arenas
Saint Pierre Standard Time|America/Miquelon
Bahia Standard Time|America/Bahia
UTC-02|Etc/GMT+2 America/Noronha Atlantic/South_Georgia
Azores Standard Time|Atlantic/Azores America/Scoresbysund
Cape Verde Standard Time|Atlantic/Cape_Verde Etc/GMT+1
UTC|Etc/UTC Etc/GMT
GMT Standard Time|Europe/London Atlantic/Canary Atlantic/Faeroe Europe/Guernsey Europe/Dublin Europe/Isle_of_Man Europe/Jersey Europe/Lisbon Atlantic/Madeira
Greenwich Standard Time|Atlantic/Reykjavik Africa/Ouagadougou Africa/Abidjan Africa/Accra America/Danmarkshavn Africa/Banjul Africa/Conakry Africa/Bissau Africa/Monrovia Africa/Bamako Africa/Nouakchott Atlantic/St_Helena Africa/Freetown Africa/Dakar Africa/Lome
Sao Tome Standard Time|Africa/Sao_Tome
Morocco Standard Time|Africa/Casablanca Africa/El_Aaiun
W. Europe Standard Time|Europe/Berlin Europe/Andorra Europe/Vienna Europe/Zurich Europe/Busingen Europe/Gibraltar Europe/Rome Europe/Vaduz Europe/Luxembourg Europe/Monaco Europe/Malta Europe/Amsterdam Europe/Oslo Europe/Stockholm Arctic/Longyearbyen Europe/San_Marino Europe/Vatican
Central Europe Standard Time|Europe/Budapest Europe/Tirane Europe/Prague Europe/Podgorica Europe/Belgrade Europe/Ljubljana Europe/Bratislava
Romance Standard Time|Europe/Paris Europe/Brussels Europe/Copenhagen Europe/Madrid Africa/Ceuta
Central European Standard Time|Europe/Warsaw Europe/Sarajevo Europe/Zagreb Europe/Skopje
W. Central Africa Standard Time|Africa/Lagos Africa/Luanda Africa/Porto-Novo Africa/Kinshasa Africa/Bangui Africa/Brazzaville Africa/Douala Africa/Algiers Africa/Libreville Africa/Malabo Africa/Niamey Africa/Ndjamena Africa/Tunis Etc/GMT-1
Jordan Standard Time|Asia/Amman
GTB Standard Time|Europe/Bucharest Asia/Nicosia Asia/Famagusta Europe/Athens
Middle East Standard Time|Asia/Beirut
Egypt Standard Time|Africa/Cairo
E. Europe Standard Time|Europe/Chisinau
Syria Standard Time|Asia/Damascus
West Bank Standard Time|Asia/Hebron Asia/Gaza
South Africa Standard Time|Africa/Johannesburg Africa/Bujumbura Africa/Gaborone Africa/Lubumbashi Africa/Maseru Africa/Blantyre Africa/Maputo Africa/Kigali Africa/Mbabane Africa/Lusaka Africa/Harare Etc/GMT-2
FLE Standard Time|Europe/Kiev Europe/Mariehamn Europe/Sofia Europe/Tallinn Europe/Helsinki Europe/Vilnius Europe/Riga
Israel Standard Time|Asia/Jerusalem
South Sudan Standard Time|Africa/Juba
Kaliningrad Standard Time|Europe/Kaliningrad
Sudan Standard Time|Africa/Khartoum
Libya Standard Time|Africa/Tripoli
Namibia Standard Time|Africa/Windhoek
Arabic Standard Time|Asia/Baghdad
Turkey Standard Time|Europe/Istanbul
Arab Standard Time|Asia/Riyadh Asia/Bahrain Asia/Kuwait Asia/Qatar Asia/Aden
Belarus Standard Time|Europe/Minsk
Russian Standard Time|Europe/Moscow Europe/Kirov Europe/Simferopol
E. Africa Standard Time|Africa/Nairobi Antarctica/Syowa Africa/Djibouti Africa/Asmera Africa/Addis_Ababa Indian/Comoro Indian/Antananarivo Africa/Mogadishu Africa/Dar_es_Salaam Africa/Kampala Indian/Mayotte Etc/GMT-3
Iran Standard Time|Asia/Tehran
Arabian Standard Time|Asia/Dubai Asia/Muscat Etc/GMT-4
Astrakhan Standard Time|Europe/Astrakhan Europe/Ulyanovsk
Azerbaijan Standard Time|Asia/Baku
Russia Time Zone 3|Europe/Samara
Mauritius Standard Time|Indian/Mauritius Indian/Reunion Indian/Mahe
Saratov Standard Time|Europe/Saratov
Georgian Standard Time|Asia/Tbilisi
Volgograd Standard Time|Europe/Volgograd
Caucasus Standard Time|Asia/Yerevan
Afghanistan Standard Time|Asia/Kabul
West Asia Standard Time|Asia/Tashkent Antarctica/Mawson Asia/Oral Asia/Almaty Asia/Aqtau Asia/Aqtobe Asia/Atyrau Asia/Qostanay Indian/Maldives Indian/Kerguelen Asia/Dushanbe Asia/Ashgabat Asia/Samarkand Etc/GMT-5
Ekaterinburg Standard Time|Asia/Yekaterinburg
Pakistan Standard Time|Asia/Karachi
Qyzylorda Standard Time|Asia/Qyzylorda
India Standard Time|Asia/Calcutta
Sri Lanka Standard Time|Asia/Colombo
Nepal Standard Time|Asia/Katmandu
Central Asia Standard Time|Asia/Bishkek Antarctica/Vostok Asia/Urumqi Indian/Chagos Etc/GMT-6
Bangladesh Standard Time|Asia/Dhaka Asia/Thimphu
Omsk Standard Time|Asia/Omsk
Myanmar Standard Time|Asia/Rangoon Indian/Cocos
SE Asia Standard Time|Asia/Bangkok Antarctica/Davis Indian/Christmas Asia/Jakarta Asia/Pontianak Asia/Phnom_Penh Asia/Vientiane Asia/Saigon Etc/GMT-7
Altai Standard Time|Asia/Barnaul
W. Mongolia Standard Time|Asia/Hovd
North Asia Standard Time|Asia/Krasnoyarsk Asia/Novokuznetsk
N. Central Asia Standard Time|Asia/Novosibirsk
Tomsk Standard Time|Asia/Tomsk
China Standard Time|Asia/Shanghai Asia/Hong_Kong Asia/Macau
North Asia East Standard Time|Asia/Irkutsk
Singapore Standard Time|Asia/Singapore Asia/Brunei Asia/Makassar Asia/Kuala_Lumpur Asia/Kuching Asia/Manila Etc/GMT-8
W. Australia Standard Time|Australia/Perth
Taipei Standard Time|Asia/Taipei
Ulaanbaatar Standard Time|Asia/Ulaanbaatar Asia/Choibalsan
Aus Central W. Standard Time|Australia/Eucla
Transbaikal Standard Time|Asia/Chita
Tokyo Standard Time|Asia/Tokyo Asia/Jayapura Pacific/Palau Asia/Dili Etc/GMT-9
North Korea Standard Time|Asia/Pyongyang
Korea Standard Time|Asia/Seoul
Yakutsk Standard Time|Asia/Yakutsk Asia/Khandyga
Cen. Australia Standard Time|Australia/Adelaide Australia/Broken_Hill
AUS Central Standard Time|Australia/Darwin
E. Australia Standard Time|Australia/Brisbane Australia/Lindeman
AUS Eastern Standard Time|Australia/Sydney Australia/Melbourne
West Pacific Standard Time|Pacific/Port_Moresby Antarctica/DumontDUrville Pacific/Truk Pacific/Guam Pacific/Saipan Etc/GMT-10
Tasmania Standard Time|Australia/Hobart Antarctica/Macquarie
Vladivostok Standard Time|Asia/Vladivostok Asia/Ust-Nera
Lord Howe Standard Time|Australia/Lord_Howe
Bougainville Standard Time|Pacific/Bougainville
Russia Time Zone 10|Asia/Srednekolymsk
Magadan Standard Time|Asia/Magadan
Norfolk Standard Time|Pacific/Norfolk
Sakhalin Standard Time|Asia/Sakhalin
Central Pacific Standard Time|Pacific/Guadalcanal Antarctica/Casey Pacific/Ponape Pacific/Kosrae Pacific/Noumea Pacific/Efate Etc/GMT-11
Russia Time Zone 11|Asia/Kamchatka Asia/Anadyr
New Zealand Standard Time|Pacific/Auckland Antarctica/McMurdo
UTC+12|Etc/GMT-12 Pacific/Tarawa Pacific/Majuro Pacific/Kwajalein Pacific/Nauru Pacific/Funafuti Pacific/Wake Pacific/Wallis
Fiji Standard Time|Pacific/Fiji
Chatham Islands Standard Time|Pacific/Chatham
UTC+13|Etc/GMT-13 Pacific/Enderbury Pacific/Fakaofo
Tonga Standard Time|Pacific/Tongatapu
Samoa Standard Time|Pacific/Apia
Line Islands Standard Time|Pacific/Kiritimati Etc/GMT-14
`;

/** Names ICU still reports as canonical mapped to their current IANA spelling, so output is stable across Node versions. */
const CURRENT_NAME: Record<string, string> = {
  'Asia/Calcutta': 'Asia/Kolkata',
  'Europe/Kiev': 'Europe/Kyiv',
  'Asia/Katmandu': 'Asia/Kathmandu',
  'Asia/Saigon': 'Asia/Ho_Chi_Minh',
  'Asia/Rangoon': 'Asia/Yangon',
  'America/Godthab': 'America/Nuuk',
  'America/Buenos_Aires': 'America/Argentina/Buenos_Aires',
  'America/Indianapolis': 'America/Indiana/Indianapolis',
  'America/Louisville': 'America/Kentucky/Louisville',
  'America/Catamarca': 'America/Argentina/Catamarca',
  'America/Cordoba': 'America/Argentina/Cordoba',
  'America/Jujuy': 'America/Argentina/Jujuy',
  'America/Mendoza': 'America/Argentina/Mendoza',
  'America/Coral_Harbour': 'America/Atikokan',
  'Africa/Asmera': 'Africa/Asmara',
  'Atlantic/Faeroe': 'Atlantic/Faroe',
  'Pacific/Truk': 'Pacific/Chuuk',
  'Pacific/Ponape': 'Pacific/Pohnpei',
  'Pacific/Enderbury': 'Pacific/Kanton',
  'Etc/UTC': 'UTC',
  'Etc/GMT': 'UTC',
};

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    formatters.set(zone, f);
  }
  return f;
}

const ianaCache = new Map<string, string | null>();
/** The IANA name the platform knows `name` by (any case, any alias), in its current spelling; undefined when unknown. */
function platformZone(name: string): string | undefined {
  const hit = ianaCache.get(name);
  if (hit !== undefined) return hit ?? undefined;
  let out: string | null = null;
  try {
    const z = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
    out = CURRENT_NAME[z] ?? z;
  } catch {
    out = null;
  }
  ianaCache.set(name, out);
  return out ?? undefined;
}

/** Windows name (lower-cased) → primary IANA zone; IANA zone (current spelling) → Windows name. */
const windowsToIana = new Map<string, string>();
const windowsDisplay = new Map<string, string>();
const ianaToWindows = new Map<string, string>();
for (const line of WINDOWS_ZONES.trim().split('\n')) {
  const [win, zones] = line.split('|');
  const list = zones.split(' ').map((z) => platformZone(z)).filter((z): z is string => !!z);
  if (!list.length) continue;
  windowsToIana.set(win.toLowerCase(), list[0]);
  windowsDisplay.set(win.toLowerCase(), win);
  for (const z of list) if (!ianaToWindows.has(z)) ianaToWindows.set(z, win);
}

/**
 * The IANA zone for a name Exchange or the CRM might use: an IANA name or alias, a Windows name, or Exchange's
 * `tzone://Microsoft/Utc` style. Undefined when the name is unknown (a custom Exchange zone, a typo).
 */
export function resolveTimeZone(name: string | null | undefined): string | undefined {
  if (!name) return undefined;
  const n = name.trim();
  if (!n) return undefined;
  const lower = n.toLowerCase();
  if (lower === 'tzone://microsoft/utc' || lower === 'z') return 'UTC';
  const win = windowsToIana.get(lower);
  if (win) return win;
  return platformZone(n);
}

/** True when `name` is a zone cxsync can convert in. */
export function isKnownTimeZone(name: string | null | undefined): boolean {
  return resolveTimeZone(name) !== undefined;
}

/** The Windows name Exchange uses for an IANA zone, when it has one. */
export function windowsTimeZone(name: string): string | undefined {
  const iana = resolveTimeZone(name);
  return iana ? ianaToWindows.get(iana) : undefined;
}

/**
 * One name per zone: zones with the same Windows zone are the same zone for scheduling purposes, so they all
 * become that Windows zone's primary IANA zone (Europe/Amsterdam → Europe/Berlin). Compare and fingerprint
 * zones in this form; store what the user chose.
 */
export function canonicalTimeZone(name: string | null | undefined): string | undefined {
  const iana = resolveTimeZone(name);
  if (!iana) return undefined;
  const win = ianaToWindows.get(iana);
  return win ? windowsToIana.get(win.toLowerCase())! : iana;
}

export function sameTimeZone(a: string | null | undefined, b: string | null | undefined): boolean {
  const ca = canonicalTimeZone(a);
  return ca !== undefined && ca === canonicalTimeZone(b);
}

// ---- wall time ----------------------------------------------------------------------------------------

/** Local wall time, `YYYY-MM-DDTHH:mm:ss`, no zone. */
export type WallTime = string;
/** A calendar date, `YYYY-MM-DD`. */
export type DateOnly = string;

const WALL = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?)?$/;

/**
 * Normalises a wall time as Graph (`2025-03-30T09:00:00.0000000`), PostgreSQL (`2025-03-30 09:00:00`) or a
 * person (`2025-03-30T09:00`) writes it to `YYYY-MM-DDTHH:mm:ss`. Undefined when it is not one.
 */
export function parseWallTime(s: string | null | undefined): WallTime | undefined {
  if (!s) return undefined;
  const m = WALL.exec(s.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', se = '00'] = m;
  const wall = `${y}-${mo}-${d}T${h}:${mi}:${se}`;
  // Reject 2025-02-30 and 25:00: the fields must survive a round trip through a UTC date.
  const t = Date.UTC(+y, +mo - 1, +d, +h, +mi, +se);
  return utcWall(t) === wall ? wall : undefined;
}

/** The wall time of a UTC instant (ms), as `YYYY-MM-DDTHH:mm:ss`. */
function utcWall(ms: number): WallTime {
  return new Date(ms).toISOString().slice(0, 19);
}

/** Reads a wall time as if it were UTC: a plain number line for date arithmetic on wall times. */
export function wallAsUtc(wall: WallTime): number {
  const m = WALL.exec(wall)!;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0));
}

export function instantToWall(ms: number, zone: string): WallTime {
  const parts = formatter(resolveTimeZone(zone) ?? zone).formatToParts(new Date(ms));
  const get = (t: string) => parts.find((p) => p.type === t)!.value;
  return `${get('year')}-${get('month')}-${get('day')}T${get('hour')}:${get('minute')}:${get('second')}`;
}

/** Minutes east of UTC in effect in `zone` at instant `ms` (Berlin in summer: 120). */
export function offsetMinutes(ms: number, zone: string): number {
  const wall = instantToWall(Math.floor(ms / 1000) * 1000, zone);
  return Math.round((wallAsUtc(wall) - Math.floor(ms / 1000) * 1000) / 60_000);
}

/**
 * The instant a wall time in a zone denotes. A time that does not exist (skipped by a spring-forward
 * transition) moves forward by the gap, and a time that exists twice (fall back) is the earlier one: the rules
 * of RFC 5545 and of Exchange.
 */
export function wallToInstant(wall: WallTime, zone: string): number {
  const local = wallAsUtc(wall);
  const before = offsetMinutes(local - 86_400_000, zone);
  const after = offsetMinutes(local + 86_400_000, zone);
  const candidates = [...new Set([before, after])]
    .map((o) => local - o * 60_000)
    .filter((t) => instantToWall(t, zone) === wall)
    .sort((a, b) => a - b);
  if (candidates.length) return candidates[0];
  // In a gap: read it with the offset before the transition, which lands after the gap.
  return local - before * 60_000;
}

/** The same instant as wall time in another zone. */
export function convertWallTime(wall: WallTime, from: string, to: string): WallTime {
  return instantToWall(wallToInstant(wall, from), to);
}

/** ISO instant with a Z, whole seconds. */
export function isoInstant(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function addDays(date: DateOnly, days: number): DateOnly {
  return new Date(Date.UTC(+date.slice(0, 4), +date.slice(5, 7) - 1, +date.slice(8, 10) + days)).toISOString().slice(0, 10);
}

export function addSecondsToWall(wall: WallTime, seconds: number): WallTime {
  return utcWall(wallAsUtc(wall) + seconds * 1000);
}

/** Seconds from wall time a to wall time b, on the wall clock (a 09:00–10:00 meeting lasts 3600 across a DST change). */
export function wallSecondsBetween(a: WallTime, b: WallTime): number {
  return Math.round((wallAsUtc(b) - wallAsUtc(a)) / 1000);
}

/** Today's date in a zone. */
export function todayIn(zone: string, now = Date.now()): DateOnly {
  return instantToWall(now, zone).slice(0, 10);
}
