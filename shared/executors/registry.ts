/**
 * The executors a process offers, by name, and where a job runs.
 *
 * Where a job runs: an *agentless* job needs no host, so the worker (a Lambda function) runs it itself
 * instead of dispatching it to an agent. That is every `lambda`, `sqs` and `eventbridge` job (one AWS API
 * call), and an `http`, `kafka`, `nats` or `rabbitmq` job **without tags**: with no tags nothing ties the
 * request or message to a particular host, so any place with network access will do (on AWS, the worker
 * reaches Amazon MSK or Amazon MQ when its function is attached to their VPC). Such a job with tags (say,
 * for a service or broker only reachable from inside a private network) goes to the matching agents like
 * a shell job. Shell and external executors always need an agent.
 *
 * Secrets: the HTTP and broker executors resolve `{{ssm:...}}` with an SSM resolver built from the clients. The
 * shell executor is built by the caller (it lives with the agent); give it
 * `resolveEnv: createSsmResolver(clients)` and pass it here: it is wrapped so that each run is a secret
 * scope (resolved values redacted from output and reason, a missing parameter a failed run).
 *
 * Built-in names (shell, http, lambda, sqs, eventbridge, kafka, nats, rabbitmq) are reserved: an external executor by one of
 * those names is ignored, even when no shell executor is given.
 */
import type { AwsClients } from '../aws/clients.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import { EventBridgeExecutor, LambdaExecutor, SqsExecutor } from './aws.ts';
import type { Executor } from './executor.ts';
import { discoverExternalExecutors, ExternalExecutor, type ExternalExecutorOptions } from './external.ts';
import { HttpExecutor } from './http.ts';
import { KafkaExecutor } from './kafka.ts';
import { NatsExecutor } from './nats.ts';
import { RabbitMqExecutor } from './rabbitmq.ts';
import { createSsmResolver, type SsmResolver, withSecretRedaction } from './secrets.ts';
import type { WorkerAllowList } from './targets.ts';

export const BUILT_IN_EXECUTORS: ReadonlySet<string> = new Set([
  'shell',
  'http',
  'lambda',
  'sqs',
  'eventbridge',
  'kafka',
  'nats',
  'rabbitmq',
]);
export const AGENTLESS_EXECUTORS: ReadonlySet<string> = new Set(['lambda', 'sqs', 'eventbridge']);
/** Executors whose jobs run in the worker when they have no tags, on the matching agents when they do. */
export const AGENTLESS_UNLESS_TAGGED: ReadonlySet<string> = new Set(['http', 'kafka', 'nats', 'rabbitmq']);

/** True when the job runs in the worker without an agent (see the rule above). */
export function isAgentless(def: Pick<JobDefinition, 'executor' | 'tags'>): boolean {
  if (AGENTLESS_EXECUTORS.has(def.executor)) return true;
  return AGENTLESS_UNLESS_TAGGED.has(def.executor) && Object.keys(def.tags ?? {}).length === 0;
}

export interface CreateExecutorsOptions {
  readonly clients: AwsClients;
  /** The shell executor (the agent's); wrapped for secret redaction. */
  readonly shell?: Executor;
  /** Directories searched for `cronplane-executor-<name>` executables. */
  readonly externalDirs?: string[];
  /** Explicit external executors: name → executable path (from the agent's configuration). */
  readonly externalPaths?: Readonly<Record<string, string>>;
  /** Environment for external executors (default: this process's). */
  readonly externalEnv?: ExternalExecutorOptions['baseEnv'];
  /** Shared SSM resolver (default: a new one on `clients`, 60 s cache, limited to `secretsPath`). */
  readonly resolver?: SsmResolver;
  /** Config `secretsPath` for the default resolver (default `/cronplane/`). */
  readonly secretsPath?: string;
  /** The worker's allow-list (config `workerAllow`) for the agentless executors; null/absent allows all. */
  readonly workerAllow?: WorkerAllowList | null;
}

export function createExecutors(options: CreateExecutorsOptions): Record<string, Executor> {
  const resolver =
    options.resolver ??
    createSsmResolver(options.clients, options.secretsPath ? { secretsPath: options.secretsPath } : {});
  const allow = options.workerAllow ?? null;
  const externalOptions: ExternalExecutorOptions = options.externalEnv
    ? { baseEnv: options.externalEnv }
    : {};
  const executors: Record<string, Executor> = {};
  const external = {
    ...discoverExternalExecutors(options.externalDirs ?? [], externalOptions),
    ...Object.fromEntries(
      Object.entries(options.externalPaths ?? {}).map(([name, path]) => [
        name,
        new ExternalExecutor(name, path, externalOptions),
      ]),
    ),
  };
  for (const [name, executor] of Object.entries(external)) {
    if (!BUILT_IN_EXECUTORS.has(name)) executors[name] = executor;
  }
  executors.http = new HttpExecutor({ resolveSecrets: resolver.resolveSecrets, allow });
  executors.kafka = new KafkaExecutor({ resolveSecrets: resolver.resolveSecrets, allow });
  executors.nats = new NatsExecutor({ resolveSecrets: resolver.resolveSecrets, allow });
  executors.rabbitmq = new RabbitMqExecutor({ resolveSecrets: resolver.resolveSecrets, allow });
  executors.lambda = new LambdaExecutor(options.clients, allow);
  executors.sqs = new SqsExecutor(options.clients, allow);
  executors.eventbridge = new EventBridgeExecutor(options.clients, allow);
  if (options.shell) executors.shell = withSecretRedaction(options.shell);
  return executors;
}
