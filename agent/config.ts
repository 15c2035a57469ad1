/**
 * The configuration of the agent and the `cronplane` CLI, the only readers of their environment: flags,
 * then environment, then a JSON file (--config). With no AWS configuration at all, an agent started in a
 * checkout joins the local stack that `npm start` runs there. Timing defaults come from shared/timing.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import type { Env } from '../shared/aws/clients.ts';
import { ValidationError } from '../shared/errors.ts';
import { passThroughProblem } from '../shared/executors/common.ts';
import {
  AGENT_GRACE_MS,
  AGENT_HEARTBEAT_MS,
  EXECUTION_HEARTBEAT_MS,
  LOST_AFTER_MS,
} from '../shared/timing.ts';
import { DEFAULT_LOCAL_STACK_FILE } from './stack-file.ts';

/** The environment of the agent or CLI process: its AWS settings and CRONPLANE_* variables. */
export function agentEnv(): Env {
  return process.env;
}

/** '' counts as unset; anything else must be an integer ≥ `min`. */
const optionalInt = (min: 0 | 1) => {
  const rule = min === 1 ? 'must be a positive integer' : 'must be a non-negative integer';
  return z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.coerce.number({ error: rule }).int({ error: rule }).min(min, { error: rule }).optional(),
  );
};

/** The agent's own variables (AWS_* and the tables' CRONPLANE_* go to the context: shared/config.ts). */
const envSchema = z.object({
  CRONPLANE_AGENT_NAME: z.string().optional(),
  /** `role=web,dc=eu` */
  CRONPLANE_AGENT_TAGS: z.string().optional(),
  CRONPLANE_AGENT_CONCURRENCY: z.string().optional(),
  /** Comma-separated names of the agent's variables that jobs inherit (e.g. HTTP_PROXY). */
  CRONPLANE_AGENT_JOB_ENV: z.string().optional(),
  CRONPLANE_AGENT_HEARTBEAT_MS: optionalInt(1),
  CRONPLANE_AGENT_EXECUTION_HEARTBEAT_MS: optionalInt(1),
  CRONPLANE_AGENT_LOST_AFTER_MS: optionalInt(1),
  CRONPLANE_AGENT_VISIBILITY_TIMEOUT_S: optionalInt(1),
  CRONPLANE_AGENT_POLL_WAIT_S: optionalInt(1),
  CRONPLANE_AGENT_REGISTRY_REFRESH_MS: optionalInt(1),
  /** How long running jobs may finish after SIGTERM. */
  CRONPLANE_AGENT_GRACE_MS: optionalInt(0),
  /** `off`: shell jobs are forked by the agent itself, not by its spawner process (agent/spawner.ts). */
  CRONPLANE_AGENT_SPAWNER: z.enum(['on', 'off']).optional(),
  /** Where `npm start` tells agents in its checkout how to join it. */
  CRONPLANE_LOCAL_STACK_FILE: z.string().optional(),
  /** The CLI's API (--api wins). */
  CRONPLANE_API: z.string().optional(),
});
type AgentEnv = z.infer<typeof envSchema>;

function parseAgentEnv(env: Env): AgentEnv {
  const parsed = envSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new ValidationError(String(issue?.path[0] ?? 'environment'), issue?.message ?? 'invalid');
}

/**
 * Where `npm start` writes how to join the local stack (`CRONPLANE_LOCAL_STACK_FILE`, default
 * `.cronplane/local.json` in the checkout). The local stack writes it there (local/config.ts takes the
 * path from here).
 */
export function localStackFile(env: Env = agentEnv()): string {
  return parseAgentEnv(env).CRONPLANE_LOCAL_STACK_FILE || DEFAULT_LOCAL_STACK_FILE;
}

/** The API the CLI calls unless --api says otherwise: CRONPLANE_API, else the local stack's default port. */
export function defaultApiUrl(env: Env = agentEnv()): string {
  return parseAgentEnv(env).CRONPLANE_API ?? 'http://127.0.0.1:8080';
}

const fileSchema = z.object({
  name: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional(),
  concurrency: z.number().int().min(1).max(256).optional(),
  env: z.record(z.string(), z.string()).optional(),
  /** Names of the agent's environment variables jobs inherit besides the base (e.g. HTTP_PROXY). */
  jobEnv: z.array(z.string()).optional(),
});

export interface AgentFlags {
  tag?: string[];
  name?: string;
  concurrency?: string;
  config?: string;
}

