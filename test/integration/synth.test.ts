/**
 * `npx cdk synth` as a user runs it, with no network, and the Lambda bundles it builds run as they would on
 * Lambda (`nodejs22.x`): the api and tick bundles, loaded by Node 22 with nothing else of the repository,
 * create a job and plan its launch in DynamoDB Local and moto, provisioned from that same template; the
 * events bundle reacts to its finish and prints the EMF metrics.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/stack-file.ts';
import { type Emulators, startEmulators } from '../../local/emulators.ts';
import { type LocalResources, provisionFromTemplate } from '../../local/provision.ts';
import { type AwsClients, createClients } from '../../shared/aws/clients.ts';
import { LAMBDA_NODE_VERSION, lambdaNode } from '../support/node22.ts';

const run = promisify(execFile);
const out = mkdtempSync(join(tmpdir(), 'cronplane-cdk-out-'));
let template: { Resources: Record<string, { Type: string; Properties: any; Metadata?: any }> };
let emulators: Emulators;
let clients: AwsClients;
let resources: LocalResources;
let node: string;

/** The bundle directory of the function whose logical id starts with `prefix`. */
function bundleOf(prefix: string): string {
  const [, fn] = Object.entries(template.Resources).find(
    ([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith(prefix),
  )!;
  return join(out, fn.Metadata['aws:asset:path']);
}

/** Invokes a bundled handler in a fresh Node 22, from the bundle's own directory, as Lambda would. */
async function invoke(prefix: string, event: unknown): Promise<any> {
  return (await invokeWithOutput(prefix, event)).result;
}

/** `invoke`, with the lines the function printed before its result (logs and EMF metrics). */
async function invokeWithOutput(prefix: string, event: unknown): Promise<{ result: any; lines: string[] }> {
  const dir = bundleOf(prefix);
  const script = `const { handler } = await import('./index.mjs');
const result = await handler(JSON.parse(process.argv[1]), { awsRequestId: 'synth-test', getRemainingTimeInMillis: () => 30000 });
process.stdout.write('\\n@@' + JSON.stringify(result ?? null));`;
  const { stdout } = await run(node, ['--input-type=module', '-e', script, JSON.stringify(event)], {
    cwd: dir,
    // The function's environment on Lambda: its CRONPLANE_* settings, resolved here to the local resources.
    env: { PATH: process.env.PATH, ...emulators.env, ...resources.env },
  });
  const at = stdout.lastIndexOf('@@');
  return { result: JSON.parse(stdout.slice(at + 2)), lines: stdout.slice(0, at).split('\n').filter(Boolean) };
}

function apiEvent(httpMethod: string, path: string, body?: unknown, query?: Record<string, string>) {
  return {
    httpMethod,
    path,
    resource: '/{proxy+}',
    headers: { Accept: 'application/json' }, // as curl or a browser sends it; without one, Dkron's plain text
    multiValueHeaders: {},
    queryStringParameters: query ?? null,
    multiValueQueryStringParameters: query
      ? Object.fromEntries(Object.entries(query).map(([k, v]) => [k, [v]]))
      : null,
    pathParameters: { proxy: path.slice(1) },
    stageVariables: null,
    body: body === undefined ? null : JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: {},
  };
}

beforeAll(async () => {
  // No network: requests through a proxy that refuses every connection fail at once.
  const offline = { HTTP_PROXY: 'http://127.0.0.1:9', HTTPS_PROXY: 'http://127.0.0.1:9', NO_PROXY: '' };
  await run('npx', ['cdk', 'synth', '--quiet', '--output', out], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...offline, CDK_DISABLE_VERSION_CHECK: '1' },
  });
  node = await lambdaNode();
  template = JSON.parse(readFileSync(join(out, 'Cronplane.template.json'), 'utf8'));
  emulators = await startEmulators();
  clients = createClients(emulators.env);
  resources = await provisionFromTemplate(
    { dynamodb: clients.dynamodb, sqs: clients.sqs, eventbridge: clients.eventbridge, s3: clients.s3 },
    { prefix: 'synth-', template },
  );
}, 240_000);

afterAll(async () => {
  await emulators?.stop();
});

