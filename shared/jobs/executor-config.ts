/**
 * A job's `executor_config`, checked when the job is written with the parser its built-in executor runs
 * before every run, so that a config the executor would refuse is a 400 naming the key instead of a job
 * that fails at each run. The rules live with the executors; this module only picks the parser and turns
 * its ExecutorConfigError into a ValidationError (`executor_config.<key>`).
 *
 * Like the executors: unknown keys are ignored (Dkron's config is a free string map), and `{{ssm:...}}`
 * references are left alone where the executor resolves them at run time (shell `env` values, http `url`,
 * header values and `body`, see checkHttpConfig; the broker executors' secret keys, see checkBrokerConfig,
 * which refuses a reference anywhere else). Any other executor name is a custom (external) executor
 * installed on the agents, which alone knows its config: only `timeout` is checked for it (in validateJob).
 *
 * `checkExecutorTrust` adds what depends on the stack's configuration (so not in the pure validateJob; the
 * jobs service runs it on every write): every `{{ssm:...}}` reference, in any key of any executor, must
 * lie under the secrets path, and an agentless job's target (function, queue, bus, URL, broker, and the
 * servers of its syslog and fluent processors) must be on the worker's allow-list. The executors and the
 * worker's processors refuse the same at run time.
 */

import type { Config } from '../config.ts';
import { ValidationError } from '../errors.ts';
import { parseEventBridgeConfig, parseLambdaConfig, parseSqsConfig } from '../executors/aws.ts';
import { type BrokerDefinition, checkBrokerConfig, writtenBrokers } from '../executors/broker.ts';
import { ExecutorConfigError } from '../executors/common.ts';
import { checkHttpConfig } from '../executors/http.ts';
import { KAFKA } from '../executors/kafka.ts';
import { NATS } from '../executors/nats.ts';
import { RABBITMQ } from '../executors/rabbitmq.ts';
import { isAgentless } from '../executors/registry.ts';
import { findSecretReferences, hasSecretReferences, secretReferenceProblem } from '../executors/secrets.ts';
import { parseShellConfig } from '../executors/shell-config.ts';
import {
  awsTargetRefusal,
  type BrokerKind,
  brokerTargetRefusal,
  httpTargetRefusal,
} from '../executors/targets.ts';
import { checkProcessorTargets } from '../processors/config.ts';
import type { EXECUTORS, JobDefinition } from './definition.ts';

type ConfigCheck = (cfg: Readonly<Record<string, string>>) => unknown;

const BROKERS: Readonly<Record<BrokerKind, BrokerDefinition<{ timeoutMs: number }>>> = {
  kafka: KAFKA,
  nats: NATS,
  rabbitmq: RABBITMQ,
};

const CHECKS: Readonly<Record<(typeof EXECUTORS)[number] | BrokerKind, ConfigCheck>> = {
  shell: parseShellConfig,
  http: checkHttpConfig,
  lambda: parseLambdaConfig,
  sqs: parseSqsConfig,
  eventbridge: parseEventBridgeConfig,
  kafka: (cfg) => checkBrokerConfig(KAFKA, cfg),
  nats: (cfg) => checkBrokerConfig(NATS, cfg),
  rabbitmq: (cfg) => checkBrokerConfig(RABBITMQ, cfg),
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

/**
 * Throws ValidationError(`executor_config.<key>`, rule) when the job names a secret outside
 * `secretsPath` or (agentless jobs) a target outside `workerAllow`.
 */
export function checkExecutorTrust(
  def: Pick<JobDefinition, 'executor' | 'executor_config' | 'tags'> & {
    readonly processors?: JobDefinition['processors'];
  },
  policy: Pick<Config, 'secretsPath' | 'workerAllow'>,
): void {
  for (const [key, value] of Object.entries(def.executor_config)) {
    for (const reference of findSecretReferences(value)) {
      const problem = secretReferenceProblem(reference, policy.secretsPath);
      if (problem !== null) throw new ValidationError(`executor_config.${key}`, problem);
    }
  }
  if (!isAgentless(def)) return;
  checkProcessorTargets(def, policy.workerAllow);
  const refusal = awsTargetRefusal(def.executor, def.executor_config, policy.workerAllow);
  if (refusal) throw new ValidationError(`executor_config.${refusal.key}`, refusal.problem);
  const url = (def.executor_config.url ?? '').trim();
  // A URL holding a reference is checked when the worker has resolved it.
  if (def.executor === 'http' && url !== '' && !hasSecretReferences(url)) {
    let href = url;
    try {
      href = new URL(url).href;
    } catch {
      // validateExecutorConfig reports a bad URL.
    }
    const problem = httpTargetRefusal(href, policy.workerAllow);
    if (problem) throw new ValidationError('executor_config.url', problem);
  }
  const broker = Object.hasOwn(BROKERS, def.executor) ? BROKERS[def.executor as BrokerKind] : undefined;
  // A broker named through a reference is checked when the worker has resolved it.
  const brokers = broker ? writtenBrokers(broker, def.executor_config) : null;
  if (broker && brokers) {
    const problem = brokerTargetRefusal(broker.kind, brokers, policy.workerAllow);
    if (problem) throw new ValidationError(`executor_config.${broker.targetKey}`, problem);
  }
}
