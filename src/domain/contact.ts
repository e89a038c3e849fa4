/**
 * The contact as cxsync understands it, on neither side's terms, and the mapping to and from Microsoft Graph
 * contacts and CRM contact rows. Validation lives here: bad data is rejected with the field and the reason so
 * the sync log can say what to fix.
 */
import { changedProperties } from './patch';
import { fail, ok, type Result } from './result';

export interface ContactRecord {
  firstName?: string;
  lastName?: string;
  email?: string;
  /** Outlook's 2nd and 3rd email slots (the CRM's alternate addresses). */
  email2?: string;
  email3?: string;
  phone?: string;
  mobile?: string;
  company?: string;
  jobTitle?: string;
  department?: string;
  street?: string;
  city?: string;
  state?: string;
  postalCode?: string;
  country?: string;
  notes?: string;
  /**
   * Exchange only (never compared with or written to the CRM, see CONTACT_EXCHANGE_ONLY): the user's own
   * display name when it is not the one cxsync would make, and business phones beyond the first. Kept in the
   * merge base so that a write from the CRM leaves them as the user set them.
   */
  displayName?: string;
  otherPhones?: string[];
}

/** Fields of ContactRecord only Exchange holds. */
export const CONTACT_EXCHANGE_ONLY = ['displayName', 'otherPhones'] as const;

export const CONTACT_FIELDS = [
  'firstName', 'lastName', 'email', 'email2', 'email3', 'phone', 'mobile', 'company', 'jobTitle', 'department',
  'street', 'city', 'state', 'postalCode', 'country', 'notes',
] as const satisfies readonly (keyof ContactRecord)[];

/** Longest value accepted per field; Exchange's own limits are in the same range (255 for names). */
export const CONTACT_FIELD_LIMITS: Record<(typeof CONTACT_FIELDS)[number], number> = {
  firstName: 255, lastName: 255, email: 320, email2: 320, email3: 320, phone: 64, mobile: 64, company: 255, jobTitle: 255, department: 255,
  street: 1024, city: 255, state: 255, postalCode: 64, country: 255, notes: 32_000,
};

// Pragmatic address check (RFC 5322 allows more, Exchange accepts less): one @, no spaces, a dot in the domain.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function clean(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

/**
 * The email slots without gaps or repeats, in order: what Outlook holds. A field-level merge applies it (two edits
 * on two sides can leave a gap or a repeat that neither made; stories 4c and 4d in test/model/stories.test.ts).
 */
export function closeEmailSlots<T extends { email?: unknown; email2?: unknown; email3?: unknown }>(rec: T): T {
  const emails = [...new Set([rec.email, rec.email2, rec.email3].filter((e): e is string => typeof e === 'string' && e !== ''))];
  const out = { ...rec };
  (['email', 'email2', 'email3'] as const).forEach((f, i) => {
    if (emails[i] === undefined) delete out[f];
    else (out as Record<string, unknown>)[f] = emails[i];
  });
  return out;
}

/** Normalises and validates; the one gate every contact passes on its way in from either side. */
export function validateContact(input: ContactRecord): Result<ContactRecord> {
  const out: ContactRecord = {};
  for (const f of CONTACT_FIELDS) {
    const v = clean(input[f]);
    if (v === undefined) continue;
    if (v.length > CONTACT_FIELD_LIMITS[f]) {
      return fail(`field ${f} is ${v.length} characters long; the limit is ${CONTACT_FIELD_LIMITS[f]}: shorten it`);
    }
    out[f] = v;
  }
  // Outlook's email slots have no gaps: a cleared first address moves the others up, on both sides alike; an
  // address in two slots is kept once.
  for (const f of ['email', 'email2', 'email3'] as const) if (out[f]) out[f] = out[f]!.toLowerCase();
  const slots = closeEmailSlots(out);
  for (const f of ['email', 'email2', 'email3'] as const) {
    if (slots[f] === undefined) delete out[f];
    else out[f] = slots[f];
    if (out[f] !== undefined && !EMAIL.test(out[f]!)) return fail(`field ${f} "${out[f]}" is not a valid email address: correct or clear it`);
  }
  const display = clean(input.displayName);
  if (display !== undefined && display !== contactLabel(out)) out.displayName = display.slice(0, CONTACT_FIELD_LIMITS.firstName);
  const phones = (input.otherPhones ?? []).map(clean).filter((p): p is string => p !== undefined);
  if (phones.length) out.otherPhones = phones;
  if (!out.firstName && !out.lastName && !out.company && !out.email) {
    return fail('contact has no name, company or email: give it at least a name');
  }
  return ok(out);
}

export function contactLabel(c: ContactRecord): string {
  return [c.firstName, c.lastName].filter(Boolean).join(' ') || c.company || c.email || '(unnamed)';
}

// ---- Microsoft Graph ----------------------------------------------------------------------------------

