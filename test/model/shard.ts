/**
 * How the interleaving search splits its runs between processes (search.ts): every process walks fast-check's
 * runs from the same seed (each draws every run's settings and fc.commands list) and plays those whose index is
 * its own modulo the number of processes; once one of its runs has failed, every later call is a shrink of that
 * run, and all of them are played. So n processes play exactly the runs one process would, and a failure's seed
 * and path (whose first number is the run's index among all runs, with fc.commands' replay path after it)
 * replay it in one process. shard.test.ts checks both.
 */
export function sharded<A extends unknown[]>(shard: number, shards: number, play: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  if (!(Number.isInteger(shards) && shards >= 1 && Number.isInteger(shard) && shard >= 0 && shard < shards)) {
    throw new Error(`shard ${shard} of ${shards}: want 0 <= shard < shards`);
  }
  let index = 0;
  let shrinking = false;
  return async (...args) => {
    if (!shrinking && index++ % shards !== shard) return;
    try {
      await play(...args);
    } catch (err) {
      shrinking = true;
      throw err;
    }
  };
}
