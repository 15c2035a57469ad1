/** The executor extension point: anything that can run a job's `executor_config` and report a result. */
import type { Execution } from '../executions/execution.ts';
import type { JobDefinition } from '../jobs/job.ts';

export interface ExecutorResult {
  readonly status: 'succeeded' | 'failed' | 'timeout' | 'cancelled';
  readonly exitCode: number | null;
  readonly output: string;
  readonly outputTruncated: boolean;
  readonly reason: string | null;
}

export interface Executor {
  /** `signal` aborts the run (cancel / replace / agent shutdown past its grace period). */
  run(job: JobDefinition, execution: Execution, signal: AbortSignal): Promise<ExecutorResult>;
}
