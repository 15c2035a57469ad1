import { createConnection } from 'node:net';
import { DescribeTableCommand, DescribeTimeToLiveCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeEventBusCommand, EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulators, startEmulators } from '../../../local/emulators.ts';
import { type LocalResources, provisionFromTemplate } from '../../../local/provision.ts';

const CRONPLANE_VARS = [
  'CRONPLANE_JOBS_TABLE',
  'CRONPLANE_EXECUTIONS_TABLE',
  'CRONPLANE_AGENTS_TABLE',
  'CRONPLANE_CONTROL_TABLE',
  'CRONPLANE_DEFAULT_QUEUE_URL',
  'CRONPLANE_DLQ_ARN',
  'CRONPLANE_QUEUE_PREFIX',
  'CRONPLANE_WORKER_QUEUE_URL',
  'CRONPLANE_EVENT_BUS',
  'CRONPLANE_OUTPUT_BUCKET',
  'CRONPLANE_SECRETS_PATH',
  'CRONPLANE_STACK',
  'CRONPLANE_DUE_SHARDS',
  'CRONPLANE_PUBLISH_FINISHED',
];

function portOpen(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('local emulators provisioned from the CDK template', () => {
  const prefix = `it${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}-`;
  let emulators: Emulators;
  let resources: LocalResources;
  let dynamodb: DynamoDBClient;
  let sqs: SQSClient;
  let eventbridge: EventBridgeClient;
  let s3: S3Client;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    let t = Date.now();
    emulators = await startEmulators();
    timings.start = Date.now() - t;
    const common = { region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
    dynamodb = new DynamoDBClient({ ...common, endpoint: emulators.endpoints.dynamodb });
    sqs = new SQSClient({ ...common, endpoint: emulators.endpoints.sqs });
    eventbridge = new EventBridgeClient({ ...common, endpoint: emulators.endpoints.other });
    s3 = new S3Client({ ...common, endpoint: emulators.endpoints.other, forcePathStyle: true });
    t = Date.now();
    resources = await provisionFromTemplate({ dynamodb, sqs, eventbridge, s3 }, { prefix });
    timings.provision = Date.now() - t;
  });

  afterAll(async () => {
    dynamodb?.destroy();
    sqs?.destroy();
    eventbridge?.destroy();
    s3?.destroy();
    await emulators?.stop();
  });

  it('starts both emulators on 127.0.0.1 and hands out the endpoint environment', () => {
    if (!emulators.started) return; // AWS_ENDPOINT_URL points elsewhere: nothing was started
    expect(emulators.endpoints.dynamodb).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(emulators.endpoints.sqs).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(emulators.env).toMatchObject({
      AWS_ENDPOINT_URL: emulators.endpoints.other,
      AWS_ENDPOINT_URL_DYNAMODB: emulators.endpoints.dynamodb,
      AWS_ENDPOINT_URL_DYNAMODB_STREAMS: emulators.endpoints.dynamodb,
      AWS_REGION: expect.any(String),
      AWS_ACCESS_KEY_ID: expect.any(String),
      AWS_SECRET_ACCESS_KEY: expect.any(String),
    });
    console.info(`emulators started in ${timings.start} ms, provisioned in ${timings.provision} ms`);
  });

  it('creates the four tables with their keys, GSIs, stream and TTL', async () => {
    expect(Object.values(resources.tables).sort()).toEqual(
      ['Agents', 'Control', 'Executions', 'Jobs'].map((t) => `${prefix}${t}`),
    );
    const describe = async (name: string) =>
      (await dynamodb.send(new DescribeTableCommand({ TableName: `${prefix}${name}` }))).Table!;

    const jobs = await describe('Jobs');
    expect(jobs.KeySchema).toEqual([{ AttributeName: 'name', KeyType: 'HASH' }]);
    expect(
      jobs.GlobalSecondaryIndexes?.map((i) => [i.IndexName, i.KeySchema, i.Projection?.ProjectionType]),
    ).toEqual([
      [
        'byDue',
        [
          { AttributeName: 'dueShard', KeyType: 'HASH' },
          { AttributeName: 'nextRunAt', KeyType: 'RANGE' },
        ],
        'KEYS_ONLY',
      ],
    ]);

    const executions = await describe('Executions');
    expect(executions.KeySchema).toEqual([
      { AttributeName: 'jobName', KeyType: 'HASH' },
      { AttributeName: 'executionId', KeyType: 'RANGE' },
    ]);
    expect(
      executions.GlobalSecondaryIndexes?.map((i) => [i.IndexName, i.KeySchema, i.Projection?.ProjectionType]),
    ).toEqual([
      [
        'byActive',
        [
          { AttributeName: 'activeShard', KeyType: 'HASH' },
          { AttributeName: 'scheduledAt', KeyType: 'RANGE' },
        ],
        'KEYS_ONLY',
      ],
    ]);
    expect(executions.StreamSpecification).toEqual({
      StreamEnabled: true,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    });
    expect(executions.LatestStreamArn).toBeTruthy();
    const ttl = await dynamodb.send(new DescribeTimeToLiveCommand({ TableName: `${prefix}Executions` }));
    expect(ttl.TimeToLiveDescription).toMatchObject({
      AttributeName: 'expiresAt',
      TimeToLiveStatus: 'ENABLED',
    });

    expect((await describe('Agents')).KeySchema).toEqual([{ AttributeName: 'agentId', KeyType: 'HASH' }]);
    expect((await describe('Control')).KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
  });

  it('creates the default queue with its attributes, redriving to the dead-letter queue', async () => {
    const attributes = async (url: string) =>
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes!;
    const queue = await attributes(resources.env.CRONPLANE_DEFAULT_QUEUE_URL!);
    expect(queue).toMatchObject({
      VisibilityTimeout: '60',
      MessageRetentionPeriod: String(4 * 24 * 3600),
      ReceiveMessageWaitTimeSeconds: '20',
    });
    expect(JSON.parse(queue.RedrivePolicy!)).toEqual({
      deadLetterTargetArn: resources.env.CRONPLANE_DLQ_ARN,
      maxReceiveCount: 5,
    });
    const dlqUrl = Object.values(resources.queues).find((url) => url.endsWith(`/${prefix}DeadLetterQueue`));
    expect(dlqUrl).toBeDefined();
    const dlq = await attributes(dlqUrl!);
    expect(dlq.QueueArn).toBe(resources.env.CRONPLANE_DLQ_ARN);
    expect(dlq.MessageRetentionPeriod).toBe(String(14 * 24 * 3600));
  });

  it('creates the worker queue: visibility beyond the worker timeout, redriving to the dead-letter queue', async () => {
    const url = resources.env.CRONPLANE_WORKER_QUEUE_URL!;
    expect(url).toMatch(new RegExp(`/${prefix}WorkerQueue$`));
    expect(Object.values(resources.queues)).toContain(url);
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }),
    );
    expect(Attributes?.VisibilityTimeout).toBe('960');
    expect(JSON.parse(Attributes!.RedrivePolicy!)).toEqual({
      deadLetterTargetArn: resources.env.CRONPLANE_DLQ_ARN,
      maxReceiveCount: 5,
    });
  });

  it('creates the event bus in moto', async () => {
    expect(Object.values(resources.buses)).toEqual([`${prefix}EventBus`]);
    const bus = await eventbridge.send(new DescribeEventBusCommand({ Name: `${prefix}EventBus` }));
    expect(bus.Name).toBe(`${prefix}EventBus`);
    expect(bus.Arn).toMatch(new RegExp(`^arn:aws:events:[^:]+:\\d+:event-bus/${prefix}EventBus$`));
  });

  it('resolves every CRONPLANE_* variable to the local resources', () => {
    expect(Object.keys(resources.env).sort()).toEqual([...CRONPLANE_VARS].sort());
    expect(resources.env).toMatchObject({
      CRONPLANE_JOBS_TABLE: `${prefix}Jobs`,
      CRONPLANE_EXECUTIONS_TABLE: `${prefix}Executions`,
      CRONPLANE_AGENTS_TABLE: `${prefix}Agents`,
      CRONPLANE_CONTROL_TABLE: `${prefix}Control`,
      CRONPLANE_QUEUE_PREFIX: prefix,
      CRONPLANE_STACK: expect.any(String),
      CRONPLANE_DUE_SHARDS: '1',
      CRONPLANE_PUBLISH_FINISHED: 'failures',
      CRONPLANE_EVENT_BUS: `${prefix}EventBus`,
      CRONPLANE_OUTPUT_BUCKET: `${prefix}outputbucket`,
      CRONPLANE_DLQ_ARN: expect.stringMatching(
        new RegExp(`^arn:aws:sqs:[^:]+:\\d+:${prefix}DeadLetterQueue$`),
      ),
    });
    expect(resources.env.CRONPLANE_DEFAULT_QUEUE_URL).toMatch(new RegExp(`/${prefix}DefaultQueue$`));
    // One due shard (the template's default): the tick is not given the shard-tick queue (there is nothing
    // to fan out), though the queue exists.
    expect(resources.env).not.toHaveProperty('CRONPLANE_SHARD_TICK_QUEUE_URL');
    expect(Object.values(resources.queues)).toContainEqual(
      expect.stringMatching(new RegExp(`/${prefix}ShardTicks$`)),
    );
    expect(Object.values(resources.queues)).toContain(resources.env.CRONPLANE_DEFAULT_QUEUE_URL);
  });

  it('creates the output bucket, named by S3 rules', async () => {
    expect(Object.values(resources.buckets)).toEqual([`${prefix}outputbucket`]);
    await expect(s3.send(new HeadBucketCommand({ Bucket: `${prefix}outputbucket` }))).resolves.toBeDefined();
  });

  it('is idempotent', async () => {
    const again = await provisionFromTemplate({ dynamodb, sqs, eventbridge, s3 }, { prefix });
    expect(again).toEqual(resources);
  });

  it('without an EventBridge client skips the buses but still resolves the environment', async () => {
    const other = `${prefix}nobus-`;
    const withoutBus = await provisionFromTemplate({ dynamodb, sqs }, { prefix: other });
    expect(withoutBus.env.CRONPLANE_EVENT_BUS).toBe(`${other}EventBus`);
    expect(withoutBus.env.CRONPLANE_WORKER_QUEUE_URL).toMatch(new RegExp(`/${other}WorkerQueue$`));
    await expect(
      eventbridge.send(new DescribeEventBusCommand({ Name: `${other}EventBus` })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('stops the emulators and frees their ports', async () => {
    if (!emulators.started) return;
    const { dynamodb: ddbUrl, sqs: sqsUrl } = emulators.endpoints;
    expect(await portOpen(ddbUrl)).toBe(true);
    expect(await portOpen(sqsUrl)).toBe(true);
    await emulators.stop();
    expect(await portOpen(ddbUrl)).toBe(false);
    expect(await portOpen(sqsUrl)).toBe(false);
    await emulators.stop(); // idempotent
  });
});
