import { Arn, ArnFormat, Aws, Stack } from 'aws-cdk-lib';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import { type IGrantable, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Dispatch } from './dispatch.ts';
import type { Storage } from './storage.ts';

/** What the functions are bound to. All of it must exist before the first function is created. */
export interface BoundResources {
  readonly storage: Storage;
  readonly dispatch: Dispatch;
  /** the agentless worker's queue (Worker) */
  readonly workerQueue: IQueue;
  /** the bus that receives `Execution Finished` events (Events) */
  readonly eventBus: IEventBus;
}

/**
 * What every Cronplane function is bound to: the environment variables that shared/config reads, and
 * the IAM permissions on the tables and queues behind them. Every function (api, tick, worker, events)
 * gets the same set.
 */
export class RuntimeBindings {
  /** CRONPLANE_* variables (exact names are a contract with the runtime config) */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * `<stackName>-` (a `{Ref: AWS::StackName}` token, so that the local provisioner can put its own
   * prefix there): tag-set queues created at run time are named with it.
   */
  readonly queuePrefix: string;

  constructor(private readonly resources: BoundResources) {
    const { storage, dispatch, workerQueue, eventBus } = resources;
    this.queuePrefix = `${Aws.STACK_NAME}-`;
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
    };
  }

  /** Grants a function, or the agents' role, the tables, the bucket and the queues. */
  grant(fn: IGrantable): void {
    const { storage, dispatch, workerQueue } = this.resources;
    for (const table of storage.tables) {
      table.grantReadWriteData(fn);
    }
    storage.executions.grantStreamRead(fn);
    storage.outputBucket.grantReadWrite(fn);
    for (const queue of [dispatch.defaultQueue, dispatch.deadLetterQueue]) {
      queue.grantSendMessages(fn);
      queue.grantConsumeMessages(fn);
      queue.grantPurge(fn);
    }
    // Jobs without an agent (lambda, sqs, eventbridge, untagged http) are sent to the worker.
    workerQueue.grantSendMessages(fn);
    const stack = Stack.of(storage);
    fn.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'TagSetQueues',
        actions: [
          'sqs:CreateQueue',
          'sqs:GetQueueUrl',
          'sqs:GetQueueAttributes',
          'sqs:SetQueueAttributes',
          'sqs:TagQueue',
          'sqs:SendMessage',
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:ChangeMessageVisibility',
        ],
        resources: [
          Arn.format(
            { service: 'sqs', resource: `${this.queuePrefix}*`, arnFormat: ArnFormat.NO_RESOURCE_NAME },
            stack,
          ),
        ],
      }),
    );
  }
}

/**
 * `{{ssm:/name}}` secrets in job definitions (a name or a parameter ARN, possibly a SecureString): read by
 * the agentless worker and by the agents.
 */
export function ssmSecretStatements(): PolicyStatement[] {
  return [
    new PolicyStatement({
      sid: 'SsmSecrets',
      actions: ['ssm:GetParameter', 'ssm:GetParameters'],
      resources: [`arn:${Aws.PARTITION}:ssm:*:*:parameter/*`],
    }),
    new PolicyStatement({
      sid: 'SsmSecretsDecrypt',
      actions: ['kms:Decrypt'],
      resources: ['*'],
      conditions: { StringLike: { 'kms:ViaService': 'ssm.*.amazonaws.com' } },
    }),
  ];
}
