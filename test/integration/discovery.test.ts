/**
 * Queue discovery without delay: the first launch of a job whose tag set is new starts within a moment,
 * not at the agents' next registry scan. The agents here scan the registry every 10 minutes, so only the
 * queue-created hint (shared/dispatch/dispatch.ts, QueueHint) can make them poll the new queue in time.
 * Several agents share the default queue: the hint is passed on until the one it concerns has seen it.
 */
import { describe, expect, it } from 'vitest';
import { awaitingHopLimit, QUEUE_HINT_COPIES, type QueueHint } from '../../shared/dispatch/dispatch.ts';
import { useTestStack, waitFor } from './support/stack.ts';

const NEVER = 600_000;
const stack = useTestStack({
  agents: [
    { agentId: 'plain-1', registryRefreshMs: NEVER },
    { agentId: 'plain-2', registryRefreshMs: NEVER },
    { agentId: 'web-1', tags: { role: 'web', dc: 'eu' }, registryRefreshMs: NEVER },
    { agentId: 'db-1', tags: { role: 'db' }, registryRefreshMs: NEVER },
  ],
});

type Execution = { status: string; node_name: string; started_at: string; scheduled_at: string };

async function firstStart(job: string): Promise<Execution> {
  let found: Execution | undefined;
  await waitFor(
    async () => {
      const res = await stack.api('GET', `/v1/jobs/${job}/executions`);
      found = (res.body as Execution[]).find((e) => e.status === 'succeeded');
      return found !== undefined;
    },
    20_000,
    `a finished run of ${job}`,
  );
  return found!;
}

describe('a job whose tag set is new', () => {
  it('runs now within a moment of being created, on the agent its tags name', async () => {
    const created = await stack.api('POST', '/v1/jobs', {
      name: 'new-tags-run-now',
      schedule: '@manually',
      tags: { role: 'web' },
      executor_config: { command: 'echo hi' },
    });
    expect(created.status).toBe(201);
    const asked = Date.now();
    expect((await stack.api('POST', '/v1/jobs/new-tags-run-now/run')).status).toBe(202);
    const run = await firstStart('new-tags-run-now');
    const lateMs = Date.parse(run.started_at) - asked;
    console.log(`new tag set, run-now: started ${lateMs} ms after the request`);
    expect(run.node_name).toBe('web-1');
    expect(lateMs).toBeLessThan(5_000); // the registry scan would take 10 minutes
  });

  it('starts at its first fire time when that comes a few seconds after it is written', async () => {
    const fireAt = new Date(Math.ceil((Date.now() + 4_000) / 1000) * 1000);
    const created = await stack.api('POST', '/v1/jobs', {
      name: 'new-tags-at',
      schedule: `@at ${fireAt.toISOString()}`,
      tags: { role: 'db' },
      executor_config: { command: 'echo at' },
    });
    expect(created.status).toBe(201);
    const run = await firstStart('new-tags-at');
    const lateMs = Date.parse(run.started_at) - fireAt.getTime();
    console.log(`new tag set, first fire time: started ${lateMs} ms after it`);
    expect(run.node_name).toBe('db-1');
    expect(lateMs).toBeLessThan(3_000);
  });

  it('sends no hint for a new tag set that no live agent serves', async () => {
    const hints = recordHints('role=db,zone=b');
    try {
      await stack.api('POST', '/v1/jobs', {
        name: 'new-tags-counted',
        schedule: '@manually',
        tags: { role: 'db', zone: 'b' },
        executor_config: { command: 'echo counted' },
      });
      // Only db-1 carries role=db, and it has no zone tag: no agent serves the tag set, nothing is sent.
      expect((await stack.api('POST', '/v1/jobs/new-tags-counted/run')).status).toBe(202);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(hints.sent).toEqual([]);
    } finally {
      hints.stop();
    }
  });

  it('ends every copy of a hint once the one agent it concerns has received it', async () => {
    const hints = recordHints('dc=eu');
    const sent = hints.sent;
    try {
      await stack.api('POST', '/v1/jobs', {
        name: 'new-tags-eu',
        schedule: '@manually',
        tags: { dc: 'eu' },
        executor_config: { command: 'echo eu' },
      });
      expect((await stack.api('POST', '/v1/jobs/new-tags-eu/run')).status).toBe(202);
      expect((await firstStart('new-tags-eu')).node_name).toBe('web-1');
      // Quiet for two seconds: every copy has ended (one still travelling is passed on within moments).
      let count = -1;
      await waitFor(
        async () => {
          const before = sent.length;
          await new Promise((r) => setTimeout(r, 2_000));
          count = sent.length;
          return count === before;
        },
        20_000,
        'the hints to stop',
      );
      const first = sent.filter((h) => h.hops === 0);
      expect(first).toHaveLength(QUEUE_HINT_COPIES); // four agents live
      for (const h of first) expect(h.awaiting).toEqual(['web-1']);
      // A copy is passed on only while web-1 has not had it: no copy that web-1 handled goes on.
      expect(sent.every((h) => h.awaiting?.includes('web-1'))).toBe(true);
      // Each copy ends at web-1, a quarter of the receives: all four reaching their hop limit means none did.
      expect(count).toBeLessThan(QUEUE_HINT_COPIES * awaitingHopLimit(4));
      console.log(`new tag set, one agent concerned of four: ${count} hint messages`);
    } finally {
      hints.stop();
    }
  });
});

/**
 * Records the hints for `tagSet` sent from now on, the API's and the agents' (every agent here shares the
 * stack's SQS client), until `stop()`.
 */
function recordHints(tagSet: string): { sent: QueueHint[]; stop: () => void } {
  const sent: QueueHint[] = [];
  const name = `record-hints-${tagSet}`;
  const middleware = stack.ctx.clients.sqs.middlewareStack;
  middleware.add(
    (next, context) => async (args) => {
      const body = (args.input as { MessageBody?: string }).MessageBody;
      if (context.commandName === 'SendMessageCommand' && body?.startsWith('{"queueCreated"')) {
        const hint = JSON.parse(body) as QueueHint;
        if (hint.queueCreated === tagSet) sent.push(hint);
      }
      return next(args);
    },
    { step: 'initialize', name },
  );
  return { sent, stop: () => middleware.remove(name) };
}
