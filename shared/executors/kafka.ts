/**
 * Dkron's Kafka executor: produces one message per run (kafkajs, acks from all in-sync replicas, as
 * Dkron's `WaitForAll`). `executor_config`:
 *   - `brokerAddress` (required): comma list of `host:port` bootstrap brokers
 *   - `topic` (required): Kafka's topic name rules (1–249 of `a-z A-Z 0-9 . _ -`); created on first use if
 *     the cluster auto-creates topics
 *   - `key`: the message key (empty or absent: no key, so the partitioner spreads messages; Dkron sends an
 *     empty key), `message`: the value
 *   - `tlsEnable` (`true`: TLS with the system's CAs), `tlsInsecureSkipVerify` (needs `tlsEnable`)
 *   - `saslUsername` + `saslPassword` (both or neither) with `saslMechanism`: Dkron's `sha256` / `sha512`
 *     (SCRAM-SHA-256 / -512, what Amazon MSK's SASL/SCRAM listener takes, over TLS on 9096), or
 *     `SCRAM-SHA-256`, `SCRAM-SHA-512`, `PLAIN`
 *   - `debug`: any value but empty or false adds the client's log to the output
 *   - `timeout`: seconds or a Go duration (default 30 s) for the whole run
 *
 * `{{ssm:...}}` resolves in `brokerAddress`, `key`, `message`, `saslUsername` and `saslPassword`. Output:
 * `produced to topic T partition P offset O`. A broker that cannot be reached fails the run after the
 * client's few retries (about 5 s) with the connection error as its reason.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { ISocketFactory, SASLOptions } from 'kafkajs';
import type { Execution } from '../executions/execution.ts';
import type { OutputBuffer } from '../executions/output-buffer.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import {
  type BrokerDefinition,
  type BrokerExecutorOptions,
  DEFAULT_BROKER_TIMEOUT_MS,
  parseDebug,
  parseFlag,
  parseHostPort,
  requiredKey,
  runBrokerJob,
  untilAborted,
} from './broker.ts';
import { ExecutorConfigError, parseTimeout, succeededResult } from './common.ts';
import type { Executor, ExecutorResult } from './executor.ts';
import { withSecretScope } from './secrets.ts';
import { type BrokerAddress, formatBroker } from './targets.ts';

export const SASL_MECHANISMS = {
  sha256: 'scram-sha-256',
  sha512: 'scram-sha-512',
  'scram-sha-256': 'scram-sha-256',
  'scram-sha-512': 'scram-sha-512',
  plain: 'plain',
} as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[keyof typeof SASL_MECHANISMS];

export interface KafkaSpec {
  timeoutMs: number;
  brokers: BrokerAddress[];
  topic: string;
  key: string | null;
  message: string;
  tls: { insecureSkipVerify: boolean } | null;
  sasl: { mechanism: SaslMechanism; username: string; password: string } | null;
  debug: boolean;
}

const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

/** Validates a kafka job's `executor_config` (resolved). Throws ExecutorConfigError. */
export function parseKafkaConfig(cfg: Readonly<Record<string, string>>): KafkaSpec {
  const timeoutMs = parseTimeout(cfg.timeout, DEFAULT_BROKER_TIMEOUT_MS);
  const brokers = requiredKey(cfg, 'brokerAddress', 'kafka')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => parseHostPort(part, 'brokerAddress', null));
  if (brokers.length === 0) throw new ExecutorConfigError('brokerAddress', 'names no broker');
  const topic = requiredKey(cfg, 'topic', 'kafka');
  if (!TOPIC.test(topic) || topic === '.' || topic === '..') {
    throw new ExecutorConfigError(
      'topic',
      `'${topic}' is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -, not . or ..)`,
    );
  }
  const tlsEnable = parseFlag(cfg, 'tlsEnable');
  const insecureSkipVerify = parseFlag(cfg, 'tlsInsecureSkipVerify');
  if (insecureSkipVerify && !tlsEnable) {
    throw new ExecutorConfigError('tlsInsecureSkipVerify', 'needs tlsEnable: true');
  }
  const username = cfg.saslUsername ?? '';
  const password = cfg.saslPassword ?? '';
  const mechanismText = (cfg.saslMechanism ?? '').trim();
  let sasl: KafkaSpec['sasl'] = null;
  if (username !== '' || password !== '') {
    if (username === '') throw new ExecutorConfigError('saslUsername', 'is required with saslPassword');
    if (password === '') throw new ExecutorConfigError('saslPassword', 'is required with saslUsername');
    const mechanism = Object.hasOwn(SASL_MECHANISMS, mechanismText.toLowerCase())
      ? SASL_MECHANISMS[mechanismText.toLowerCase() as keyof typeof SASL_MECHANISMS]
      : undefined;
    if (!mechanism) {
      throw new ExecutorConfigError(
        'saslMechanism',
        `${mechanismText === '' ? 'is required with saslUsername and saslPassword' : `'${mechanismText}' is not supported`} (sha256, sha512, SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN)`,
      );
    }
    sasl = { mechanism, username, password };
  } else if (mechanismText !== '') {
    throw new ExecutorConfigError('saslMechanism', 'needs saslUsername and saslPassword');
  }
  const key = cfg.key ?? '';
  return {
    timeoutMs,
    brokers,
    topic,
    key: key === '' ? null : key,
    message: cfg.message ?? '',
    tls: tlsEnable ? { insecureSkipVerify } : null,
    sasl,
    debug: parseDebug(cfg),
  };
}

