/**
 * `GET /health`: whether the parts the control plane stands on answer — each table of DynamoDB (one
 * GetItem on a key that need not exist: cheap, no scan, no DescribeTable) and SQS (the default launch
 * queue's attributes) — each within a short timeout, in parallel. Healthy only when every part answers;
 * otherwise the answer names the parts that are down and why, and the API answers 503.
 *
 * A part is down when it does not answer in time, cannot be reached, answers 5xx, or says its table or
 * queue does not exist (a local emulator that restarted with its in-memory data gone). Any other answer,
 * an access denial included, shows the service is up: health must not turn red over a missing grant.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { Context } from '../context.ts';

export const HEALTH_TIMEOUT_MS = 2_000;

export interface PartHealth {
  readonly status: 'up' | 'down';
  readonly ms: number;
  /** Why it is down. */
  readonly error?: string;
}

export interface Health {
  readonly status: 'healthy' | 'unhealthy';
  /** The parts that are down, e.g. `["dynamodb:executions"]`. */
  readonly down: string[];
  readonly checks: Record<string, PartHealth>;
}

const MISSING = new Set([
  'ResourceNotFoundException',
  'QueueDoesNotExist',
  'AWS.SimpleQueueService.NonExistentQueue',
]);

/** Whether an error means the part is down (vs. it answered, if only to refuse). */
export function meansDown(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name && MISSING.has(e.name)) return true;
  const status = e?.$metadata?.httpStatusCode;
  return typeof status !== 'number' || status >= 500;
}

async function probe(
  send: (signal: AbortSignal) => Promise<unknown>,
  timeoutMs: number,
): Promise<PartHealth> {
  const began = Date.now();
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    await send(signal);
    return { status: 'up', ms: Date.now() - began };
  } catch (error) {
    const ms = Date.now() - began;
    if (!meansDown(error)) return { status: 'up', ms };
    const message = signal.aborted
      ? `no answer within ${timeoutMs} ms`
      : `${(error as Error)?.name ?? 'Error'}: ${(error as Error)?.message ?? String(error)}`;
    return { status: 'down', ms, error: message };
  }
}

export async function checkHealth(ctx: Context, options: { timeoutMs?: number } = {}): Promise<Health> {
  const timeoutMs = options.timeoutMs ?? HEALTH_TIMEOUT_MS;
  const { tables } = ctx.config;
  const key = '__health__';
  const item = (TableName: string, Key: Record<string, { S: string }>) => (signal: AbortSignal) =>
    ctx.clients.dynamodb.send(new GetItemCommand({ TableName, Key }), {
      abortSignal: signal,
      requestTimeout: timeoutMs,
    });
  const parts: Record<string, (signal: AbortSignal) => Promise<unknown>> = {
    'dynamodb:jobs': item(tables.jobs, { name: { S: key } }),
    'dynamodb:executions': item(tables.executions, { jobName: { S: key }, executionId: { S: key } }),
    'dynamodb:agents': item(tables.agents, { agentId: { S: key } }),
    'dynamodb:control': item(tables.control, { pk: { S: key } }),
    sqs: (signal) =>
      ctx.clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: ctx.config.defaultQueueUrl, AttributeNames: ['QueueArn'] }),
        { abortSignal: signal, requestTimeout: timeoutMs },
      ),
  };
  const names = Object.keys(parts);
  const results = await Promise.all(names.map((name) => probe(parts[name]!, timeoutMs)));
  const checks = Object.fromEntries(names.map((name, i) => [name, results[i]!]));
  const down = names.filter((name) => checks[name]!.status === 'down');
  return { status: down.length === 0 ? 'healthy' : 'unhealthy', down, checks };
}
