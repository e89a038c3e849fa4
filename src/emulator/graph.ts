/**
 * Graph's /v1.0 resources over the store: one pure request → response function, shared by $batch. This is the
 * router only: it resolves the mailbox and hands the rest of the path to the resource's handler (contacts.ts,
 * categories.ts, calendar.ts, todo.ts, mail.ts), which depend on route-kit.ts and never on this module.
 */
import { outlookCategories } from './categories';
import { handleCalendar, isCalendarRoot } from './calendar';
import { handleContacts, isContactsRoot } from './contacts';
import { badRequest } from './errors';
import { handleMail, isMailRoot } from './mail';
import { methodNotAllowed, noResource, ok, type GraphContext, type GraphRequest, type GraphResponse } from './route-kit';
import { handleTodo } from './todo';

/** The user segment of /users/{u}/..., or undefined for other paths. */
export function userOfPath(rawPath: string): string | undefined {
  const m = /^\/users\/([^/?]+)/i.exec(rawPath);
  return m ? decodeURIComponent(m[1]) : undefined;
}

export function handleGraph(ctx: GraphContext, req: GraphRequest): GraphResponse {
  const segs = req.rawPath.split('/').filter(Boolean).map(decodeURIComponent);
  if (segs[0]?.toLowerCase() === 'me') {
    throw badRequest('BadRequest', '/me request is only valid with delegated authentication flow.');
  }
  if (segs[0]?.toLowerCase() !== 'users' || segs.length < 2) throw noResource(segs[0] ?? '');
  const mb = ctx.store.mailbox(segs[1]);
  const rest = segs.slice(2);
  const r0 = rest[0]?.toLowerCase();
  const m = req.method;

  if (rest.length === 0) {
    if (m !== 'GET') throw methodNotAllowed();
    return ok({ '@odata.context': `${ctx.graphBaseUrl}/$metadata#users/$entity`, id: mb.id, userPrincipalName: mb.upn, displayName: mb.displayName, mail: mb.upn });
  }
  if (r0 === 'mailboxsettings' && rest.length === 1) {
    if (m !== 'GET') throw methodNotAllowed();
    return ok({ timeZone: mb.timeZone });
  }
  if (isContactsRoot(r0)) return handleContacts(ctx, req, mb, rest);
  if (r0 === 'outlook') return outlookCategories(ctx, req, mb, rest.slice(1));
  if (r0 === 'todo') return handleTodo(ctx, req, mb, rest.slice(1));
  if (isCalendarRoot(r0)) return handleCalendar(ctx, req, mb, rest);
  if (isMailRoot(r0)) return handleMail(ctx, req, mb, rest);
  throw noResource(rest[0]);
}
