/**
 * Microsoft Graph for calendar events: calendar resolution, the calendarView delta pager over the sync window,
 * series reads (master + instances), occurrence writes, the marked-item listing, and the requests for
 * single-item writes (sent in JSON batches by the cycle).
 *
 * Every read asks for times in UTC (`Prefer: outlook.timezone="UTC"`): one consistent form, converted to each
 * event's own zone by the domain mapper, so nothing depends on the mailbox's settings. Bodies are read as the
 * HTML Exchange keeps and converted by src/domain/body.ts, which keeps link targets (Graph's own text form is
 * not ours to control, and a body cxsync wrote must read back exactly as written).
 * Creates carry the sync id twice: as `transactionId` (Graph itself turns a repeated POST into the first
 * event) and as an extended property (what a lookup after a lost answer filters on).
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import { addDays } from '../../domain/timezone';
import type { GraphEvent, GraphInstance, SyncWindow } from '../../domain/event';
import { gated, sendBatch, type GraphSubRequest, type GraphSubResponse } from './batch';
import { CRM_ID_PROPERTY, IMMUTABLE_IDS, SYNC_ID_PROPERTY, ifMatch } from './contacts-api';
import { classifyGraphError, classifySubResponse } from './errors';

const enc = encodeURIComponent;
const q = (s: string) => s.replace(/'/g, "''");

/** The one form every event read is asked in. */
export const EVENT_READ_PREFER = `outlook.timezone="UTC", ${IMMUTABLE_IDS}`;
const READ = { Prefer: EVENT_READ_PREFER };
const MARKERS = `singleValueExtendedProperties($filter=id eq '${SYNC_ID_PROPERTY}' or id eq '${CRM_ID_PROPERTY}')`;
const LIST_PAGE = 1000;
/** Instances are read this far beyond the window, so an occurrence moved out of it is still found. */
export const INSTANCE_PADDING_DAYS = 31;
const INSTANCE_FIELDS = 'id,type,originalStart,start,end,subject,location,isCancelled,seriesMasterId';

export type DeltaEvent = GraphEvent & { '@removed'?: { reason: string } };

export interface EventsDeltaPage {
  items: DeltaEvent[];
  nextLink?: string;
  deltaLink?: string;
}

/** A series as one read: its master and its instances around the window; `gone` when the master is deleted. */
export type SeriesRead = { id: string; gone: true } | { id: string; gone: false; master: GraphEvent; instances: GraphInstance[] };

function throwSub(res: GraphSubResponse): never {
  const g = classifySubResponse(res);
  throw Object.assign(new Error(g.message), { statusCode: g.status, code: g.code, headers: res.headers });
}

export function markerOf(ev: { singleValueExtendedProperties?: Array<{ id: string; value: string }> | null }): { syncId?: string; crmId?: string } {
  const props = ev.singleValueExtendedProperties ?? [];
  const val = (pid: string) => props.find((p) => p.id.toLowerCase() === pid.toLowerCase())?.value;
  return { syncId: val(SYNC_ID_PROPERTY), crmId: val(CRM_ID_PROPERTY) };
}

export class EventsApi {
  constructor(readonly client: Client, readonly pageSize = 100) {}

  // ---- calendars ----------------------------------------------------------------------------------

  async ensureCalendar(upn: string, name: string): Promise<string> {
    const path = `/users/${enc(upn)}/calendars`;
    const found = await gated(upn, () => this.client.api(path).header('Prefer', IMMUTABLE_IDS).filter(`name eq '${q(name)}'`).get());
    if (found.value?.length) return found.value[0].id as string;
    try {
      const created = await gated(upn, () => this.client.api(path).header('Prefer', IMMUTABLE_IDS).post({ name }));
      return created.id as string;
    } catch (err) {
      // Another worker created it between our read and write.
      if (classifyGraphError(err).status === 409) return this.ensureCalendar(upn, name);
      throw err;
    }
  }

