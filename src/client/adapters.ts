/** Record-type adapters for CLI commands that read both sides themselves (the dry run), built as the worker builds them. */
import { graphConnection } from '../activities/exchange/graph-client';
import { graphAdapters } from '../activities/graph-adapters';
import type { RecordTypeAdapter } from '../activities/record-types/adapter';
import type { GraphSettings } from '../config';
import type { Db } from '../db/connection';
import type { RecordType } from '../domain/status';

export type Adapters = Partial<Record<RecordType, RecordTypeAdapter<unknown>>>;

export function readAdapters(db: Db, graph: GraphSettings, caPem?: string): Adapters {
  // The dry run saves nothing: invitation decisions are computed, not recorded.
  return graphAdapters(db, graphConnection(graph, caPem).client, { readOnly: true }).adapters;
}
