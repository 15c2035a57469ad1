import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { REPO_ROOT } from '../../../../agent/stack-file.ts';
import { createClients, ON_DEMAND_SERVICES } from '../../../../shared/aws/clients.ts';

const env = { AWS_REGION: 'eu-west-1', AWS_ENDPOINT_URL: 'http://127.0.0.1:9' };
const stackEnv = {
  ...env,
  CRONPLANE_JOBS_TABLE: 'jobs',
  CRONPLANE_EXECUTIONS_TABLE: 'executions',
  CRONPLANE_AGENTS_TABLE: 'agents',
  CRONPLANE_CONTROL_TABLE: 'control',
  CRONPLANE_DEFAULT_QUEUE_URL: 'http://127.0.0.1:9/000000000000/default',
  CRONPLANE_OUTPUT_BUCKET: 'output',
};

describe('on-demand AWS clients', () => {
  afterEach(() => vi.restoreAllMocks());

  it('hands out one stand-in per service and builds the real client once, on load', async () => {
    const clients = createClients(env);
    expect(clients.isLoaded('s3')).toBe(false);
    expect(clients.s3).toBe(clients.s3);
    expect(() => clients.s3.config).toThrow(/await clients.load\('s3'\)/);
    expect(() => clients.s3.destroy()).not.toThrow();

    const [a, b] = await Promise.all([clients.load('s3'), clients.load('s3')]);
    expect(a).toBeInstanceOf(S3Client);
    expect(b).toBe(a);
    expect(await clients.load('s3')).toBe(a);
    expect(clients.isLoaded('s3')).toBe(true);
    // Once loaded, the stand-in is the real client for every member; the factory's settings apply.
    expect(clients.s3.config).toBe(a.config);
    expect(a.config.forcePathStyle).toBe(true);
    expect(await clients.s3.config.region()).toBe('eu-west-1');
    expect(clients.isLoaded('ssm')).toBe(false);
  });

  it('loads the client on the first send and sends through it', async () => {
    const send = vi
      .spyOn(SSMClient.prototype, 'send')
      .mockImplementation(async () => ({ Parameter: { Value: 'v' }, $metadata: {} }));
    const clients = createClients(env);
    const command = new GetParameterCommand({ Name: '/p', WithDecryption: true });
    const out = await clients.ssm.send(command);
    expect(out.Parameter?.Value).toBe('v');
    expect(clients.isLoaded('ssm')).toBe(true);
    expect(send).toHaveBeenCalledTimes(1);
    expect(send.mock.contexts[0]).toBe(await clients.load('ssm'));
    expect(send.mock.calls[0]?.[0]).toBe(command);
  });

  it("drops the SDK's logger, user-agent and (outside Lambda) recursion-detection middleware from every client", async () => {
    const clients = createClients(env);
    const stacks = [
      clients.dynamodb.middlewareStack,
      clients.doc.middlewareStack,
      clients.sqs.middlewareStack,
      ...(await Promise.all(ON_DEMAND_SERVICES.map(async (s) => (await clients.load(s)).middlewareStack))),
    ];
    for (const stack of stacks) {
      const names = stack.identify();
      expect(
        names.some((n) => n.startsWith('awsAuthMiddleware') || n.startsWith('httpSigningMiddleware')),
      ).toBe(true);
      expect(names.filter((n) => n.startsWith('loggerMiddleware'))).toEqual([]);
      expect(names.filter((n) => n.startsWith('getUserAgentMiddleware'))).toEqual([]);
      expect(names.filter((n) => n.startsWith('recursionDetectionMiddleware'))).toEqual([]);
    }
    // Inside Lambda, recursion detection stays (it passes the function's trace id on).
    const inLambda = createClients({ ...env, AWS_LAMBDA_FUNCTION_NAME: 'tick' });
    for (const stack of [inLambda.dynamodb.middlewareStack, inLambda.sqs.middlewareStack]) {
      const names = stack.identify();
      expect(names.filter((n) => n.startsWith('recursionDetectionMiddleware'))).toHaveLength(1);
      expect(names.filter((n) => n.startsWith('getUserAgentMiddleware'))).toEqual([]);
    }
  });

  it('keeps separate factories separate', async () => {
    const one = createClients(env);
    const two = createClients(env);
    expect(await one.load('lambda')).not.toBe(await two.load('lambda'));
    expect(one.isLoaded('eventbridge') || two.isLoaded('eventbridge')).toBe(false);
  });

  it('an agent that is set up (context, executors) has not loaded any on-demand SDK module', async () => {
    // A fresh process: what the agent imports and builds at start-up must not pull these in (idle RSS).
    const script = `
      import { createRequire } from 'node:module';
      const { createContext } = await import('./shared/context.ts');
      const { Agent } = await import('./agent/agent.ts');
      const ctx = createContext(${JSON.stringify(stackEnv)});
      new Agent(ctx, { agentId: 'a' });
      void ctx.clients.sqs; void ctx.clients.doc; void ctx.clients.s3; void ctx.clients.ssm;
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((p) => p.includes('@aws-sdk/client-'));
      console.log(JSON.stringify([...new Set(loaded.map((p) => /@aws-sdk\\/(client-[a-z0-9-]+)/.exec(p)[1]))]));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: REPO_ROOT, env: { ...process.env, ...env } },
    );
    const loaded = JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as string[];
    expect(loaded).toContain('client-dynamodb'); // the check sees what is loaded
    expect(loaded).toContain('client-sqs');
    const packageOf: Record<string, string> = {
      dynamodbStreams: 'dynamodb-streams',
      logs: 'cloudwatch-logs',
    };
    const onDemandPackages = ON_DEMAND_SERVICES.map((s) => `client-${packageOf[s] ?? s}`);
    for (const p of onDemandPackages) expect(loaded).not.toContain(p);
  }, 60_000);
});
