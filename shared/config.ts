/**
 * The Lambda functions' configuration (the local stack builds its context with it too), parsed once from
 * the environment; a missing variable fails fast with its name. The agent's is agent/config.ts, the local
 * stack's local/config.ts; nothing else reads configuration from process.env (Biome's noProcessEnv, with the
 * exemptions biome.json lists). Timing defaults come from shared/timing.ts.
 */
import { z } from 'zod';
import type { Env } from './aws/clients.ts';
import { parseSecretsPath } from './executors/secrets.ts';
import { parseWorkerAllowList, type WorkerAllowList } from './executors/targets.ts';
import { TICK_LOST_AFTER_MS, TICK_MARGIN_MS, TICK_PERIOD_MS } from './timing.ts';

const schema = z.object({
  CRONPLANE_JOBS_TABLE: z.string().min(1),
  CRONPLANE_EXECUTIONS_TABLE: z.string().min(1),
  CRONPLANE_AGENTS_TABLE: z.string().min(1),
  CRONPLANE_CONTROL_TABLE: z.string().min(1),
  CRONPLANE_DEFAULT_QUEUE_URL: z.string().min(1),
  CRONPLANE_DLQ_ARN: z.string().optional(),
  /** Queue of the agentless worker (lambda, sqs, eventbridge and untagged http jobs). */
  CRONPLANE_WORKER_QUEUE_URL: z.string().optional(),
  /** EventBridge bus that receives `Execution Finished` events. */
  CRONPLANE_EVENT_BUS: z.string().optional(),
  /**
   * Which finishes go to the bus: `all`, or `failures` (every status but `succeeded`). EventBridge bills
   * $1 per million events, which at one event per run was the largest line after DynamoDB's writes.
   */
  CRONPLANE_PUBLISH_FINISHED: z.enum(['all', 'failures']).default('all'),
  /** S3 bucket that receives the full output of executions whose output was truncated. */
  CRONPLANE_OUTPUT_BUCKET: z.string().optional(),
  /** Executions kept per job (Dkron keeps 100). */
  CRONPLANE_EXECUTIONS_KEPT: z.coerce.number().int().positive().default(100),
  /** The tick marks a running execution lost when its heartbeat is older than this (never below the agents'). */
  CRONPLANE_LOST_AFTER_MS: z.coerce.number().int().positive().default(TICK_LOST_AFTER_MS),
  CRONPLANE_QUEUE_PREFIX: z.string().default('cronplane-'),
  /** How far past "now" one tick plans (the tick period on AWS is one minute). */
  CRONPLANE_TICK_PERIOD_MS: z.coerce.number().int().positive().default(TICK_PERIOD_MS),
  CRONPLANE_TICK_MARGIN_MS: z.coerce.number().int().nonnegative().default(TICK_MARGIN_MS),
  CRONPLANE_DUE_SHARDS: z.coerce.number().int().min(1).max(64).default(1),
  /** Queue of shard ticks (one message per due shard above 0 and round); unset: shards ticked in process. */
  CRONPLANE_SHARD_TICK_QUEUE_URL: z.string().optional(),
  CRONPLANE_RETENTION_DAYS: z.coerce.number().int().positive().default(30),
  /** The SSM path under which `{{ssm:...}}` references may point (see executors/secrets.ts). */
  CRONPLANE_SECRETS_PATH: z.string().optional(),
  /** JSON `{"lambda":[...],"sqs":[...],"events":[...],"http":[...]}`: the worker's targets (executors/targets.ts). */
  CRONPLANE_WORKER_ALLOW: z.string().optional(),
  /** The CloudFormation stack: the `stack` dimension of the functions' metrics. */
  CRONPLANE_STACK: z.string().optional(),
});

export interface Config {
  readonly tables: {
    readonly jobs: string;
    readonly executions: string;
    readonly agents: string;
    readonly control: string;
  };
  readonly defaultQueueUrl: string;
  readonly dlqArn: string | undefined;
  readonly workerQueueUrl: string | undefined;
  readonly eventBus: string | undefined;
  /** `Execution Finished` for every finish, or for those that did not succeed. */
  readonly publishFinished: 'all' | 'failures';
  readonly outputBucket: string | undefined;
  readonly executionsKept: number;
  readonly lostAfterMs: number;
  readonly queuePrefix: string;
  readonly tickPeriodMs: number;
  readonly tickMarginMs: number;
  readonly dueShards: number;
  readonly shardTickQueueUrl: string | undefined;
  readonly retentionDays: number;
  /** `{{ssm:...}}` references resolve only under this SSM path (`/cronplane/` by default; ends with `/`). */
  readonly secretsPath: string;
  /** What agentless jobs may target; null (the variable unset) allows everything. */
  readonly workerAllow: WorkerAllowList | null;
  /** The stack the function belongs to (CRONPLANE_STACK; unset locally). */
  readonly stackName: string | undefined;
}

/**
 * The environment of this process: a Lambda function's AWS settings and CRONPLANE_* variables. The one
 * read of process.env in shared/ (createContext's default); the agent and the local stack pass theirs.
 */
export function processEnv(): Env {
  return process.env;
}

export function loadConfig(env: Env = processEnv()): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const names = parsed.error.issues.map((i) => i.path.join('.')).join(', ');
    throw new Error(`Cronplane configuration: missing or invalid environment variable(s): ${names}`);
  }
  const e = parsed.data;
  const secretsPath = parseSecretsPath(e.CRONPLANE_SECRETS_PATH ?? '');
  if (typeof secretsPath !== 'string') {
    throw new Error(`Cronplane configuration: CRONPLANE_SECRETS_PATH ${secretsPath.problem}`);
  }
  const workerAllow = parseWorkerAllowList(e.CRONPLANE_WORKER_ALLOW ?? '');
  if (workerAllow !== null && 'problem' in workerAllow) {
    throw new Error(`Cronplane configuration: CRONPLANE_WORKER_ALLOW ${workerAllow.problem}`);
  }
  return {
    tables: {
      jobs: e.CRONPLANE_JOBS_TABLE,
      executions: e.CRONPLANE_EXECUTIONS_TABLE,
      agents: e.CRONPLANE_AGENTS_TABLE,
      control: e.CRONPLANE_CONTROL_TABLE,
    },
    defaultQueueUrl: e.CRONPLANE_DEFAULT_QUEUE_URL,
    dlqArn: e.CRONPLANE_DLQ_ARN,
    workerQueueUrl: e.CRONPLANE_WORKER_QUEUE_URL,
    eventBus: e.CRONPLANE_EVENT_BUS,
    publishFinished: e.CRONPLANE_PUBLISH_FINISHED,
    outputBucket: e.CRONPLANE_OUTPUT_BUCKET || undefined,
    executionsKept: e.CRONPLANE_EXECUTIONS_KEPT,
    lostAfterMs: e.CRONPLANE_LOST_AFTER_MS,
    queuePrefix: e.CRONPLANE_QUEUE_PREFIX,
    tickPeriodMs: e.CRONPLANE_TICK_PERIOD_MS,
    tickMarginMs: e.CRONPLANE_TICK_MARGIN_MS,
    dueShards: e.CRONPLANE_DUE_SHARDS,
    shardTickQueueUrl: e.CRONPLANE_SHARD_TICK_QUEUE_URL || undefined,
    retentionDays: e.CRONPLANE_RETENTION_DAYS,
    secretsPath,
    workerAllow,
    stackName: e.CRONPLANE_STACK || undefined,
  };
}