export interface ResolvedAgentConfig {
  readonly agentId: string;
  readonly tags: Record<string, string>;
  readonly concurrency: number;
  /** Environment for the AWS clients and the CRONPLANE_* settings. */
  readonly env: Env;
  readonly joinedLocalStack: boolean;
  /** Variables jobs inherit besides the scrubbed base (CRONPLANE_AGENT_JOB_ENV or the file's `jobEnv`). */
  readonly jobEnvPassThrough: readonly string[];
  /** Timing knobs (env only); defaults suit production (shared/timing.ts), tests shorten them. */
  readonly timing: {
    heartbeatIntervalMs: number;
    executionHeartbeatMs: number;
    lostAfterMs: number;
    visibilityTimeoutSeconds?: number | undefined;
    pollWaitSeconds?: number | undefined;
    registryRefreshMs?: number | undefined;
  };
  /** How long running jobs may finish after SIGTERM (CRONPLANE_AGENT_GRACE_MS). */
  readonly graceMs: number;
  /** Whether shell jobs start through the spawner process (CRONPLANE_AGENT_SPAWNER, default on). */
  readonly spawner: boolean;
}

export function parseTagFlags(tags: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags) {
    const i = t.indexOf('=');
    if (i <= 0) throw new ValidationError('--tag', `"${t}" must look like key=value`);
    out[t.slice(0, i)] = t.slice(i + 1);
  }
  return out;
}

export function resolveAgentConfig(
  flags: AgentFlags,
  env: Env = agentEnv(),
  stackFile: string = localStackFile(env),
): ResolvedAgentConfig {
  const own = parseAgentEnv(env);
  const file = flags.config ? fileSchema.parse(JSON.parse(readFileSync(flags.config, 'utf8'))) : {};
  const envTags = own.CRONPLANE_AGENT_TAGS
    ? parseTagFlags(own.CRONPLANE_AGENT_TAGS.split(',').filter(Boolean))
    : {};
  const tags = { ...file.tags, ...envTags, ...parseTagFlags(flags.tag ?? []) };
  const concurrency = Number(flags.concurrency ?? own.CRONPLANE_AGENT_CONCURRENCY ?? file.concurrency ?? 4);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ValidationError('--concurrency', 'must be a positive integer');
  }
  const agentId = flags.name ?? own.CRONPLANE_AGENT_NAME ?? file.name ?? hostname();
  let merged: Env = { ...file.env, ...env };
  let joinedLocalStack = false;
  const configured = merged.CRONPLANE_JOBS_TABLE !== undefined;
  if (!configured && existsSync(stackFile)) {
    const stack = JSON.parse(readFileSync(stackFile, 'utf8')) as { env: Record<string, string> };
    merged = { ...stack.env, ...merged };
    joinedLocalStack = true;
  }
  const jobEnvPassThrough = own.CRONPLANE_AGENT_JOB_ENV
    ? own.CRONPLANE_AGENT_JOB_ENV.split(',')
        .map((n) => n.trim())
        .filter(Boolean)
    : (file.jobEnv ?? []);
  const problem = passThroughProblem(jobEnvPassThrough);
  if (problem) throw new ValidationError('CRONPLANE_AGENT_JOB_ENV', problem);
  const timing = {
    heartbeatIntervalMs: own.CRONPLANE_AGENT_HEARTBEAT_MS ?? AGENT_HEARTBEAT_MS,
    executionHeartbeatMs: own.CRONPLANE_AGENT_EXECUTION_HEARTBEAT_MS ?? EXECUTION_HEARTBEAT_MS,
    lostAfterMs: own.CRONPLANE_AGENT_LOST_AFTER_MS ?? LOST_AFTER_MS,
    visibilityTimeoutSeconds: own.CRONPLANE_AGENT_VISIBILITY_TIMEOUT_S,
    pollWaitSeconds: own.CRONPLANE_AGENT_POLL_WAIT_S,
    registryRefreshMs: own.CRONPLANE_AGENT_REGISTRY_REFRESH_MS,
  };
  const graceMs = own.CRONPLANE_AGENT_GRACE_MS ?? AGENT_GRACE_MS;
  const spawner = own.CRONPLANE_AGENT_SPAWNER !== 'off';
  return {
    agentId,
    tags,
    concurrency,
    env: merged,
    joinedLocalStack,
    jobEnvPassThrough,
    timing,
    graceMs,
    spawner,
  };
}
