/**
 * Delta rounds over a folder. A round covers changes in (from, highWater]; highWater is fixed when the round
 * starts, so paging is stable. An item changed while a round is paged gets a sequence number above
 * highWater and is picked up by the next round — never lost, at worst sent twice.
 * Tokens are opaque but self-contained (base64url JSON), so any nextLink/deltaLink can be followed after a restart.
 */
import { GraphHttpError, badRequest } from './errors';
import type { Mailbox, Store } from './store';

/** `from` of a round that started without a token: a full round, which reports what is there, not removals. */
export const INITIAL_ROUND = -1;

interface TokenBody {
  /** 'n' = nextLink inside a round, 'd' = deltaLink that starts the next round. */
  t: 'n' | 'd';
  /** Mailbox incarnation: a token from before a reset is refused. */
  m: string;
  f: string;
  r: number;
  from: number;
  hw: number;
  /** Sequence number of the last item already sent in this round. */
  after?: number;
  select?: string;
  /** Quirk `repeatItems`: an item sent on the previous page, sent again at the top of this one. */
  rep?: string;
}

/**
 * Behaviours real Graph shows and a client must survive, off by default, switchable per mailbox:
 * - `partialUpdates`: in an incremental round, an item that existed before the round carries only the
 *   properties written since the previous round (plus id, @odata.etag, changeKey, lastModifiedDateTime);
 * - `repeatItems`: every page after the first repeats the last item of the page before it;
 * - `emptyPages`: every round begins with an empty page that carries a nextLink.
 */
export interface DeltaQuirks {
  partialUpdates?: boolean;
  repeatItems?: boolean;
  emptyPages?: boolean;
}

export function encodeToken(body: TokenBody): string {
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

export function decodeToken(token: string): TokenBody {
  try {
    const body = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as TokenBody;
    if ((body.t !== 'n' && body.t !== 'd') || typeof body.f !== 'string' || typeof body.r !== 'number') throw new Error('shape');
    return body;
  } catch {
    throw badRequest('BadRequest', 'The delta token is malformed.');
  }
}

const syncStateNotFound = () =>
  new GraphHttpError(410, 'SyncStateNotFound', 'The sync state generation is not found. Please do a full sync.');

export interface DeltaPage {
  /** Item ids in this page (immutable), in order, whether each left the folder, and its default id then. */
  entries: Array<{ id: string; removed: boolean; restId?: string }>;
  nextToken?: string;
  deltaToken?: string;
  select?: string;
  /** The round's lower bound: 0 for a full round, else the sequence number the previous round ended at. */
  from: number;
}

export function deltaPage(
  store: Store,
  mb: Mailbox,
  folderId: string,
  query: { skiptoken?: string | null; deltatoken?: string | null; select?: string | null },
  pageSize: number,
  quirks: DeltaQuirks = {},
): DeltaPage {
  let round: number;
  let from: number;
  let hw: number;
  let after: number;
  let select = query.select ?? undefined;
  let rep: string | undefined;
  const token = query.skiptoken ?? query.deltatoken;
  if (token) {
    const t = decodeToken(token);
    if (t.f !== folderId) throw badRequest('BadRequest', 'The delta token belongs to another folder.');
    if (t.m !== mb.incarnation || !store.roundIsLive(mb, folderId, t.r)) throw syncStateNotFound();
    if ((query.skiptoken && t.t !== 'n') || (query.deltatoken && t.t !== 'd')) throw badRequest('BadRequest', 'The delta token is malformed.');
    select = t.select ?? select;
    if (t.t === 'n') {
      round = t.r;
      from = t.from;
      hw = t.hw;
      after = t.after ?? t.from;
      rep = t.rep;
    } else {
      round = store.startRound(mb, folderId);
      from = t.hw;
      hw = mb.seq;
      after = from;
    }
  } else {
    // The initial round is marked by from = -1, not 0: the round after an initial round of an empty folder also
    // starts at 0, and a tracked (deltaLink) round reports removed instances with @removed
    // (concepts/delta-query-overview.md, "Resource representation in the delta query response").
    round = store.startRound(mb, folderId);
    from = INITIAL_ROUND;
    hw = mb.seq;
    after = 0;
  }

  const base = { m: mb.incarnation, f: folderId, r: round, from, hw, ...(select ? { select } : {}) };
  if (quirks.emptyPages && !query.skiptoken) {
    return { entries: [], nextToken: encodeToken({ t: 'n', ...base, after }), select, from };
  }
  const candidates = Object.values(mb.entries)
    // A full round reports what is there, not what used to be.
    .filter((e) => e.folderId === folderId && e.seq > after && e.seq <= hw && !(from === INITIAL_ROUND && e.removed))
    .sort((a, b) => a.seq - b.seq);
  const repeated = rep && mb.items[rep]?.folderId === folderId && pageSize > 1 ? [{ id: rep, removed: false }] : [];
  const page = candidates.slice(0, pageSize - repeated.length);
  const entries = [...repeated, ...page.map((e) => ({ id: e.id, removed: e.removed, restId: e.restId }))];
  if (candidates.length > page.length) {
    const last = page[page.length - 1];
    const nextRep = quirks.repeatItems && !last.removed ? { rep: last.id } : {};
    return { entries, nextToken: encodeToken({ t: 'n', ...base, after: last.seq, ...nextRep }), select, from };
  }
  return { entries, deltaToken: encodeToken({ t: 'd', ...base }), select, from };
}
