/**
 * The agent's configuration: flags, then environment, then a JSON file (--config). With no AWS
 * configuration at all, an agent started in a checkout joins the local stack that `npm start` runs there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import type { Env } from '../shared/aws/clients.ts';
import { ValidationError } from '../shared/errors.ts';
import { passThroughProblem } from '../shared/executors/common.ts';

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
  /** Timing knobs (env only); defaults suit production, tests shorten them. */
  readonly timing: {
    heartbeatIntervalMs?: number;
    executionHeartbeatMs?: number;
    lostAfterMs?: number;
    visibilityTimeoutSeconds?: number;
    pollWaitSeconds?: number;
    registryRefreshMs?: number;
  };
}

function optionalInt(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new ValidationError(name, 'must be a positive integer');
  return n;
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

export function resolveAgentConfig(flags: AgentFlags, env: Env, localStackFile: string): ResolvedAgentConfig {
  const file = flags.config ? fileSchema.parse(JSON.parse(readFileSync(flags.config, 'utf8'))) : {};
  const envTags = env.CRONPLANE_AGENT_TAGS
    ? parseTagFlags(env.CRONPLANE_AGENT_TAGS.split(',').filter(Boolean))
    : {};
  const tags = { ...file.tags, ...envTags, ...parseTagFlags(flags.tag ?? []) };
  const concurrency = Number(flags.concurrency ?? env.CRONPLANE_AGENT_CONCURRENCY ?? file.concurrency ?? 4);
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ValidationError('--concurrency', 'must be a positive integer');
  }
  const agentId = flags.name ?? env.CRONPLANE_AGENT_NAME ?? file.name ?? hostname();
  let merged: Env = { ...file.env, ...env };
  let joinedLocalStack = false;
  const configured = merged.CRONPLANE_JOBS_TABLE !== undefined;
  if (!configured && existsSync(localStackFile)) {
    const stack = JSON.parse(readFileSync(localStackFile, 'utf8')) as { env: Record<string, string> };
    merged = { ...stack.env, ...merged };
    joinedLocalStack = true;
  }
  const jobEnvPassThrough = env.CRONPLANE_AGENT_JOB_ENV
    ? env.CRONPLANE_AGENT_JOB_ENV.split(',')
        .map((n) => n.trim())
        .filter(Boolean)
    : (file.jobEnv ?? []);
  const problem = passThroughProblem(jobEnvPassThrough);
  if (problem) throw new ValidationError('CRONPLANE_AGENT_JOB_ENV', problem);
  const timing = {
    heartbeatIntervalMs: optionalInt(env, 'CRONPLANE_AGENT_HEARTBEAT_MS'),
    executionHeartbeatMs: optionalInt(env, 'CRONPLANE_AGENT_EXECUTION_HEARTBEAT_MS'),
    lostAfterMs: optionalInt(env, 'CRONPLANE_AGENT_LOST_AFTER_MS'),
    visibilityTimeoutSeconds: optionalInt(env, 'CRONPLANE_AGENT_VISIBILITY_TIMEOUT_S'),
    pollWaitSeconds: optionalInt(env, 'CRONPLANE_AGENT_POLL_WAIT_S'),
    registryRefreshMs: optionalInt(env, 'CRONPLANE_AGENT_REGISTRY_REFRESH_MS'),
  };
  return { agentId, tags, concurrency, env: merged, joinedLocalStack, jobEnvPassThrough, timing };
}
