/**
 * The executors beyond shell against real things on 127.0.0.1: node:http / node:https servers (with a
 * self-signed certificate made by openssl at test time), moto server for SQS, EventBridge, SSM and
 * Lambda, and external executor scripts in a temp directory.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateEventBusCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateFunctionCommand } from '@aws-sdk/client-lambda';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShellExecutor } from '../../agent/executors/shell.ts';
import { startEmulators } from '../../local/emulators.ts';
import { type AwsClients, createClients } from '../../shared/aws/clients.ts';
import type { Execution } from '../../shared/executions/execution.ts';
import { EventBridgeExecutor, LambdaExecutor, SqsExecutor } from '../../shared/executors/aws.ts';
import type { Executor } from '../../shared/executors/executor.ts';
import { discoverExternalExecutors } from '../../shared/executors/external.ts';
import { HttpExecutor } from '../../shared/executors/http.ts';
import { createExecutors } from '../../shared/executors/registry.ts';
import { createSsmResolver } from '../../shared/executors/secrets.ts';
import type { JobDefinition } from '../../shared/jobs/definition.ts';
import { validateJob } from '../../shared/jobs/job.ts';

const execution = {
  jobName: 'j',
  executionId: '0001767225600000.0.1',
  scheduledAt: Date.UTC(2026, 0, 1),
  attempt: 1,
} as Execution;
const never = () => new AbortController().signal;

/**
 * A job with this executor and config, which is not validated: these tests give the executors configs
 * that the API would refuse, to see how the executor itself reports them.
 */
function job(
  executor: string,
  executor_config: Record<string, string>,
  tags?: Record<string, string>,
): JobDefinition {
  const def = validateJob({
    name: 'j',
    schedule: '@manually',
    executor: 'custom',
    ...(tags ? { tags } : {}),
  });
  return { ...def, executor: executor as JobDefinition['executor'], executor_config };
}

const dir = mkdtempSync(join(tmpdir(), 'cronplane-executors-'));
const received: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }> = [];

/** /echo answers JSON describing the request; /status/<n>; /slow never answers in time; /redirect → /echo. */
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    const url = new URL(req.url ?? '/', 'http://x');
    const status = /^\/status\/(\d+)$/.exec(url.pathname);
    if (status) {
      res.writeHead(Number(status[1]), { 'content-type': 'text/plain' }).end(`status ${status[1]}`);
    } else if (url.pathname === '/slow') {
      const timer = setTimeout(() => res.end('late'), 10_000);
      res.on('close', () => clearTimeout(timer));
    } else if (url.pathname === '/redirect') {
      res.writeHead(302, { location: '/echo?from=redirect' }).end();
    } else {
      const socket = req.socket as import('node:tls').TLSSocket;
      const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : null;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          method: req.method,
          path: req.url,
          headers: req.headers,
          body,
          clientCN: peer?.subject?.CN ?? null,
        }),
      );
    }
  });
}

function listen(server: http.Server | https.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

let httpServer: http.Server;
let httpsServer: https.Server;
let base: string;
let secureBase: string;
const certFile = join(dir, 'server-cert.pem');
const clientCert = join(dir, 'client-cert.pem');
const clientKey = join(dir, 'client-key.pem');

beforeAll(async () => {
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-keyout',
    join(dir, 'server-key.pem'),
    '-out',
    certFile,
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-keyout',
    clientKey,
    '-out',
    clientCert,
    '-subj',
    '/CN=cronplane-client',
  ]);
  httpServer = http.createServer(handler);
  httpsServer = https.createServer(
    {
      cert: readFileSync(certFile),
      key: readFileSync(join(dir, 'server-key.pem')),
      requestCert: true, // asks for a client certificate, but lets clients without one in
      rejectUnauthorized: false,
    },
    handler,
  );
  base = `http://127.0.0.1:${await listen(httpServer)}`;
  secureBase = `https://127.0.0.1:${await listen(httpsServer)}`;
});

