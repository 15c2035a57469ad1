import { type CfnResource, Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { Cronplane } from './cronplane.ts';

/**
 * The cdk-nag AwsSolutions findings this stack keeps on purpose, each with the reason, acknowledged on
 * the construct it concerns (test/unit/infra/nag.test.ts runs the pack: no other error may remain).
 */
export function acknowledgeNagFindings(
  cronplane: Cronplane,
  options: { iamAuth: boolean; executionLogging: boolean },
) {
  const ack = (scope: IConstruct, id: string, reason: string) =>
    Validations.of(scope).acknowledge({ id: `AwsSolutions-${id}`, reason });
  const stack = Stack.of(cronplane);
  const logicalId = (c: IConstruct) => stack.getLogicalId(c.node.defaultChild as CfnResource);
  const { storage, api, scheduler, events, worker, agents, agentGroups } = cronplane;
  const agentRoles = [agents.role, ...Object.values(agentGroups).map((g) => g.role)];

  for (const fn of [api.handler, scheduler.tick, events.handler, worker.handler]) {
    ack(
      fn,
      'L1',
      'Lambda runs nodejs22.x on purpose: the code must run on Node 20 locally and on Lambda 22 (tested with both); a newer runtime is a deliberate upgrade, not a default.',
    );
  }
  ack(
    storage.outputBucket,
    'S1',
    'The output bucket holds copies of job output written by the worker and agents only (executions/*); server access logs would need a second bucket for little: reads go through IAM roles (CloudTrail data events are the audit path).',
  );
  ack(
    scheduler.shardTicks,
    'SQS3',
    'Shard ticks need no dead-letter queue: a message is worth one tick period (the function drops older ones) and the next round sends a fresh one for every shard.',
  );
  const tagSetQueues = `IAM5[Resource::arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:<AWS::StackName>-tags-*]`;
  for (const role of [api.handler.role!, scheduler.tick.role!, events.handler.role!]) {
    ack(
      role,
      tagSetQueues,
      'Tag-set queues are created at run time, one per tag set, named <stack>-tags-<hash>: the pattern is the narrowest that names them all (it excludes the stack’s own DLQ and worker queue).',
    );
  }
  ack(
    events.handler.role!,
    'IAM5[Resource::*]',
    "dynamodb:ListStreams, added by the Executions stream's event source mapping: the action has no resource-level permissions.",
  );
  const outputs = `IAM5[Resource::<${logicalId(storage.outputBucket)}.Arn>/executions/*]`;
  const processorOutputs = `IAM5[Resource::<${logicalId(storage.outputBucket)}.Arn>/output/*]`;
  const processorLogs =
    'IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/cronplane/*]';
  const secrets = (path: string) =>
    `IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/${path}*]`;
  const secretsPath = cronplane.bindings.roleResources.secretsPath.slice(1);
  for (const role of [worker.handler.role!, ...agentRoles]) {
    ack(
      role,
      outputs,
      'One object per execution (executions/<job>/<execution>.log), written by whoever runs it: PutObject only, under the prefix, no read.',
    );
    ack(
      role,
      processorOutputs,
      'The s3 processor writes one object per execution (output/<job>/<execution>.log) of the jobs this role runs: PutObject only, under the prefix, no read.',
    );
    ack(
      role,
      processorLogs,
      'The cloudwatch processor writes to log groups under /cronplane/ (default /cronplane/jobs, one stream per job), creating them on first use: group and stream names come from the jobs, the prefix is the boundary.',
    );
    ack(
      role,
      secrets(secretsPath),
      'Secrets are the SSM parameters under the configured secretsPath (context, default /cronplane/): the path is the boundary, enforced again by the API at write time and by the runtime.',
    );
  }
  for (const lambda of cronplane.bindings.roleResources.workerTargets.lambda ?? []) {
    if (lambda.endsWith('*') || !lambda.startsWith('arn:')) {
      ack(
        worker.handler.role!,
        `IAM5[Resource::${lambda.startsWith('arn:') ? lambda : `arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:function:${lambda}`}${lambda.endsWith('*') ? '' : ':*'}]`,
        'workerTargets allow-list entry (context): the operator named these functions; `:*` covers their versions and aliases.',
      );
    }
  }
  ack(
    api.restApi,
    'APIG2',
    'The API is a Lambda proxy: the api function validates every request body with one schema per route and answers 400 naming the field and the rule.',
  );
  if (!options.executionLogging) {
    ack(
      api.restApi.deploymentStage,
      'APIG6',
      'Execution logging needs the account-wide API Gateway CloudWatch role, which one stack should not own: access logs (who, what, status) are always on; turn execution logging on with -c apiExecutionLogging=ERROR once the account has the role.',
    );
  }
  for (const method of api.restApi.methods) {
    ack(
      method,
      'COG4',
      options.iamAuth
        ? 'The API uses IAM (SigV4) authorization, verified by API Gateway: callers are IAM principals (CLI, Dkron tooling, the UI behind a signing proxy), not Cognito users.'
        : 'IAM auth was turned off with -c iamAuthDisabledAcknowledged=true: the operator put another guard in front of the API.',
    );
    if (!options.iamAuth) {
      ack(
        method,
        'APIG4',
        'IAM auth was turned off with -c iamAuthDisabledAcknowledged=true: the operator put another guard in front of the API.',
      );
    }
  }
}
