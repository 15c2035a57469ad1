/**
 * Ports: what the use cases (the API's jobs service, the planner and tick, the runner, the reactions,
 * the cluster view) need from storage, and the records that cross it. The DynamoDB implementations
 * (`JobsStore`, `ExecutionsStore`, `ControlStore`, `AgentsStore`) implement these; `Context` hands them
 * out typed by these interfaces only.
 *
 * Conventions every implementation keeps: a write that must not overwrite a concurrent one is
 * conditional, and a failed condition is an answer (`false`, `null`, a named outcome) or a typed domain
 * error (shared/errors.ts), never the storage's own exception. Times are epoch milliseconds.
 *
 * Imports domain types only, never a store (that would be a cycle through the `implements`).
 */
import type { Execution, ExecutionStatus, Trigger } from './executions/execution.ts';
import type { JobDefinition } from './jobs/definition.ts';

// ---------------------------------------------------------------------------------------------- jobs

export type JobChangeAction = 'created' | 'updated' | 'enabled' | 'disabled';

/** One change of a job's definition. */
export interface JobChange {
  /** The version the change produced. */
  readonly version: number;
  readonly at: number;
  /** The caller's identity (API Gateway's IAM user/role ARN), `anonymous` without IAM auth. */
  readonly by: string;
  readonly action: JobChangeAction;
}

/** Who makes a change, and what kind of change it is. */
export interface JobChangeBy {
  readonly by: string;
  readonly action: JobChangeAction;
}

export interface JobRecord {
  readonly name: string;
  readonly def: JobDefinition;
  /** Bumped by every user write; planned executions carry the version they were planned for. */
  readonly version: number;
  readonly nextRunAt: number | null;
  readonly successCount: number;
  readonly errorCount: number;
  readonly missedCount: number;
  readonly lastSuccess: number | null;
  readonly lastError: number | null;
  readonly status: string;
  readonly dependentJobs: string[];
  readonly createdAt: number;
  readonly updatedAt: number;
  /** '' for a job written before the audit trail existed. */
  readonly createdBy: string;
  readonly updatedBy: string;
  /** Oldest first, at most JOB_HISTORY_LIMIT (jobs-store.ts). */
  readonly history: JobChange[];
  /** Why the planner could not plan this job at its last try (null once it plans again), and when. */
  readonly planError: string | null;
  readonly planErrorAt: number | null;
  /**
   * The reactions' bookkeeping (settleFinishes, shared/events/settle.ts): `settleSeq` is bumped by every write of the
   * counters (their optimistic lock), `settling` holds the executions they counted whose `countedAt` mark
   * is not known written.
   */
  readonly settleSeq: number;
  readonly settling: readonly string[];
}

/** Move `job.nextRunAt` (as read) to `next`, adding `missed` to its missed count. */
export interface NextRunAdvance {
  readonly job: JobRecord;
  readonly next: number | null;
  readonly missed: number;
}

/**
 * Reads asked for together: the stores' batch reads given the same one in one synchronous turn are sent
 * to the store as one request (Context.readTogether; shared/aws/read-batch.ts).
 */
export interface ReadTogether {
  readonly readsTogether: true;
}

/** Job definitions, their next fire time (the due index, sharded), counters and audit trail. */
export interface JobsPort {
  /** The due shard a job is indexed under, by name. */
  dueShard(name: string): number;
  get(name: string, consistent?: boolean): Promise<JobRecord | null>;
  /** Several jobs in one read (with `reads`: in its request), by name; absent ones are missing from the map. */
  getMany(names: readonly string[], reads?: ReadTogether): Promise<Map<string, JobRecord>>;
  /** Every job (`consistent`: a strongly consistent scan, seeing every write before it). */
  list(consistent?: boolean): Promise<JobRecord[]>;
  /**
   * Creates or replaces the definition; `expected` (the record read before, or its version; null for a
   * new job) makes a concurrent writer fail with ConflictError instead of overwriting.
   */
  putDefinition(
    def: JobDefinition,
    nextRunAt: number | null,
    expected: JobRecord | number | null,
    now: number,
    change?: JobChangeBy,
  ): Promise<JobRecord>;
  delete(name: string): Promise<JobRecord | null>;
  /** Deletes the job only if it was created at or before `createdBy`; false when nothing was deleted. */
  deleteIfCreatedBy(name: string, createdBy: number): Promise<boolean>;