export const KAFKA: BrokerDefinition<KafkaSpec> = {
  kind: 'kafka',
  targetKey: 'brokerAddress',
  secretKeys: {
    brokerAddress: 'resolved-at-run-time.invalid:9092',
    key: 'x',
    message: 'x',
    saslUsername: 'x',
    saslPassword: 'x',
  },
  parse: parseKafkaConfig,
  targets: (spec) => spec.brokers,
};

/** The client's retries on connecting and on retriable errors: a few, so that a dead broker fails in seconds. */
const RETRY = { retries: 3, initialRetryTime: 250, maxRetryTime: 2_000 };
const LEVEL_NAMES = ['NOTHING', 'ERROR', 'WARN', '', 'INFO', 'DEBUG'];

export class KafkaExecutor implements Executor {
  constructor(private readonly options: BrokerExecutorOptions = {}) {}

  run(job: JobDefinition, _execution: Execution, signal: AbortSignal): Promise<ExecutorResult> {
    return withSecretScope(() => runBrokerJob(KAFKA, job.executor_config, signal, this.options, produce), {
      resolvesFrom: job.executor_config,
    });
  }
}

async function produce(spec: KafkaSpec, signal: AbortSignal, output: OutputBuffer): Promise<ExecutorResult> {
  // Imported by the first run that needs it: most agents and workers never produce to Kafka.
  const { Kafka, Partitioners, logLevel } = await import('kafkajs');
  const brokers = spec.brokers.map(formatBroker);
  if (spec.debug) {
    output.write(
      `brokers: ${brokers.join(',')}\ntopic: ${spec.topic}\nkey: ${spec.key ?? '(none)'}\n` +
        `tls: ${spec.tls ? (spec.tls.insecureSkipVerify ? 'on, not verified' : 'on') : 'off'}\n` +
        `sasl: ${spec.sasl ? `${spec.sasl.mechanism} as ${spec.sasl.username}` : 'off'}\n`,
    );
  }
  const sockets = new Set<net.Socket>();
  const kafka = new Kafka({
    clientId: 'cronplane',
    brokers,
    socketFactory: trackedSockets(sockets, signal),
    ...(spec.tls ? { ssl: { rejectUnauthorized: !spec.tls.insecureSkipVerify } } : {}),
    ...(spec.sasl ? { sasl: spec.sasl as SASLOptions } : {}),
    connectionTimeout: 5_000,
    requestTimeout: 15_000,
    retry: RETRY,
    // The client logs to the console by default: here only into the output, and only with `debug`.
    logLevel: spec.debug ? logLevel.INFO : logLevel.NOTHING,
    logCreator:
      () =>
      ({ level, log }) => {
        if (!spec.debug) return;
        const { message, timestamp: _t, logger: _l, ...rest } = log;
        const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
        output.write(`[${LEVEL_NAMES[level] ?? level}] ${message}${extra}\n`);
      },
  });
  const producer = kafka.producer({
    allowAutoTopicCreation: true,
    // Java's partitioner (murmur2 of the key): a keyed message lands where Java producers put it.
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  try {
    await untilAborted(producer.connect(), signal);
    const [record] = await untilAborted(
      producer.send({
        topic: spec.topic,
        acks: -1,
        messages: [{ key: spec.key, value: spec.message }],
      }),
      signal,
    );
    output.write(
      `produced to topic ${spec.topic} partition ${record?.partition ?? '?'} offset ${record?.baseOffset ?? '?'}\n`,
    );
    return succeededResult(output);
  } catch (error) {
    throw new Error(`producing to topic ${spec.topic} on ${brokers.join(',')} failed`, { cause: error });
  } finally {
    // Also after a timeout or cancel, while connect or send may still be retrying (then not waited for).
    const closed = producer.disconnect().catch(() => {});
    if (!signal.aborted) await closed;
    // The client cannot abandon a connection attempt (a broker that accepts and never answers holds it for
    // the request timeout, retries included): after a timeout or cancel, its sockets are destroyed here.
    else for (const socket of sockets) socket.destroy();
  }
}

/**
 * kafkajs's own socket factory (plain or TLS, with SNI for host names, keep-alive), remembering the sockets
 * it opens in `sockets`; once `signal` has aborted, a new socket is destroyed as it is made.
 */
function trackedSockets(sockets: Set<net.Socket>, signal: AbortSignal): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    const socket = ssl
      ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
      : net.connect({ host, port }, onConnect);
    socket.setKeepAlive(true, 60_000);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (signal.aborted) socket.destroy();
    return socket;
  };
}