afterAll(async () => {
  httpServer?.closeAllConnections();
  httpsServer?.closeAllConnections();
  await Promise.all([
    new Promise((r) => (httpServer ? httpServer.close(r) : r(null))),
    new Promise((r) => (httpsServer ? httpsServer.close(r) : r(null))),
  ]);
  rmSync(dir, { recursive: true, force: true });
});

describe('http executor', () => {
  const ex = new HttpExecutor();
  const run = (cfg: Record<string, string>, signal = never()) => ex.run(job('http', cfg), execution, signal);

  it('GETs by default and returns the body', async () => {
    const r = await run({ url: `${base}/echo?a=1` });
    expect(r).toMatchObject({ status: 'succeeded', reason: null, exitCode: null, outputTruncated: false });
    expect(JSON.parse(r.output)).toMatchObject({ method: 'GET', path: '/echo?a=1', body: '' });
  });

  it('sends method, headers and body', async () => {
    const r = await run({
      method: 'post',
      url: `${base}/echo`,
      headers: '["Content-Type: application/json", "X-Trace: a:b:c"]',
      body: '{"hello":"world"}',
    });
    const echo = JSON.parse(r.output);
    expect(echo).toMatchObject({ method: 'POST', body: '{"hello":"world"}' });
    expect(echo.headers).toMatchObject({
      'content-type': 'application/json',
      'x-trace': 'a:b:c',
      'content-length': '17',
    });
  });

  it('fails on a non-2xx status unless expectCode lists it', async () => {
    const failed = await run({ url: `${base}/status/500` });
    expect(failed).toMatchObject({
      status: 'failed',
      output: 'status 500',
      reason: 'unexpected status 500 (expected a 2xx status)',
    });
    expect((await run({ url: `${base}/status/500`, expectCode: '200, 500' })).status).toBe('succeeded');
    expect(await run({ url: `${base}/status/201`, expectCode: '200' })).toMatchObject({
      status: 'failed',
      reason: 'unexpected status 201 (expected 200)',
    });
    expect((await run({ url: `${base}/status/404` })).status).toBe('failed');
  });

  it('checks the body with expectBody', async () => {
    expect((await run({ url: `${base}/echo`, expectBody: '"method":"GET"' })).status).toBe('succeeded');
    expect((await run({ url: `${base}/echo`, expectBody: '(?i)"METHOD":"get"' })).status).toBe('succeeded');
    const r = await run({ url: `${base}/echo`, expectBody: '^nothing like it$' });
    expect(r).toMatchObject({
      status: 'failed',
      reason: 'response body does not match expectBody /^nothing like it$/',
    });
    expect(r.output).toContain('"method":"GET"');
  });

  it('times out (Go duration or Dkron seconds) and can be cancelled', async () => {
    let started = Date.now();
    expect(await run({ url: `${base}/slow`, timeout: '300ms' })).toMatchObject({
      status: 'timeout',
      reason: 'timed out after 300ms',
    });
    expect(Date.now() - started).toBeLessThan(3_000);
    started = Date.now();
    expect(await run({ url: `${base}/slow`, timeout: '1' })).toMatchObject({
      status: 'timeout',
      reason: 'timed out after 1s',
    });
    expect(Date.now() - started).toBeLessThan(4_000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    expect(await run({ url: `${base}/slow` }, controller.signal)).toMatchObject({
      status: 'cancelled',
      reason: 'cancelled',
    });
  });

  it('reports network errors and bad configs as failures', async () => {
    const closed = http.createServer();
    const port = await listen(closed);
    await new Promise((r) => closed.close(r));
    const r = await run({ url: `http://127.0.0.1:${port}/` });
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(new RegExp(`^GET http://127.0.0.1:${port}/ failed: .*ECONNREFUSED`));
    expect(await run({ url: `${base}/echo`, headers: 'Authorization: x' })).toMatchObject({
      status: 'failed',
      reason: 'executor_config.headers: must be a JSON array of "Name: value" strings',
    });
  });

  it('follows redirects and dumps request and response with debug', async () => {
    const r = await run({ url: `${base}/redirect`, debug: 'true', headers: '["X-A: 1"]' });
    expect(r.status).toBe('succeeded');
    const lines = r.output.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      '> GET /redirect HTTP/1.1',
      `> Host: ${new URL(base).host}`,
      '> X-A: 1',
      '>',
    ]);
    expect(lines[4]).toBe('< HTTP/1.1 302 Found');
    expect(r.output).toContain('> GET /echo?from=redirect HTTP/1.1');
    expect(r.output).toContain('< HTTP/1.1 200 OK\n< content-type: application/json\n');
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ path: '/echo?from=redirect' });
  });

  describe('https', () => {
    it('refuses a self-signed certificate by default', async () => {
      const r = await run({ url: `${secureBase}/echo` });
      expect(r.status).toBe('failed');
      expect(r.reason).toMatch(/self[- ]signed/i);
    });

    it('trusts tlsRootCAsFile, or anything with tlsNoVerifyPeer', async () => {
      expect((await run({ url: `${secureBase}/echo`, tlsRootCAsFile: certFile })).status).toBe('succeeded');
      expect((await run({ url: `${secureBase}/echo`, tlsNoVerifyPeer: 'true' })).status).toBe('succeeded');
    });

    it('presents a client certificate', async () => {
      const r = await run({
        url: `${secureBase}/echo`,
        tlsRootCAsFile: certFile,
        tlsCertificateFile: clientCert,
        tlsCertificateKeyFile: clientKey,
      });
      expect(r.status).toBe('succeeded');
      expect(JSON.parse(r.output).clientCN).toBe('cronplane-client');
      expect(
        JSON.parse((await run({ url: `${secureBase}/echo`, tlsRootCAsFile: certFile })).output).clientCN,
      ).toBeNull();
    });

    it('names an unreadable certificate file', async () => {
      const r = await run({ url: `${secureBase}/echo`, tlsRootCAsFile: join(dir, 'nope.pem') });
      expect(r).toMatchObject({ status: 'failed' });
      expect(r.reason).toMatch(/^executor_config\.tlsRootCAsFile: cannot read .*nope\.pem: ENOENT/);
    });
  });
});

