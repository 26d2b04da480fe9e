import type { TestContext } from 'node:test';

/** The part of a node:test context the helpers need: somewhere to register cleanup. */
export type Teardown = Pick<TestContext, 'after'>;

const stacks = new WeakMap<Teardown, Array<() => unknown>>();

/**
 * Runs `fn` after the test, last registered first (like Go's t.Cleanup): a peer started on a temp
 * dir is stopped before the dir is removed. node:test's own t.after runs hooks first-registered
 * first, so the helpers share one after-hook per test that unwinds this stack. Every cleanup runs
 * even when one fails; the failures are thrown together at the end.
 */
export function defer(t: Teardown, fn: () => unknown): void {
  let stack = stacks.get(t);
  if (!stack) {
    const fns: Array<() => unknown> = [];
    stacks.set(t, fns);
    stack = fns;
    t.after(async () => {
      stacks.delete(t);
      const errors: unknown[] = [];
      for (const cleanup of fns.reverse()) {
        try {
          await cleanup();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, 'test cleanup failed');
    });
  }
  stack.push(fn);
}
