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

  it('bills on demand by default: no provisioned capacity, no auto scaling', () => {
    const tables = Object.values(template.findResources('AWS::DynamoDB::Table'));
    expect(tables.map((t) => t.Properties.BillingMode)).toEqual(Array(4).fill('PAY_PER_REQUEST'));
    for (const table of tables) {
      expect(table.Properties.ProvisionedThroughput).toBeUndefined();
      for (const index of table.Properties.GlobalSecondaryIndexes ?? []) {
        expect(index.ProvisionedThroughput).toBeUndefined();
      }
    }
    template.resourceCountIs('AWS::ApplicationAutoScaling::ScalableTarget', 0);
    template.resourceCountIs('AWS::ApplicationAutoScaling::ScalingPolicy', 0);
  });

  it('with billing=provisioned, provisions every table and index at the minimum and auto scales them at 70 %', () => {
    const provisioned = synth({ billing: 'provisioned', provisionedMin: '2', provisionedMax: '300' });
    const throughput = { ReadCapacityUnits: 2, WriteCapacityUnits: 2 };
    const tables = provisioned.findResources('AWS::DynamoDB::Table');
    expect(Object.keys(tables)).toHaveLength(4);
    const indexes: string[] = [];
    for (const table of Object.values(tables)) {
      expect(table.Properties.BillingMode).toBe('PROVISIONED');
      expect(table.Properties.ProvisionedThroughput).toEqual(throughput);
      // everything else as on demand
      expect(table.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true });
      expect(table.DeletionPolicy).toBe('Retain');
      for (const index of table.Properties.GlobalSecondaryIndexes ?? []) {
        expect(index.ProvisionedThroughput).toEqual(throughput);
        expect(index.Projection).toEqual({ ProjectionType: 'KEYS_ONLY' });
        indexes.push(index.IndexName);
      }
    }
    expect(indexes.sort()).toEqual(['byActive', 'byDue']);

    const targets = Object.entries(provisioned.findResources('AWS::ApplicationAutoScaling::ScalableTarget'));
    expect(targets).toHaveLength(12);
    const dimensions = targets.map(([, t]) => t.Properties.ScalableDimension as string);
    for (const [dimension, count] of [
      ['dynamodb:table:ReadCapacityUnits', 4],
      ['dynamodb:table:WriteCapacityUnits', 4],
      ['dynamodb:index:ReadCapacityUnits', 2],
      ['dynamodb:index:WriteCapacityUnits', 2],
    ] as const) {
      expect(dimensions.filter((d) => d === dimension)).toHaveLength(count);
    }
    for (const [, target] of targets) {
      expect(target.Properties).toMatchObject({
        ServiceNamespace: 'dynamodb',
        MinCapacity: 2,
        MaxCapacity: 300,
      });
    }
    // each table's own, and each index's (table/<name>/index/<index>)
    const resourceIds = targets.map(([, t]) => JSON.stringify(t.Properties.ResourceId));
    for (const id of Object.keys(tables)) {
      expect(resourceIds.filter((r) => r.includes(`"${id}"`))).toHaveLength(
        tables[id]!.Properties.GlobalSecondaryIndexes ? 4 : 2,
      );
    }
    for (const index of ['byDue', 'byActive']) {
      expect(resourceIds.filter((r) => r.includes(`/index/${index}`))).toHaveLength(2);
    }

    const policies = Object.values(provisioned.findResources('AWS::ApplicationAutoScaling::ScalingPolicy'));
    expect(policies).toHaveLength(12);
    const targetIds = targets.map(([id]) => id);
    for (const policy of policies) {
      expect(policy.Properties.PolicyType).toBe('TargetTrackingScaling');
      expect(policy.Properties.TargetTrackingScalingPolicyConfiguration.TargetValue).toBe(70);
      expect(targetIds).toContain(policy.Properties.ScalingTargetId.Ref);
    }
    expect(new Set(policies.map((p) => p.Properties.ScalingTargetId.Ref)).size).toBe(12);
  });

  it('defaults the provisioned bounds to 5..1000, and refuses bad billing values', () => {
    const provisioned = synth({ billing: 'provisioned' });
    provisioned.allResourcesProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 5,
      MaxCapacity: 1000,
    });
    provisioned.allResourcesProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PROVISIONED',
      ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 5 },
    });
    const onDemand = synth({ billing: 'on-demand' });
    onDemand.allResourcesProperties('AWS::DynamoDB::Table', { BillingMode: 'PAY_PER_REQUEST' });
    onDemand.resourceCountIs('AWS::ApplicationAutoScaling::ScalableTarget', 0);

    expect(() => synth({ billing: 'cheap' })).toThrow(
      'context billing: must be on-demand or provisioned, got "cheap"',
    );
    expect(() => synth({ billing: 'provisioned', provisionedMax: '0' })).toThrow(
      /provisionedMax: must be a whole number from 1 to 40000, got "0"/,
    );
    expect(() => synth({ billing: 'provisioned', provisionedMax: '40001' })).toThrow(/provisionedMax/);
    expect(() => synth({ billing: 'provisioned', provisionedMax: '2.5' })).toThrow(/provisionedMax/);
    expect(() => synth({ billing: 'provisioned', provisionedMin: '301', provisionedMax: '300' })).toThrow(
      /provisionedMin: must be a whole number from 1 to provisionedMax \(300\), got "301"/,
    );
    expect(() => synth({ billing: 'provisioned', provisionedMin: '0' })).toThrow(/provisionedMin/);
    expect(() => synth({ provisionedMax: '300' })).toThrow(/provisionedMax: only with billing=provisioned/);
    expect(() => synth({ billing: 'on-demand', provisionedMin: '2' })).toThrow(
      /provisionedMin: only with billing=provisioned/,
    );
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
        Projection: { ProjectionType: 'KEYS_ONLY' },
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
        Projection: { ProjectionType: 'KEYS_ONLY' },
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
    template.resourceCountIs('AWS::SQS::Queue', 4);
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

  it('has api, tick, worker and events functions on nodejs22.x arm64 with the CRONPLANE_* environment', () => {
    template.resourceCountIs('AWS::Lambda::Function', 4);
    const functions = template.findResources('AWS::Lambda::Function', {
      Properties: { Runtime: 'nodejs22.x' },
    });
    expect(Object.keys(functions)).toHaveLength(4);
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
      CRONPLANE_WORKER_QUEUE_URL: ref('AWS::SQS::Queue', { VisibilityTimeout: 960 }),
      CRONPLANE_EVENT_BUS: ref('AWS::Events::EventBus'),
      CRONPLANE_OUTPUT_BUCKET: ref('AWS::S3::Bucket'),
    };
    for (const fn of Object.values(functions)) {
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.Handler).toBe('index.handler');
      expect(fn.Properties.Environment.Variables).toMatchObject(expected);
    }
  });

  it('has the output bucket: encrypted, private, retained, expiring objects after 30 days', () => {
    template.resourceCountIs('AWS::S3::Bucket', 1);
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        LifecycleConfiguration: {
          Rules: [Match.objectLike({ ExpirationInDays: 30, Status: 'Enabled' })],
        },
      },
    });
  });

  it('gives each function and the agents a policy of their own, tag-set queues named <stack>-tags-*', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy'));
    expect(policies).toHaveLength(5); // api, tick, worker, events, agents
    const planners = [/Api/, /Tick/, /Events/].map((p) => statementsOf(functionId(p)));
    for (const statements of planners) {
      const tagSet = statements.filter((st) =>
        JSON.stringify(st.Resource).includes('{"Ref":"AWS::StackName"},"-tags-*"'),
      );
      expect(tagSet.flatMap((st) => [st.Action].flat())).toEqual(
        expect.arrayContaining(['sqs:CreateQueue', 'sqs:SendMessage']),
      );
      // (the tick consumes its own shard-tick queue, and nothing else)
      const all = statements
        .filter((st) => !JSON.stringify(st.Resource).includes('ShardTicks'))
        .flatMap((st) => [st.Action].flat());
      for (const never of [
        'sqs:PurgeQueue',
        'sqs:SetQueueAttributes',
        'sqs:ReceiveMessage',
        's3:PutObject',
      ]) {
        expect(all).not.toContain(never);
      }
    }
    // every role refuses requests not made over TLS
    for (const policy of policies) {
      const statements = policy.Properties.PolicyDocument.Statement as { Sid?: string; Effect: string }[];
      expect(statements.find((st) => st.Sid === 'DenyInsecureTransport')?.Effect).toBe('Deny');
    }
  });

  it('has the worker queue: visibility beyond the worker timeout, redriving to the DLQ after 5 receives', () => {
    const dlqId = Object.keys(
      template.findResources('AWS::SQS::Queue', { Properties: { MessageRetentionPeriod: 1209600 } }),
    )[0];
    const workerQueues = template.findResources('AWS::SQS::Queue', {
      Properties: { VisibilityTimeout: 960 },
    });
    expect(Object.keys(workerQueues)).toEqual([expect.stringMatching(/WorkerQueue/)]);
    expect(Object.values(workerQueues)[0]!.Properties).toMatchObject({
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 5 },
      SqsManagedSseEnabled: true,
    });
  });

  const functionId = (pattern: RegExp) => {
    const ids = Object.keys(template.findResources('AWS::Lambda::Function')).filter((id) => pattern.test(id));
    expect(ids).toHaveLength(1);
    return ids[0]!;
  };

  const statementsOf = (fnId: string) => {
    const roleId = template.findResources('AWS::Lambda::Function')[fnId]!.Properties.Role['Fn::GetAtt'][0];
    const policies = Object.values(
      template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } }),
    );
    expect(policies).toHaveLength(1);
    return policies[0]!.Properties.PolicyDocument.Statement as {
      Sid?: string;
      Action: string | string[];
      Resource: unknown;
      Condition?: unknown;
    }[];
  };

  it('runs the worker function (900 s, 512 MB) from the worker queue, gathering a second of launches', () => {
    const workerId = functionId(/Worker/);
    expect(template.findResources('AWS::Lambda::Function')[workerId]!.Properties).toMatchObject({
      Timeout: 900,
      MemorySize: 512,
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: workerId },
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('WorkerQueue'), 'Arn'] },
      // The planner gives the worker's queue the window's length of lead more (dispatch.ts).
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    // `-c workerMemory=256`: the worker only (its holds are billed by the MB), and checked.
    const small = synth({ workerMemory: '256' }).findResources('AWS::Lambda::Function');
    expect(small[workerId]!.Properties.MemorySize).toBe(256);
    for (const [id, fn] of Object.entries(small))
      if (id !== workerId && fn.Properties.MemorySize !== undefined)
        expect(fn.Properties.MemorySize).toBe(512);
    expect(() => synth({ workerMemory: '100' })).toThrow(
      /workerMemory: must be a whole number of MB from 128/,
    );
    expect(() => synth({ workerMemory: 'lots' })).toThrow(/workerMemory/);
  });

  it('lets the worker call no user target without workerTargets, and read only the secrets path', () => {
    const statements = statementsOf(functionId(/Worker/));
    const actions = statements.flatMap((st) => [st.Action].flat());
    expect(actions).not.toContain('lambda:InvokeFunction');
    expect(actions).not.toContain('events:PutEvents');
    const secrets = statements.filter((st) => [st.Action].flat().includes('ssm:GetParameter'));
    expect(secrets).toHaveLength(1);
    expect(JSON.stringify(secrets[0]?.Resource)).toContain(':parameter/cronplane/*');
    expect(actions).not.toContain('kms:Decrypt');
    // the worker consumes its queue (event source); the other functions only send to it
    const workerQueueActions = statements
      .filter((st) => JSON.stringify(st.Resource).includes('WorkerQueue'))
      .flatMap((st) => [st.Action].flat());
    expect(workerQueueActions).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage']));
    for (const other of [/Api/, /Tick/, /Events/]) {
      const otherStatements = statementsOf(functionId(other));
      const onWorkerQueue = otherStatements
        .filter((st) => JSON.stringify(st.Resource).includes('WorkerQueue'))
        .flatMap((st) => [st.Action].flat());
      expect(onWorkerQueue).toContain('sqs:SendMessage');
      expect(onWorkerQueue).not.toContain('sqs:ReceiveMessage');
      expect(otherStatements.flatMap((st) => [st.Action].flat())).not.toContain('ssm:GetParameter');
    }
    const fn = template.findResources('AWS::Lambda::Function')[functionId(/Worker/)]!;
    expect(fn.Properties.Environment.Variables.CRONPLANE_SECRETS_PATH).toBe('/cronplane/');
    expect(fn.Properties.Environment.Variables.CRONPLANE_WORKER_ALLOW).toBeUndefined();
  });

  it('gives the API the worker allow-list too, so a job naming another target is refused when written', () => {
    const configured = synth({
      workerTargets: JSON.stringify({ lambda: ['report-*'], sqs: [], events: [] }),
    });
    const fns = configured.findResources('AWS::Lambda::Function');
    const allowOf = (pattern: RegExp) =>
      Object.entries(fns).find(([id]) => pattern.test(id))?.[1]?.Properties.Environment.Variables
        .CRONPLANE_WORKER_ALLOW;
    expect(JSON.parse(allowOf(/Worker/))).toEqual({ lambda: ['report-*'], sqs: [], events: [] });
    expect(allowOf(/Api/)).toBe(allowOf(/Worker/));
  });

  it('hands the worker and the API the brokers and log servers of workerTargets, and refuses a bad one', () => {
    const configured = synth({
      workerTargets: JSON.stringify({
        kafka: ['b-*.example.kafka.eu-west-1.amazonaws.com:9096'],
        fluent: ['[::1]:24224'],
      }),
    });
    const fns = configured.findResources('AWS::Lambda::Function');
    const allowOf = (pattern: RegExp) =>
      Object.entries(fns).find(([id]) => pattern.test(id))?.[1]?.Properties.Environment.Variables
        .CRONPLANE_WORKER_ALLOW;
    // The kinds not given stay unrestricted at run time (absent), the AWS ones empty (nothing allowed).
    expect(JSON.parse(allowOf(/Worker/))).toEqual({
      lambda: [],
      sqs: [],
      events: [],
      kafka: ['b-*.example.kafka.eu-west-1.amazonaws.com:9096'],
      fluent: ['[::1]:24224'],
    });
    expect(allowOf(/Api/)).toBe(allowOf(/Worker/));
    expect(() => synth({ workerTargets: JSON.stringify({ nats: ['nats://host'] }) })).toThrow(
      /workerTargets.nats: must be a list of host:port patterns/,
    );
  });

  it('has a custom event bus named after the stack', () => {
    template.resourceCountIs('AWS::Events::EventBus', 1);
    template.hasResourceProperties('AWS::Events::EventBus', {
      Name: { 'Fn::Join': ['', [{ Ref: 'AWS::StackName' }, '-events']] },
    });
  });

  it('runs the events function on the Executions stream, finishes only, and lets it publish to the bus', () => {
    const eventsId = functionId(/Events/);
    const executionsId = Object.keys(
      template.findResources('AWS::DynamoDB::Table', {
        Properties: { KeySchema: Match.arrayWith([{ AttributeName: 'jobName', KeyType: 'HASH' }]) },
      }),
    )[0];
    const mappings = template.findResources('AWS::Lambda::EventSourceMapping', {
      Properties: { FunctionName: { Ref: eventsId } },
    });
    expect(Object.keys(mappings)).toHaveLength(1);
    const mapping = Object.values(mappings)[0]!.Properties;
    expect(mapping).toMatchObject({
      EventSourceArn: { 'Fn::GetAtt': [executionsId, 'StreamArn'] },
      StartingPosition: 'LATEST',
      BatchSize: 100,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    const terminal = ['succeeded', 'failed', 'timeout', 'cancelled', 'lost', 'skipped'];
    const patterns = (mapping.FilterCriteria.Filters as { Pattern: string }[]).map((f) =>
      JSON.parse(f.Pattern),
    );
    expect(patterns).toEqual([
      { eventName: ['INSERT'], dynamodb: { NewImage: { status: { S: terminal } } } },
      {
        eventName: ['MODIFY'],
        dynamodb: {
          NewImage: { status: { S: terminal } },
          OldImage: { status: { S: [{ 'anything-but': terminal }] } },
        },
      },
    ]);

    const busId = Object.keys(template.findResources('AWS::Events::EventBus'))[0];
    const putEvents = statementsOf(eventsId).filter((st) => [st.Action].flat().includes('events:PutEvents'));
    expect(putEvents.map((st) => st.Resource)).toEqual([{ 'Fn::GetAtt': [busId, 'Arn'] }]);
  });

  it('gives agents a role for EC2 only (not the account), an instance profile, SSM secrets and their environment', () => {
    const roles = template.findResources('AWS::IAM::Role', {
      Properties: { Description: Match.stringLikeRegexp('Cronplane agents') },
    });
    const [roleId] = Object.keys(roles);
    expect(Object.keys(roles)).toHaveLength(1);
    const trust = JSON.stringify(roles[roleId!]!.Properties.AssumeRolePolicyDocument);
    expect(trust).toContain('ec2.amazonaws.com');
    expect(trust).not.toContain(':root');
    template.hasResourceProperties('AWS::IAM::InstanceProfile', { Roles: [{ Ref: roleId }] });
    const [policy] = Object.values(
      template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } }),
    );
    const actions = (policy!.Properties.PolicyDocument.Statement as { Action: string | string[] }[]).flatMap(
      (st) => [st.Action].flat(),
    );
    expect(actions).toEqual(expect.arrayContaining(['ssm:GetParameter', 'sqs:ReceiveMessage']));

    const env = JSON.stringify(template.toJSON().Outputs.AgentEnvironment.Value);
    for (const key of [
      'AWS_REGION',
      'CRONPLANE_JOBS_TABLE',
      'CRONPLANE_DEFAULT_QUEUE_URL',
      'CRONPLANE_OUTPUT_BUCKET',
    ]) {
      expect(env).toContain(`${key}=`);
    }
    template.hasOutput('AgentRoleArn', { Value: { 'Fn::GetAtt': [roleId, 'Arn'] } });
    template.hasOutput('AgentInstanceProfileName', {});
    template.hasOutput('OutputBucketName', {});
    template.hasOutput('QueuePrefix', {});
  });

  it('notifies an SNS topic of final failures only, by default', () => {
    const topics = template.findResources('AWS::SNS::Topic', {
      Properties: { DisplayName: 'Cronplane job notifications' },
    });
    const [topicId] = Object.keys(topics);
    expect(Object.keys(topics)).toHaveLength(1);
    const busId = Object.keys(template.findResources('AWS::Events::EventBus'))[0];
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: busId },
      EventPattern: {
        source: ['cronplane'],
        'detail-type': ['Execution Finished'],
        detail: { status: ['failed', 'timeout', 'lost'], will_retry: [false] },
      },
      Targets: [
        Match.objectLike({
          Arn: { Ref: topicId },
          InputTransformer: Match.objectLike({
            InputPathsMap: Match.objectLike({ 'detail-job_name': '$.detail.job_name' }),
          }),
        }),
      ],
    });
    template.hasOutput('NotificationTopicArn', { Value: { Ref: topicId } });
    expect(template.findResources('AWS::SNS::Subscription')).toEqual({});
  });

  it('notifies of every finish with notifyOn=all, subscribes notifyEmail, and refuses another notifyOn', () => {
    const all = synth({ notifyOn: 'all', notifyEmail: 'ops@example.com' });
    const rules = Object.values(
      all.findResources('AWS::Events::Rule', {
        Properties: { EventPattern: { 'detail-type': ['Execution Finished'] } },
      }),
    );
    expect(rules).toHaveLength(1);
    expect(rules[0]!.Properties.EventPattern.detail).toBeUndefined();
    all.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    expect(() => synth({ notifyOn: 'sometimes' })).toThrow(/notifyOn: must be failure or all/);
  });

  it('publishes failures only by default, every finish with notifyOn=all or publishFinished=all', () => {
    const publishOf = (t: Template) =>
      Object.values(t.findResources('AWS::Lambda::Function')).map(
        (fn) => fn.Properties.Environment.Variables.CRONPLANE_PUBLISH_FINISHED,
      );
    expect(new Set(publishOf(template))).toEqual(new Set(['failures']));
    expect(new Set(publishOf(synth({ notifyOn: 'all' })))).toEqual(new Set(['all']));
    expect(new Set(publishOf(synth({ publishFinished: 'all' })))).toEqual(new Set(['all']));
    expect(() => synth({ publishFinished: 'some' })).toThrow(/publishFinished: must be failures or all/);
    expect(() => synth({ publishFinished: 'failures', notifyOn: 'all' })).toThrow(
      /notifyOn=all needs every finish published/,
    );
  });

  it('outputs the worker queue url and the bus name', () => {
    template.hasOutput('WorkerQueueUrl', { Value: { Ref: Match.stringLikeRegexp('WorkerQueue') } });
    template.hasOutput('EventBusName', { Value: { Ref: Match.stringLikeRegexp('EventBus') } });
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

  it('fans shard ticks out through a queue that invokes the tick function, one shard per invocation', () => {
    const queues = template.findResources('AWS::SQS::Queue', { Properties: { MessageRetentionPeriod: 300 } });
    const [queueId] = Object.keys(queues);
    expect(Object.keys(queues)).toHaveLength(1);
    expect(queueId).toMatch(/ShardTicks/);
    // One due shard (the default): no mapping long-polling the empty queue all month, and the tick ticks
    // any shard left over from a larger count in its own invocation.
    const mappingOnQueue = (t: Template) =>
      Object.values(t.findResources('AWS::Lambda::EventSourceMapping')).filter(
        (m) =>
          JSON.stringify(m.Properties.EventSourceArn) === JSON.stringify({ 'Fn::GetAtt': [queueId, 'Arn'] }),
      );
    expect(mappingOnQueue(template)).toEqual([]);
    const tickOf = (t: Template) => t.findResources('AWS::Lambda::Function')[functionId(/Tick/)]!;
    expect(tickOf(template).Properties.Environment.Variables).toMatchObject({ CRONPLANE_DUE_SHARDS: '1' });
    expect(tickOf(template).Properties.Environment.Variables).not.toHaveProperty(
      'CRONPLANE_SHARD_TICK_QUEUE_URL',
    );
    // Several due shards: the queue is mapped to the tick function and the coordinator sends to it.
    const fanned = synth({ dueShards: '4' });
    expect(mappingOnQueue(fanned).map((m) => m.Properties)).toEqual([
      expect.objectContaining({ BatchSize: 1, FunctionName: { Ref: functionId(/Tick/) } }),
    ]);
    expect(tickOf(fanned).Properties.Environment.Variables).toMatchObject({
      CRONPLANE_SHARD_TICK_QUEUE_URL: { Ref: queueId },
      CRONPLANE_DUE_SHARDS: '4',
    });
    // The tick sends to it and consumes it; no other function touches it.
    const onQueue = (fn: RegExp) =>
      statementsOf(functionId(fn))
        .filter((st) => JSON.stringify(st.Resource).includes(queueId!))
        .flatMap((st) => [st.Action].flat());
    expect(onQueue(/Tick/)).toEqual(expect.arrayContaining(['sqs:SendMessage', 'sqs:ReceiveMessage']));
    for (const other of [/Api/, /Events/, /Worker/]) expect(onQueue(other)).toEqual([]);
    // dueShards reaches every function (the API writes jobs into their shard), and is checked.
    const sharded = synth({ dueShards: '8' });
    for (const fn of Object.values(sharded.findResources('AWS::Lambda::Function'))) {
      expect(fn.Properties.Environment.Variables.CRONPLANE_DUE_SHARDS).toBe('8');
    }
    expect(() => synth({ dueShards: '65' })).toThrow(/dueShards: must be a whole number from 1 to 64/);
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

  it('turns IAM auth off only with the acknowledgement, saying why', () => {
    expect(() => synth({ iamAuth: 'false' })).toThrow(
      /iamAuth=false: the API would accept unsigned requests.*iamAuthDisabledAcknowledged=true/,
    );
    const open = synth({ iamAuth: 'false', iamAuthDisabledAcknowledged: 'true' });
    open.allResourcesProperties('AWS::ApiGateway::Method', { AuthorizationType: 'NONE' });
  });

  it('alarms on a stopped or failing tick, dead letters, the events, worker and API failing, to an SNS topic', () => {
    template.resourceCountIs('AWS::SNS::Topic', 2); // alarms, and job notifications
    const topic = { Ref: Match.stringLikeRegexp('AlarmsTopic') };
    template.hasOutput('AlarmTopicArn', { Value: topic });
    const fn = (id: string) => [{ Name: 'FunctionName', Value: { Ref: Match.stringLikeRegexp(id) } }];
    const alarms = [
      // The clock: a minute without a tick (no datapoint) or with a failed one, in 3 of 5.
      {
        MetricName: 'Errors',
        Namespace: 'AWS/Lambda',
        Dimensions: fn('SchedulerTick'),
        Statistic: 'Sum',
        Period: 60,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
        EvaluationPeriods: 5,
        DatapointsToAlarm: 3,
        TreatMissingData: 'breaching',
      },
      {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Namespace: 'AWS/SQS',
        Dimensions: [
          {
            Name: 'QueueName',
            Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('DeadLetterQueue'), 'QueueName'] },
          },
        ],
        Statistic: 'Maximum',
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
        EvaluationPeriods: 1,
      },
      {
        MetricName: 'Errors',
        Namespace: 'AWS/Lambda',
        Dimensions: fn('EventsHandler'),
        Statistic: 'Sum',
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
        EvaluationPeriods: 1,
      },
      {
        MetricName: 'IteratorAge',
        Namespace: 'AWS/Lambda',
        Dimensions: fn('EventsHandler'),
        Statistic: 'Maximum',
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 300_000,
        EvaluationPeriods: 1,
      },
      {
        MetricName: 'Errors',
        Namespace: 'AWS/Lambda',
        Dimensions: fn('WorkerHandler'),
        Statistic: 'Sum',
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
        EvaluationPeriods: 1,
      },
      {
        MetricName: '5XXError',
        Namespace: 'AWS/ApiGateway',
        Dimensions: [
          { Name: 'ApiName', Value: { 'Fn::Join': ['', [{ Ref: 'AWS::StackName' }, '-api']] } },
          { Name: 'Stage', Value: { Ref: Match.stringLikeRegexp('RestApiDeploymentStage') } },
        ],
        Statistic: 'Sum',
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 5,
        EvaluationPeriods: 1,
      },
    ];
    template.resourceCountIs('AWS::CloudWatch::Alarm', alarms.length);
    for (const alarm of alarms) {
      template.resourcePropertiesCountIs(
        'AWS::CloudWatch::Alarm',
        { Period: 300, ...alarm, AlarmActions: [topic], OKActions: [topic] },
        1,
      );
    }
    for (const alarm of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) {
      expect(alarm.Properties.AlarmDescription).toMatch(/.{60,}/);
    }
    template.hasResourceProperties('AWS::ApiGateway::RestApi', {
      Name: { 'Fn::Join': ['', [{ Ref: 'AWS::StackName' }, '-api']] },
    });
  });
});
