/**
 * Custom processors: an executable `cronplane-processor-<name>` on the agent's PATH (looked up at each
 * run, so one installed while the agent runs is found), run with the protocol of custom executors
 * (shared/executors/external.ts): its own process group registered with the agent's reaper, the agent's
 * environment scrubbed (jobBaseEnv) plus CRONPLANE_PROCESSOR, CRONPLANE_JOB_NAME, CRONPLANE_EXECUTION_ID
 * and ENV_JOB_NAME, and on stdin one JSON document:
 *
 *   {"job": <the job, Dkron JSON>, "execution": <the finished execution as the API shows it, output
 *    included>, "config": <the processor's config, string values>}
 *
 * On stdout one JSON object, `{"success": true, "output": "<result>"}`: its `output` replaces the
 * execution's unless `forward` is true; `{"success": false, "error": "<why>"}` (or a non-zero exit, or
 * anything else on stdout) is the processor's failure. Killed after `timeout` (default 30 s).
 */
import { toApi } from '../executions/execution.ts';
import { findExecutable, type ProcessGroups } from '../executors/common.ts';
import { runExternalProgram } from '../executors/external.ts';
import { CUSTOM_PROCESSOR_PREFIX, type ProcessorConfig } from './config.ts';
import type { Processor, ProcessorRun } from './processor.ts';

type CustomConfig = Extract<ProcessorConfig, { kind: 'custom' }>;

export interface CustomProcessorsOptions {
  /** The PATH searched for `cronplane-processor-<name>`. */
  readonly searchPath: string;
  /** The environment processors start from (scrubbed, see jobBaseEnv). */
  readonly baseEnv: Record<string, string>;
  readonly groups?: ProcessGroups;
}

export class CustomProcessors {
  constructor(private readonly options: CustomProcessorsOptions) {}

  /** The executable of processor `name`, or null when the PATH has none. */
  find(name: string): string | null {
    return findExecutable(`${CUSTOM_PROCESSOR_PREFIX}${name}`, { PATH: this.options.searchPath });
  }

  processor(path: string): Processor<CustomConfig> {
    const { baseEnv, groups } = this.options;
    return {
      async process(run: ProcessorRun, config: CustomConfig): Promise<string> {
        const e = run.execution;
        const result = await runExternalProgram({
          label: `processor ${config.name}`,
          path,
          request: { job: run.job, execution: toApi(e), config: config.config },
          env: {
            ...baseEnv,
            CRONPLANE_PROCESSOR: config.name,
            ENV_JOB_NAME: e.jobName,
            CRONPLANE_JOB_NAME: e.jobName,
            CRONPLANE_EXECUTION_ID: e.executionId,
          },
          timeoutMs: config.timeoutMs,
          signal: run.signal,
          ...(groups ? { groups } : {}),
        });
        if (result.status !== 'succeeded')
          throw new Error(result.reason ?? `processor ${config.name} failed`);
        return result.output;
      },
    };
  }
}
