/**
 * /users/{u}/outlook/masterCategories: the mailbox's master category list. Names are unique
 * (case-insensitively) and cannot be changed after creation; colours are `preset0`…`preset24` or `none`.
 */
import { badRequest } from './errors';
import { methodNotAllowed, noResource, type GraphContext, type GraphRequest, type GraphResponse } from './route-kit';
import type { Mailbox, OutlookCategory } from './store';

export const CATEGORY_COLORS: readonly string[] = ['none', ...Array.from({ length: 25 }, (_, i) => `preset${i}`)];

function color(v: unknown): string {
  if (v === undefined) return 'none';
  if (typeof v !== 'string' || !CATEGORY_COLORS.includes(v)) {
    throw badRequest('RequestBodyRead', `Requested value '${String(v)}' was not found in the enum type 'microsoft.graph.categoryColor'.`);
  }
  return v;
}

function body(req: GraphRequest, allowed: string[]): Record<string, unknown> {
  const b = (req.body ?? {}) as Record<string, unknown>;
  if (typeof b !== 'object' || Array.isArray(b)) throw badRequest('RequestBodyRead', 'The request body must be a JSON object.');
  for (const k of Object.keys(b)) {
    if (k === '@odata.type' || k === 'id') continue;
    if (!allowed.includes(k)) {
      if (k === 'displayName') throw badRequest('ErrorInvalidRequest', 'The displayName of a category cannot be changed once it is created.');
      throw badRequest('RequestBodyRead', `The property '${k}' does not exist on type 'microsoft.graph.outlookCategory'.`);
    }
  }
  return b;
}

const render = (c: OutlookCategory) => ({ id: c.id, displayName: c.displayName, color: c.color });

export function outlookCategories(ctx: GraphContext, req: GraphRequest, mb: Mailbox, rest: string[]): GraphResponse {
  if (rest[0]?.toLowerCase() !== 'mastercategories') {
    throw noResource(rest[0] ?? 'outlook');
  }
  const { store } = ctx;
  const contextPath = `${ctx.graphBaseUrl}/$metadata#users('${mb.upn}')/outlook/masterCategories`;
  if (rest.length === 1) {
    if (req.method === 'GET') return { status: 200, body: { '@odata.context': contextPath, value: store.categories(mb).map(render) } };
    if (req.method === 'POST') {
      const b = body(req, ['displayName', 'color']);
      if (typeof b.displayName !== 'string' || !b.displayName.trim()) throw badRequest('ErrorInvalidRequest', 'The category displayName is missing.');
      const c = store.createCategory(mb, b.displayName, color(b.color));
      return { status: 201, body: { '@odata.context': `${contextPath}/$entity`, ...render(c) } };
    }
    throw methodNotAllowed();
  }
  if (rest.length === 2) {
    const id = rest[1];
    if (req.method === 'GET') return { status: 200, body: { '@odata.context': `${contextPath}/$entity`, ...render(store.category(mb, id)) } };
    if (req.method === 'PATCH') {
      const b = body(req, ['color']);
      return { status: 200, body: { '@odata.context': `${contextPath}/$entity`, ...render(store.updateCategory(mb, id, color(b.color ?? store.category(mb, id).color))) } };
    }
    if (req.method === 'DELETE') {
      store.deleteCategory(mb, id);
      return { status: 204 };
    }
    throw methodNotAllowed();
  }
  throw noResource(rest[2]);
}
