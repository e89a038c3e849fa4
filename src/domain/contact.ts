/**
 * The contact as cxsync understands it, on neither side's terms, and the mapping to and from Microsoft Graph
 * contacts and CRM contact rows. Validation lives here: bad data is rejected with the field and the reason so
 * the sync log can say what to fix.
 */
import { fail, ok, type Result } from './result';

export interface ContactRecord {
  firstName?: string;
  lastName?: string;
  email?: string;
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
}

export const CONTACT_FIELDS = [
  'firstName', 'lastName', 'email', 'phone', 'mobile', 'company', 'jobTitle', 'department',
  'street', 'city', 'state', 'postalCode', 'country', 'notes',
] as const satisfies readonly (keyof ContactRecord)[];

/** Longest value accepted per field; Exchange's own limits are in the same range (255 for names). */
export const CONTACT_FIELD_LIMITS: Record<keyof ContactRecord, number> = {
  firstName: 255, lastName: 255, email: 320, phone: 64, mobile: 64, company: 255, jobTitle: 255, department: 255,
  street: 1024, city: 255, state: 255, postalCode: 64, country: 255, notes: 32_000,
};

// Pragmatic address check (RFC 5322 allows more, Exchange accepts less): one @, no spaces, a dot in the domain.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function clean(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
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
  if (out.email) {
    out.email = out.email.toLowerCase();
    if (!EMAIL.test(out.email)) return fail(`field email "${out.email}" is not a valid email address: correct or clear it`);
  }
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
 * The Graph body for a create or a full update. Every synced property is sent, cleared ones as null/empty, so
 * an update also clears what the other side cleared.
 */
export function toGraphContact(c: ContactRecord): GraphContact {
  const displayName = contactLabel(c);
  return {
    givenName: c.firstName ?? null,
    surname: c.lastName ?? null,
    displayName,
    emailAddresses: c.email ? [{ address: c.email, name: displayName }] : [],
    businessPhones: c.phone ? [c.phone] : [],
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
