/**
 * Figure `launch_lateness_ms` for jobs whose tag set is new: each job is the first of its tag set (no queue yet),
 * written through the API `leadMs` before its first fire time (`@at`), or run at once (`run-now`); lateness is the
 * execution's `started_at` minus its fire time (run-now: minus the request). The agents keep their default
 * registry scan (15 s): what brings them to a new queue in time is the queue-created hint (README, "A new tag set
 * is served at once"). The agents carry six tags, so there are 63 tag sets they serve, each new once.
 * `hint_messages_per_queue`: the hints sent per new queue, the API's and those the agents passed on.
 */
import { satisfiedTagSets } from '../../infra/lib/roles.ts';
import { emit, progress, quantiles, sleep, startStack, stopStack } from './support.ts';

const TAGS = { a: '1', b: '1', c: '1', d: '1', e: '1', f: '1' };

async function call(base: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

type Run = { status: string; started_at: string };

async function started(base: string, job: string, timeoutMs = 30_000): Promise<number | null> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const list = (await call(base, 'GET', `/v1/jobs/${job}/executions`)) as Run[];
    const done = list.find((e) => e.status === 'succeeded' || e.status === 'failed');
    if (done) return Date.parse(done.started_at);
    await sleep(100);
  }
  return null;
}

export async function newTagSetLateness(options: { agents: number; leadMs: number }): Promise<void> {
  const stack = await startStack({
    // Long polls of 20 s, as a host agent's (the local stack's in-process agents poll every 2 s: with 64
    // queues each, four of them would keep moto answering ~130 empty receives a second).
    agents: Array.from({ length: options.agents }, (_, i) => ({
      agentId: `tagged-${i + 1}`,
      tags: TAGS,
      pollWaitSeconds: 20,
    })),
  });
  // Queue-created hints sent (the API's and the agents' passing on): they all go through this one client.
  let hints = 0;
  stack.ctx.clients.sqs.middlewareStack.add(
    (next, context) => async (args) => {
      const body = (args.input as { MessageBody?: string }).MessageBody;
      if (context.commandName === 'SendMessageCommand' && body?.startsWith('{"queueCreated"')) hints++;
      return next(args);
    },
    { step: 'initialize', name: 'bench-hints' },
  );
  try {
    const sets = satisfiedTagSets(TAGS); // 63, in a fixed order
    const half = Math.floor(sets.length / 2);
    for (const [mode, chosen] of [
      ['first-fire', sets.slice(0, half)],
      ['run-now', sets.slice(half)],
    ] as const) {
      progress(`launch_lateness_ms new tag set, ${mode}: ${chosen.length} jobs`);
      const late: number[] = [];
      let missing = 0;
      const hintsBefore = hints;
      for (const [i, tags] of chosen.entries()) {
        const name = `new-tags-${mode}-${i}`;
        if (mode === 'first-fire') {
          const fireAt = Math.ceil((Date.now() + options.leadMs) / 1000) * 1000;
          await call(stack.url, 'POST', '/v1/jobs', {
            name,
            schedule: `@at ${new Date(fireAt).toISOString()}`,
            tags,
            executor_config: { command: 'true' },
          });
          const at = await started(stack.url, name);
          if (at === null) missing++;
          else late.push(at - fireAt);
        } else {
          await call(stack.url, 'POST', '/v1/jobs', {
            name,
            schedule: '@manually',
            tags,
            executor_config: { command: 'true' },
          });
          const asked = Date.now();
          await call(stack.url, 'POST', `/v1/jobs/${name}/run`);
          const at = await started(stack.url, name);
          if (at === null) missing++;
          else late.push(at - asked);
        }
      }
      const q = quantiles(late);
      const sorted = [...late].sort((a, b) => a - b);
      const p999 = sorted.length
        ? sorted[Math.min(sorted.length - 1, Math.ceil(0.999 * sorted.length) - 1)]
        : null;
      emit('launch_lateness_ms', {
        case: `new-tag-set-${mode}`,
        jobs: chosen.length,
        agents: options.agents,
        lead_ms: mode === 'first-fire' ? options.leadMs : 0,
        p50: q.p50,
        p95: q.p95,
        p99: q.p99,
        'p99.9': p999,
        max: q.max,
        min: q.min,
        missing,
        // Sent while this case ran (each job made one queue); the last copies may still be on their way.
        hint_messages_per_queue: Math.round(((hints - hintsBefore) / chosen.length) * 10) / 10,
      });
    }
  } finally {
    await stopStack(stack);
  }
}
