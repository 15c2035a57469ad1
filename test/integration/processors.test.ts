/**
 * Dkron's processors (and ours) against the real things they talk to, all on 127.0.0.1 and started here:
 * a UDP and a TCP syslog listener and a Unix datagram socket (a Python listener: Node.js has no Unix
 * datagram sockets) that decode RFC 5424, a Fluent forward receiver that decodes what it gets with
 * @msgpack/msgpack and acks chunks, files on disk, S3 and CloudWatch Logs in moto, and custom processor
 * executables. Jobs run on a real agent of the local stack (and, agentless, in its worker); results are read
 * through the API.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { decodeMultiStream, ExtensionCodec, encode } from '@msgpack/msgpack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.ts';
import { REPO_ROOT } from '../../agent/stack-file.ts';
import { newestFinished, useTestStack, waitFor } from './support/stack.ts';

const stack = useTestStack({ agents: [] });
const dir = mkdtempSync(join(tmpdir(), 'cronplane-processors-'));
const bin = join(dir, 'bin');
const logDir = join(dir, 'logs');
const AGENT = 'proc-agent';
const agentLog: Array<Record<string, unknown>> = [];
let agent: Agent;

interface ApiExecution {
  id: string;
  job_name: string;
  group: number;
  attempt: number;
  status: string;
  success: boolean;
  exit_code: number | null;
  started_at: string;
  finished_at: string;
  node_name: string;
  output: string;
  output_truncated: boolean;
  processor_errors: Record<string, string> | null;
}

// ---------------------------------------------------------------------------------------------------
// RFC 5424, decoded by the ABNF of its section 6 (independent of shared/processors/syslog.ts)

interface SyslogMessage {
  pri: number;
  version: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sd: Record<string, Record<string, string>>;
  /** MSG, with its BOM (if any) removed; `bom` says whether it had one. */
  msg: string | null;
  bom: boolean;
}

function parseRfc5424(data: Buffer): SyslogMessage {
  const text = data.toString('utf8');
  const header = /^<(\d{1,3})>([1-9]\d{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(text);
  if (!header) throw new Error(`not an RFC 5424 header: ${JSON.stringify(text.slice(0, 120))}`);
  let i = header[0].length;
  const sd: SyslogMessage['sd'] = {};
  if (text[i] === '-') i++;
  else {
    if (text[i] !== '[') throw new Error(`no STRUCTURED-DATA at ${i}`);
    while (text[i] === '[') {
      const id = /^[^ =\]"]{1,32}/.exec(text.slice(i + 1))?.[0];
      if (!id) throw new Error('bad SD-ID');
      i += 1 + id.length;
      const params: Record<string, string> = {};
      while (text[i] === ' ') {
        const name = /^[^ =\]"]{1,32}/.exec(text.slice(i + 1))?.[0];
        if (!name || text[i + 1 + name.length] !== '=' || text[i + 2 + name.length] !== '"') {
          throw new Error(`bad SD-PARAM at ${i}`);
        }
        i += 3 + name.length;
        let value = '';
        while (text[i] !== '"') {
          if (i >= text.length) throw new Error('unterminated PARAM-VALUE');
          if (text[i] === '\\' && ['"', '\\', ']'].includes(text[i + 1] ?? '')) i++;
          value += text[i++];
        }
        i++;
        params[name] = value;
      }
      if (text[i] !== ']') throw new Error(`SD-ELEMENT not closed at ${i}`);
      i++;
      sd[id] = params;
    }
  }
  let msg: string | null = null;
  let bom = false;
  if (i < text.length) {
    if (text[i] !== ' ') throw new Error(`no SP before MSG at ${i}`);
    msg = text.slice(i + 1);
    bom = msg.startsWith('\uFEFF');
    if (bom) msg = msg.slice(1);
  }
  return {
    pri: Number(header[1]),
    version: Number(header[2]),
    timestamp: header[3]!,
    hostname: header[4]!,
    appName: header[5]!,
    procId: header[6]!,
    msgId: header[7]!,
    sd,
    msg,
    bom,
  };
}

/** RFC 6587 octet-counting frames: `<length> <message>`, lengths in bytes. */
function splitFrames(data: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = Number(data.subarray(at, space).toString('ascii'));
    if (space < 0 || !Number.isInteger(length)) throw new Error(`bad frame at ${at}`);
    frames.push(data.subarray(space + 1, space + 1 + length));
    at = space + 1 + length;
  }
  return frames;
}

// ---------------------------------------------------------------------------------------------------
// The servers

let udp: UdpSocket;
const udpMessages: SyslogMessage[] = [];
let tcp: Server;
const tcpMessages: SyslogMessage[] = [];
let fluent: Server;
/** Decoded forward-protocol entries: [tag, time, record, option?]. */
const fluentEntries: unknown[][] = [];
let fluentPort: number;
let closedPort: number;
let unixListener: ChildProcess;
const unixSocket = join(dir, 'syslog.sock');
const unixMessages: SyslogMessage[] = [];
let http: HttpServer;
let httpUrl: string;

/** The forward protocol's EventTime (extension type 0) as { sec, nsec }. */
const extensionCodec = new ExtensionCodec();
extensionCodec.register({
  type: 0,
  encode: () => null,
  decode: (data: Uint8Array) => {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return { sec: view.getUint32(0), nsec: view.getUint32(4) };
  },
});

async function receiveForward(socket: Socket): Promise<void> {
  for await (const entry of decodeMultiStream(socket, { extensionCodec })) {
    const e = entry as unknown[];
    fluentEntries.push(e);
    const chunk = (e[3] as { chunk?: string } | undefined)?.chunk;
    if (chunk) socket.write(encode({ ack: chunk }));
  }
}

const listen = (server: Server | HttpServer) =>
  new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );

const CUSTOM = `#!/usr/bin/env node
const fs = require('node:fs');
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const request = JSON.parse(input);
  fs.writeFileSync('${join(dir, 'custom-request.json')}', JSON.stringify({ request, env: {
    processor: process.env.CRONPLANE_PROCESSOR, job: process.env.CRONPLANE_JOB_NAME,
    id: process.env.CRONPLANE_EXECUTION_ID, aws: Object.keys(process.env).filter((k) => k.startsWith('AWS_')) } }));
  const e = request.execution;
  process.stdout.write(JSON.stringify({ success: true,
    output: request.config.greeting + ': ' + e.output.trim().toUpperCase() + ' (' + e.status + ')' }));
});
`;
const FAILING = `#!/bin/sh
cat > /dev/null
echo '{"success": false, "error": "the archive is full"}'
exit 1
`;

beforeAll(async () => {
  mkdirSync(bin);
  for (const [name, text] of [
    ['cronplane-processor-upper', CUSTOM],
    ['cronplane-processor-failing', FAILING],
  ] as const) {
    writeFileSync(join(bin, name), text);
    chmodSync(join(bin, name), 0o755);
  }

  udp = createSocket('udp4');
  udp.on('message', (m) => udpMessages.push(parseRfc5424(m)));
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));

  tcp = createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', () => {
      for (const frame of splitFrames(Buffer.concat(chunks))) tcpMessages.push(parseRfc5424(frame));
      socket.end();
    });
  });
  fluent = createServer((socket) => void receiveForward(socket).catch(() => socket.destroy()));
  http = createHttpServer((_, res) =>
    res.writeHead(200, { 'content-type': 'text/plain' }).end('pong from http'),
  );
  const closed = createServer();
  [, fluentPort, closedPort] = await Promise.all([listen(tcp), listen(fluent), listen(closed)]);
  await new Promise((r) => closed.close(r));
  httpUrl = `http://127.0.0.1:${await listen(http)}/ping`;

  unixListener = spawn(
    join(REPO_ROOT, '.venv', 'bin', 'python'),
    [
      '-u',
      '-c',
      'import socket,sys,base64\n' +
        's=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("ready")\n' +
        'while True:\n  print(base64.b64encode(s.recv(262144)).decode())',
      unixSocket,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    unixListener.once('error', reject);
    unixListener.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready') resolve();
        else if (line) unixMessages.push(parseRfc5424(Buffer.from(line, 'base64')));
      }
    });
  });

  agent = new Agent(stack.ctx, {
    agentId: AGENT,
    pollWaitSeconds: 1,
    processorPath: bin,
    log: (e) => agentLog.push(e),
  });
  await agent.start();
}, 60_000);

