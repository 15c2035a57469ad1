/** The broker executors' config rules (pure): what each parses, what it refuses and under which key. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../../agent/stack-file.ts';
import { ValidationError } from '../../../../shared/errors.ts';
import {
  checkBrokerConfig,
  describeError,
  parseFlag,
  parseHostPort,
  writtenBrokers,
} from '../../../../shared/executors/broker.ts';
import { KAFKA, parseKafkaConfig } from '../../../../shared/executors/kafka.ts';
import { NATS, parseNatsConfig } from '../../../../shared/executors/nats.ts';
import { parseRabbitMqConfig, RABBITMQ } from '../../../../shared/executors/rabbitmq.ts';
import {
  brokerTargetRefusal,
  parseWorkerAllowList,
  type WorkerAllowList,
} from '../../../../shared/executors/targets.ts';
import { checkExecutorTrust } from '../../../../shared/jobs/executor-config.ts';
import { validateJob } from '../../../../shared/jobs/job.ts';

/** The key and rule of what `parse` throws. */
function refusal(parse: () => unknown): { key: string; problem: string } {
  try {
    parse();
  } catch (error) {
    const e = error as { key?: string; problem?: string; message: string };
    expect(e.message).toMatch(/^executor_config\./);
    return { key: e.key ?? '', problem: e.problem ?? '' };
  }
  throw new Error('expected a refusal');
}

describe('shared parsing', () => {
  it('reads flags as Go does, empty as the default, anything else refused', () => {
    for (const t of ['true', 'TRUE', 'True', 't', 'T', '1']) expect(parseFlag({ f: t }, 'f')).toBe(true);
    for (const f of ['false', 'FALSE', 'False', 'f', 'F', '0'])
      expect(parseFlag({ f }, 'f', true)).toBe(false);
    expect(parseFlag({}, 'f', true)).toBe(true);
    expect(refusal(() => parseFlag({ f: 'yes' }, 'f'))).toEqual({
      key: 'f',
      problem: "must be true or false, not 'yes'",
    });
  });

  it('reads host:port, [v6]:port, and a bare host when there is a default port', () => {
    expect(parseHostPort('b-1.msk.example:9096', 'k', null)).toEqual({ host: 'b-1.msk.example', port: 9096 });
    expect(parseHostPort('[::1]:9092', 'k', null)).toEqual({ host: '::1', port: 9092 });
    expect(parseHostPort('nats.local', 'k', 4222)).toEqual({ host: 'nats.local', port: 4222 });
    expect(refusal(() => parseHostPort('kafka', 'k', null)).problem).toMatch(/needs a port/);
    expect(refusal(() => parseHostPort('kafka:0', 'k', null)).problem).toMatch(/invalid port '0'/);
    expect(refusal(() => parseHostPort('kafka:x', 'k', null)).problem).toMatch(/invalid port/);
    expect(refusal(() => parseHostPort('bad host:1', 'k', null)).problem).toMatch(/no valid host/);
  });

  it('describes an error with the causes it does not already say', () => {
    const inner = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(describeError(new Error('connecting failed', { cause: inner }))).toBe(
      'connecting failed: connect ECONNREFUSED 127.0.0.1:1',
    );
    expect(describeError(new Error('x: boom', { cause: new Error('boom') }))).toBe('x: boom');
  });
});