  async defaultCalendar(upn: string): Promise<string> {
    const c = await gated(upn, () => this.client.api(`/users/${enc(upn)}/calendar`).header('Prefer', IMMUTABLE_IDS).select('id').get());
    return c.id as string;
  }

  // ---- reads --------------------------------------------------------------------------------------

  /** First page of a round over `window` when `link` is undefined; otherwise the saved nextLink or deltaLink. */
  async deltaPage(upn: string, calendarId: string, link: string | undefined, window: SyncWindow, pageSize = this.pageSize): Promise<EventsDeltaPage> {
    const url =
      link ??
      `/users/${enc(upn)}/calendars/${enc(calendarId)}/calendarView/delta?startDateTime=${window.start}T00:00:00Z&endDateTime=${window.end}T00:00:00Z`;
    const res = await gated(upn, () => this.client.api(url).header('Prefer', `odata.maxpagesize=${pageSize}, ${EVENT_READ_PREFER}`).get());
    return { items: res.value ?? [], nextLink: res['@odata.nextLink'], deltaLink: res['@odata.deltaLink'] };
  }

  /** Events (masters and single events) or occurrences by id, 20 per batch; undefined for those gone (404). */
  async getEvents(upn: string, ids: string[]): Promise<Map<string, GraphEvent | undefined>> {
    const out = new Map<string, GraphEvent | undefined>();
    for (let i = 0; i < ids.length; i += 20) {
      const chunk = ids.slice(i, i + 20);
      const answers = await sendBatch(this.client, upn, chunk.map((id) => this.getRequest(upn, id)));
      answers.forEach((a, j) => {
        if (a.status >= 200 && a.status < 300) out.set(chunk[j], a.body as GraphEvent);
        else if (a.status === 404) out.set(chunk[j], undefined);
        else throwSub(a);
      });
    }
    return out;
  }

  /**
   * Series masters with their instances in the window (padded), ten series per batch (master + instances
   * each); further pages of instances are read one by one.
   */
  async readSeries(upn: string, ids: string[], window: SyncWindow): Promise<SeriesRead[]> {
    const out: SeriesRead[] = [];
    for (let i = 0; i < ids.length; i += 10) {
      const chunk = ids.slice(i, i + 10);
      const answers = await sendBatch(this.client, upn, chunk.flatMap((id) => [this.getRequest(upn, id), this.instancesRequest(upn, id, window)]));
      for (let j = 0; j < chunk.length; j++) {
        const [m, inst] = [answers[2 * j], answers[2 * j + 1]];
        if (m.status === 404) {
          out.push({ id: chunk[j], gone: true });
          continue;
        }
        if (m.status < 200 || m.status >= 300) throwSub(m);
        if (inst.status < 200 || inst.status >= 300) throwSub(inst);
        const body = inst.body as { value?: GraphInstance[]; '@odata.nextLink'?: string };
        const instances = [...(body.value ?? [])];
        let next = body['@odata.nextLink'];
        while (next) {
          const page: { value?: GraphInstance[]; '@odata.nextLink'?: string } = await gated(upn, () => this.client.api(next!).header('Prefer', EVENT_READ_PREFER).get());
          instances.push(...(page.value ?? []));
          next = page['@odata.nextLink'];
        }
        out.push({ id: chunk[j], gone: false, master: m.body as GraphEvent, instances });
      }
    }
    return out;
  }

  /** The instances of one series around the window (all pages). */
  async instances(upn: string, masterId: string, window: SyncWindow): Promise<GraphInstance[]> {
    const out: GraphInstance[] = [];
    let url: string | undefined = this.instancesRequest(upn, masterId, window).url;
    while (url) {
      const page: { value?: GraphInstance[]; '@odata.nextLink'?: string } = await gated(upn, () => this.client.api(url!).header('Prefer', EVENT_READ_PREFER).get());
      out.push(...(page.value ?? []));
      url = page['@odata.nextLink'];
    }
    return out;
  }

