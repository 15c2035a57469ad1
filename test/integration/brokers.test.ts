/**
 * The kafka, nats and rabbitmq executors against the real servers they talk to, started once for this file
 * on 127.0.0.1 (support/brokers.ts): Apache Kafka in KRaft mode, nats-server, rabbitmq-server. Jobs go
 * through the local stack's API and run on a tagged agent or, untagged, in the worker; what they publish
 * is read back from the broker (Kafka with its key, a NATS subscriber, a RabbitMQ queue get). Secrets come
 * from SSM (moto) through `{{ssm:...}}`.
 */
import * as net from 'node:net';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { connect as connectNats, type NatsConnection } from '@nats-io/transport-node';
import amqp from 'amqplib';
import { type Consumer, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Execution } from '../../shared/executions/execution.ts';
import { createExecutors } from '../../shared/executors/registry.ts';
import { validateJob } from '../../shared/jobs/job.ts';
import {
  BROKER_PASSWORD,
  BROKER_USER,
  ensureBrokers,
  freePort,
  type RunningKafka,
  type RunningNats,
  type RunningRabbitMq,
  startKafka,
  startNats,
  startRabbitMq,
} from './support/brokers.ts';
import { startTestStack, type TestStack, waitFor } from './support/stack.ts';

const AGENT = 'broker-agent';
const TAGS = { net: 'brokers' };
const SECRET = '/cronplane/test/broker-password';
const SECRET_NOTE = 'the-secret-note-7d1f';
const TERMINAL = new Set(['succeeded', 'failed', 'timeout', 'cancelled', 'lost', 'skipped']);

let stack: TestStack;
let kafka: RunningKafka;
let nats: RunningNats;
let rabbit: RunningRabbitMq;
let natsClient: NatsConnection;
let amqpConnection: amqp.ChannelModel;
let amqpChannel: amqp.Channel;
const stops: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  // The brokers start once they are installed (on a fresh machine ensure-brokers installs nats-server and
  // rabbitmq-server first); the stack starts meanwhile.
  const installed = ensureBrokers();
  const started = await Promise.allSettled([
    installed.then(async (libs) => {
      kafka = await startKafka(libs);
      stops.push(() => kafka.stop());
    }),
    installed
      .then(() => startNats())
      .then((n) => {
        nats = n;
        stops.push(() => n.stop());
      }),
    installed
      .then(() => startRabbitMq())
      .then((r) => {
        rabbit = r;
        stops.push(() => r.stop());
      }),
    startTestStack({ agents: [{ agentId: AGENT, nodeName: AGENT, tags: TAGS }] }).then((s) => {
      stack = s;
      stops.push(() => s.stop());
    }),
  ]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  for (const [name, value] of [
    [SECRET, BROKER_PASSWORD],
    ['/cronplane/test/broker-note', SECRET_NOTE],
  ] as const) {
    await stack.ctx.clients.ssm.send(
      new PutParameterCommand({ Name: name, Value: value, Type: 'SecureString', Overwrite: true }),
    );
  }
  await startKafkaReader();
  natsClient = await connectNats({ servers: nats.address, user: BROKER_USER, pass: BROKER_PASSWORD });
  amqpConnection = await amqp.connect(rabbit.url);
  amqpChannel = await amqpConnection.createChannel();
}, 180_000);

afterAll(async () => {
  await kafkaConsumer?.disconnect().catch(() => {});
  await natsClient?.close().catch(() => {});
  await amqpConnection?.close().catch(() => {});
  await Promise.allSettled(stops.map((stop) => stop()));
}, 60_000);

interface ApiExecution {
  status: string;
  node_name: string;
  output: string;
  reason: string | null;
  success: boolean;
}

/** Writes the job (201), runs it now (202) and answers its finished execution. */
async function run(job: Record<string, unknown>): Promise<ApiExecution> {
  const name = job.name as string;
  const created = await stack.api('POST', '/v1/jobs', { schedule: '@manually', ...job });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  expect((await stack.api('POST', `/v1/jobs/${name}/run`)).status).toBe(202);
  return waitFor(
    async () => {
      const list = (await stack.api<ApiExecution[]>('GET', `/v1/jobs/${name}/executions`)).body;
      const e = list?.[0];
      return e && TERMINAL.has(e.status) ? e : null;
    },
    60_000,
    `the run of ${name} to finish`,
  );
}

