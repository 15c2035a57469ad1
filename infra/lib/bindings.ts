import { Arn, ArnFormat, Aws, Stack } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { Dispatch } from './dispatch.ts';
import type { Storage } from './storage.ts';

/**
 * What every Cronplane function is bound to: the environment variables that shared/config reads, and
 * the IAM permissions on the tables and queues behind them.
 */
export class RuntimeBindings {
  /** CRONPLANE_* variables (exact names are a contract with the runtime config) */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * `<stackName>-` (a `{Ref: AWS::StackName}` token, so that the local provisioner can put its own
   * prefix there): tag-set queues created at run time are named with it.
   */
  readonly queuePrefix: string;

  constructor(
    private readonly storage: Storage,
    private readonly dispatch: Dispatch,
  ) {
    this.queuePrefix = `${Aws.STACK_NAME}-`;
    this.environment = {
      CRONPLANE_JOBS_TABLE: storage.jobs.tableName,
      CRONPLANE_EXECUTIONS_TABLE: storage.executions.tableName,
      CRONPLANE_AGENTS_TABLE: storage.agents.tableName,
      CRONPLANE_CONTROL_TABLE: storage.control.tableName,
      CRONPLANE_DEFAULT_QUEUE_URL: dispatch.defaultQueue.queueUrl,
      CRONPLANE_DLQ_ARN: dispatch.deadLetterQueue.queueArn,
      CRONPLANE_QUEUE_PREFIX: this.queuePrefix,
    };
  }

  grant(fn: IFunction): void {
    for (const table of this.storage.tables) {
      table.grantReadWriteData(fn);
    }
    this.storage.executions.grantStreamRead(fn);
    for (const queue of [this.dispatch.defaultQueue, this.dispatch.deadLetterQueue]) {
      queue.grantSendMessages(fn);
      queue.grantConsumeMessages(fn);
      queue.grantPurge(fn);
    }
    const stack = Stack.of(this.storage);
    fn.addToRolePolicy(
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
