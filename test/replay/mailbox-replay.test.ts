/**
 * Replays histories recorded from real runs (test/replay/histories, made by record-history.ts) against the
 * current workflow code. A failure here means a change to src/workflows would break running workflows:
 * put it behind patched() instead.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';

try {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
} catch {
  /* installed already */
}

const dir = path.join(__dirname, 'histories');
const histories = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('replay of recorded mailbox workflow histories', () => {
  it('has at least one recorded history', () => {
    assert.ok(histories.length >= 1);
  });

  for (const file of histories) {
    it(`replays ${file} with the current workflow code`, async () => {
      const history = historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')));
      await Worker.runReplayHistory({ workflowsPath: require.resolve('../../src/workflows') }, history);
    });
  }

  it('fails on a non-deterministic change to the workflow', async () => {
    const history = historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, histories[0]), 'utf8')));
    await assert.rejects(
      () => Worker.runReplayHistory({ workflowsPath: require.resolve('./nondeterministic-workflows') }, history),
      (err: unknown) => err instanceof DeterminismViolationError,
    );
  });
});