export interface GraphContact {
  id?: string;
  changeKey?: string;
  givenName?: string | null;
  surname?: string | null;
  displayName?: string | null;
  emailAddresses?: { address?: string | null; name?: string | null }[] | null;
  businessPhones?: string[] | null;
  mobilePhone?: string | null;
  companyName?: string | null;
  jobTitle?: string | null;
  department?: string | null;
  businessAddress?: { street?: string | null; city?: string | null; state?: string | null; postalCode?: string | null; countryOrRegion?: string | null } | null;
  personalNotes?: string | null;
  categories?: string[] | null;
  [other: string]: unknown;
}

export function fromGraphContact(g: GraphContact): Result<ContactRecord> {
  const a = g.businessAddress ?? {};
  return validateContact({
    firstName: g.givenName ?? undefined,
    lastName: g.surname ?? undefined,
    email: g.emailAddresses?.[0]?.address ?? undefined,
    email2: g.emailAddresses?.[1]?.address ?? undefined,
    email3: g.emailAddresses?.[2]?.address ?? undefined,
    displayName: g.displayName ?? undefined,
    otherPhones: g.businessPhones?.slice(1),
    phone: g.businessPhones?.[0] ?? undefined,
    mobile: g.mobilePhone ?? undefined,
    company: g.companyName ?? undefined,
    jobTitle: g.jobTitle ?? undefined,
    department: g.department ?? undefined,
    street: a.street ?? undefined,
    city: a.city ?? undefined,
    state: a.state ?? undefined,
    postalCode: a.postalCode ?? undefined,
    country: a.countryOrRegion ?? undefined,
    notes: g.personalNotes ?? undefined,
  });
}

/**
 * The Graph properties of `c` whose value differs from those of `previous`: an update sends only these, so
 * whatever else the item holds (properties cxsync does not sync) stays as the user left it.
 */
export function graphContactPatch(c: ContactRecord, previous: ContactRecord): GraphContact {
  return changedProperties(toGraphContact(c), toGraphContact(previous));
}

/**
 * The Graph body for a create or a full update. Every synced property is sent, cleared ones as null/empty, so
 * an update also clears what the other side cleared.
 */
export function toGraphContact(c: ContactRecord): GraphContact {
  const displayName = c.displayName ?? contactLabel(c);
  return {
    givenName: c.firstName ?? null,
    surname: c.lastName ?? null,
    displayName,
    emailAddresses: [c.email, c.email2, c.email3].filter((a): a is string => !!a).map((address) => ({ address, name: address === c.email ? displayName : address })),
    businessPhones: [...(c.phone ? [c.phone] : []), ...(c.otherPhones ?? [])],
    mobilePhone: c.mobile ?? null,
    companyName: c.company ?? null,
    jobTitle: c.jobTitle ?? null,
    department: c.department ?? null,
    businessAddress: {
      street: c.street ?? null,
      city: c.city ?? null,
      state: c.state ?? null,
      postalCode: c.postalCode ?? null,
      countryOrRegion: c.country ?? null,
    },
    personalNotes: c.notes ?? null,
  };
}

// ---- CRM rows -----------------------------------------------------------------------------------------

export interface CrmContactFields {
  first_name: string | null;
  last_name: string | null;
  email: string | null;
  email2: string | null;
  email3: string | null;
  phone: string | null;
  mobile: string | null;
  company: string | null;
  job_title: string | null;
  department: string | null;
  street: string | null;
  city: string | null;
  state: string | null;
  postal_code: string | null;
  country: string | null;
  notes: string | null;
}

export function fromCrmContact(r: Partial<CrmContactFields>): Result<ContactRecord> {
  return validateContact({
    firstName: r.first_name ?? undefined,
    lastName: r.last_name ?? undefined,
    email: r.email ?? undefined,
    email2: r.email2 ?? undefined,
    email3: r.email3 ?? undefined,
    phone: r.phone ?? undefined,
    mobile: r.mobile ?? undefined,
    company: r.company ?? undefined,
    jobTitle: r.job_title ?? undefined,
    department: r.department ?? undefined,
    street: r.street ?? undefined,
    city: r.city ?? undefined,
    state: r.state ?? undefined,
    postalCode: r.postal_code ?? undefined,
    country: r.country ?? undefined,
    notes: r.notes ?? undefined,
  });
}

export function toCrmContact(c: ContactRecord): CrmContactFields {
  return {
    first_name: c.firstName ?? null,
    last_name: c.lastName ?? null,
    email: c.email ?? null,
    email2: c.email2 ?? null,
    email3: c.email3 ?? null,
    phone: c.phone ?? null,
    mobile: c.mobile ?? null,
    company: c.company ?? null,
    job_title: c.jobTitle ?? null,
    department: c.department ?? null,
    street: c.street ?? null,
    city: c.city ?? null,
    state: c.state ?? null,
    postal_code: c.postalCode ?? null,
    country: c.country ?? null,
    notes: c.notes ?? null,
  };
}