afterAll(async () => {
  await agent?.stop(5_000);
  unixListener?.kill();
  udp?.close();
  for (const s of [tcp, fluent, http]) s?.close();
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------

async function run(
  name: string,
  processors: Record<string, Record<string, string>>,
  job: Record<string, unknown> = { executor: 'shell', executor_config: { command: 'echo hello processors' } },
): Promise<ApiExecution> {
  const created = await stack.api('POST', '/v1/jobs', { name, schedule: '@manually', ...job, processors });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect(created.body.processors).toEqual(processors);
  expect((await stack.api('POST', `/v1/jobs/${name}/run`)).status).toBe(202);
  return newestFinished<ApiExecution>(stack.api, name, 20_000);
}

const ms = (rfc3339: string) => Date.parse(rfc3339);

describe('processors, in order, forwarding the output', () => {
  it('hands the finished execution to every built-in and a custom processor; forward keeps the output', async () => {
    const udpPort = (udp.address() as AddressInfo).port;
    const group = `/cronplane/test-${process.pid}`;
    const processors = {
      files: { log_dir: logDir, forward: 'true' },
      syslog: { address: `udp://127.0.0.1:${udpPort}`, forward: 'true', facility: 'local3', tag: 'nightly' },
      fluent: {
        fluent_host: '127.0.0.1',
        fluent_port: String(fluentPort),
        fluent_tag: 'cron.reports',
        require_ack: 'true',
        forward: 'true',
      },
      s3: { forward: 'true' },
      cloudwatch: { log_group: group, forward: 'true' },
      log: { forward: 'true' },
      upper: { greeting: 'hi', forward: 'true' },
    };
    const e = await run('everything', processors);
    expect(e).toMatchObject({
      status: 'succeeded',
      output: 'hello processors\n',
      processor_errors: null,
      node_name: AGENT,
    });

    // In the order given.
    const done = agentLog.filter((l) => l.msg === 'processor done' && l.id === e.id).map((l) => l.processor);
    expect(done).toEqual(Object.keys(processors));

    // files: Dkron's name, <started_at in ns>-<node>.log, holding the output.
    const file = `${BigInt(ms(e.started_at)) * 1_000_000n}-${AGENT}.log`;
    expect(readdirSync(logDir)).toContain(file);
    expect(readFileSync(join(logDir, file), 'utf8')).toBe('hello processors\n');

    // syslog over UDP: RFC 5424, local3.info, the ids in the structured data, the output as MSG.
    const sys = await waitFor(
      async () => udpMessages.find((m) => m.sd['execution@32473']?.id === e.id),
      5_000,
      'udp syslog',
    );
    expect(sys).toMatchObject({
      pri: 19 * 8 + 6,
      version: 1,
      hostname: AGENT,
      appName: 'nightly',
      msgId: 'execution',
      msg: 'hello processors\n',
      bom: true,
    });
    expect(sys.sd['execution@32473']).toEqual({
      job: 'everything',
      id: e.id,
      group: expect.any(String),
      attempt: '1',
      status: 'succeeded',
      exit_code: '0',
    });
    expect(ms(sys.timestamp)).toBe(ms(e.finished_at));

    // fluent: [tag, EventTime, record, {chunk}], acked.
    const entry = fluentEntries.find((f) => (f[2] as { id?: string }).id === e.id);
    if (!entry) throw new Error('the fluent receiver got nothing of this execution');
    const [tag, time, record, option] = entry;
    expect(tag).toBe('cron.reports');
    expect(time).toEqual({
      sec: Math.floor(ms(e.finished_at) / 1000),
      nsec: (ms(e.finished_at) % 1000) * 1e6,
    });
    expect(record).toMatchObject({
      host: AGENT,
      job_name: 'everything',
      message: 'hello processors\n',
      status: 'succeeded',
      success: true,
      exit_code: 0,
      started_at: e.started_at,
    });
    expect(typeof (option as { chunk?: unknown }).chunk).toBe('string');

    // s3: the stack's output bucket, under output/.
    const bucket = stack.env.CRONPLANE_OUTPUT_BUCKET!;
    const object = await stack.ctx.clients.s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: `output/everything/${e.id}.log` }),
    );
    expect(await object.Body?.transformToString()).toBe('hello processors\n');

    // cloudwatch: the group given, the job's stream, one JSON event.
    const events = await stack.ctx.clients.logs.send(
      new GetLogEventsCommand({ logGroupName: group, logStreamName: 'everything', startFromHead: true }),
    );
    expect(events.events).toHaveLength(1);
    expect(events.events?.[0]?.timestamp).toBe(ms(e.finished_at));
    expect(JSON.parse(events.events?.[0]?.message ?? '')).toMatchObject({
      id: e.id,
      job_name: 'everything',
      status: 'succeeded',
      output: 'hello processors\n',
    });

    // log: the agent's log.
    expect(agentLog).toContainEqual(
      expect.objectContaining({ msg: 'execution output', id: e.id, output: 'hello processors\n' }),
    );

    // custom: the JSON protocol of custom executors, the execution as the API shows it.
    const seen = JSON.parse(readFileSync(join(dir, 'custom-request.json'), 'utf8'));
    expect(seen.env).toEqual({ processor: 'upper', job: 'everything', id: e.id, aws: [] });
    expect(seen.request.config).toEqual({ greeting: 'hi', forward: 'true' });
    expect(seen.request.job.name).toBe('everything');
    expect(seen.request.execution).toMatchObject({
      id: e.id,
      status: 'succeeded',
      output: 'hello processors\n',
    });
  });

  it("without forward, each processor's result replaces the output for the next one and for the execution", async () => {
    const tcpPort = (tcp.address() as AddressInfo).port;
    const e = await run('replaced', {
      files: { log_dir: logDir },
      syslog: { address: `tcp://127.0.0.1:${tcpPort}` },
      upper: { greeting: 'then' },
    });
    const file = join(logDir, `${BigInt(ms(e.started_at)) * 1_000_000n}-${AGENT}.log`);
    expect(readFileSync(file, 'utf8')).toBe('hello processors\n');
    // syslog (TCP, octet counting) got the path files left, cron.info by default.
    const sys = await waitFor(
      async () => tcpMessages.find((m) => m.sd['execution@32473']?.id === e.id),
      5_000,
      'tcp syslog',
    );
    expect(sys).toMatchObject({ pri: 9 * 8 + 6, appName: 'cronplane', msg: file });
    // the custom processor got syslog's result, and its own result is the execution's output.
    expect(e).toMatchObject({
      status: 'succeeded',
      output: 'then: OUTPUT IN SYSLOG (succeeded)',
      processor_errors: null,
    });
  });

  it('writes to a local syslog socket (logger, RFC 5424), err severity for a failed run', async () => {
    const e = await run(
      'local-syslog',
      { syslog: { address: `unix://${unixSocket}`, forward: 'true', tag: 'cronjob' } },
      {
        executor: 'shell',
        executor_config: { command: 'printf "line one\\nline two\\n"; exit 3', shell: 'true' },
      },
    );
    expect(e).toMatchObject({
      status: 'failed',
      exit_code: 3,
      output: 'line one\nline two\n',
      processor_errors: null,
    });
    const mine = await waitFor(
      async () => {
        const m = unixMessages.filter((x) => x.sd['execution@32473']?.id === e.id);
        return m.length === 2 ? m : null;
      },
      5_000,
      'two local syslog messages',
    );
    expect(mine.map((m) => [m.pri, m.appName, m.msgId, m.msg])).toEqual([
      [9 * 8 + 3, 'cronjob', 'execution', 'line one'],
      [9 * 8 + 3, 'cronjob', 'execution', 'line two'],
    ]);
    expect(mine[0]?.sd['execution@32473']).toMatchObject({
      job: 'local-syslog',
      status: 'failed',
      exit_code: '3',
    });
  });

  it('keeps the whole output of a truncated execution in files and s3', async () => {
    const e = await run(
      'chatty',
      { files: { log_dir: logDir, forward: 'true' }, s3: { prefix: 'archive/', forward: 'true' } },
      {
        executor: 'shell',
        executor_config: { command: "head -c 400000 /dev/zero | tr '\\0' a; echo END", shell: 'true' },
      },
    );
    expect(e).toMatchObject({ status: 'succeeded', output_truncated: true, processor_errors: null });
    const file = join(logDir, `${BigInt(ms(e.started_at)) * 1_000_000n}-${AGENT}.log`);
    expect(readFileSync(file, 'utf8').length).toBe(400_004);
    const object = await stack.ctx.clients.s3.send(
      new GetObjectCommand({ Bucket: stack.env.CRONPLANE_OUTPUT_BUCKET!, Key: `archive/chatty/${e.id}.log` }),
    );
    const body = (await object.Body?.transformToString()) ?? '';
    expect([body.length, body.endsWith('aEND\n')]).toEqual([400_004, true]);
  });
});

