/** Connecting the CLI to Temporal and PostgreSQL, with one-line errors when either is unreachable. */
import { Client, Connection } from '@temporalio/client';
import type { Env } from '../config';
import { checkDb, openDb, type Db } from '../db/connection';
import { resolveDatabase } from '../db/resolve';
import { Operator } from './operator';
import { temporalUnreachableMessage } from '../worker/temporal-unreachable';
import { dataConverterFor, payloadCodec } from '../security/codec';
import { refusedCredentialsMessage, temporalConnectionOptions } from '../security/temporal-connection';

/** The CLI's client: the same connection security and payload codec as the worker, from the same environment. */
export function temporalClient(env: Env, connection: Connection): Client {
  return new Client({ connection, namespace: env.TEMPORAL_NAMESPACE, dataConverter: dataConverterFor(payloadCodec(env)) });
}

export async function connectTemporal(env: Env): Promise<{ client: Client; connection: Connection }> {
  try {
    const connection = await Connection.connect({ ...temporalConnectionOptions(env), connectTimeout: '5s' });
    return { connection, client: temporalClient(env, connection) };
  } catch (err) {
    throw new Error(refusedCredentialsMessage(env.TEMPORAL_ADDRESS, err) ?? temporalUnreachableMessage(env.TEMPORAL_ADDRESS, err));
  }
}

export async function connectDb(env: Env): Promise<Db> {
  const { url, embedded } = await resolveDatabase(env, { start: false });
  const db = openDb(url, { max: 4 });
  try {
    await checkDb(db, url);
  } catch (err) {
    await db.destroy();
    throw new Error(`${(err as Error).message}${embedded ? ' (no DATABASE_URL is set and the embedded PostgreSQL is not running: start cxsync with npm start, or set DATABASE_URL)' : ''}`);
  }
  return db;
}

export async function withOperator<T>(env: Env, fn: (op: Operator) => Promise<T>): Promise<T> {
  const db = await connectDb(env);
  try {
    const { client, connection } = await connectTemporal(env);
    try {
      return await fn(new Operator(client, db, env.TEMPORAL_TASK_QUEUE));
    } finally {
      await connection.close();
    }
  } finally {
    await db.destroy();
  }
}
