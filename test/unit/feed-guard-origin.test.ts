/** originDifferences: how a saved watermark origin is compared with the current one (feed-guard.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { originDifferences } from '../../src/activities/crm/feed-guard';

const base = 'system=7713937726288611451 db=16386 crm.contacts=16400 crm.events=16500 crm.tasks=16520 crm.tombstone=16600';

describe('originDifferences', () => {
  it('finds nothing when the origins agree, whatever the order of the keys', () => {
    assert.deepEqual(originDifferences(base, base), []);
    assert.deepEqual(originDifferences(base, base.split(' ').reverse().join(' ')), []);
  });

  it('names the outermost change: another cluster, else a re-created database, else each re-created table', () => {
    const tasks = base.replace('crm.tasks=16520', 'crm.tasks=17100');
    const database = tasks.replace('db=16386', 'db=17000');
    const cluster = database.replace('system=7713937726288611451', 'system=42');
    assert.deepEqual(originDifferences(base, cluster), ['another PostgreSQL cluster: system identifier 42, the watermark was saved under 7713937726288611451']);
    assert.deepEqual(originDifferences(base, database), ['the database was re-created: oid 17000, was 16386']);
    assert.deepEqual(originDifferences(base, tasks.replace('crm.events=16500', 'crm.events=16999')), [
      'table crm.events was re-created: oid 16999, was 16500',
      'table crm.tasks was re-created: oid 17100, was 16520',
    ]);
  });

  it('skips keys only one side has, so a later key does not force a resync', () => {
    assert.deepEqual(originDifferences(base, `${base} crm.emails=16700`), []);
    assert.deepEqual(originDifferences(base.replace('system=7713937726288611451 ', ''), base), []);
  });

  it('treats an unreadable origin as a difference', () => {
    assert.equal(originDifferences('garbage', base).length, 1);
    assert.equal(originDifferences('', base).length, 1);
  });
});