/** A TCP server on 127.0.0.1 that accepts connections, reads them, and never says a word. */
async function silentServer() {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.resume(); // reading, so that the client's close is seen
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    accepted: () => accepted,
    open: () => sockets.size,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * One consumer for the file, joined once (a group join takes seconds): it reads KAFKA_TOPICS, created
 * up front, from the beginning into `kafkaMessages`.
 */
const KAFKA_TOPICS = ['on-agent', 'in-worker', 'over-tls', 'outside'];
const kafkaMessages = new Map<string, Array<{ key: string | null; value: string }>>();
let kafkaConsumer: Consumer;

async function startKafkaReader(): Promise<void> {
  const client = new Kafka({ clientId: 'test-reader', brokers: [kafka.address], logLevel: logLevel.NOTHING });
  const admin = client.admin();
  await admin.connect();
  await admin.createTopics({ topics: KAFKA_TOPICS.map((topic) => ({ topic, numPartitions: 3 })) });
  await admin.disconnect();
  kafkaConsumer = client.consumer({ groupId: 'test-reader', maxWaitTimeInMs: 200 });
  await kafkaConsumer.connect();
  await kafkaConsumer.subscribe({ topics: KAFKA_TOPICS, fromBeginning: true });
  await kafkaConsumer.run({
    eachMessage: async ({ topic, message }) => {
      const list = kafkaMessages.get(topic) ?? [];
      list.push({ key: message.key?.toString() ?? null, value: message.value?.toString() ?? '' });
      kafkaMessages.set(topic, list);
    },
  });
}

/** The messages on `topic` once there are `count`. */
async function consumeKafka(
  topic: string,
  count: number,
): Promise<Array<{ key: string | null; value: string }>> {
  return waitFor(
    async () => ((kafkaMessages.get(topic)?.length ?? 0) >= count ? kafkaMessages.get(topic) : null),
    30_000,
    `${count} messages on ${topic}`,
  );
}

/** The next message on `subject`, subscribed before `act` runs. */
async function nextNatsMessage<T>(subject: string, act: () => Promise<T>, timeoutMs = 30_000) {
  const sub = natsClient.subscribe(subject, { max: 1, timeout: timeoutMs });
  await natsClient.flush();
  const got = (async () => {
    for await (const m of sub) return { subject: m.subject, data: m.string() };
    return null;
  })();
  const result = await act();
  return { result, message: await got.catch(() => null) };
}

async function getFromQueue(queue: string): Promise<amqp.GetMessage> {
  return waitFor(
    async () => {
      const m = await amqpChannel.get(queue, { noAck: true });
      return m || null;
    },
    10_000,
    `a message on queue ${queue}`,
  );
}

describe('kafka', () => {
  it('on an agent: produces the message with its key, and it is consumed back', async () => {
    const e = await run({
      name: 'kafka-agent',
      tags: TAGS,
      executor: 'kafka',
      executor_config: {
        brokerAddress: kafka.address,
        topic: 'on-agent',
        key: 'order-42',
        message: 'hello kafka',
      },
    });
    expect(e).toMatchObject({ status: 'succeeded', node_name: AGENT, reason: null });
    expect(e.output).toMatch(/^produced to topic on-agent partition \d offset 0\n$/);
    expect(await consumeKafka('on-agent', 1)).toEqual([{ key: 'order-42', value: 'hello kafka' }]);
  });

  it('in the worker: SASL SCRAM-SHA-512 with the password from SSM, secrets in key and message, redacted from the output', async () => {
    const e = await run({
      name: 'kafka-worker',
      executor: 'kafka',
      executor_config: {
        brokerAddress: kafka.saslAddress,
        topic: 'in-worker',
        key: '{{ssm:/cronplane/test/broker-note}}',
        message: 'note={{ssm:/cronplane/test/broker-note}}',
        saslUsername: BROKER_USER,
        saslPassword: `{{ssm:${SECRET}}}`,
        saslMechanism: 'sha512',
        debug: 'true',
      },
    });
    expect(e, e.reason ?? '').toMatchObject({ status: 'succeeded', node_name: 'worker' });
    expect(e.output).toContain(`sasl: scram-sha-512 as ${BROKER_USER}`);
    // debug shows the key, resolved from SSM: redacted in the output, as every resolved value is
    expect(e.output).toContain('key: [redacted]\n');
    expect(e.output).not.toContain(BROKER_PASSWORD);
    expect(e.output).not.toContain(SECRET_NOTE);
    expect(await consumeKafka('in-worker', 1)).toEqual([{ key: SECRET_NOTE, value: `note=${SECRET_NOTE}` }]);
  });

  it("TLS (Dkron's tlsEnable): a self-signed certificate fails the run unless tlsInsecureSkipVerify", async () => {
    const cfg = { brokerAddress: kafka.tlsAddress, topic: 'over-tls', key: 'tls', message: 'encrypted' };
    const verified = await run({
      name: 'kafka-tls',
      executor: 'kafka',
      executor_config: { ...cfg, tlsEnable: 'true' },
    });
    expect(verified.status).toBe('failed');
    expect(verified.reason).toBe(
      `producing to topic over-tls on ${kafka.tlsAddress} failed: Connection error: self-signed certificate`,
    );
    const unverified = await run({
      name: 'kafka-tls-unverified',
      executor: 'kafka',
      executor_config: { ...cfg, tlsEnable: 'true', tlsInsecureSkipVerify: 'true' },
    });
    expect(unverified, unverified.reason ?? '').toMatchObject({ status: 'succeeded' });
    expect(await consumeKafka('over-tls', 1)).toEqual([{ key: 'tls', value: 'encrypted' }]);
  });

  it('fails clearly on a wrong password and on a broker that does not answer', async () => {
    const refused = await run({
      name: 'kafka-wrong-password',
      executor: 'kafka',
      executor_config: {
        brokerAddress: kafka.saslAddress,
        topic: 'never',
        saslUsername: BROKER_USER,
        saslPassword: 'not-the-password',
        saslMechanism: 'sha256',
      },
    });
    expect(refused.status).toBe('failed');
    expect(refused.reason).toMatch(/SCRAM.*authentication failed/i);
    const port = await freePort();
    const down = await run({
      name: 'kafka-down',
      executor: 'kafka',
      executor_config: { brokerAddress: `127.0.0.1:${port}`, topic: 'never', message: 'x' },
    });
    expect(down).toMatchObject({ status: 'failed', node_name: 'worker' });
    expect(down.reason).toBe(
      `producing to topic never on 127.0.0.1:${port} failed: Connection error: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });
});

describe('nats', () => {
  it('on an agent: publishes with userName/password, and a subscriber gets it', async () => {
    const { result, message } = await nextNatsMessage('jobs.agent', () =>
      run({
        name: 'nats-agent',
        tags: TAGS,
        executor: 'nats',
        executor_config: {
          url: nats.url,
          subject: 'jobs.agent',
          message: 'hello nats',
          userName: BROKER_USER,
          password: BROKER_PASSWORD,
        },
      }),
    );
    expect(result).toMatchObject({ status: 'succeeded', node_name: AGENT, reason: null });
    expect(result.output).toBe(`published to jobs.agent on ${nats.address}\n`);
    expect(message).toEqual({ subject: 'jobs.agent', data: 'hello nats' });
  });

  it('in the worker: credentials in the URL, the password from SSM', async () => {
    const { result, message } = await nextNatsMessage('jobs.worker', () =>
      run({
        name: 'nats-worker',
        executor: 'nats',
        executor_config: {
          url: `nats://${BROKER_USER}:{{ssm:${SECRET}}}@${nats.address}`,
          subject: 'jobs.worker',
          message: 'from the worker',
        },
      }),
    );
    expect(result, result.reason ?? '').toMatchObject({
      status: 'succeeded',
      node_name: 'worker',
    });
    expect(message).toEqual({ subject: 'jobs.worker', data: 'from the worker' });
  });

  it('fails when the server refuses the publish (where Dkron reports success), or cannot be reached', async () => {
    const { result, message } = await nextNatsMessage(
      'denied.x',
      () =>
        run({
          name: 'nats-denied',
          executor: 'nats',
          executor_config: {
            url: nats.url,
            subject: 'denied.x',
            userName: 'limited',
            password: BROKER_PASSWORD,
          },
        }),
      2_000,
    );
    expect(result).toMatchObject({
      status: 'failed',
      reason: `the NATS server at ${nats.address} refused the message: Permissions Violation for Publish to "denied.x"`,
    });
    expect(message).toBeNull();
    const port = await freePort();
    const down = await run({
      name: 'nats-down',
      executor: 'nats',
      executor_config: { url: `nats://127.0.0.1:${port}`, subject: 'x' },
    });
    expect(down.status).toBe('failed');
    expect(down.reason).toMatch(
      new RegExp(`^connecting to NATS at 127.0.0.1:${port} failed: .*ECONNREFUSED`),
    );
  });
});