  /** Moves `nextRunAt` forward from the value read; false when another planner moved it first. */
  advanceNextRun(job: JobRecord, next: number | null, missed: number): Promise<boolean>;
  /** `advanceNextRun` for many at once, one answer per advance, in order. */
  advanceNextRunMany(advances: readonly NextRunAdvance[]): Promise<boolean[]>;
  /** Jobs of one due shard whose next fire time is before `beforeMs`. */
  due(shard: number, beforeMs: number): AsyncGenerator<JobRecord>;
  /** Whether any job is still indexed under `shard`. */
  shardHoldsJobs(shard: number): Promise<boolean>;
  /** Moves up to `limit` jobs of `shard` that belong to another shard there; answers how many moved. */
  moveOutOfShard(shard: number, limit: number): Promise<number>;
  recordPlanError(name: string, reason: string, now: number): Promise<void>;
  clearPlanError(name: string): Promise<void>;

  /**
   * The job's side of the reactions' last writes (shared/events/settle.ts): adds `counting` to its
   * counters, sets its status unless a newer group set it, stores `settling` — conditional on its
   * `settleSeq` being the one read (`job`). False when another write came first.
   */
  settleCounts(
    job: JobRecord,
    counting: readonly SettledFinish[],
    status: { readonly status: string; readonly group: string } | null,
    settling: readonly string[],
  ): Promise<boolean>;
  setDependentJobs(name: string, children: readonly string[]): Promise<void>;
  resetResults(name: string): Promise<void>;
}

/** One finish as the reactions' last write sees it. */
export interface SettledFinish {
  readonly executionId: string;
  /** Added to `success_count` / `error_count` (with `last_success` / `last_error`); neutral adds nothing. */
  readonly outcome: 'success' | 'error' | 'neutral';
  /** Counted by an earlier delivery (its `countedAt` is set): not counted again. */
  readonly counted: boolean;
  readonly finishedAt: number;
}

// ---------------------------------------------------------------------------------------- executions

export interface NewExecution {
  jobName: string;
  executionId: string;
  group: string;
  slot: number;
  attempt: number;
  trigger: Trigger;
  scheduledAt: number;
  jobVersion: number;
  queueUrl: string;
}

export type ClaimOutcome =
  | { readonly claimed: true; readonly execution: Execution }
  | { readonly claimed: false; readonly why: 'not_scheduled' | 'slot_taken' };

export interface ExecutionResult {
  status: Extract<ExecutionStatus, 'succeeded' | 'failed' | 'timeout' | 'cancelled'>;
  exitCode: number | null;
  output: string;
  outputTruncated: boolean;
  reason: string | null;
  /** Where the full output went (`s3://bucket/key`) when it was truncated and uploaded. */
  outputUrl?: string | undefined;
  /** The job's processors that failed (name → error); absent or null when none did. */
  processorErrors?: Readonly<Record<string, string>> | null | undefined;
  /** How many bytes the job printed in all (known for executors that report live output). */
  outputBytes?: number | undefined;
}

/** What retention reads of each execution: no outputs, just enough to know whether it may go. */
export interface ExecutionKey extends Pick<Execution, 'jobName' | 'executionId' | 'status' | 'finishedAt'> {
  /** When every reaction to its finish was done; null while it is planned, running or not yet reacted. */
  readonly reactedAt: number | null;
}

export type ExecutionRef = Pick<Execution, 'jobName' | 'executionId'>;

