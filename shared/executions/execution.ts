/** The execution: one launch of a job on one agent slot, and its result. */
import { toRfc3339, ZERO_TIME } from '../time.ts';

export type ExecutionStatus =
  | 'scheduled'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'timeout'
  | 'cancelled'
  | 'lost'
  | 'skipped';

export const TERMINAL: ReadonlySet<ExecutionStatus> = new Set([
  'succeeded',
  'failed',
  'timeout',
  'cancelled',
  'lost',
  'skipped',
]);

export type Trigger = 'schedule' | 'manual' | 'retry' | 'dependent' | 'catchup' | 'backfill';

export interface Execution {
  readonly jobName: string;
  readonly executionId: string;
  /** Shared by every slot and retry of one trigger (Dkron's `group`). */
  readonly group: string;
  readonly slot: number;
  readonly attempt: number;
  readonly trigger: Trigger;
  readonly status: ExecutionStatus;
  /** The nominal fire time (ms). */
  readonly scheduledAt: number;
  readonly jobVersion: number;
  readonly queueUrl: string;
  /** When an agent claimed it (`scheduled → running`), possibly a little before its fire time. */
  readonly claimedAt: number | null;
  /** When the executor started, at or after the fire time. */
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly heartbeatAt: number | null;
  readonly agentId: string | null;
  readonly nodeName: string | null;
  readonly exitCode: number | null;
  readonly success: boolean | null;
  readonly output: string;
  readonly outputTruncated: boolean;
  /** `s3://bucket/key` of the full output, when it was truncated and uploaded. */
  readonly outputUrl: string | null;
  readonly reason: string | null;
  /**
   * Processors that failed on this execution (name → error), null when none did. Their failure never
   * changes the status or loses the output (shared/processors/apply.ts).
   */
  readonly processorErrors: Readonly<Record<string, string>> | null;
  /** Bytes the job printed so far (live, while it runs) or in all; null when its executor does not say. */
  readonly outputBytes: number | null;
  /**
   * In the `byActive` index (what `GET /v1/busy` and the lost sweep read): a run that lived a second (its
   * start record) or beat, or that was claimed from a message delivered before. A run claimed from its
   * first delivery and ended within a second never is (ExecutionsStore). Absent: not known.
   */
  readonly indexed?: boolean;
}

/** Zero-padded so that ids sort by fire time. */
export function groupIdFor(fireAtMs: number, suffix = ''): string {
  return `${String(fireAtMs).padStart(13, '0')}${suffix}`;
}

/**
 * The id derives from the fire time (via the group), the slot and the attempt, and nothing else, so
 * one fire time can never produce two executions: the put is conditional on the id not existing.
 */
/**
 * The group as Dkron's clients read it: an integer (Dkron's is the trigger time in nanoseconds, an int64).
 * Ours is the fire time in ms × 1000, plus 1–999 derived from the suffix of a manual, dependent or
 * on-failure group (two such groups in one millisecond could share a number; the string id in `group_id`
 * never does). Exact in JSON (below 2^53) until the year 2255.
 */
export function groupNumber(group: string): number {
  const ms = Number(group.slice(0, 13));
  const suffix = group.slice(13);
  if (suffix === '') return ms * 1000;
  let h = 0x811c9dc5;
  for (let i = 0; i < suffix.length; i++) h = Math.imul(h ^ suffix.charCodeAt(i), 0x01000193) >>> 0;
  return ms * 1000 + (h % 999) + 1;
}

/**
 * TTL (`expiresAt`, seconds) `retentionDays` after `now`: set on a planned execution (from its fire time),
 * and on a finished one only once its reactions are done.
 */
export function expiryAfter(now: number, retentionDays: number): number {
  return Math.floor(now / 1000) + retentionDays * 86_400;
}

export function executionIdFor(group: string, slot: number, attempt: number): string {
  return `${group}.${slot}.${attempt}`;
}

export function fromItem(item: Record<string, unknown>): Execution {
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  return {
    jobName: item.jobName as string,
    executionId: item.executionId as string,
    group: item.group as string,
    slot: Number(item.slot ?? 0),
    attempt: Number(item.attempt ?? 1),
    trigger: (item.trigger as Trigger) ?? 'schedule',
    status: item.status as ExecutionStatus,
    scheduledAt: Number(item.scheduledAt),
    jobVersion: Number(item.jobVersion ?? 0),
    queueUrl: (item.queueUrl as string) ?? '',
    claimedAt: num(item.claimedAt),
    startedAt: num(item.startedAt),
    finishedAt: num(item.finishedAt),
    heartbeatAt: num(item.heartbeatAt),
    agentId: (item.agentId as string) ?? null,
    nodeName: (item.nodeName as string) ?? null,
    exitCode: num(item.exitCode),
    success: typeof item.success === 'boolean' ? item.success : null,
    output: (item.output as string) ?? '',
    outputTruncated: item.outputTruncated === true,
    outputUrl: typeof item.outputUrl === 'string' ? item.outputUrl : null,
    reason: (item.reason as string) ?? null,
    processorErrors: stringMap(item.processorErrors),
    outputBytes: num(item.outputBytes),
    indexed: item.activeShard !== undefined,
  };
}

function stringMap(v: unknown): Record<string, string> | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const entries = Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string');
  return entries.length > 0 ? Object.fromEntries(entries) : null;
}

/** Dkron's execution JSON plus our fields. `outputLimit` trims the output (Dkron's output_size_limit). */
export function toApi(e: Execution, outputLimit?: number) {
  const output =
    outputLimit !== undefined && e.output.length > outputLimit ? e.output.slice(-outputLimit) : e.output;
  return {
    id: e.executionId,
    job_name: e.jobName,
    group: groupNumber(e.group),
    group_id: e.group,
    attempt: e.attempt,
    status: e.status,
    trigger: e.trigger,
    scheduled_at: new Date(e.scheduledAt).toISOString(),
    started_at: toRfc3339(e.startedAt) ?? ZERO_TIME,
    finished_at: toRfc3339(e.finishedAt) ?? ZERO_TIME,
    success: e.success ?? false,
    exit_code: e.exitCode,
    output,
    output_truncated: e.outputTruncated || output.length < e.output.length,
    output_url: e.outputUrl,
    node_name: e.nodeName ?? '',
    reason: e.reason,
    processor_errors: e.processorErrors,
    output_size: e.outputBytes,
  };
}
