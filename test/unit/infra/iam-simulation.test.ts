/**
 * Each role's effective policy, from the synthesized template, evaluated by an IAM policy simulator
 * (@cloud-copilot/iam-simulate) against a table of requests: what each part does on its real path is
 * allowed; what a compromised part would try is denied. Synthesized once, with an allow-list of worker
 * targets, a KMS key for secrets, an on-prem agent principal and two agent groups.
 */
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { describe, expect, it } from 'vitest';
import { tagSetQueueName } from '../../../infra/lib/roles.ts';
import { controlKeys } from '../../../shared/control/control-keys.ts';
import { ACCOUNT, REGION, Resolver, STACK, synthTemplate } from './synthesized.ts';

const KMS_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const OTHER_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/99999999-12ab-34cd-56ef-1234567890ab`;
const ONPREM = `arn:aws:iam::${ACCOUNT}:role/onprem-host`;
const template = synthTemplate({
  workerTargets: JSON.stringify({
    lambda: ['billing-*'],
    sqs: [`arn:aws:sqs:${REGION}:${ACCOUNT}:orders`],
    events: [`arn:aws:events:${REGION}:${ACCOUNT}:event-bus/ops`],
  }),
  secretsKmsKeys: KMS_KEY,
  agentPrincipals: ONPREM,
  agentGroups: JSON.stringify([
    { name: 'web', tags: { role: 'web', dc: 'eu' } },
    { name: 'db', tags: { role: 'db' } },
  ]),
});
const cfn = new Resolver(template);

const fnRole = (pattern: RegExp) => {
  const fnId = cfn.one('AWS::Lambda::Function', (id) => pattern.test(id));
  return cfn.resources[fnId]?.Properties?.Role['Fn::GetAtt'][0] as string;
};
const ROLES = {
  api: fnRole(/^CronplaneApiHandler/),
  tick: fnRole(/^CronplaneSchedulerTick/),
  worker: fnRole(/^CronplaneWorkerHandler/),
  events: fnRole(/^CronplaneEventsHandler/),
  agent: cfn.one('AWS::IAM::Role', (id) => /^CronplaneAgentsRole/.test(id)),
  web: cfn.one('AWS::IAM::Role', (id) => /^CronplaneAgentGroupwebRole/.test(id)),
  db: cfn.one('AWS::IAM::Role', (id) => /^CronplaneAgentGroupdbRole/.test(id)),
};
type Who = keyof typeof ROLES;

const table = (key: string) =>
  cfn.arn(
    cfn.one('AWS::DynamoDB::Table', (_, r) =>
      JSON.stringify(r.Properties?.KeySchema).includes(`"AttributeName":"${key}","KeyType":"HASH"`),
    ),
  );
const JOBS = table('name');
const EXECUTIONS = table('jobName');
const AGENTS = table('agentId');
const CONTROL = table('pk');
const queue = (pattern: RegExp) => cfn.arn(cfn.one('AWS::SQS::Queue', (id) => pattern.test(id)));
const DEFAULT_QUEUE = queue(/DefaultQueue/);
const DLQ = queue(/DeadLetterQueue/);
const WORKER_QUEUE = queue(/WorkerQueue/);
const tagQueue = (tags: Record<string, string>) =>
  `arn:aws:sqs:${REGION}:${ACCOUNT}:${tagSetQueueName(`${STACK}-`, tags)}`;
const BUCKET = cfn.arn(cfn.one('AWS::S3::Bucket', () => true));
const BUS = cfn.arn(cfn.one('AWS::Events::EventBus', () => true));
const param = (name: string) => `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${name}`;
const fn = (name: string) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
const logGroup = (name: string) => `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${name}`;

const DEFAULT_KEY_POLICY = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' },
  ],
};

interface Request {
  readonly who: Who;
  readonly action: string;
  readonly resource: string;
  readonly context?: Record<string, string | string[]>;
  readonly why: string;
}

async function decide(r: Request): Promise<string> {
  const simulation: Simulation = {
    request: {
      principal: `arn:aws:iam::${ACCOUNT}:role/${ROLES[r.who]}`,
      action: r.action,
      resource: { resource: r.resource, accountId: ACCOUNT },
      contextVariables: { 'aws:SecureTransport': 'true', ...r.context },
    },
    identityPolicies: cfn.policiesOf(ROLES[r.who]),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    // KMS needs a key policy: the default one, which defers to the account's IAM policies
    ...(r.action.startsWith('kms:') ? { resourcePolicy: DEFAULT_KEY_POLICY } : {}),
  };
  const result = await runSimulation(simulation, {});
  if (result.resultType === 'error') throw new Error(JSON.stringify(result.errors));
  return result.overallResult;
}

const attributes = (...names: string[]) => ({ 'dynamodb:Attributes': ['jobName', 'executionId', ...names] });
/** The key a store writes (control-keys.ts), so a changed key schema fails here if IAM is not changed with it. */
const leadingKey = ({ pk }: { pk: string }) => ({ 'dynamodb:LeadingKeys': [pk] });
const viaSsm = { 'kms:ViaService': `ssm.${REGION}.amazonaws.com` };

const ALLOWED: Request[] = [
  // api: the job writes, the cluster routes, planning launches
  { who: 'api', action: 'dynamodb:UpdateItem', resource: JOBS, why: 'PUT /v1/jobs' },
  { who: 'api', action: 'dynamodb:DeleteItem', resource: JOBS, why: 'DELETE /v1/jobs/:name' },
  { who: 'api', action: 'dynamodb:Scan', resource: JOBS, why: 'GET /v1/jobs' },
  { who: 'api', action: 'dynamodb:Query', resource: `${EXECUTIONS}/index/byActive`, why: 'busy' },
  { who: 'api', action: 'dynamodb:BatchGetItem', resource: EXECUTIONS, why: 'busy (keys-only index)' },
  { who: 'api', action: 'dynamodb:BatchWriteItem', resource: EXECUTIONS, why: 'delete a job’s history' },
  { who: 'api', action: 'dynamodb:UpdateItem', resource: CONTROL, why: 'POST /v1/pause' },
  { who: 'api', action: 'dynamodb:UpdateItem', resource: AGENTS, why: 'POST /v1/leave' },
  { who: 'api', action: 'sqs:SendMessage', resource: DEFAULT_QUEUE, why: 'run now' },
  { who: 'api', action: 'dynamodb:GetItem', resource: AGENTS, why: 'GET /health' },
  { who: 'api', action: 'sqs:GetQueueAttributes', resource: DEFAULT_QUEUE, why: 'GET /health' },
  { who: 'api', action: 'sqs:SendMessage', resource: WORKER_QUEUE, why: 'run an agentless job' },
  {
    who: 'api',
    action: 'sqs:CreateQueue',
    resource: tagQueue({ role: 'web' }),
    why: 'first job of a tag set',
  },
  // tick
  { who: 'tick', action: 'dynamodb:UpdateItem', resource: CONTROL, why: 'the lease, the cursor' },
  { who: 'tick', action: 'dynamodb:Query', resource: `${JOBS}/index/byDue`, why: 'due jobs' },
  { who: 'tick', action: 'dynamodb:PutItem', resource: EXECUTIONS, why: 'scheduled executions' },
  { who: 'tick', action: 'dynamodb:BatchGetItem', resource: EXECUTIONS, why: 'the lost sweep' },
  { who: 'tick', action: 'dynamodb:BatchGetItem', resource: JOBS, why: 'due jobs (keys-only index)' },
  { who: 'tick', action: 'dynamodb:UpdateItem', resource: JOBS, why: 'advance nextRunAt' },
  { who: 'tick', action: 'sqs:SendMessage', resource: tagQueue({ dc: 'eu', role: 'web' }), why: 'launch' },
  // worker: its queue, its allow-listed targets, secrets under the path
  { who: 'worker', action: 'sqs:ReceiveMessage', resource: WORKER_QUEUE, why: 'event source' },
  { who: 'worker', action: 'sqs:ChangeMessageVisibility', resource: WORKER_QUEUE, why: 'long runs' },
  { who: 'worker', action: 'lambda:InvokeFunction', resource: fn('billing-report'), why: 'allow-listed' },
  { who: 'worker', action: 'lambda:InvokeFunction', resource: `${fn('billing-report')}:live`, why: 'alias' },
  {
    who: 'worker',
    action: 'sqs:SendMessage',
    resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:orders`,
    why: 'allow-listed queue',
  },
  {
    who: 'worker',
    action: 'events:PutEvents',
    resource: `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/ops`,
    why: 'allow-listed bus',
  },
  { who: 'worker', action: 'ssm:GetParameter', resource: param('/cronplane/db/password'), why: 'secret' },
  { who: 'worker', action: 'kms:Decrypt', resource: KMS_KEY, context: viaSsm, why: 'SecureString' },
  { who: 'worker', action: 'dynamodb:UpdateItem', resource: EXECUTIONS, why: 'claim, finish' },
  { who: 'worker', action: 'dynamodb:GetItem', resource: JOBS, why: 'after a claim: the version' },
  { who: 'worker', action: 's3:PutObject', resource: `${BUCKET}/executions/j/1.log`, why: 'full output' },
  { who: 'worker', action: 's3:PutObject', resource: `${BUCKET}/output/j/1.log`, why: 's3 processor' },
  {
    who: 'worker',
    action: 'logs:PutLogEvents',
    resource: `${logGroup('/cronplane/jobs')}:log-stream:j`,
    why: 'cloudwatch processor',
  },
  // events
  { who: 'events', action: 'events:PutEvents', resource: BUS, why: 'Execution Finished' },
  { who: 'events', action: 'dynamodb:UpdateItem', resource: JOBS, why: 'counters' },
  { who: 'events', action: 'dynamodb:PutItem', resource: EXECUTIONS, why: 'a retry, a dependent job' },
  { who: 'events', action: 'dynamodb:BatchWriteItem', resource: EXECUTIONS, why: 'retention' },
  { who: 'events', action: 'sqs:SendMessage', resource: tagQueue({ role: 'db' }), why: 'launch a retry' },
  // agents: the real path of a run
  { who: 'agent', action: 'sqs:ReceiveMessage', resource: DEFAULT_QUEUE, why: 'poll' },
  { who: 'agent', action: 'sqs:ChangeMessageVisibility', resource: DEFAULT_QUEUE, why: 'extend' },
  { who: 'agent', action: 'sqs:DeleteMessage', resource: DEFAULT_QUEUE, why: 'ack' },
  { who: 'agent', action: 'sqs:SendMessage', resource: DEFAULT_QUEUE, why: 'hand a slot on' },
  { who: 'agent', action: 'dynamodb:GetItem', resource: JOBS, why: 'read the definition' },
  { who: 'agent', action: 'dynamodb:BatchGetItem', resource: JOBS, why: 'read definitions' },
  {
    who: 'agent',
    action: 'dynamodb:UpdateItem',
    resource: EXECUTIONS,
    context: attributes('status', 'claimedAt', 'heartbeatAt', 'agentId', 'nodeName'),
    why: 'claim',
  },
  {
    who: 'agent',
    action: 'dynamodb:UpdateItem',
    resource: EXECUTIONS,
    context: attributes('heartbeatAt', 'output', 'outputBytes', 'status', 'agentId'),
    why: 'heartbeat, with the live output',
  },
  {
    who: 'agent',
    action: 'dynamodb:UpdateItem',
    resource: EXECUTIONS,
    context: attributes(
      'status',
      'startedAt',
      'finishedAt',
      'exitCode',
      'success',
      'output',
      'outputTruncated',
      'reason',
      'expiresAt',
      'outputUrl',
      'processorErrors',
      'outputBytes',
      'activeShard',
      'agentId',
    ),
    why: 'finish',
  },
  {
    who: 'agent',
    action: 'dynamodb:UpdateItem',
    resource: EXECUTIONS,
    context: attributes('cancelRequested', 'cancelReason', 'status'),
    why: 'replace: cancel the running one',
  },
  { who: 'agent', action: 'dynamodb:Query', resource: EXECUTIONS, why: 'fan-out group' },
  {
    who: 'agent',
    action: 'dynamodb:GetItem',
    resource: CONTROL,
    context: leadingKey(controlKeys.pause()),
    why: 'after a claim: not paused',
  },
  {
    who: 'agent',
    action: 'dynamodb:UpdateItem',
    resource: CONTROL,
    context: leadingKey(controlKeys.lock('backup')),
    why: 'forbid lock',
  },
  {
    who: 'agent',
    action: 'dynamodb:DeleteItem',
    resource: CONTROL,
    context: leadingKey(controlKeys.lock('backup')),
    why: 'release lock',
  },
  {
    who: 'agent',
    action: 'dynamodb:PutItem',
    resource: CONTROL,
    context: leadingKey(controlKeys.slot('j', 'g', 'a1')),
    why: 'fan-out slot',
  },
  { who: 'agent', action: 'dynamodb:Scan', resource: CONTROL, why: 'queue registry' },
  { who: 'agent', action: 'dynamodb:UpdateItem', resource: AGENTS, why: 'membership heartbeat' },
  { who: 'agent', action: 's3:PutObject', resource: `${BUCKET}/executions/j/1.log`, why: 'full output' },
  { who: 'agent', action: 's3:PutObject', resource: `${BUCKET}/output/j/1.log`, why: 's3 processor' },
  {
    who: 'agent',
    action: 'logs:CreateLogGroup',
    resource: logGroup('/cronplane/jobs'),
    why: 'cloudwatch processor, first use',
  },
  {
    who: 'agent',
    action: 'logs:CreateLogStream',
    resource: `${logGroup('/cronplane/jobs')}:log-stream:j`,
    why: 'cloudwatch processor, first use',
  },
  {
    who: 'agent',
    action: 'logs:PutLogEvents',
    resource: `${logGroup('/cronplane/jobs')}:log-stream:j`,
    why: 'cloudwatch processor',
  },
  { who: 'agent', action: 'ssm:GetParameter', resource: param('/cronplane/app/token'), why: 'secret' },
  // agent groups: the default queue and every subset of their tags
  { who: 'web', action: 'sqs:ReceiveMessage', resource: DEFAULT_QUEUE, why: 'untagged jobs' },
  { who: 'web', action: 'sqs:ReceiveMessage', resource: tagQueue({ role: 'web' }), why: 'role=web' },
  { who: 'web', action: 'sqs:ReceiveMessage', resource: tagQueue({ dc: 'eu' }), why: 'dc=eu' },
  { who: 'web', action: 'sqs:ReceiveMessage', resource: tagQueue({ dc: 'eu', role: 'web' }), why: 'both' },
  { who: 'db', action: 'sqs:ReceiveMessage', resource: tagQueue({ role: 'db' }), why: 'role=db' },
];