describe('kafka config', () => {
  const base = { brokerAddress: 'k1:9092, k2:9093', topic: 'jobs.events' };

  it('reads brokers, topic, key, message and the defaults', () => {
    expect(parseKafkaConfig({ ...base, key: 'k', message: 'm' })).toEqual({
      timeoutMs: 30_000,
      brokers: [
        { host: 'k1', port: 9092 },
        { host: 'k2', port: 9093 },
      ],
      topic: 'jobs.events',
      key: 'k',
      message: 'm',
      tls: null,
      sasl: null,
      debug: false,
    });
    expect(parseKafkaConfig(base)).toMatchObject({ key: null, message: '' });
  });

  it("takes Dkron's SASL mechanisms (sha256, sha512) and the standard names, TLS and debug", () => {
    const sasl = { saslUsername: 'u', saslPassword: 'p' };
    expect(parseKafkaConfig({ ...base, ...sasl, saslMechanism: 'sha512' }).sasl).toEqual({
      mechanism: 'scram-sha-512',
      username: 'u',
      password: 'p',
    });
    expect(parseKafkaConfig({ ...base, ...sasl, saslMechanism: 'sha256' }).sasl?.mechanism).toBe(
      'scram-sha-256',
    );
    expect(parseKafkaConfig({ ...base, ...sasl, saslMechanism: 'SCRAM-SHA-256' }).sasl?.mechanism).toBe(
      'scram-sha-256',
    );
    expect(parseKafkaConfig({ ...base, ...sasl, saslMechanism: 'PLAIN' }).sasl?.mechanism).toBe('plain');
    expect(parseKafkaConfig({ ...base, tlsEnable: 'true', tlsInsecureSkipVerify: 'true' }).tls).toEqual({
      insecureSkipVerify: true,
    });
    expect(parseKafkaConfig({ ...base, debug: 'yes' }).debug).toBe(true);
    expect(parseKafkaConfig({ ...base, debug: 'false' }).debug).toBe(false);
    expect(parseKafkaConfig({ ...base, timeout: '5s' }).timeoutMs).toBe(5_000);
  });

  it.each([
    [{ topic: 't' }, 'brokerAddress', /is required/],
    [{ brokerAddress: ' , ', topic: 't' }, 'brokerAddress', /names no broker/],
    [{ brokerAddress: 'k1', topic: 't' }, 'brokerAddress', /needs a port/],
    [{ brokerAddress: 'k1:9092' }, 'topic', /is required/],
    [{ ...base, topic: 'has space' }, 'topic', /not a Kafka topic name/],
    [{ ...base, topic: '..' }, 'topic', /not a Kafka topic name/],
    [{ ...base, tlsEnable: 'yes' }, 'tlsEnable', /true or false/],
    [{ ...base, tlsInsecureSkipVerify: 'true' }, 'tlsInsecureSkipVerify', /needs tlsEnable/],
    [{ ...base, saslUsername: 'u' }, 'saslPassword', /required with saslUsername/],
    [{ ...base, saslPassword: 'p' }, 'saslUsername', /required with saslPassword/],
    [{ ...base, saslUsername: 'u', saslPassword: 'p' }, 'saslMechanism', /is required .*sha256, sha512/],
    [
      { ...base, saslUsername: 'u', saslPassword: 'p', saslMechanism: 'gssapi' },
      'saslMechanism',
      /not supported/,
    ],
    [{ ...base, saslMechanism: 'sha512' }, 'saslMechanism', /needs saslUsername and saslPassword/],
    [{ ...base, timeout: 'soon' }, 'timeout', /neither a number/],
  ])('refuses %j under %s', (cfg, key, problem) => {
    const r = refusal(() => parseKafkaConfig(cfg));
    expect(r.key).toBe(key);
    expect(r.problem).toMatch(problem);
  });
});

