/**
 * Database access for sync policies: the only module that reads or writes sync.policy, and the policy-related
 * columns of sync.mailbox (policy_name, held_deletes, delete_decision).
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { BUILTIN_POLICY, DEFAULT_POLICY_NAME, parsePolicy, type Policy } from '../domain/policy';
import type { Result } from '../domain/result';
import type { Database, HeldDeletesRow } from './schema';

type Exec = Kysely<Database> | Transaction<Database>;

export interface PolicyRow {
  name: string;
  /** What the operator gave (a partial policy); the effective policy is this merged over the defaults. */
  settings: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

export interface EffectivePolicy {
  name: string;
  policy: Result<Policy>;
}

const toRow = (r: { name: string; settings: Record<string, unknown>; created_at: Date; updated_at: Date }): PolicyRow => ({
  name: r.name,
  settings: r.settings,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export class PolicyStore {
  constructor(readonly db: Kysely<Database>) {}

  async list(): Promise<(PolicyRow & { mailboxes: number })[]> {
    const rows = await this.db.selectFrom('sync.policy').selectAll().orderBy('name').execute();
    const counts = await this.db.selectFrom('sync.mailbox').select(['policy_name', (eb) => eb.fn.countAll<string>().as('n')]).groupBy('policy_name').execute();
    const n = new Map<string, number>();
    for (const c of counts) {
      const name = c.policy_name ?? DEFAULT_POLICY_NAME; // no policy = the default policy
      n.set(name, (n.get(name) ?? 0) + Number(c.n));
    }
    return rows.map((r) => ({ ...toRow(r), mailboxes: n.get(r.name) ?? 0 }));
  }

  async get(name: string): Promise<PolicyRow | undefined> {
    const r = await this.db.selectFrom('sync.policy').selectAll().where('name', '=', name).executeTakeFirst();
    return r && toRow(r);
  }

  /** False when a policy of that name exists already. */
  async create(name: string, settings: Record<string, unknown>): Promise<boolean> {
    const r = await this.db
      .insertInto('sync.policy')
      .values({ name, settings: JSON.stringify(settings) })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** Replaces the stored settings; false when there is no such policy. */
  async update(name: string, settings: Record<string, unknown>): Promise<boolean> {
    const r = await this.db.updateTable('sync.policy').set({ settings: JSON.stringify(settings), updated_at: new Date() }).where('name', '=', name).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Mailboxes that use the policy (a mailbox without one uses the default policy). */
  async mailboxesUsing(name: string, exec: Exec = this.db): Promise<string[]> {
    let q = exec.selectFrom('sync.mailbox').select('id');
    q = name === DEFAULT_POLICY_NAME ? q.where((eb) => eb.or([eb('policy_name', 'is', null), eb('policy_name', '=', name)])) : q.where('policy_name', '=', name);
    return (await q.orderBy('id').execute()).map((r) => r.id);
  }

  /** Deletes a policy no mailbox uses; otherwise returns the mailboxes using it and deletes nothing. */
  async delete(name: string): Promise<{ deleted: boolean; inUse: string[] }> {
    return this.db.transaction().execute(async (tx) => {
      // Lock the row so a concurrent assign cannot slip in between the check and the delete.
      const row = await tx.selectFrom('sync.policy').select('name').where('name', '=', name).forUpdate().executeTakeFirst();
      if (!row) return { deleted: false, inUse: [] };
      const inUse = await this.mailboxesUsing(name, tx);
      if (inUse.length) return { deleted: false, inUse };
      await tx.deleteFrom('sync.policy').where('name', '=', name).execute();
      return { deleted: true, inUse: [] };
    });
  }

  /** Sets a mailbox's policy; null (or the default policy's name) means the default policy. */
  async assign(mailboxId: string, name: string | null): Promise<void> {
    const stored = name === DEFAULT_POLICY_NAME ? null : name;
    await this.db.updateTable('sync.mailbox').set({ policy_name: stored }).where('id', '=', mailboxId).execute();
  }

  async policyNameOf(mailboxId: string): Promise<string | undefined> {
    const r = await this.db.selectFrom('sync.mailbox').select('policy_name').where('id', '=', mailboxId).executeTakeFirst();
    return r ? (r.policy_name ?? DEFAULT_POLICY_NAME) : undefined;
  }

  /**
   * The policy a mailbox syncs with, validated. A stored policy that no longer validates (e.g. after an upgrade)
   * comes back as a failure naming the policy, so the cycle can put the mailbox in needs-attention.
   */
  async effective(mailboxId: string): Promise<EffectivePolicy> {
    // One round trip (every activity of a cycle asks): the mailbox's policy name, as policyNameOf gives it, and
    // that policy's row.
    const r = await sql<{ name: string; settings: Record<string, unknown> | null }>`
      select n.name, p.settings from (select coalesce((select policy_name from sync.mailbox where id = ${mailboxId}), ${DEFAULT_POLICY_NAME}) as name) n
      left join sync.policy p on p.name = n.name`.execute(this.db);
    const { name, settings } = r.rows[0];
    if (settings === null) {
      // The default row is created by migration 0002; a named policy cannot vanish (foreign key).
      if (name === DEFAULT_POLICY_NAME) return { name, policy: { ok: true, value: BUILTIN_POLICY } };
      return { name, policy: { ok: false, error: `policy ${name} does not exist` } };
    }
    const parsed = parsePolicy(settings);
    return { name, policy: parsed.ok ? parsed : { ok: false, error: `policy ${name} is invalid: ${parsed.error}` } };
  }

  // ---- emptied-side guard ----

  async heldDeletes(mailboxId: string): Promise<Record<string, HeldDeletesRow>> {
    const r = await this.db.selectFrom('sync.mailbox').select('held_deletes').where('id', '=', mailboxId).executeTakeFirst();
    return r?.held_deletes ?? {};
  }

  async holdDeletes(mailboxId: string, recordType: string, held: HeldDeletesRow): Promise<void> {
    await sql`update sync.mailbox set held_deletes = coalesce(held_deletes, '{}'::jsonb) || jsonb_build_object(${recordType}::text, ${JSON.stringify(held)}::jsonb)
      where id = ${mailboxId}`.execute(this.db);
  }

  /** The operator's decision for a type, if any. */
  async decision(mailboxId: string, recordType: string): Promise<'confirm' | 'discard' | undefined> {
    const r = await this.db.selectFrom('sync.mailbox').select('delete_decision').where('id', '=', mailboxId).executeTakeFirst();
    return r?.delete_decision?.[recordType] ?? undefined;
  }

  /** Records the operator's decision for every held type; returns those types (none held: nothing recorded). */
  async decide(mailboxId: string, decision: 'confirm' | 'discard'): Promise<string[]> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx.selectFrom('sync.mailbox').select('held_deletes').where('id', '=', mailboxId).forUpdate().executeTakeFirst();
      const types = Object.keys(r?.held_deletes ?? {}).sort();
      if (types.length === 0) return [];
      await tx
        .updateTable('sync.mailbox')
        .set({ delete_decision: JSON.stringify(Object.fromEntries(types.map((t) => [t, decision]))) })
        .where('id', '=', mailboxId)
        .execute();
      return types;
    });
  }

  /** After a type is planned: its hold and decision are spent. */
  async clearHold(exec: Exec, mailboxId: string, recordType: string): Promise<void> {
    await sql`update sync.mailbox set held_deletes = nullif(coalesce(held_deletes, '{}'::jsonb) - ${recordType}::text, '{}'::jsonb),
      delete_decision = nullif(coalesce(delete_decision, '{}'::jsonb) - ${recordType}::text, '{}'::jsonb)
      where id = ${mailboxId} and (held_deletes ? ${recordType}::text or delete_decision ? ${recordType}::text)`.execute(exec);
  }
}