const DENIED: Request[] = [
  // agents cannot define what runs
  { who: 'agent', action: 'dynamodb:PutItem', resource: JOBS, why: 'write a job' },
  { who: 'agent', action: 'dynamodb:UpdateItem', resource: JOBS, why: 'rewrite a job’s command' },
  { who: 'agent', action: 'dynamodb:DeleteItem', resource: JOBS, why: 'delete a job' },
  { who: 'agent', action: 'dynamodb:PutItem', resource: EXECUTIONS, why: 'plant an execution' },
  {
    who: 'agent',
    action: 'dynamodb:UpdateItem',
    resource: EXECUTIONS,
    context: attributes('jobVersion'),
    why: 'retarget an execution',
  },
  {
    who: 'agent',
    action: 'dynamodb:UpdateItem',
    resource: EXECUTIONS,
    context: attributes('status', 'reactedAt'),
    why: 'fake the reactions',
  },
  { who: 'agent', action: 'dynamodb:BatchWriteItem', resource: EXECUTIONS, why: 'delete history' },
  // nor the scheduler's state
  {
    who: 'agent',
    action: 'dynamodb:UpdateItem',
    resource: CONTROL,
    context: leadingKey(controlKeys.lease('scheduler')),
    why: 'hold the lease',
  },
  {
    who: 'agent',
    action: 'dynamodb:UpdateItem',
    resource: CONTROL,
    context: leadingKey(controlKeys.pause()),
    why: 'pause',
  },
  {
    who: 'agent',
    action: 'dynamodb:UpdateItem',
    resource: CONTROL,
    context: leadingKey(controlKeys.cursor(0)),
    why: 'move the cursor',
  },
  {
    who: 'agent',
    action: 'dynamodb:PutItem',
    resource: CONTROL,
    context: leadingKey(controlKeys.queue('role=db')),
    why: 'redirect a tag set',
  },
  {
    who: 'agent',
    action: 'dynamodb:DeleteItem',
    resource: CONTROL,
    context: leadingKey(controlKeys.lease('scheduler')),
    why: 'drop the lease',
  },
  // nor the queues
  { who: 'agent', action: 'sqs:PurgeQueue', resource: DEFAULT_QUEUE, why: 'purge' },
  { who: 'agent', action: 'sqs:SetQueueAttributes', resource: DEFAULT_QUEUE, why: 'Principal: * policy' },
  { who: 'agent', action: 'sqs:CreateQueue', resource: tagQueue({ role: 'web' }), why: 'create a queue' },
  { who: 'agent', action: 'sqs:ReceiveMessage', resource: DLQ, why: 'read dead letters' },
  { who: 'agent', action: 'sqs:ReceiveMessage', resource: WORKER_QUEUE, why: 'steal agentless work' },
  {
    who: 'agent',
    action: 'sqs:ReceiveMessage',
    resource: tagQueue({ role: 'web' }),
    why: 'untagged role: no tag sets',
  },
  {
    who: 'web',
    action: 'sqs:ReceiveMessage',
    resource: tagQueue({ role: 'db' }),
    why: 'another group’s queue',
  },
  {
    who: 'web',
    action: 'sqs:ReceiveMessage',
    resource: tagQueue({ role: 'web', tier: 'gold' }),
    why: 'not a subset',
  },
  {
    who: 'db',
    action: 'sqs:ReceiveMessage',
    resource: tagQueue({ role: 'web' }),
    why: 'another group’s queue',
  },
  { who: 'web', action: 'sqs:SetQueueAttributes', resource: tagQueue({ role: 'web' }), why: 'reconfigure' },
  // nor secrets outside the path, nor other services
  { who: 'agent', action: 'ssm:GetParameter', resource: param('/prod/db/password'), why: 'outside the path' },
  { who: 'agent', action: 'ssm:GetParameter', resource: param('/cronplane-other/x'), why: 'a sibling path' },
  { who: 'agent', action: 'ssm:GetParameters', resource: param('/cronplane/x'), why: 'not used' },
  { who: 'agent', action: 'ssm:PutParameter', resource: param('/cronplane/x'), why: 'write a secret' },
  {
    who: 'agent',
    action: 'lambda:InvokeFunction',
    resource: fn('billing-report'),
    why: 'agentless: worker only',
  },
  { who: 'agent', action: 'events:PutEvents', resource: BUS, why: 'fake Execution Finished' },
  { who: 'agent', action: 's3:GetObject', resource: `${BUCKET}/executions/j/1.log`, why: 'read outputs' },
  { who: 'agent', action: 's3:PutObject', resource: `${BUCKET}/other/x`, why: 'outside the prefixes' },
  {
    who: 'agent',
    action: 'logs:PutLogEvents',
    resource: `${logGroup('/aws/lambda/billing')}:log-stream:x`,
    why: "another function's logs",
  },
  { who: 'agent', action: 'logs:DeleteLogGroup', resource: logGroup('/cronplane/jobs'), why: 'delete logs' },
  {
    who: 'agent',
    action: 'dynamodb:GetItem',
    resource: JOBS,
    context: { 'aws:SecureTransport': 'false' },
    why: 'no TLS',
  },
  // the functions: each only its own
  {
    who: 'tick',
    action: 's3:PutObject',
    resource: `${BUCKET}/executions/j/1.log`,
    why: 'tick writes no output',
  },
  { who: 'tick', action: 'dynamodb:DeleteItem', resource: JOBS, why: 'tick deletes no job' },
  { who: 'tick', action: 'ssm:GetParameter', resource: param('/cronplane/x'), why: 'tick reads no secret' },
  {
    who: 'tick',
    action: 'sqs:CreateQueue',
    resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:${STACK}-evil`,
    why: 'not a tag-set name',
  },
  {
    who: 'tick',
    action: 'sqs:SendMessage',
    resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:Other-tags-1`,
    why: 'another stack',
  },
  { who: 'tick', action: 'sqs:PurgeQueue', resource: DEFAULT_QUEUE, why: 'purge' },
  { who: 'api', action: 'sqs:SetQueueAttributes', resource: tagQueue({ role: 'web' }), why: 'reconfigure' },
  { who: 'api', action: 'sqs:ReceiveMessage', resource: DEFAULT_QUEUE, why: 'api runs nothing' },
  { who: 'api', action: 'ssm:GetParameter', resource: param('/cronplane/x'), why: 'api reads no secret' },
  { who: 'api', action: 'lambda:InvokeFunction', resource: fn('billing-report'), why: 'api runs nothing' },
  { who: 'api', action: 's3:PutObject', resource: `${BUCKET}/executions/j/1.log`, why: 'no output' },
  {
    who: 'api',
    action: 'logs:PutLogEvents',
    resource: `${logGroup('/cronplane/jobs')}:log-stream:j`,
    why: 'api runs no processor',
  },
  { who: 'worker', action: 'lambda:InvokeFunction', resource: fn('payroll'), why: 'not allow-listed' },
  {
    who: 'worker',
    action: 'sqs:SendMessage',
    resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:payments`,
    why: 'not allow-listed',
  },
  { who: 'worker', action: 'sqs:SendMessage', resource: DEFAULT_QUEUE, why: 'worker plans nothing' },
  { who: 'worker', action: 'events:PutEvents', resource: BUS, why: 'not allow-listed' },
  {
    who: 'worker',
    action: 'ssm:GetParameter',
    resource: param('/prod/db/password'),
    why: 'outside the path',
  },
  { who: 'worker', action: 'kms:Decrypt', resource: KMS_KEY, why: 'not via SSM' },
  { who: 'worker', action: 'kms:Decrypt', resource: OTHER_KEY, context: viaSsm, why: 'not a configured key' },
  { who: 'worker', action: 'dynamodb:UpdateItem', resource: JOBS, why: 'worker writes no job' },
  { who: 'events', action: 'dynamodb:UpdateItem', resource: CONTROL, why: 'the lease is the tick’s' },
  { who: 'events', action: 'ssm:GetParameter', resource: param('/cronplane/x'), why: 'no secret' },
  { who: 'events', action: 'sqs:ReceiveMessage', resource: DEFAULT_QUEUE, why: 'runs nothing' },
];

describe('IAM policy simulation of the synthesized roles', () => {
  it('allows what each part does on its real path', async () => {
    const wrong: string[] = [];
    for (const r of ALLOWED) {
      const decision = await decide(r);
      if (decision !== 'Allowed') wrong.push(`${r.who} ${r.action} ${r.resource} (${r.why}): ${decision}`);
    }
    expect(wrong).toEqual([]);
  });

  it('denies what a compromised part would try', async () => {
    const wrong: string[] = [];
    for (const r of DENIED) {
      const decision = await decide(r);
      if (decision === 'Allowed') wrong.push(`${r.who} ${r.action} ${r.resource} (${r.why})`);
    }
    expect(wrong).toEqual([]);
  });

  it('lets EC2 and the named on-prem role assume an agent role, never the account at large', async () => {
    const trust = cfn.resolve(cfn.resources[ROLES.agent]?.Properties?.AssumeRolePolicyDocument);
    const assume = async (principal: string) => {
      const result = await runSimulation(
        {
          request: {
            principal,
            action: 'sts:AssumeRole',
            resource: { resource: `arn:aws:iam::${ACCOUNT}:role/${ROLES.agent}`, accountId: ACCOUNT },
            contextVariables: { 'aws:SecureTransport': 'true' },
          },
          // the caller's own policy allows everything: only the trust policy decides
          identityPolicies: [
            {
              name: 'admin',
              policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] },
            },
          ],
          serviceControlPolicies: [],
          resourceControlPolicies: [],
          resourcePolicy: trust,
        },
        {},
      );
      if (result.resultType === 'error') throw new Error(JSON.stringify(result.errors));
      return result.overallResult;
    };
    expect(await assume(ONPREM)).toBe('Allowed');
    expect(await assume(`arn:aws:iam::${ACCOUNT}:role/web-app`)).not.toBe('Allowed');
    expect(await assume(`arn:aws:iam::${ACCOUNT}:user/developer`)).not.toBe('Allowed');
    expect(JSON.stringify(trust)).not.toContain(':root');
  });
});
