/**
 * An agent whose tags serve many tag-set queues long-polls each of them, every poll listening on the one
 * signal that stops them all. Node warns past ten listeners on one signal ("Possible EventTarget memory leak
 * detected"): an agent serving eleven queues printed it, a false alarm, since each poll's listener is removed
 * when it ends. The agent serves them all, and says nothing of a leak.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { satisfiedTagSets } from '../../infra/lib/roles.ts';
import { useTestStack, waitFor } from './support/stack.ts';

const TAGS = { a: '1', b: '1', c: '1', d: '1' };
const stack = useTestStack({
  agents: [{ agentId: 'many-1', tags: TAGS, pollWaitSeconds: 20, registryRefreshMs: 500 }],
  worker: false,
});

const warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);
beforeAll(() => {
  process.on('warning', onWarning);
});
afterAll(() => {
  process.off('warning', onWarning);
});

describe('an agent serving fifteen tag-set queues', () => {
  it('runs a job from the last of them, and no leak warning is raised', async () => {
    const sets = satisfiedTagSets(TAGS); // 15
    // No members named: no hints, so the agent finds the queues by its registry scan alone.
    for (const s of sets) await stack.ctx.dispatch.queueFor(s, async () => []);
    const last = sets.at(-1)!;
    await stack.api('POST', '/v1/jobs', {
      name: 'many-queues',
      schedule: '@manually',
      tags: last,
      executor_config: { command: 'echo served' },
    });
    // The registry scan (every 0.5 s here) has the agent polling all sixteen queues, default included.
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await stack.api('POST', '/v1/jobs/many-queues/run')).status).toBe(202);
    const run = await waitFor(
      async () => {
        const list = (await stack.api('GET', '/v1/jobs/many-queues/executions')).body as Array<{
          status: string;
          output: string;
        }>;
        return list.find((e) => e.status === 'succeeded');
      },
      20_000,
      'the run on the last queue',
    );
    expect(run.output).toBe('served\n');
    expect(warnings.map((w) => `${w.name}: ${w.message}`)).not.toContainEqual(
      expect.stringMatching(/MaxListenersExceeded/),
    );
  });
});
