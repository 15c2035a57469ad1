/**
 * A job's `executor_config`, checked when the job is written with the parser its built-in executor runs
 * before every run, so that a config the executor would refuse is a 400 naming the key instead of a job
 * that fails at each run. The rules live with the executors; this module only picks the parser and turns
 * its ExecutorConfigError into a ValidationError (`executor_config.<key>`).
 *
 * Like the executors: unknown keys are ignored (Dkron's config is a free string map), and `{{ssm:...}}`
 * references are left alone where the executor resolves them at run time (shell `env` values, http `url`,
 * header values and `body`; see checkHttpConfig). Any other executor name is a custom (external) executor
 * installed on the agents, which alone knows its config: only `timeout` is checked for it (in validateJob).
 */
import { ValidationError } from '../errors.ts';
import { parseEventBridgeConfig, parseLambdaConfig, parseSqsConfig } from '../executors/aws.ts';
import { ExecutorConfigError } from '../executors/common.ts';
import { checkHttpConfig } from '../executors/http.ts';
import { parseShellConfig } from '../executors/shell-config.ts';
import type { EXECUTORS } from './job.ts';

type ConfigCheck = (cfg: Readonly<Record<string, string>>) => unknown;

const CHECKS: Readonly<Record<(typeof EXECUTORS)[number], ConfigCheck>> = {
  shell: parseShellConfig,
  http: checkHttpConfig,
  lambda: parseLambdaConfig,
  sqs: parseSqsConfig,
  eventbridge: parseEventBridgeConfig,
};

/** Throws ValidationError(`executor_config.<key>`, rule) when a built-in executor would refuse `cfg`. */
export function validateExecutorConfig(executor: string, cfg: Readonly<Record<string, string>>): void {
  const check = Object.hasOwn(CHECKS, executor) ? CHECKS[executor as keyof typeof CHECKS] : undefined;
  if (!check) return;
  try {
    check(cfg);
  } catch (error) {
    if (error instanceof ExecutorConfigError) {
      throw new ValidationError(`executor_config.${error.key}`, error.problem, { cause: error });
    }
    throw error;
  }
}
