/** A shell job and an execution of it, as the shell executor's tests (shell, spawner) run them. */
import type { Execution } from '../../../shared/executions/execution.ts';
import { validateJob } from '../../../shared/jobs/job.ts';

export const execution = { executionId: '0000000000001.0.1', scheduledAt: 1 } as Execution;

export function job(config: Record<string, string>, extra: Record<string, unknown> = {}) {
  return validateJob({
    name: 'j',
    schedule: '@manually',
    executor: 'shell',
    executor_config: config,
    ...extra,
  });
}
