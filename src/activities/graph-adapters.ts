/**
 * The record-type adapters and the mail API over one Graph client: the worker, the dry run, the interleaving
 * model and the benchmarks build them here, so what they exercise is what the worker runs.
 */
import type { Client } from '@microsoft/microsoft-graph-client';
import type { Db } from '../db/connection';
import type { RecordType } from '../domain/status';
import { ContactsApi } from './exchange/contacts-api';
import { EventsApi } from './exchange/events-api';
import { MailApi } from './exchange/mail-api';
import { TodoApi } from './exchange/todo-api';
import type { RecordTypeAdapter } from './record-types/adapter';
import { contactsAdapter } from './record-types/contacts';
import { eventsAdapter } from './record-types/events';
import { tasksAdapter } from './record-types/tasks';

export interface GraphAdapters {
  adapters: { [T in RecordType]: RecordTypeAdapter<unknown> };
  mail: MailApi;
}

export function graphAdapters(
  db: Db,
  client: Client,
  opts: {
    /** Delta page size requested from Graph. */
    pageSize?: number;
    /** Saves nothing (the dry run): invitation decisions are computed, not recorded. */
    readOnly?: boolean;
  } = {},
): GraphAdapters {
  const pageSize = opts.pageSize ?? 100;
  return {
    adapters: {
      contact: contactsAdapter(db, new ContactsApi(client, pageSize)) as RecordTypeAdapter<unknown>,
      event: eventsAdapter(db, new EventsApi(client, pageSize), { readOnly: opts.readOnly }) as RecordTypeAdapter<unknown>,
      task: tasksAdapter(db, new TodoApi(client, pageSize)) as RecordTypeAdapter<unknown>,
    },
    mail: new MailApi(client, pageSize),
  };
}
