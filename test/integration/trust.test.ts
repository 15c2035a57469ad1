/**
 * The trust settings of a stack, against the emulators: secrets only under CRONPLANE_SECRETS_PATH, agentless
 * targets only from CRONPLANE_WORKER_ALLOW (refused by the API when a job is written, and by the worker's
 * executors when a job written around the API runs), and the audit trail of every job change (who, when,
 * which version) from API Gateway's IAM identity.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import type { APIGatewayProxyEvent, Context as LambdaContext } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiHandler } from '../../functions/api/app.ts';
import type { Execution } from '../../shared/executions/execution.ts';
import type { Executor } from '../../shared/executors/executor.ts';
import { createExecutors } from '../../shared/executors/registry.ts';
import { validateJob } from '../../shared/jobs/job.ts';
import { JOB_HISTORY_LIMIT } from '../../shared/jobs/jobs-store.ts';
import { useTestStack } from './support/stack.ts';

const ALLOW = {
  lambda: ['reports-*'],
  sqs: ['orders'],
  events: ['default'],
  http: ['http://127.0.0.1:*'],
};

const stack = useTestStack({
  agents: [],
  worker: false,
  settings: { CRONPLANE_SECRETS_PATH: '/cronplane/trust', CRONPLANE_WORKER_ALLOW: JSON.stringify(ALLOW) },
});

// A server that echoes what it receives, and redirects /away to a host outside the allow-list.
const received: Array<{ url: string; headers: http.IncomingHttpHeaders }> = [];
let base = '';
const server = http.createServer((req, res) => {
  received.push({ url: req.url ?? '', headers: req.headers });
  const port = (server.address() as AddressInfo).port;
  if (req.url === '/away') res.writeHead(307, { Location: `http://localhost:${port}/echo` }).end();
  else res.writeHead(200).end('ok');
});

let worker: Record<string, Executor>;

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { clients, config } = stack.ctx;
  for (const [name, value] of [
    ['/cronplane/trust/token', 'in-scope-secret'],
    ['/cronplane/other/token', 'out-of-scope-secret'],
  ] as const) {
    await clients.ssm.send(
      new PutParameterCommand({ Name: name, Value: value, Type: 'SecureString', Overwrite: true }),
    );
  }
  // The worker's executors, built as functions/worker/handler.ts builds them.
  worker = createExecutors({ clients, secretsPath: config.secretsPath, workerAllow: config.workerAllow });
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

const execution = { executionId: '0000000000001.0.1', scheduledAt: 1, attempt: 1 } as Execution;
const never = () => new AbortController().signal;
/** A job as stored, skipping the API's checks (a job written before the settings, or around the API). */
const stored = (executor: string, executor_config: Record<string, string>) => ({
  ...validateJob({ name: 'stored', schedule: '@manually', executor: 'custom' }),
  executor,
  executor_config,
});

