import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { addCronplaneStack, createCronplaneApp } from '../../../infra/lib/stack.ts';

const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

function synth(context: Record<string, unknown> = {}, validate = false): Template {
  const app = createCronplaneApp({
    context: { ...NO_BUNDLING, ...context },
    // CDK's built-in CloudFormation validation (throws on violations): once, for the default stack
    builtinCloudFormationValidation: validate,
  });
  return Template.fromStack(addCronplaneStack(app));
}

const template = synth({}, true);

function tableWithKey(...keys: { AttributeName: string; KeyType: string }[]) {
  const tables = template.findResources('AWS::DynamoDB::Table', {
    Properties: { KeySchema: keys },
  });
  const entries = Object.values(tables);
  expect(entries).toHaveLength(1);
  return entries[0]!.Properties as Record<string, unknown>;
}

describe('Cronplane stack', () => {
  it('has four on-demand tables with point-in-time recovery, retained', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 4);
    template.allResourcesProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    for (const table of Object.values(template.findResources('AWS::DynamoDB::Table'))) {
      expect(table.DeletionPolicy).toBe('Retain');
      expect(table.UpdateReplacePolicy).toBe('Retain');
      expect(table.Properties.TableName).toBeUndefined();
    }
  });

  it('Jobs: key name, sparse GSI byDue (dueShard N, nextRunAt N)', () => {
    const jobs = tableWithKey({ AttributeName: 'name', KeyType: 'HASH' });
    expect(jobs.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: 'name', AttributeType: 'S' },
        { AttributeName: 'dueShard', AttributeType: 'N' },
        { AttributeName: 'nextRunAt', AttributeType: 'N' },
      ]),
    );
    expect(jobs.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: 'byDue',
        KeySchema: [
          { AttributeName: 'dueShard', KeyType: 'HASH' },
          { AttributeName: 'nextRunAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
    expect(jobs.StreamSpecification).toBeUndefined();
  });

  it('Executions: key (jobName, executionId), TTL, stream with both images, GSI byActive', () => {
    const executions = tableWithKey(
      { AttributeName: 'jobName', KeyType: 'HASH' },
      { AttributeName: 'executionId', KeyType: 'RANGE' },
    );
    expect(executions.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: 'jobName', AttributeType: 'S' },
        { AttributeName: 'executionId', AttributeType: 'S' },
        { AttributeName: 'activeShard', AttributeType: 'N' },
        { AttributeName: 'scheduledAt', AttributeType: 'N' },
      ]),
    );
    expect(executions.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(executions.StreamSpecification).toEqual({ StreamViewType: 'NEW_AND_OLD_IMAGES' });
    expect(executions.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: 'byActive',
        KeySchema: [
          { AttributeName: 'activeShard', KeyType: 'HASH' },
          { AttributeName: 'scheduledAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
  });

  it('Agents and Control: single keys with TTL on expiresAt', () => {
    for (const key of ['agentId', 'pk']) {
      const table = tableWithKey({ AttributeName: key, KeyType: 'HASH' });
      expect(table.AttributeDefinitions).toEqual([{ AttributeName: key, AttributeType: 'S' }]);
      expect(table.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
      expect(table.GlobalSecondaryIndexes).toBeUndefined();
    }
  });

  it('has the default dispatch queue with long polling, redriving to a 14-day DLQ after 5 receives', () => {
    template.resourceCountIs('AWS::SQS::Queue', 2);
    const dlq = template.findResources('AWS::SQS::Queue', {
      Properties: { MessageRetentionPeriod: 14 * 24 * 3600 },
    });
    const [dlqId] = Object.keys(dlq);
    expect(dlqId).toBeDefined();
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 60,
      MessageRetentionPeriod: 4 * 24 * 3600,
      ReceiveMessageWaitTimeSeconds: 20,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 5 },
    });
    for (const queue of Object.values(template.findResources('AWS::SQS::Queue'))) {
      expect(queue.Properties.QueueName).toBeUndefined();
    }
  });

  it('has api and tick functions on nodejs22.x arm64 with the CRONPLANE_* environment', () => {
    const functions = template.findResources('AWS::Lambda::Function', {
      Properties: { Runtime: 'nodejs22.x' },
    });
    expect(Object.keys(functions)).toHaveLength(2);
    const ref = (type: string, props: Record<string, unknown> = {}) => {
      const ids = Object.keys(template.findResources(type, { Properties: props }));
      expect(ids).toHaveLength(1);
      return { Ref: ids[0] };
    };
    const dlqId = Object.keys(
      template.findResources('AWS::SQS::Queue', { Properties: { MessageRetentionPeriod: 1209600 } }),
    )[0];
    const expected = {
      CRONPLANE_JOBS_TABLE: ref('AWS::DynamoDB::Table', {
        KeySchema: [{ AttributeName: 'name', KeyType: 'HASH' }],
      }),
      CRONPLANE_EXECUTIONS_TABLE: ref('AWS::DynamoDB::Table', {
        KeySchema: Match.arrayWith([{ AttributeName: 'jobName', KeyType: 'HASH' }]),
      }),
      CRONPLANE_AGENTS_TABLE: ref('AWS::DynamoDB::Table', {
        KeySchema: [{ AttributeName: 'agentId', KeyType: 'HASH' }],
      }),
      CRONPLANE_CONTROL_TABLE: ref('AWS::DynamoDB::Table', {
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      }),
      CRONPLANE_DEFAULT_QUEUE_URL: ref('AWS::SQS::Queue', { ReceiveMessageWaitTimeSeconds: 20 }),
      CRONPLANE_DLQ_ARN: { 'Fn::GetAtt': [dlqId, 'Arn'] },
      CRONPLANE_QUEUE_PREFIX: { 'Fn::Join': ['', [{ Ref: 'AWS::StackName' }, '-']] },
    };
    for (const fn of Object.values(functions)) {
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.Handler).toBe('index.handler');
      expect(fn.Properties.Environment.Variables).toMatchObject(expected);
    }
  });

  it('grants the functions the tables, the queues and prefix-named tag-set queues', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy'));
    expect(policies).toHaveLength(2);
    for (const policy of policies) {
      const statements = policy.Properties.PolicyDocument.Statement as {
        Action: string | string[];
        Resource: unknown;
      }[];
      const actionsOn = (resource: (r: string) => boolean) =>
        statements
          .filter((st) => [st.Resource].flat().some((r) => resource(JSON.stringify(r))))
          .flatMap((st) => [st.Action].flat());
      for (const table of ['Jobs', 'Executions', 'Agents', 'Control']) {
        expect(actionsOn((r) => r.includes(`Storage${table}`) && r.includes('"Arn"'))).toEqual(
          expect.arrayContaining([
            'dynamodb:GetItem',
            'dynamodb:PutItem',
            'dynamodb:UpdateItem',
            'dynamodb:Query',
          ]),
        );
      }
      expect(actionsOn((r) => r.includes('StreamArn'))).toEqual(
        expect.arrayContaining(['dynamodb:GetRecords', 'dynamodb:GetShardIterator']),
      );
      for (const queue of ['DefaultQueue', 'DeadLetterQueue']) {
        expect(actionsOn((r) => r.includes(queue))).toEqual(
          expect.arrayContaining(['sqs:SendMessage', 'sqs:ReceiveMessage', 'sqs:DeleteMessage']),
        );
      }
      expect(actionsOn((r) => r.includes('{"Ref":"AWS::StackName"},"-*"'))).toEqual(
        expect.arrayContaining([
          'sqs:CreateQueue',
          'sqs:GetQueueUrl',
          'sqs:SetQueueAttributes',
          'sqs:SendMessage',
        ]),
      );
    }
  });

  it('ticks every minute through an EventBridge rule', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('Tick'), 'Arn'] } })],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
    });
  });

  it('serves a REST API proxying to the api function with IAM auth by default', () => {
    template.resourceCountIs('AWS::ApiGateway::RestApi', 1);
    template.resourcePropertiesCountIs('AWS::ApiGateway::Resource', { PathPart: '{proxy+}' }, 1);
    const methods = template.findResources('AWS::ApiGateway::Method');
    expect(Object.keys(methods).length).toBeGreaterThanOrEqual(2);
    for (const method of Object.values(methods)) {
      expect(method.Properties.HttpMethod).toBe('ANY');
      expect(method.Properties.AuthorizationType).toBe('AWS_IAM');
      expect(method.Properties.Integration).toMatchObject({
        Type: 'AWS_PROXY',
        IntegrationHttpMethod: 'POST',
      });
    }
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  it('can turn IAM auth off', () => {
    const open = synth({ iamAuth: 'false' });
    open.allResourcesProperties('AWS::ApiGateway::Method', { AuthorizationType: 'NONE' });
  });
});
