/** A shell job and an execution of it, as the shell executor's tests (shell, spawner) run them. */
import { readFileSync } from 'node:fs';
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

/** Whether a process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Whether a process is gone (or a zombie) within `withinMs`. */
export async function gone(pid: number, withinMs = 3_000): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !alive(pid);
}