  /** Ids and cxsync markers of every event (single or master) in the calendar. */
  async markedItems(upn: string, calendarId: string): Promise<Array<{ id: string; syncId?: string; crmId?: string }>> {
    const out: Array<{ id: string; syncId?: string; crmId?: string }> = [];
    let url: string | undefined = `/users/${enc(upn)}/calendars/${enc(calendarId)}/events?$select=id&$top=${LIST_PAGE}&$expand=${enc(MARKERS)}`;
    while (url) {
      const page: { value?: Array<{ id: string; singleValueExtendedProperties?: Array<{ id: string; value: string }> }>; '@odata.nextLink'?: string } =
        await gated(upn, () => this.client.api(url!).header('Prefer', IMMUTABLE_IDS).get());
      for (const it of page.value ?? []) {
        const m = markerOf(it);
        if (m.syncId || m.crmId) out.push({ id: it.id, ...m });
      }
      url = page['@odata.nextLink'];
    }
    return out;
  }

  // ---- occurrence writes (a series' exceptions) ----------------------------------------------------

  async patchInstance(upn: string, id: string, body: GraphEvent): Promise<void> {
    await gated(upn, () => this.client.api(`/users/${enc(upn)}/events/${enc(id)}`).header('Prefer', EVENT_READ_PREFER).patch(body));
  }

  /** Cancels one occurrence; one already gone is fine. */
  async deleteInstance(upn: string, id: string): Promise<void> {
    try {
      await gated(upn, () => this.client.api(`/users/${enc(upn)}/events/${enc(id)}`).delete());
    } catch (err) {
      if (classifyGraphError(err).kind !== 'not-found') throw err;
    }
  }

  // ---- single-item requests, sent in JSON batches -------------------------------------------------

  createRequest(upn: string, calendarId: string, body: GraphEvent, marker: { syncId: string; crmId: string }): GraphSubRequest {
    return {
      method: 'POST',
      url: `/users/${enc(upn)}/calendars/${enc(calendarId)}/events`,
      headers: READ,
      body: {
        ...body,
        transactionId: marker.syncId,
        singleValueExtendedProperties: [
          { id: SYNC_ID_PROPERTY, value: marker.syncId },
          { id: CRM_ID_PROPERTY, value: marker.crmId },
        ],
      },
    };
  }

  findBySyncIdRequest(upn: string, calendarId: string, syncId: string): GraphSubRequest {
    const filter = `singleValueExtendedProperties/Any(ep: ep/id eq '${SYNC_ID_PROPERTY}' and ep/value eq '${q(syncId)}')`;
    return { method: 'GET', url: `/users/${enc(upn)}/calendars/${enc(calendarId)}/events?$filter=${enc(filter)}`, headers: READ };
  }

  updateRequest(upn: string, id: string, body: GraphEvent, changeKey: string | null): GraphSubRequest {
    return { method: 'PATCH', url: `/users/${enc(upn)}/events/${enc(id)}`, headers: { ...READ, ...ifMatch(changeKey) }, body };
  }

  deleteRequest(upn: string, id: string, changeKey: string | null): GraphSubRequest {
    return { method: 'DELETE', url: `/users/${enc(upn)}/events/${enc(id)}`, headers: { Prefer: IMMUTABLE_IDS, ...ifMatch(changeKey) } };
  }

  getRequest(upn: string, id: string): GraphSubRequest {
    return { method: 'GET', url: `/users/${enc(upn)}/events/${enc(id)}?$expand=${enc(MARKERS)}`, headers: READ };
  }

  instancesRequest(upn: string, masterId: string, window: SyncWindow): GraphSubRequest {
    const from = addDays(window.start, -INSTANCE_PADDING_DAYS);
    const to = addDays(window.end, INSTANCE_PADDING_DAYS);
    return {
      method: 'GET',
      url: `/users/${enc(upn)}/events/${enc(masterId)}/instances?startDateTime=${from}T00:00:00Z&endDateTime=${to}T00:00:00Z&$top=500&$select=${INSTANCE_FIELDS}`,
      headers: READ,
    };
  }
}