describe('a processor that fails never loses the result', () => {
  it('keeps the output and status, records processor_errors and logs them; the others still run', async () => {
    const group = `/cronplane/test-${process.pid}`;
    const e = await run('unlucky', {
      fluent: { fluent_port: String(closedPort) },
      failing: {},
      missing: {},
      cloudwatch: { log_group: group, log_stream: 'after-failures' },
    });
    expect(e.status).toBe('succeeded');
    expect(e.processor_errors).toEqual({
      fluent: expect.stringMatching(/ECONNREFUSED/),
      failing: 'processor failing exited with code 1: the archive is full',
      missing: expect.stringContaining(
        `no custom processor missing on agent ${AGENT}: install an executable cronplane-processor-missing`,
      ),
    });
    // cloudwatch ran after them, on the output they left alone, and replaced it (no forward).
    expect(e.output).toBe(`Output in CloudWatch Logs: ${group} after-failures`);
    const events = await stack.ctx.clients.logs.send(
      new GetLogEventsCommand({ logGroupName: group, logStreamName: 'after-failures', startFromHead: true }),
    );
    expect(JSON.parse(events.events?.[0]?.message ?? '').output).toBe('hello processors\n');
    const failed = agentLog
      .filter((l) => l.msg === 'processor failed' && l.id === e.id)
      .map((l) => l.processor);
    expect(failed).toEqual(['fluent', 'failing', 'missing']);
  });

  it('a failing processor without forward leaves the output as it was', async () => {
    const e = await run('unlucky-alone', {
      fluent: { fluent_port: String(closedPort), require_ack: 'true' },
    });
    expect(e).toMatchObject({ status: 'succeeded', output: 'hello processors\n' });
    expect(Object.keys(e.processor_errors ?? {})).toEqual(['fluent']);
  });
});