/** Reaction bookkeeping of one finished execution. */
export interface ReactionMarks {
  readonly status: ExecutionStatus;
  readonly countedAt: number | null;
  readonly reactedAt: number | null;
}

/** Who claims an execution. */
export interface Claimant {
  agentId: string;
  nodeName: string;
}

/** Executions and their state machine: every transition is conditional on the state it leaves. */
export interface ExecutionsPort {
  /** Writes a `scheduled` execution unless one with its id exists: null when created, else the existing one. */
  createScheduled(e: NewExecution, now: number): Promise<Execution | null>;
  /** `createScheduled` for many at once, one answer per execution, in order. */
  createScheduledMany(executions: readonly NewExecution[], now: number): Promise<Array<Execution | null>>;
  /** Re-targets a still-scheduled execution at the job's new version. */
  retarget(e: Execution, jobVersion: number): Promise<boolean>;

  /**
   * `scheduled → running` (fan-out: with the agent's slot of the group). The job's version and the pause
   * flag are the runner's to check once the claim has landed.
   */
  claim(
    e: Execution,
    agent: Claimant,
    now: number,
    options?: { oneSlotPerAgent?: boolean; index?: boolean },
  ): Promise<ClaimOutcome>;
  /** Claims several at once, each on its own: the running execution, or null where it was not claimed. */
  claimMany(executions: readonly Execution[], agent: Claimant, now: number): Promise<Array<Execution | null>>;
  /** Keeps a running execution alive; whether a cancel was asked for, or null when it is no longer ours. */
  heartbeat(
    e: ExecutionRef,
    agentId: string,
    now: number,
    live?: { readonly text: string; readonly bytes: number },
  ): Promise<{ cancelRequested: boolean } | null>;
  markStarted(e: ExecutionRef, agentId: string, at: number): Promise<boolean>;
  requestCancel(e: ExecutionRef, reason: string): Promise<boolean>;
  /** `running → lost` when the heartbeat is still the one read. */
  markLost(e: Execution, now: number, reason: string): Promise<boolean>;
  /** `running → terminal`, only by the agent that claimed it. */
  finish(e: Execution, agentId: string, result: ExecutionResult, now: number): Promise<boolean>;
  /** Ends an execution that never ran, or whose agent vanished, from the status `from`. */
  end(
    e: ExecutionRef,
    from: ExecutionStatus,
    to: Extract<ExecutionStatus, 'skipped' | 'cancelled' | 'lost' | 'failed'>,
    reason: string,
    now: number,
  ): Promise<boolean>;

  get(jobName: string, executionId: string): Promise<Execution | null>;
  /** Several executions in one consistent read (with `reads`: in its request), keyed `jobName/executionId`. */
  getMany(keys: readonly ExecutionRef[], reads?: ReadTogether): Promise<Map<string, Execution>>;
  listForJob(
    jobName: string,
    options?: { newestFirst?: boolean; limit?: number; fromId?: string },
  ): Promise<Execution[]>;
  /**
   * Scheduled and running executions of all jobs; with `scheduledBefore`, only those whose fire time is
   * earlier (a run claimed at most MAX_HOLD_MS before its fire time: the sweep and `busy` need no more).
   */
  listActive(options?: { readonly scheduledBefore?: number }): Promise<Execution[]>;
  /** Every slot and attempt of one group, without outputs. */
  listGroup(jobName: string, group: string): Promise<Execution[]>;