describe('write time: the API refuses what the settings do not allow, naming the field', () => {
  it.each([
    [
      'a secret outside the path',
      { executor: 'shell', executor_config: { command: 'env', env: 'T={{ssm:/cronplane/other/token}}' } },
      'executor_config.env',
      /outside the secrets path \/cronplane\/trust\//,
    ],
    [
      'a path trick',
      { executor: 'shell', executor_config: { command: 'echo {{ssm:/cronplane/trust/../other/token}}' } },
      'executor_config.command',
      /not a plain SSM parameter name/,
    ],
    [
      'a sibling path sharing the prefix',
      {
        executor: 'http',
        tags: { dc: 'a' },
        executor_config: { url: 'https://internal.example/', body: '{{ssm:/cronplane/trustx/t}}' },
      },
      'executor_config.body',
      /outside the secrets path/,
    ],
    [
      'a lambda function not on the list',
      { executor: 'lambda', executor_config: { function_name: 'admin-reset' } },
      'executor_config.function_name',
      /not in the worker's allow-list \(CRONPLANE_WORKER_ALLOW lambda: reports-\*\)/,
    ],
    [
      'a queue not on the list',
      {
        executor: 'sqs',
        executor_config: {
          queue_url: 'https://sqs.us-east-1.amazonaws.com/123456789012/other',
          message: 'm',
        },
      },
      'executor_config.queue_url',
      /not in the worker's allow-list/,
    ],
    [
      'a bus not on the list',
      { executor: 'eventbridge', executor_config: { event_bus: 'partner', source: 's', detail_type: 'd' } },
      'executor_config.event_bus',
      /not in the worker's allow-list/,
    ],
    [
      'an untagged http job to a URL not on the list',
      { executor: 'http', executor_config: { url: 'https://example.com/hook' } },
      'executor_config.url',
      /not in the worker's allow-list \(CRONPLANE_WORKER_ALLOW http/,
    ],
  ])('%s', async (_what, job, field, rule) => {
    const res = await stack.api('POST', '/v1/jobs', { name: 'refused', schedule: '@manually', ...job });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain(field);
    expect(JSON.stringify(res.body)).toMatch(rule);
    expect((await stack.api('GET', '/v1/jobs/refused')).status).toBe(404);
  });

  it('accepts what they allow', async () => {
    for (const job of [
      {
        name: 'ok-secret',
        executor: 'shell',
        executor_config: { command: 'env', env: 'T={{ssm:/cronplane/trust/token}}' },
      },
      { name: 'ok-lambda', executor: 'lambda', executor_config: { function_name: 'reports-daily' } },
      { name: 'ok-http', executor: 'http', executor_config: { url: `${base}/echo` } },
      // Tagged http jobs run on agents, not in the worker: the http list does not apply to them.
      {
        name: 'ok-tagged',
        executor: 'http',
        tags: { dc: 'a' },
        executor_config: { url: 'https://example.com/' },
      },
    ]) {
      const res = await stack.api('POST', '/v1/jobs', { schedule: '@manually', ...job });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
  });
});

describe('run time: the worker refuses again what a stored job asks for', () => {
  it('resolves a secret under the path and refuses one outside it, without reading it', async () => {
    received.length = 0;
    const ok = await worker.http!.run(
      stored('http', { url: `${base}/echo`, headers: '["X-Token: {{ssm:/cronplane/trust/token}}"]' }),
      execution,
      never(),
    );
    expect(ok.status).toBe('succeeded');
    expect(received[0]?.headers['x-token']).toBe('in-scope-secret');
    received.length = 0;
    const refused = await worker.http!.run(
      stored('http', { url: `${base}/echo`, headers: '["X-Token: {{ssm:/cronplane/other/token}}"]' }),
      execution,
      never(),
    );
    expect(refused).toMatchObject({ status: 'failed' });
    expect(refused.reason).toBe(
      'executor_config.headers (X-Token): {{ssm:/cronplane/other/token}} is outside the secrets path /cronplane/trust/ (CRONPLANE_SECRETS_PATH)',
    );
    expect(received).toEqual([]);
  });

  it('does not follow a redirect off the list (the secret would go with it)', async () => {
    received.length = 0;
    const r = await worker.http!.run(
      stored('http', { url: `${base}/away`, headers: '["X-Token: {{ssm:/cronplane/trust/token}}"]' }),
      execution,
      never(),
    );
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(
      /^redirect not followed: 'http:\/\/localhost:\d+\/echo' is not in the worker's allow-list/,
    );
    expect(received.map((x) => x.url)).toEqual(['/away']);
  });

  it('fails agentless jobs whose target is off the list, naming the key', async () => {
    const lambda = await worker.lambda!.run(
      stored('lambda', { function_name: 'admin-reset' }),
      execution,
      never(),
    );
    expect(lambda.reason).toMatch(
      /^executor_config\.function_name: 'admin-reset' is not in the worker's allow-list/,
    );
    const sqs = await worker.sqs!.run(
      stored('sqs', { queue_url: stack.ctx.config.defaultQueueUrl, message: 'launch of my own' }),
      execution,
      never(),
    );
    expect(sqs.status).toBe('failed');
    expect(sqs.reason).toMatch(/^executor_config\.queue_url: .* is not in the worker's allow-list/);
  });
});

describe('the audit trail', () => {
  let handler: ReturnType<typeof createApiHandler> | undefined;
  /** A request as API Gateway delivers it with IAM auth: the verified identity in requestContext. */
  const call = async (method: string, path: string, body: unknown, userArn: string | null) => {
    const event = {
      httpMethod: method,
      path,
      headers: { Accept: 'application/json' },
      multiValueHeaders: {},
      queryStringParameters: null,
      multiValueQueryStringParameters: null,
      pathParameters: null,
      stageVariables: null,
      resource: '/{proxy+}',
      isBase64Encoded: false,
      body: body === undefined ? null : JSON.stringify(body),
      requestContext: { identity: { userArn, caller: userArn ? 'AROAEXAMPLE:session' : null } },
    } as unknown as APIGatewayProxyEvent;
    handler ??= createApiHandler(stack.ctx);
    const out = await handler(event, { awsRequestId: 'r' } as LambdaContext);
    return { status: out.statusCode, body: JSON.parse(out.body) };
  };
  const alice = 'arn:aws:sts::123456789012:assumed-role/ops/alice';
  const bob = 'arn:aws:iam::123456789012:user/bob';
  const job = (command: string) => ({ name: 'audited', schedule: '@manually', executor_config: { command } });

  it("records who created and who last changed a job, and keeps the job's history", async () => {
    expect((await call('POST', '/v1/jobs', job('echo 1'), alice)).status).toBe(201);
    expect((await call('PUT', '/v1/jobs/audited', job('echo 2'), bob)).status).toBe(201);
    expect((await call('POST', '/v1/jobs/audited/toggle', undefined, alice)).status).toBe(200);
    // Over the local server (no IAM auth): no verified identity.
    expect((await stack.api('POST', '/v1/jobs', job('echo 3'))).status).toBe(201);
    const got = (await stack.api('GET', '/v1/jobs/audited')).body;
    expect(got).toMatchObject({ version: 4, created_by: alice, updated_by: 'anonymous' });
    expect(Date.parse(got.updated_at)).toBeGreaterThanOrEqual(Date.parse(got.created_at));
    expect(
      got.history.map((h: { version: number; by: string; action: string }) => [h.version, h.by, h.action]),
    ).toEqual([
      [1, alice, 'created'],
      [2, bob, 'updated'],
      [3, alice, 'disabled'],
      [4, 'anonymous', 'updated'],
    ]);
    expect(got.history.every((h: { at: string }) => !Number.isNaN(Date.parse(h.at)))).toBe(true);
    // The list carries who and when, not the history (a list of many jobs stays small).
    const listed = (await stack.api('GET', '/v1/jobs')).body.find(
      (j: { name: string }) => j.name === 'audited',
    );
    expect(listed).toMatchObject({ updated_by: 'anonymous', created_by: alice });
    expect(listed.history).toBeUndefined();
  });

  it(`keeps the last ${JOB_HISTORY_LIMIT} changes`, async () => {
    for (let i = 0; i < JOB_HISTORY_LIMIT + 5; i++) {
      expect((await call('PUT', '/v1/jobs/audited', job(`echo ${i}`), bob)).status).toBe(201);
    }
    const got = (await stack.api('GET', '/v1/jobs/audited')).body;
    expect(got.history).toHaveLength(JOB_HISTORY_LIMIT);
    expect(got.history.at(-1)).toMatchObject({ version: got.version, by: bob, action: 'updated' });
    expect(got.history[0].version).toBe(got.version - JOB_HISTORY_LIMIT + 1);
    expect(got.created_by).toBe(alice);
  });

  it('a refused write leaves no trace in the history', async () => {
    const before = (await stack.api('GET', '/v1/jobs/audited')).body;
    const res = await call(
      'PUT',
      '/v1/jobs/audited',
      { ...job('x'), executor_config: { command: 'x', env: 'A={{ssm:/elsewhere}}' } },
      alice,
    );
    expect(res.status).toBe(400);
    const after = (await stack.api('GET', '/v1/jobs/audited')).body;
    expect(after.history).toEqual(before.history);
    expect(after.version).toBe(before.version);
  });
});
