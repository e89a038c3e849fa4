/**
 * The ranges docs/POLICIES.md gives for each setting (src/domain/policy.ts), each bound accepted and the value
 * just beyond it refused, and the field limits it states for tasks (src/domain/task.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy } from '../../src/domain/policy';
import { validateTask } from '../../src/domain/task';

/** Builds a document with `value` at the dotted `path`. */
function at(path: string, value: unknown): Record<string, unknown> {
  const keys = path.split('.');
  const doc: Record<string, unknown> = {};
  let o = doc;
  for (const k of keys.slice(0, -1)) o = (o[k] = {}) as Record<string, unknown>;
  o[keys[keys.length - 1]] = value;
  return doc;
}

// [path, lowest accepted, highest accepted, step beyond] as the policy file tables state them.
const RANGES: Array<[string, number | undefined, number | undefined, number]> = [
  ['schedule.intervalSeconds', 5, 604_800, 1],
  ['batchSize', 1, 10_000, 1],
  ['massDeleteGuard.minItems', 1, undefined, 1],
  ['massDeleteGuard.share', 0.01, 1, 0.001],
  ['event.window.pastDays', 0, 30, 1],
  ['event.window.futureDays', 0, 365, 1],
  ['event.firstSync.days', 0, 365, 1],
  ['task.firstSync.days', 0, 365, 1],
];

describe('policy: the documented ranges', () => {
  for (const [path, lo, hi, step] of RANGES) {
    it(`${path}: ${lo ?? '…'} … ${hi ?? '…'}`, () => {
      for (const ok of [lo, hi]) if (ok !== undefined) assert.ok(parsePolicy(at(path, ok)).ok, `${path} = ${ok} is accepted`);
      if (lo !== undefined) {
        const r = parsePolicy(at(path, lo - step));
        assert.ok(!r.ok && r.error.startsWith(`${path} must be at least ${lo}`), `${path} = ${lo - step} is refused: ${JSON.stringify(r)}`);
      }
      if (hi !== undefined) {
        const r = parsePolicy(at(path, hi + step));
        assert.ok(!r.ok && r.error.startsWith(`${path} must be at most ${hi}`), `${path} = ${hi + step} is refused: ${JSON.stringify(r)}`);
      }
    });
  }

  it('intervalSeconds and batchSize accept null (the worker\'s setting)', () => {
    for (const path of ['schedule.intervalSeconds', 'batchSize']) assert.ok(parsePolicy(at(path, null)).ok, path);
  });

  it('description: up to 500 characters', () => {
    assert.ok(parsePolicy({ description: 'd'.repeat(500) }).ok);
    const r = parsePolicy({ description: 'd'.repeat(501) });
    assert.ok(!r.ok && r.error === 'description must be at most 500 characters long', JSON.stringify(r));
  });

  it('schedule.activeHours.to may be 24:00; from may not', () => {
    assert.ok(parsePolicy(at('schedule.activeHours.to', '24:00')).ok);
    assert.ok(!parsePolicy(at('schedule.activeHours.from', '24:00')).ok);
  });
});

describe('field limits of tasks', () => {
  it('a subject over 255 characters is refused (the item is skipped and logged); 255 pass', () => {
    assert.ok(validateTask({ subject: 's'.repeat(255), status: 'notStarted' }).ok);
    const r = validateTask({ subject: 's'.repeat(256), status: 'notStarted' });
    assert.ok(!r.ok && /field subject is 256 characters long; the limit is 255/.test(r.error), JSON.stringify(r).slice(0, 200));
  });

  it('a description over 32,000 characters is cut to 32,000', () => {
    const r = validateTask({ subject: 'Long', status: 'notStarted', body: 'b'.repeat(40_000) });
    assert.ok(r.ok);
    assert.equal(r.value.body?.length, 32_000);
  });
});
