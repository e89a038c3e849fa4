/**
 * Drives a stepped pure computation (src/domain reconcileSteps, planCycleSteps) from an activity: between two
 * steps the event loop gets a turn (setImmediate runs after pending I/O), so heartbeats, the gate's timers and
 * other mailboxes' activities in this worker are never held up longer than one slice.
 */
export async function runStepsYielding<T>(steps: Generator<void, T, void>, onPause?: () => void): Promise<T> {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    onPause?.();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
