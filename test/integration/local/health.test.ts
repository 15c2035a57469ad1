/**
 * The local stack notices dead emulators (issue 10, item 9): `GET /health` checks each table and the
 * launch queue with a short timeout and answers 503 naming what is down; `npm start` (here: the stack's
 * `notice` lines) says when the store stops answering, answers again, and when an emulator process dies.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import type { Health } from '../../../shared/cluster/health.ts';
import { useTestStack, waitFor } from '../support/stack.ts';
import { type StallProxy, startStallProxy } from '../support/stall-proxy.ts';

const notices: string[] = [];
let proxy: StallProxy | undefined;
let dynamoPort = 0;
const stack = useTestStack({
  agents: [],
  worker: false,
  healthEveryMs: 500,
  notice: (line) => notices.push(line),
  dynamodbVia: async (endpoint) => {
    dynamoPort = Number(new URL(endpoint).port);
    proxy = await startStallProxy(endpoint);
    return proxy.url;
  },
});
afterAll(async () => {
  await proxy?.close();
});

async function health() {
  const began = Date.now();
  const res = await fetch(`${stack.url}/health`, { signal: AbortSignal.timeout(20_000) });
  return { status: res.status, body: (await res.json()) as Health, ms: Date.now() - began };
}

const DYNAMO_PARTS = ['dynamodb:jobs', 'dynamodb:executions', 'dynamodb:agents', 'dynamodb:control'];

describe('GET /health and the stack’s notices', () => {
  it('reports each part up while everything answers', async () => {
    const h = await health();
    expect(h.status).toBe(200);
    expect(h.body.status).toBe('healthy');
    expect(Object.keys(h.body.checks).sort()).toEqual([...DYNAMO_PARTS, 'sqs'].sort());
    expect(Object.values(h.body.checks).every((c) => c.status === 'up')).toBe(true);
  });

  it('answers 503 naming the store within its timeout while the store stalls, and says so', {
    timeout: 60_000,
  }, async () => {
    proxy!.stall({ drop: true });
    try {
      const h = await health();
      expect(h.status).toBe(503);
      expect(h.body.down.sort()).toEqual([...DYNAMO_PARTS].sort());
      expect(h.body.checks.sqs?.status).toBe('up');
      expect(h.body.checks['dynamodb:jobs']?.error).toMatch(/no answer within/);
      expect(h.ms).toBeLessThan(5_000);
      await waitFor(
        async () => notices.some((l) => /store is not answering: dynamodb:/.test(l)),
        10_000,
        'the notice',
      );
    } finally {
      proxy!.resume();
    }
    await waitFor(async () => (await health()).status === 200, 20_000, 'healthy again');
    await waitFor(async () => notices.includes('the store answers again'), 10_000, 'the recovery notice');
  });

  it('says when the DynamoDB emulator dies, and /health names it', { timeout: 60_000 }, async () => {
    // The java process this stack started for DynamoDB Local (found by its port), and only it.
    const pid = Number(
      execFileSync('pgrep', ['-f', `DynamoDBLocal.jar.* -port ${dynamoPort}$`], { encoding: 'utf8' }).trim(),
    );
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    await waitFor(
      async () => notices.some((l) => /DynamoDB Local \(emulator\) died/.test(l)),
      15_000,
      'the death notice',
    );
    const h = await health();
    expect(h.status).toBe(503);
    expect(h.body.down).toEqual(expect.arrayContaining(DYNAMO_PARTS));
    expect(h.body.checks.sqs?.status).toBe('up');
  });
});