describe('agentless jobs: processors in the worker', () => {
  it('runs fluent and s3 where the job ran, before the result is written', async () => {
    const e = await run(
      'agentless',
      { fluent: { fluent_port: String(fluentPort), forward: 'true' }, s3: {} },
      { executor: 'http', executor_config: { url: httpUrl } },
    );
    const key = `output/agentless/${e.id}.log`;
    expect(e).toMatchObject({
      status: 'succeeded',
      node_name: 'worker',
      output: `s3://${stack.env.CRONPLANE_OUTPUT_BUCKET}/${key}`,
      processor_errors: null,
    });
    const object = await stack.ctx.clients.s3.send(
      new GetObjectCommand({ Bucket: stack.env.CRONPLANE_OUTPUT_BUCKET!, Key: key }),
    );
    expect(await object.Body?.transformToString()).toBe('pong from http');
    const entry = await waitFor(
      async () => fluentEntries.find((f) => (f[2] as { id?: string }).id === e.id),
      5_000,
      'fluent',
    );
    expect(entry[2]).toMatchObject({ host: 'worker', message: 'pong from http' });
  });
});

describe('invalid processor configs', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['relative log_dir', { processors: { files: { log_dir: 'logs' } } }, 'processors.files.log_dir'],
    [
      'a port that is not one',
      { processors: { fluent: { fluent_port: '70000' } } },
      'processors.fluent.fluent_port',
    ],
    [
      'a syslog address without a scheme',
      { processors: { syslog: { address: '10.0.0.1:514' } } },
      'processors.syslog.address',
    ],
    ['forward that is not a Go bool', { processors: { log: { forward: 'yes' } } }, 'processors.log.forward'],
    ['an S3 bucket name', { processors: { s3: { bucket: 'Not_A_Bucket' } } }, 'processors.s3.bucket'],
    [
      'a log stream with a colon',
      { processors: { cloudwatch: { log_stream: 'a:b' } } },
      'processors.cloudwatch.log_stream',
    ],
    ['a processor timeout', { processors: { log: { timeout: 'forever' } } }, 'processors.log.timeout'],
    ['a name that is no processor name', { processors: { '9lives': {} } }, 'processors.9lives'],
    [
      'files on an agentless job',
      { executor: 'http', executor_config: { url: 'http://127.0.0.1:1/' }, processors: { files: {} } },
      'processors.files',
    ],
    [
      'the local syslog on an agentless job',
      { executor: 'http', executor_config: { url: 'http://127.0.0.1:1/' }, processors: { syslog: {} } },
      'processors.syslog.address',
    ],
  ];
  for (const [what, body, field] of cases) {
    it(`400 for ${what}, naming ${field}`, async () => {
      const res = await stack.api('POST', '/v1/jobs', {
        name: 'invalid-processors',
        schedule: '@manually',
        executor: 'shell',
        executor_config: { command: 'true' },
        ...body,
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ field });
      expect(res.body.error).toMatch(new RegExp(`^${field.replace(/\./g, '\\.')}: `));
    });
  }

  it('a tagged http job may use files (it runs on an agent)', async () => {
    const res = await stack.api('POST', '/v1/jobs', {
      name: 'tagged-http-files',
      schedule: '@manually',
      executor: 'http',
      executor_config: { url: 'http://127.0.0.1:1/' },
      tags: { role: 'web' },
      processors: { files: {} },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  });
});