describe('nats config', () => {
  it('reads servers (URL list, bare host:port, default port), subject, message and credentials', () => {
    expect(
      parseNatsConfig({
        url: 'nats://n1:4223, tls://n2, n3',
        subject: 'jobs.done',
        message: 'm',
        userName: 'u',
        password: 'p',
      }),
    ).toEqual({
      timeoutMs: 30_000,
      servers: [
        { host: 'n1', port: 4223 },
        { host: 'n2', port: 4222 },
        { host: 'n3', port: 4222 },
      ],
      tls: true,
      subject: 'jobs.done',
      message: 'm',
      auth: { user: 'u', pass: 'p' },
      debug: false,
    });
  });

  it('takes user:password or a token from the URL, and userName/password over them', () => {
    expect(parseNatsConfig({ url: 'nats://a%40b:p%3Aw@n1', subject: 's' }).auth).toEqual({
      user: 'a@b',
      pass: 'p:w',
    });
    expect(parseNatsConfig({ url: 'nats://t0ken@n1', subject: 's' }).auth).toEqual({ token: 't0ken' });
    expect(parseNatsConfig({ url: 'nats://x:y@n1', subject: 's', userName: 'u' }).auth).toEqual({
      user: 'u',
      pass: '',
    });
    expect(parseNatsConfig({ url: 'n1', subject: 's' }).auth).toBeNull();
  });

  it.each([
    [{ subject: 's' }, 'url', /is required/],
    [{ url: 'http://n1', subject: 's' }, 'url', /nats:\/\/, tls:\/\/ or host:port/],
    [{ url: 'nats://n1/path', subject: 's' }, 'url', /must not have a path/],
    [{ url: 'nats://n1:99999', subject: 's' }, 'url', /is not a URL/],
    [{ url: 'n1' }, 'subject', /is required/],
    [{ url: 'n1', subject: 'a.*' }, 'subject', /no wildcards/],
    [{ url: 'n1', subject: 'a.>' }, 'subject', /no wildcards/],
    [{ url: 'n1', subject: 'a..b' }, 'subject', /tokens separated/],
    [{ url: 'n1', subject: 'a b' }, 'subject', /no spaces/],
    [{ url: 'n1', subject: 's', password: 'p' }, 'userName', /required with password/],
  ])('refuses %j under %s', (cfg, key, problem) => {
    const r = refusal(() => parseNatsConfig(cfg));
    expect(r.key).toBe(key);
    expect(r.problem).toMatch(problem);
  });

  it('never quotes the credentials of a URL it refuses', () => {
    expect(
      refusal(() => parseNatsConfig({ url: 'nats://u:hunter2@n1:0', subject: 's' })).problem,
    ).not.toContain('hunter2');
  });
});