describe('external executors', () => {
  const write = (name: string, script: string) => {
    const path = join(dir, `cronplane-executor-${name}`);
    writeFileSync(path, script);
    chmodSync(path, 0o755);
  };
  let executors: Record<string, Executor>;

  beforeAll(() => {
    write('hi', `#!/bin/sh\ncat > /dev/null; echo '{"success":true,"output":"hi"}'\n`);
    write(
      'echo',
      `#!/usr/bin/env node
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const req = JSON.parse(input);
  const env = process.env.CRONPLANE_EXECUTION_ID;
  process.stdout.write(JSON.stringify({ success: req.config.ok === 'yes', output: JSON.stringify({ execution: req.execution, config: req.config, job: req.job.name, env }), exit_code: 7, error: 'config said no' }));
});
`,
    );
    write('garbage', `#!/bin/sh\necho 'this is not json'; echo 'details on stderr' >&2\n`);
    write(
      'crash',
      `#!/bin/sh\necho '{"success":true,"output":"partial"}'; echo 'fatal: disk full' >&2; exit 3\n`,
    );
    write('sleepy', `#!/bin/sh\nsleep 30 &\nsleep 30\n`);
    executors = discoverExternalExecutors([dir]);
  });

  it('discovers the scripts and runs one speaking the protocol', async () => {
    expect(Object.keys(executors).sort()).toEqual(['crash', 'echo', 'garbage', 'hi', 'sleepy']);
    expect(await executors.hi!.run(job('hi', {}), execution, never())).toEqual({
      status: 'succeeded',
      exitCode: 0,
      output: 'hi',
      outputTruncated: false,
      reason: null,
    });
  });

  it('passes job, execution and config on stdin and takes success, exit_code and error from stdout', async () => {
    const ok = await executors.echo!.run(job('echo', { ok: 'yes', n: '1' }), execution, never());
    expect(ok).toMatchObject({ status: 'succeeded', exitCode: 7, reason: null });
    expect(JSON.parse(ok.output)).toEqual({
      execution: {
        id: execution.executionId,
        job_name: 'j',
        scheduled_at: '2026-01-01T00:00:00.000Z',
        attempt: 1,
      },
      config: { ok: 'yes', n: '1' },
      job: 'j',
      env: execution.executionId,
    });
    expect(await executors.echo!.run(job('echo', { ok: 'no' }), execution, never())).toMatchObject({
      status: 'failed',
      exitCode: 7,
      reason: 'config said no',
    });
  });

  it('fails on stdout that is not the JSON result, and on a non-zero exit', async () => {
    const garbage = await executors.garbage!.run(job('garbage', {}), execution, never());
    expect(garbage).toMatchObject({
      status: 'failed',
      exitCode: 0,
      output: 'details on stderr\n',
      reason: 'executor garbage stdout is not JSON: "this is not json" (stderr: details on stderr)',
    });
    const crash = await executors.crash!.run(job('crash', {}), execution, never());
    expect(crash).toMatchObject({
      status: 'failed',
      exitCode: 3,
      output: 'partial',
      reason: 'executor crash exited with code 3',
    });
  });

  it('kills the process group on timeout and on cancel', async () => {
    const started = Date.now();
    expect(
      await executors.sleepy!.run(job('sleepy', { timeout: '300ms' }), execution, never()),
    ).toMatchObject({
      status: 'timeout',
      reason: 'timed out after 300ms',
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    expect(await executors.sleepy!.run(job('sleepy', {}), execution, controller.signal)).toMatchObject({
      status: 'cancelled',
    });
  });

  it('reports an executable that cannot start', async () => {
    const path = join(dir, 'cronplane-executor-gone');
    write('gone', '#!/bin/sh\n');
    const gone = discoverExternalExecutors([dir]).gone!;
    rmSync(path);
    const r = await gone.run(job('gone', {}), execution, never());
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(/^cannot start executor gone .*ENOENT/);
  });
});

describe('AWS executors and SSM secrets (moto)', () => {
  let emulators: Awaited<ReturnType<typeof startEmulators>>;
  let clients: AwsClients;

  beforeAll(async () => {
    emulators = await startEmulators();
    clients = createClients(emulators.env);
  });
  afterAll(async () => {
    await emulators?.stop();
  });

  it('sqs: sends the message and reports its MessageId', async () => {
    const { QueueUrl } = await clients.sqs.send(new CreateQueueCommand({ QueueName: 'exec-target' }));
    const r = await new SqsExecutor(clients).run(
      job('sqs', { queue_url: QueueUrl!, message: 'hello queue' }),
      execution,
      never(),
    );
    expect(r).toMatchObject({ status: 'succeeded', reason: null });
    const got = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
    expect(got.Messages?.map((m) => [m.MessageId, m.Body])).toEqual([[r.output, 'hello queue']]);
  });

  it('sqs: FIFO with message_group_id, and a missing queue fails', async () => {
    const { QueueUrl } = await clients.sqs.send(
      new CreateQueueCommand({ QueueName: 'exec-target.fifo', Attributes: { FifoQueue: 'true' } }),
    );
    const cfg = { queue_url: QueueUrl!, message: 'in order', message_group_id: 'g1' };
    const first = await new SqsExecutor(clients).run(job('sqs', cfg), execution, never());
    expect(first.status).toBe('succeeded');
    const got = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl,
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['MessageGroupId'],
      }),
    );
    expect(got.Messages?.[0]).toMatchObject({
      MessageId: first.output,
      Body: 'in order',
      Attributes: { MessageGroupId: 'g1' },
    });
    const missing = await new SqsExecutor(clients).run(
      job('sqs', { queue_url: QueueUrl!.replace('exec-target.fifo', 'nope'), message: 'x' }),
      execution,
      never(),
    );
    expect(missing.status).toBe('failed');
    expect(missing.reason).toMatch(/NonExistentQueue|does not exist/i);
  });

  it('eventbridge: puts the event on the bus (routed to a queue by a rule) and reports its EventId', async () => {
    await clients.eventbridge.send(new CreateEventBusCommand({ Name: 'jobs' }));
    const { QueueUrl } = await clients.sqs.send(new CreateQueueCommand({ QueueName: 'events-sink' }));
    const attrs = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    await clients.eventbridge.send(
      new PutRuleCommand({
        Name: 'all-jobs',
        EventBusName: 'jobs',
        EventPattern: JSON.stringify({ source: ['cronplane.test'] }),
      }),
    );
    await clients.eventbridge.send(
      new PutTargetsCommand({
        Rule: 'all-jobs',
        EventBusName: 'jobs',
        Targets: [{ Id: 'q', Arn: attrs.Attributes!.QueueArn! }],
      }),
    );
    const r = await new EventBridgeExecutor(clients).run(
      job('eventbridge', {
        event_bus: 'jobs',
        source: 'cronplane.test',
        detail_type: 'Job Fired',
        detail: '{"n":1}',
      }),
      execution,
      never(),
    );
    expect(r).toMatchObject({ status: 'succeeded', reason: null });
    expect(r.output).toMatch(/^[0-9a-f-]{36}$/);
    const got = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 2 }));
    expect(JSON.parse(got.Messages?.[0]?.Body ?? '{}')).toMatchObject({
      id: r.output,
      source: 'cronplane.test',
      'detail-type': 'Job Fired',
      detail: { n: 1 },
    });
    const onDefault = await new EventBridgeExecutor(clients).run(
      job('eventbridge', { source: 'cronplane.test', detail_type: 'Default Bus' }),
      execution,
      never(),
    );
    expect(onDefault.status).toBe('succeeded');
  });

  it('lambda: invokes the function and reports what it returned (moto without Docker)', async () => {
    const res = await fetch(`${emulators.endpoints.other}/moto-api/config`, {
      method: 'POST',
      body: JSON.stringify({ lambda: { use_docker: false } }),
    });
    expect(res.ok).toBe(true);
    // moto checks that the role exists in its IAM. There is no IAM client in the project, so create it
    // with a raw Query-protocol request; moto routes by the credential scope and does not check signatures.
    const role = await fetch(`${emulators.endpoints.other}/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization:
          'AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0',
      },
      body: new URLSearchParams({
        Action: 'CreateRole',
        Version: '2010-05-08',
        RoleName: 'x',
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
          ],
        }),
      }),
    });
    expect(role.status, await role.text()).toBe(200);
    const emptyZip = Buffer.from([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]);
    await clients.lambda.send(
      new CreateFunctionCommand({
        FunctionName: 'job-fn',
        Runtime: 'nodejs20.x',
        Role: 'arn:aws:iam::123456789012:role/x',
        Handler: 'index.handler',
        Code: { ZipFile: emptyZip },
      }),
    );
    const lambda = new LambdaExecutor(clients);
    // moto's Docker-less Lambda echoes the request payload back...
    const echoed = await lambda.run(
      job('lambda', { function_name: 'job-fn', payload: '{"hello":"world"}' }),
      execution,
      never(),
    );
    expect(echoed).toEqual({
      status: 'succeeded',
      exitCode: null,
      output: '{"hello":"world"}',
      outputTruncated: false,
      reason: null,
    });
    // ...or answers from a queue of canned results.
    const canned = await fetch(`${emulators.endpoints.other}/moto-api/static/lambda-simple/response`, {
      method: 'POST',
      body: JSON.stringify({ results: ['{"answer":42}'], region: emulators.env.AWS_REGION }),
    });
    expect(canned.status).toBe(201);
    const answered = await lambda.run(
      job('lambda', { function_name: 'job-fn', payload: '{}' }),
      execution,
      never(),
    );
    expect(answered).toMatchObject({ status: 'succeeded', output: '{"answer":42}' });
    const async = await lambda.run(
      job('lambda', { function_name: 'job-fn', invocation_type: 'Event', payload: '{}' }),
      execution,
      never(),
    );
    expect(async.status).toBe('succeeded');
    // (moto's Docker-less Invoke never looks the function up, so an unknown name cannot be tested here.)
  });

  describe('ssm secrets', () => {
    beforeAll(async () => {
      await clients.ssm.send(
        new PutParameterCommand({
          Name: '/cronplane/test/token',
          Value: 'tok-5ecret-value',
          Type: 'SecureString',
        }),
      );
    });

    it('resolves {{ssm:...}} in env values and strings with decryption', async () => {
      const resolver = createSsmResolver(clients);
      expect(await resolver({ TOKEN: '{{ssm:/cronplane/test/token}}', OTHER: 'x' })).toEqual({
        TOKEN: 'tok-5ecret-value',
        OTHER: 'x',
      });
      expect(await resolver.resolveSecrets('Bearer {{ssm:/cronplane/test/token}}')).toBe(
        'Bearer tok-5ecret-value',
      );
      await expect(resolver({ A: '{{ssm:/cronplane/test/missing}}' })).rejects.toThrow(
        'env A: SSM parameter /cronplane/test/missing not found',
      );
    });

    it('sends the secret in http headers and body but redacts it from the output', async () => {
      const executors = createExecutors({ clients });
      received.length = 0;
      const r = await executors.http!.run(
        job('http', {
          method: 'POST',
          url: `${base}/echo`,
          headers: '["Authorization: Bearer {{ssm:/cronplane/test/token}}"]',
          body: 'token={{ssm:/cronplane/test/token}}',
          debug: 'true',
        }),
        execution,
        never(),
      );
      expect(r.status).toBe('succeeded');
      expect(received[0]).toMatchObject({
        headers: { authorization: 'Bearer tok-5ecret-value' },
        body: 'token=tok-5ecret-value',
      });
      expect(r.output).not.toContain('tok-5ecret-value');
      expect(r.output).toContain('> Authorization: Bearer [redacted]');
      expect(JSON.parse(r.output.split('\n').at(-1)!)).toMatchObject({ body: 'token=[redacted]' });
    });

    it('fails a run whose secret is missing, naming the parameter', async () => {
      const executors = createExecutors({ clients });
      const r = await executors.http!.run(
        job('http', { url: `${base}/echo`, headers: '["X-Key: {{ssm:/cronplane/test/absent}}"]' }),
        execution,
        never(),
      );
      expect(r).toMatchObject({
        status: 'failed',
        reason: 'executor_config.headers (X-Key): SSM parameter /cronplane/test/absent not found',
      });
    });

    it('redacts secrets a shell job prints, and fails it when a secret is missing', async () => {
      const resolver = createSsmResolver(clients);
      const executors = createExecutors({
        clients,
        shell: new ShellExecutor({ resolveEnv: resolver }),
        resolver,
      });
      const printed = await executors.shell!.run(
        job('shell', {
          command: 'echo "token is $TOKEN"',
          shell: 'true',
          env: 'TOKEN={{ssm:/cronplane/test/token}}',
        }),
        execution,
        never(),
      );
      expect(printed).toMatchObject({ status: 'succeeded', output: 'token is [redacted]\n' });
      const missing = await executors.shell!.run(
        job('shell', { command: 'true', env: 'TOKEN={{ssm:/cronplane/test/absent}}' }),
        execution,
        never(),
      );
      expect(missing).toMatchObject({
        status: 'failed',
        reason: 'env TOKEN: SSM parameter /cronplane/test/absent not found',
      });
    });
  });
});
