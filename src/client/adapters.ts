/** Record-type adapters for CLI commands that read both sides themselves (the dry run), built as the worker builds them. */
import { ContactsApi } from '../activities/exchange/contacts-api';
import { graphConnection } from '../activities/exchange/graph-client';
import type { RecordTypeAdapter } from '../activities/record-types/adapter';
import { contactsAdapter } from '../activities/record-types/contacts';
import { EventsApi } from '../activities/exchange/events-api';
import { TodoApi } from '../activities/exchange/todo-api';
import { eventsAdapter } from '../activities/record-types/events';
import { tasksAdapter } from '../activities/record-types/tasks';
import type { GraphSettings } from '../config';
import type { Db } from '../db/connection';
import type { RecordType } from '../domain/status';

export type Adapters = Partial<Record<RecordType, RecordTypeAdapter<unknown>>>;

export function readAdapters(db: Db, graph: GraphSettings, caPem?: string): Adapters {
  const conn = graphConnection(graph, caPem);
  return {
    contact: contactsAdapter(db, new ContactsApi(conn.client)) as RecordTypeAdapter<unknown>,
    // The dry run saves nothing: invitation decisions are computed, not recorded.
    event: eventsAdapter(db, new EventsApi(conn.client), { readOnly: true }) as RecordTypeAdapter<unknown>,
    task: tasksAdapter(db, new TodoApi(conn.client)) as RecordTypeAdapter<unknown>,
  };
}