describe('rabbitmq', () => {
  it('on an agent: declares the queue and publishes with the properties asked for', async () => {
    const e = await run({
      name: 'rabbitmq-agent',
      tags: TAGS,
      executor: 'rabbitmq',
      executor_config: {
        url: rabbit.url,
        'queue.name': 'agent-jobs',
        'queue.create': 'true',
        'queue.durable': 'true',
        'message.body': '{"hello":"rabbit"}',
        'message.content_type': 'application/json',
        'message.delivery_mode': '2',
        'message.messageId': 'msg-1',
      },
    });
    expect(e).toMatchObject({ status: 'succeeded', node_name: AGENT, reason: null });
    expect(e.output).toBe(
      `published to exchange '' with routing key 'agent-jobs' on ${rabbit.address} (queue 'agent-jobs' declared)\n`,
    );
    const m = await getFromQueue('agent-jobs');
    expect(m.content.toString()).toBe('{"hello":"rabbit"}');
    expect(m.properties).toMatchObject({
      contentType: 'application/json',
      deliveryMode: 2,
      messageId: 'msg-1',
    });
  });

  it("in the worker: the password from SSM, a base64 body, Dkron's amq.default", async () => {
    await amqpChannel.assertQueue('worker-jobs');
    const e = await run({
      name: 'rabbitmq-worker',
      executor: 'rabbitmq',
      executor_config: {
        url: `amqp://${BROKER_USER}:{{ssm:${SECRET}}}@${rabbit.address}/`,
        exchange: 'amq.default',
        'queue.name': 'worker-jobs',
        'message.base64Body': Buffer.from('binary \u0000 body').toString('base64'),
      },
    });
    expect(e, e.reason ?? '').toMatchObject({ status: 'succeeded', node_name: 'worker' });
    const m = await getFromQueue('worker-jobs');
    expect(m.content.toString()).toBe('binary \u0000 body');
    expect(m.properties.contentType).toBe('text/plain');
  });

  it('fails when no queue takes the message (Dkron drops it silently), or the broker cannot be reached', async () => {
    const lost = await run({
      name: 'rabbitmq-unroutable',
      executor: 'rabbitmq',
      executor_config: { url: rabbit.url, 'queue.name': 'no-such-queue', 'message.body': 'x' },
    });
    expect(lost.status).toBe('failed');
    expect(lost.reason).toMatch(/no queue took the message .*'no-such-queue'.*312 NO_ROUTE/);
    expect(lost.reason).not.toContain(BROKER_PASSWORD);
    const port = await freePort();
    const down = await run({
      name: 'rabbitmq-down',
      executor: 'rabbitmq',
      executor_config: { url: `amqp://u:p@127.0.0.1:${port}/`, 'queue.name': 'q', 'message.body': 'x' },
    });
    expect(down).toMatchObject({
      status: 'failed',
      reason: `connecting to RabbitMQ at 127.0.0.1:${port} failed: connect ECONNREFUSED 127.0.0.1:${port}`,
    });
  });
});