describe('cdk synth', () => {
  it('writes the template with the four tables and a self-contained bundle per function', () => {
    const types = Object.values(template.Resources).map((r) => r.Type);
    expect(types.filter((t) => t === 'AWS::DynamoDB::Table')).toHaveLength(4);
    expect(types).toContain('AWS::SQS::Queue');
    for (const name of ['CronplaneApi', 'CronplaneSchedulerTick', 'CronplaneWorker', 'CronplaneEvents']) {
      expect(existsSync(join(bundleOf(name), 'index.mjs')), name).toBe(true);
    }
    expect(Object.keys(resources.tables)).toHaveLength(4);
  });

  it('runs the bundled api and tick handlers: a job is stored, then planned and sent', async () => {
    expect((await run(node, ['--version'])).stdout.trim()).toBe(`v${LAMBDA_NODE_VERSION}`);
    const health = await invoke('CronplaneApi', apiEvent('GET', '/health'));
    expect(health).toMatchObject({ statusCode: 200 });
    expect(JSON.parse(health.body)).toMatchObject({ status: 'healthy', down: [] });

    const bad = await invoke(
      'CronplaneApi',
      apiEvent('POST', '/v1/jobs', { name: 'Bad', schedule: '@every 2s' }),
    );
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body).field).toBe('name');

    const created = await invoke(
      'CronplaneApi',
      apiEvent('POST', '/v1/jobs', {
        name: 'bundled',
        schedule: '@every 5s',
        executor: 'shell',
        executor_config: { command: 'echo hi' },
      }),
    );
    expect(created.statusCode).toBe(201);

    const tick = await invokeWithOutput('CronplaneSchedulerTick', {});
    // On the clock's event the function coordinates: shard 0 planned here, no other shard (dueShards 1).
    expect(tick.result).toMatchObject({ layout: { count: 1, span: 1 }, fannedOut: [], fanOutError: null });
    const report = tick.result.shard0;
    expect(report.errors).toEqual([]);
    // Its metrics, as an EMF line (Powertools Metrics in the bundle), and a structured log line.
    const printed = tick.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const emf = printed.find((l) => '_aws' in l);
    expect(emf).toMatchObject({
      service: 'cronplane-tick',
      Ticks: 1,
      Launches: report.planned + report.resent,
    });
    expect(emf?._aws).toMatchObject({ CloudWatchMetrics: [{ Namespace: 'Cronplane' }] });
    expect(printed).toContainEqual(
      expect.objectContaining({ level: 'INFO', message: 'tick', service: 'cronplane-tick' }),
    );

    // On a shard-tick message (the queue's event source) it ticks that shard: here a repeat of shard 0.
    const shardTick = await invokeWithOutput('CronplaneSchedulerTick', {
      Records: [{ messageId: 'm-1', body: JSON.stringify({ shardTick: 0, issuedAt: Date.now() }) }],
    });
    expect(shardTick.result).toEqual({ batchItemFailures: [] });
    expect(shardTick.lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toContainEqual(
      expect.objectContaining({ message: 'shard tick', shard: 0, leader: true }),
    );

    const executions = await invoke(
      'CronplaneApi',
      apiEvent('GET', '/v1/jobs/bundled/executions', undefined, { planned: 'true' }),
    );
    const planned = JSON.parse(executions.body) as Array<{ status: string; scheduled_at: string }>;
    expect(planned.length).toBeGreaterThanOrEqual(1);
    expect(planned.every((e) => e.status === 'scheduled')).toBe(true);

    const queueUrl = resources.env.CRONPLANE_DEFAULT_QUEUE_URL;
    expect(Object.values(resources.queues)).toContain(queueUrl);
    const received = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 10 }),
    );
    expect(received.Messages?.some((m) => m.Body?.includes('bundled'))).toBe(true);
  });

  it('runs the bundled events handler: a finish is reacted to and counted in EMF, once', async () => {
    const [first] = JSON.parse(
      (
        await invoke(
          'CronplaneApi',
          apiEvent('GET', '/v1/jobs/bundled/executions', undefined, { planned: 'true' }),
        )
      ).body,
    ) as Array<{ id: string }>;
    const { Item: planned } = await clients.dynamodb.send(
      new GetItemCommand({
        TableName: resources.env.CRONPLANE_EXECUTIONS_TABLE,
        Key: { jobName: { S: 'bundled' }, executionId: { S: first!.id } },
      }),
    );
    const scheduledAt = Number(planned!.scheduledAt!.N);
    // The stream record of its finish, as Lambda delivers it: started 25 ms late, succeeded.
    const finished = {
      ...planned,
      status: { S: 'succeeded' },
      startedAt: { N: String(scheduledAt + 25) },
      finishedAt: { N: String(scheduledAt + 100) },
    };
    const record = {
      eventID: '1',
      eventName: 'MODIFY',
      dynamodb: { SequenceNumber: '100', OldImage: planned, NewImage: finished },
    };
    const events = await invokeWithOutput('CronplaneEvents', { Records: [record] });
    expect(events.result).toEqual({ batchItemFailures: [] });
    const printed = events.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(printed).toContainEqual(
      expect.objectContaining({ service: 'cronplane-events', status: 'succeeded', Executions: 1 }),
    );
    expect(printed).toContainEqual(
      expect.objectContaining({ service: 'cronplane-events', LaunchLateness: 25 }),
    );
    // Delivered again: already reacted to, so not counted twice.
    const again = await invokeWithOutput('CronplaneEvents', { Records: [record] });
    expect(again.lines.filter((l) => l.includes('"Executions"'))).toEqual([]);
  });
});
