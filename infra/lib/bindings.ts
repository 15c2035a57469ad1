import type { IEventBus } from 'aws-cdk-lib/aws-events';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { Dispatch } from './dispatch.ts';
import type { RoleName } from './permissions.ts';
import {
  grantRole,
  NETWORK_TARGET_KINDS,
  queuePrefix,
  type RoleResources,
  type WorkerTargets,
} from './roles.ts';
import type { Storage } from './storage.ts';

/** What the functions are bound to. All of it must exist before the first function is created. */
export interface BoundResources {
  readonly storage: Storage;
  readonly dispatch: Dispatch;
  /** the agentless worker's queue (Worker) */
  readonly workerQueue: IQueue;
  /** the queue of shard ticks (Scheduler) */
  readonly shardTickQueue: IQueue;
  /** due shards the jobs are spread over (CRONPLANE_DUE_SHARDS). Default: 1. */
  readonly dueShards?: number;
  /** which finishes the events function publishes as `Execution Finished` (CRONPLANE_PUBLISH_FINISHED) */
  readonly publishFinished: 'all' | 'failures';
  /** the bus that receives `Execution Finished` events (Events) */
  readonly eventBus: IEventBus;
  /** SSM path prefix of `{{ssm:…}}` secrets. Default: `/cronplane/`. */
  readonly secretsPath?: string;
  /** customer managed KMS keys of SecureString secrets */
  readonly secretsKmsKeys?: readonly string[];
  /** what the worker may call (functions, queues, buses); nothing when absent */
  readonly workerTargets?: WorkerTargets;
}

export const DEFAULT_SECRETS_PATH = '/cronplane/';

/** `/a/b/`: starts and ends with `/`, SSM's parameter name characters in between. */
export function validateSecretsPath(path: string): string {
  if (!/^\/([A-Za-z0-9_.-]+\/)*$/.test(path) || path === '/') {
    throw new Error(
      `context secretsPath: must be an SSM path like /cronplane/ (starting and ending with "/", not "/" alone), got "${path}"`,
    );
  }
  return path;
}

/**
 * What every Cronplane function is bound to: the environment variables that shared/config reads, and
 * each role's permissions from the permission table (infra/lib/permissions.ts) on the tables, queues,
 * bucket and secrets behind them. Each function gets only its own role's grants.
 */
export class RuntimeBindings {
  /** CRONPLANE_* variables (exact names are a contract with the runtime config) */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * `<stackName>-` (a `{Ref: AWS::StackName}` token, so that the local provisioner can put its own
   * prefix there): tag-set queues created at run time are named `<prefix>tags-<hash>`.
   */
  readonly queuePrefix: string;
  readonly roleResources: RoleResources;

  constructor(resources: BoundResources) {
    const { storage, dispatch, workerQueue, shardTickQueue, eventBus } = resources;
    this.queuePrefix = queuePrefix();
    const secretsPath = validateSecretsPath(resources.secretsPath ?? DEFAULT_SECRETS_PATH);
    this.roleResources = {
      storage,
      dispatch,
      workerQueue,
      shardTickQueue,
      eventBus,
      secretsPath,
      secretsKmsKeys: resources.secretsKmsKeys ?? [],
      workerTargets: resources.workerTargets ?? {},
    };
    this.environment = {
      CRONPLANE_JOBS_TABLE: storage.jobs.tableName,
      CRONPLANE_EXECUTIONS_TABLE: storage.executions.tableName,
      CRONPLANE_AGENTS_TABLE: storage.agents.tableName,
      CRONPLANE_CONTROL_TABLE: storage.control.tableName,
      CRONPLANE_DEFAULT_QUEUE_URL: dispatch.defaultQueue.queueUrl,
      CRONPLANE_DLQ_ARN: dispatch.deadLetterQueue.queueArn,
      CRONPLANE_QUEUE_PREFIX: this.queuePrefix,
      CRONPLANE_WORKER_QUEUE_URL: workerQueue.queueUrl,
      CRONPLANE_EVENT_BUS: eventBus.eventBusName,
      CRONPLANE_OUTPUT_BUCKET: storage.outputBucket.bucketName,
      CRONPLANE_SECRETS_PATH: secretsPath,
      CRONPLANE_DUE_SHARDS: String(resources.dueShards ?? 1),
      CRONPLANE_PUBLISH_FINISHED: resources.publishFinished,
    };
  }

  /**
   * The worker's extra environment: its allow-list as JSON (`{"lambda":[…],"sqs":[…],"events":[…]}`, and
   * `kafka`, `nats`, `rabbitmq`, `syslog`, `fluent` server patterns when given),
   * checked at run time before a call; absent when no `workerTargets` were configured.
   */
  get workerEnvironment(): Record<string, string> {
    const t = this.roleResources.workerTargets;
    const network = NETWORK_TARGET_KINDS.filter((kind) => t[kind] !== undefined);
    if (!t.lambda && !t.sqs && !t.events && network.length === 0) return {};
    return {
      CRONPLANE_WORKER_ALLOW: JSON.stringify({
        lambda: t.lambda ?? [],
        sqs: t.sqs ?? [],
        events: t.events ?? [],
        // Servers: only the kinds given (one left out is not restricted, as at run time).
        ...Object.fromEntries(network.map((kind) => [kind, t[kind]])),
      }),
    };
  }

  /** Grants a function (or an agent role) what its role's entry of the permission table says. */
  grant(grantee: IGrantable, scope: Construct, role: RoleName, groupTags: Record<string, string> = {}): void {
    grantRole(grantee, scope, role, this.roleResources, groupTags);
  }
}