describe('every broker executor', () => {
  let refusedCount = 0;
  it.each([
    [
      'kafka',
      { brokerAddress: 'k:9092', topic: 'not a topic' },
      'executor_config.topic',
      /not a Kafka topic name/,
    ],
    [
      'kafka',
      { brokerAddress: 'k:9092', topic: 't', saslUsername: 'u', saslPassword: 'p', saslMechanism: 'md5' },
      'executor_config.saslMechanism',
      /'md5' is not supported/,
    ],
    ['kafka', { brokerAddress: 'k', topic: 't' }, 'executor_config.brokerAddress', /needs a port/],
    ['nats', { url: 'nats://n', subject: 'orders.*' }, 'executor_config.subject', /no wildcards/],
    ['nats', { subject: 's' }, 'executor_config.url', /is required for the nats executor/],
    [
      'nats',
      { url: 'nats://n', subject: '{{ssm:/cronplane/test/subject}}' },
      'executor_config.subject',
      /not resolved here/,
    ],
    [
      'rabbitmq',
      { url: 'amqp://mq', 'queue.name': 'q', 'message.delivery_mode': 'persistent' },
      'executor_config.message.delivery_mode',
      /must be 1 \(transient\) or 2 \(persistent\)/,
    ],
    [
      'rabbitmq',
      { url: 'amqp://mq', 'queue.name': 'q', 'queue.durable': 'yes' },
      'executor_config.queue.durable',
      /true or false/,
    ],
    ['rabbitmq', { url: 'mq:5672', 'queue.name': 'q' }, 'executor_config.url', /amqp:\/\/ or amqps:\/\//],
  ])(
    '%s: a config it would refuse is a 400 naming the key, and is not stored (%j)',
    async (executor, cfg, field, rule) => {
      // A name per case, so that one stored by mistake fails only its own case.
      const name = `refused-${executor}-${field.replace(/[^a-z]/gi, '-').toLowerCase()}-${refusedCount++}`;
      const res = await stack.api('POST', '/v1/jobs', {
        name,
        schedule: '@manually',
        executor,
        executor_config: cfg,
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ field, rule: expect.stringMatching(rule) });
      expect((await stack.api('GET', `/v1/jobs/${name}`)).status).toBe(404);
    },
  );

  it('times out against a server that accepts and never answers; kafka and rabbitmq close their connection', async () => {
    // One silent server per executor, to count each one's connections.
    const silent = await Promise.all(['kafka', 'nats', 'rabbitmq'].map(() => silentServer()));
    try {
      const executors = createExecutors({ clients: stack.ctx.clients });
      const job = (executor: string, executor_config: Record<string, string>) => ({
        ...validateJob({ name: 'silent', schedule: '@manually', executor: 'custom' }),
        executor,
        executor_config: { timeout: '1s', ...executor_config },
      });
      const execution = { executionId: 'e', scheduledAt: 1, attempt: 1 } as Execution;
      const signal = new AbortController().signal;
      const [k, n, r] = silent.map((s) => s.address);
      const started = Date.now();
      const results = await Promise.all([
        executors.kafka!.run(job('kafka', { brokerAddress: k!, topic: 't' }), execution, signal),
        executors.nats!.run(job('nats', { url: `nats://${n}`, subject: 's' }), execution, signal),
        executors.rabbitmq!.run(
          job('rabbitmq', { url: `amqp://${r}`, 'queue.name': 'q' }),
          execution,
          signal,
        ),
      ]);
      expect(Date.now() - started).toBeLessThan(5_000);
      for (const result of results)
        expect(result).toMatchObject({ status: 'timeout', reason: 'timed out after 1s' });
      for (const s of silent) expect(s.accepted()).toBeGreaterThan(0); // they did connect
      // nats.js keeps a connection that never completed (see nats.ts): only the other two are checked.
      await waitFor(
        async () => silent[0]!.open() === 0 && silent[2]!.open() === 0,
        10_000,
        'kafka and rabbitmq to close their connections',
      );
    } finally {
      await Promise.all(silent.map((s) => s.close()));
    }
  });

  it("the worker's allow-list keeps a job from brokers outside it: refused before anything is sent", async () => {
    const worker = createExecutors({
      clients: stack.ctx.clients,
      secretsPath: '/cronplane/',
      workerAllow: {
        lambda: [],
        sqs: [],
        events: [],
        http: null,
        kafka: ['b-*.internal:9096'],
        nats: [],
        rabbitmq: [],
      },
    });
    const job = (executor: string, executor_config: Record<string, string>) => ({
      ...validateJob({ name: 'outside', schedule: '@manually', executor: 'custom' }),
      executor,
      executor_config,
    });
    const execution = { executionId: 'e', scheduledAt: 1, attempt: 1 } as Execution;
    const signal = new AbortController().signal;
    await amqpChannel.assertQueue('outside-jobs');
    const { result, message } = await nextNatsMessage(
      'outside.x',
      () =>
        Promise.all([
          worker.kafka!.run(
            job('kafka', { brokerAddress: kafka.address, topic: 'outside' }),
            execution,
            signal,
          ),
          worker.nats!.run(
            job('nats', {
              url: `nats://${BROKER_USER}:{{ssm:${SECRET}}}@${nats.address}`,
              subject: 'outside.x',
            }),
            execution,
            signal,
          ),
          worker.rabbitmq!.run(
            job('rabbitmq', { url: rabbit.url, 'queue.name': 'outside-jobs', 'message.body': 'x' }),
            execution,
            signal,
          ),
        ]),
      1_000,
    );
    const [k, n, r] = result;
    expect(k).toMatchObject({
      status: 'failed',
      reason: `executor_config.brokerAddress: '${kafka.address}' is not in the worker's allow-list (CRONPLANE_WORKER_ALLOW kafka: b-*.internal:9096)`,
    });
    // Checked after resolving the URL's secret, which the reason does not show.
    expect(n).toMatchObject({
      status: 'failed',
      reason: `executor_config.url: '${nats.address}' is not in the worker's allow-list (CRONPLANE_WORKER_ALLOW nats: none)`,
    });
    expect(r?.reason).toMatch(/^executor_config\.url: '127\.0\.0\.1:\d+' is not in the worker's allow-list/);
    expect(message).toBeNull();
    expect(await amqpChannel.get('outside-jobs')).toBe(false);
    expect(kafkaMessages.get('outside')).toBeUndefined();
  });
});
