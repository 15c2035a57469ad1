/** The executor extension point: anything that can run a job's `executor_config` and report a result. */
import type { Execution } from '../executions/execution.ts';
import type { JobDefinition } from '../jobs/definition.ts';

export interface ExecutorResult {
  readonly status: 'succeeded' | 'failed' | 'timeout' | 'cancelled';
  readonly exitCode: number | null;
  readonly output: string;
  readonly outputTruncated: boolean;
  readonly reason: string | null;
  /**
   * A temp file holding the whole output, when it was longer than `output` keeps (`outputTruncated`).
   * The runner uploads it to the output bucket, if one is configured, and removes it in any case.
   */
  readonly fullOutputPath?: string;
}

/** A running job's output so far, read by the runner's heartbeat (see OutputBuffer.view). */
export interface LiveOutput {
  /** Bytes the job has printed so far (cheap: read it to know whether there is anything new). */
  readonly bytes: number;
  view(maxBytes: number): { readonly text: string; readonly bytes: number };
}

/** What an executor may report while it runs. */
export interface RunHooks {
  /** The output as it grows (the shell executor): the heartbeat writes its tail to the execution. */
  output?(live: LiveOutput): void;
  /**
   * The moment the work really began, when that is later than the call (the shell executor: once its
   * process exists). It becomes the execution's `startedAt`.
   */
  started?(at: number): void;
}

export interface Executor {
  /**
   * Whether `run` calls `hooks.started` once the work really began (or ends without it having begun): the
   * runner then counts a run's duration, for its start record, from there (shell: from the process's start).
   */
  readonly reportsStart?: boolean;
  /**
   * Called when a launch for this executor has been claimed and is held to its fire time: a chance to
   * get ready (the shell executor forks the job's process ahead, its gate shut, in the agent's spawner).
   */
  prepare?(job: JobDefinition, execution: Execution): void;
  /** Called once the launch is settled, whether it ran or not: what `prepare` readied and `run` did not use goes. */
  release?(execution: Execution): void;
  /** `signal` aborts the run (cancel / replace / agent shutdown past its grace period). */
  run(
    job: JobDefinition,
    execution: Execution,
    signal: AbortSignal,
    hooks?: RunHooks,
  ): Promise<ExecutorResult>;
}