describe('rabbitmq config', () => {
  const base = { url: 'amqp://u:p@mq.local/vh', 'queue.name': 'jobs' };

  it("reads Dkron's keys with their defaults", () => {
    const spec = parseRabbitMqConfig({ ...base, 'message.body': 'hello' });
    expect(spec).toMatchObject({
      timeoutMs: 30_000,
      url: 'amqp://u:p@mq.local/vh',
      broker: { host: 'mq.local', port: 5672 },
      exchange: '',
      queue: 'jobs',
      declare: null,
      contentType: 'text/plain',
      deliveryMode: null,
      messageId: '',
      mandatory: true,
    });
    expect(spec.body.toString()).toBe('hello');
    const full = parseRabbitMqConfig({
      url: 'amqps://mq.example:5999',
      exchange: 'events',
      'queue.name': 'q',
      'queue.create': 'true',
      'queue.durable': 'true',
      'queue.auto_delete': '1',
      'queue.exclusive': 'false',
      'message.base64Body': 'aGk=',
      'message.content_type': 'application/json',
      'message.delivery_mode': '2',
      'message.messageId': 'm-1',
      'message.mandatory': 'false',
    });
    expect(full).toMatchObject({
      broker: { host: 'mq.example', port: 5999 },
      exchange: 'events',
      declare: { durable: true, autoDelete: true },
      contentType: 'application/json',
      deliveryMode: 2,
      messageId: 'm-1',
      mandatory: false,
    });
    expect(full.body.toString()).toBe('hi');
    expect(parseRabbitMqConfig({ ...base, url: 'amqps://mq' }).broker.port).toBe(5671);
    // Dkron's example names the default exchange so.
    expect(parseRabbitMqConfig({ ...base, exchange: 'amq.default' }).exchange).toBe('');
  });

  it.each([
    [{ 'queue.name': 'q' }, 'url', /is required/],
    [{ ...base, url: 'http://mq' }, 'url', /amqp:\/\/ or amqps:\/\//],
    [{ url: 'amqp://mq' }, 'queue.name', /is required/],
    [{ ...base, 'queue.name': 'q'.repeat(256) }, 'queue.name', /255 bytes/],
    [{ ...base, 'queue.create': 'yes' }, 'queue.create', /true or false/],
    [{ ...base, 'queue.exclusive': 'true' }, 'queue.exclusive', /deleted, with the message/],
    [
      { ...base, 'message.body': 'a', 'message.base64Body': 'YQ==' },
      'message.base64Body',
      /not both|together/,
    ],
    [{ ...base, 'message.base64Body': 'not base64!' }, 'message.base64Body', /not standard base64/],
    [{ ...base, 'message.base64Body': 'YQ' }, 'message.base64Body', /not standard base64/],
    [{ ...base, 'message.delivery_mode': '3' }, 'message.delivery_mode', /1 \(transient\) or 2/],
    [{ ...base, 'message.mandatory': 'nope' }, 'message.mandatory', /true or false/],
  ])('refuses %j under %s', (cfg, key, problem) => {
    const r = refusal(() => parseRabbitMqConfig(cfg));
    expect(r.key).toBe(key);
    expect(r.problem).toMatch(problem);
  });
});

describe('write-time checks', () => {
  it('takes {{ssm:...}} in the secret keys (with a stand-in), refuses it anywhere else', () => {
    expect(() =>
      checkBrokerConfig(KAFKA, {
        brokerAddress: '{{ssm:/cronplane/kafka/brokers}}',
        topic: 't',
        saslUsername: 'u',
        saslPassword: '{{ssm:/cronplane/kafka/pw}}',
        saslMechanism: 'sha512',
      }),
    ).not.toThrow();
    expect(() =>
      checkBrokerConfig(RABBITMQ, { url: 'amqps://u:{{ssm:/cronplane/mq/pw}}@mq', 'queue.name': 'q' }),
    ).not.toThrow();
    const r = refusal(() => checkBrokerConfig(NATS, { url: 'n1', subject: '{{ssm:/cronplane/s}}' }));
    expect(r.key).toBe('subject');
    expect(r.problem).toMatch(/not resolved here .*url, message, userName, password/);
    // The other rules still apply around a reference.
    expect(
      refusal(() => checkBrokerConfig(KAFKA, { brokerAddress: '{{ssm:/cronplane/b}}', topic: 'a b' })).key,
    ).toBe('topic');
  });

  it('knows the written brokers unless the broker key holds a reference', () => {
    expect(writtenBrokers(KAFKA, { brokerAddress: 'k:1', topic: 't' })).toEqual([{ host: 'k', port: 1 }]);
    expect(writtenBrokers(KAFKA, { brokerAddress: '{{ssm:/cronplane/b}}', topic: 't' })).toBeNull();
    expect(writtenBrokers(NATS, { url: 'nats://u:{{ssm:/cronplane/p}}@n', subject: 's' })).toBeNull();
    expect(writtenBrokers(RABBITMQ, { url: 'amqp://mq:1', 'queue.name': 'q' })).toEqual([
      { host: 'mq', port: 1 },
    ]);
  });

  it('names executor_config.<key> in the ValidationError of validateJob', () => {
    const job = (executor: string, executor_config: Record<string, string>) => () =>
      validateJob({ name: 'j', schedule: '@manually', executor, executor_config });
    for (const [executor, cfg, field] of [
      ['kafka', { brokerAddress: 'k:9092', topic: 'bad topic' }, 'executor_config.topic'],
      ['nats', { url: 'n', subject: 'a.>' }, 'executor_config.subject'],
      [
        'rabbitmq',
        { url: 'amqp://mq', 'queue.name': 'q', 'message.delivery_mode': '9' },
        'executor_config.message.delivery_mode',
      ],
    ] as const) {
      expect(job(executor, cfg)).toThrow(ValidationError);
      try {
        job(executor, cfg)();
      } catch (error) {
        expect((error as ValidationError).field).toBe(field);
      }
    }
  });
});

describe('the worker allow-list for brokers', () => {
  const list = (json: string) => parseWorkerAllowList(json) as WorkerAllowList;

  it('is unrestricted when the kind is left out, and matches host:port globs case-insensitively', () => {
    const allow = list('{"kafka":["b-*.msk.example:9096"],"nats":[]}');
    expect(brokerTargetRefusal('rabbitmq', [{ host: 'anything', port: 1 }], allow)).toBeNull();
    expect(brokerTargetRefusal('kafka', [{ host: 'B-1.MSK.example', port: 9096 }], allow)).toBeNull();
    expect(
      brokerTargetRefusal(
        'kafka',
        [
          { host: 'b-1.msk.example', port: 9096 },
          { host: 'evil.example', port: 9096 },
        ],
        allow,
      ),
    ).toMatch(/'evil.example:9096' is not in the worker's allow-list \(CRONPLANE_WORKER_ALLOW kafka: b-\*/);
    expect(brokerTargetRefusal('kafka', [{ host: 'b-1.msk.example', port: 9092 }], allow)).toMatch(/not in/);
    expect(brokerTargetRefusal('nats', [{ host: 'n', port: 4222 }], allow)).toMatch(/nats: none/);
    expect(brokerTargetRefusal('kafka', [{ host: 'x', port: 1 }], null)).toBeNull();
    expect(
      brokerTargetRefusal('kafka', [{ host: '::1', port: 9 }], list('{"kafka":["[::1]:9"]}')),
    ).toBeNull();
  });

  it('refuses an untagged (worker) job to a broker outside it when written, naming the key; tagged jobs run on agents', () => {
    const policy = { secretsPath: '/cronplane/', workerAllow: list('{"rabbitmq":["mq.internal:5671"]}') };
    const job = (cfg: Record<string, string>, tags: Record<string, string> = {}) => ({
      executor: 'rabbitmq',
      executor_config: { 'queue.name': 'q', ...cfg },
      tags,
    });
    expect(() => checkExecutorTrust(job({ url: 'amqps://u:p@mq.internal' }), policy)).not.toThrow();
    let thrown: unknown;
    try {
      checkExecutorTrust(job({ url: 'amqps://u:p@elsewhere.example' }), policy);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ValidationError);
    expect((thrown as ValidationError).field).toBe('executor_config.url');
    expect((thrown as ValidationError).message).not.toContain(':p@');
    expect(() =>
      checkExecutorTrust(job({ url: 'amqps://elsewhere.example' }, { dc: 'a' }), policy),
    ).not.toThrow();
    // Named through a reference: the worker checks what it resolves to.
    expect(() => checkExecutorTrust(job({ url: '{{ssm:/cronplane/mq/url}}' }), policy)).not.toThrow();
    // and the secrets path applies to every key
    expect(() => checkExecutorTrust(job({ url: '{{ssm:/other/url}}' }), policy)).toThrow(
      /outside the secrets path/,
    );
  });
});

describe('start-up cost', () => {
  it('an agent that is set up (context, executors) has loaded none of the broker clients', async () => {
    // A fresh process: the clients are imported by the first run that needs one (idle RSS).
    const script = `
      import { createRequire } from 'node:module';
      const { createContext } = await import('./shared/context.ts');
      const { Agent } = await import('./agent/agent.ts');
      const ctx = createContext(${JSON.stringify({
        AWS_REGION: 'eu-west-1',
        AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
        CRONPLANE_JOBS_TABLE: 'jobs',
        CRONPLANE_EXECUTIONS_TABLE: 'executions',
        CRONPLANE_AGENTS_TABLE: 'agents',
        CRONPLANE_CONTROL_TABLE: 'control',
        CRONPLANE_DEFAULT_QUEUE_URL: 'http://127.0.0.1:9/000000000000/default',
      })});
      new Agent(ctx, { agentId: 'a' });
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify(['kafkajs', '@nats-io', 'amqplib', '@aws-sdk/client-dynamodb'].filter((p) => loaded.some((f) => f.includes('/node_modules/' + p + '/')))));
    `;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: REPO_ROOT },
    );
    // The check sees what is loaded (the DynamoDB client is), and no broker client is.
    expect(JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]')).toEqual(['@aws-sdk/client-dynamodb']);
  }, 60_000);
});