  /** Reaction bookkeeping of one execution; null when it is gone. */
  reactionMarks(jobName: string, executionId: string): Promise<ReactionMarks | null>;
  /**
   * Marks a finish reacted to (and counted, with `counted`), conditional on its not being marked yet:
   * false when it was, or is gone.
   */
  markReacted(e: ExecutionRef, counted: boolean, now: number): Promise<boolean>;
  /** `reactionMarks` of several executions in one read, keyed `jobName/executionId`; gone ones absent. */
  reactionMarksMany(keys: readonly ExecutionRef[]): Promise<Map<string, ReactionMarks>>;
  /** Keys, statuses and reaction marks of a job's executions, newest first. */
  listKeysForJob(jobName: string): Promise<ExecutionKey[]>;
  deleteMany(keys: readonly ExecutionRef[]): Promise<number>;
  deleteForJob(jobName: string): Promise<number>;
}

// ------------------------------------------------------------------------------------------- control

export interface Lease {
  readonly owner: string;
  readonly token: number;
  readonly expiresAtMs: number;
  /** When the holder last took or renewed it (each tick does); 0 when unknown. */
  readonly acquiredAtMs?: number;
  /** A shard lease's window cursor, as it stood when the lease was taken (absent before its first round). */
  readonly cursorAt?: number;
}

/**
 * The due shards: `count` is the configured shard count jobs are spread over; `span` is how many shards
 * the coordinator ticks (shards in [count, span) still hold jobs written under an older, larger count and
 * are ticked until they are empty); `changedAt` is when `count` last changed.
 */
export interface ShardLayout {
  readonly count: number;
  readonly span: number;
  readonly changedAt: number;
}

export interface LockHolder {
  readonly executionId: string;
  readonly agentId: string;
}

/** The small items that coordinate the control plane: leases, cursors, the shard layout, pause, locks. */
export interface ControlPort {
  /** Takes or renews a lease (a takeover increments its fencing token); null when another holds it. */
  acquireLease(name: string, owner: string, now: number, ttlMs: number): Promise<Lease | null>;
  releaseLease(name: string, lease: Lease): Promise<void>;
  /**
   * Releases a shard's lease and, with `advanceTo`, moves its cursor there, in one write fenced by the
   * lease; false when the lease was taken over meanwhile.
   */
  endRound(name: string, lease: Lease, advanceTo: number | null): Promise<boolean>;
  getLease(name: string): Promise<Lease | null>;
  getCursor(shard: number): Promise<number | null>;
  /** Moves a shard's cursor forward under a fencing token; false for an older token or a backward move. */
  advanceCursor(shard: number, at: number, fence: number): Promise<boolean>;
  getShardLayout(): Promise<ShardLayout | null>;
  /** Records a layout over the one read (`expected`); false when another coordinator wrote first. */
  putShardLayout(layout: ShardLayout, expected: ShardLayout | null): Promise<boolean>;
  /** Whether the scheduler is paused (a consistent read; with `reads`: in its request). */
  isPaused(reads?: ReadTogether): Promise<boolean>;
  setPaused(paused: boolean, now: number): Promise<void>;
  /** A job's concurrency lock: null when taken, else who holds it. */
  acquireLock(jobName: string, holder: LockHolder, now: number, ttlMs: number): Promise<LockHolder | null>;
  releaseLock(jobName: string, executionId: string): Promise<void>;
}

// -------------------------------------------------------------------------------------------- agents

export interface AgentRecord {
  readonly agentId: string;
  readonly hostname: string;
  readonly tags: Record<string, string>;
  readonly version: string;
  readonly capacity: number;
  readonly running: number;
  readonly startedAt: number;
  readonly lastHeartbeatAt: number;
  readonly heartbeatIntervalMs: number;
  readonly leftAt: number | null;
}

/** Cluster membership, kept alive by heartbeats. */
export interface AgentsPort {
  /** Records a heartbeat; whether an operator asked this agent to leave. */
  heartbeat(a: Omit<AgentRecord, 'leftAt'>): Promise<{ leaveRequested: boolean }>;
  /** False when no such member is registered. */
  requestLeave(agentId: string): Promise<boolean>;
  leave(agentId: string, now: number): Promise<void>;
  get(agentId: string): Promise<AgentRecord | null>;
  list(): Promise<AgentRecord[]>;
}
