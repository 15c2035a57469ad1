/**
 * Dkron's RabbitMQ executor: publishes one message per run over AMQP 0-9-1 (amqplib), to `exchange` with
 * `queue.name` as the routing key. Unlike Dkron, the run waits for the broker's publisher confirm, and a
 * message no queue takes (a missing queue, an exchange with no matching binding) fails the run instead of
 * vanishing: it is published `mandatory` (turn off with `message.mandatory: false`). `executor_config`:
 *   - `url` (required): `amqp://user:password@host[:port]/vhost` or `amqps://…` (TLS); ports 5672 / 5671 by
 *     default (Amazon MQ for RabbitMQ: `amqps://…mq.<region>.amazonaws.com:5671`)
 *   - `exchange`: default `""` (or `amq.default`), the default exchange, which routes to the queue named by
 *     the routing key
 *   - `queue.name` (required): the routing key, and the queue declared with `queue.create`
 *   - `queue.create` (declare the queue if it does not exist), `queue.durable`, `queue.auto_delete`;
 *     `queue.exclusive: true` is refused (the queue would be deleted with the run's connection, and the
 *     message with it)
 *   - `message.body` or `message.base64Body` (standard base64 with padding; not both)
 *   - `message.content_type` (default `text/plain`), `message.delivery_mode` (`1` transient, `2`
 *     persistent; `0` or empty leaves it unset), `message.messageId`, `message.mandatory` (default true)
 *   - `timeout`: seconds or a Go duration (default 30 s) for the whole run
 *
 * `{{ssm:...}}` resolves in `url`, `message.body` and `message.base64Body`. Output:
 * `published to exchange E with routing key K on host:port`.
 */
import type { SocketOptions } from 'amqplib';
import type { Execution } from '../executions/execution.ts';
import type { OutputBuffer } from '../executions/output-buffer.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import {
  type BrokerDefinition,
  type BrokerExecutorOptions,
  connectTimeout,
  DEFAULT_BROKER_TIMEOUT_MS,
  describeError,
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

/** How long connecting may take, at most (the run's timeout may be shorter). */
const CONNECT_TIMEOUT_MS = 10_000;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface RabbitMqSpec {
  timeoutMs: number;
  /** As written (with credentials): what amqplib connects to. */
  url: string;
  broker: BrokerAddress;
  exchange: string;
  queue: string;
  declare: { durable: boolean; autoDelete: boolean } | null;
  body: Buffer;
  contentType: string;
  deliveryMode: 1 | 2 | null;
  messageId: string;
  mandatory: boolean;
}

/** Validates a rabbitmq job's `executor_config` (resolved). Throws ExecutorConfigError. */
export function parseRabbitMqConfig(cfg: Readonly<Record<string, string>>): RabbitMqSpec {
  const timeoutMs = parseTimeout(cfg.timeout, DEFAULT_BROKER_TIMEOUT_MS);
  const rawUrl = requiredKey(cfg, 'url', 'rabbitmq');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rawUrl)?.[1]?.toLowerCase();
  if (scheme !== 'amqp' && scheme !== 'amqps') {
    throw new ExecutorConfigError(
      'url',
      `must be an amqp:// or amqps:// URL${scheme ? `, not ${scheme}://` : ''}`,
    );
  }
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new ExecutorConfigError('url', `'${scheme}://…' is not a URL`);
  }
  const broker = parseHostPort(url.host, 'url', scheme === 'amqps' ? 5671 : 5672, `${scheme}://${url.host}`);
  // Dkron's example names the default exchange `amq.default`, as RabbitMQ's management UI shows it; on
  // the wire its name is "", and RabbitMQ answers 404 to `amq.default` (a loss Dkron, unconfirmed, never sees).
  const exchange = (cfg.exchange ?? '') === 'amq.default' ? '' : (cfg.exchange ?? '');
  const queue = requiredKey(cfg, 'queue.name', 'rabbitmq');
  if (Buffer.byteLength(queue) > 255) throw new ExecutorConfigError('queue.name', 'is longer than 255 bytes');
  if (Buffer.byteLength(exchange) > 255)
    throw new ExecutorConfigError('exchange', 'is longer than 255 bytes');
  const create = parseFlag(cfg, 'queue.create');
  const durable = parseFlag(cfg, 'queue.durable');
  const autoDelete = parseFlag(cfg, 'queue.auto_delete');
  if (parseFlag(cfg, 'queue.exclusive')) {
    throw new ExecutorConfigError(
      'queue.exclusive',
      'cannot be true: an exclusive queue belongs to the run’s connection and is deleted, with the message, when the run ends',
    );
  }
  const text = cfg['message.body'] ?? '';
  const base64 = (cfg['message.base64Body'] ?? '').trim();
  if (text !== '' && base64 !== '') {
    throw new ExecutorConfigError('message.base64Body', 'cannot be set together with message.body');
  }
  if (base64 !== '' && !BASE64.test(base64)) {
    throw new ExecutorConfigError(
      'message.base64Body',
      'is not standard base64 (A-Z a-z 0-9 + /, = padding)',
    );
  }
  const modeText = (cfg['message.delivery_mode'] ?? '').trim();
  if (!['', '0', '1', '2'].includes(modeText)) {
    throw new ExecutorConfigError(
      'message.delivery_mode',
      `must be 1 (transient) or 2 (persistent), or 0 to leave it unset, not '${modeText}'`,
    );
  }
  return {
    timeoutMs,
    url: rawUrl,
    broker,
    exchange,
    queue,
    declare: create ? { durable, autoDelete } : null,
    body: base64 !== '' ? Buffer.from(base64, 'base64') : Buffer.from(text, 'utf8'),
    contentType: (cfg['message.content_type'] ?? '').trim() || 'text/plain',
    deliveryMode: modeText === '1' ? 1 : modeText === '2' ? 2 : null,
    messageId: cfg['message.messageId'] ?? '',
    mandatory: parseFlag(cfg, 'message.mandatory', true),
  };
}

export const RABBITMQ: BrokerDefinition<RabbitMqSpec> = {
  kind: 'rabbitmq',
  targetKey: 'url',
  secretKeys: {
    url: 'amqp://resolved-at-run-time.invalid/',
    'message.body': 'x',
    'message.base64Body': 'eA==',
  },
  parse: parseRabbitMqConfig,
  targets: (spec) => [spec.broker],
};

export class RabbitMqExecutor implements Executor {
  constructor(private readonly options: BrokerExecutorOptions = {}) {}

  run(job: JobDefinition, _execution: Execution, signal: AbortSignal): Promise<ExecutorResult> {
    return withSecretScope(() => runBrokerJob(RABBITMQ, job.executor_config, signal, this.options, publish), {
      resolvesFrom: job.executor_config,
    });
  }
}

async function publish(
  spec: RabbitMqSpec,
  signal: AbortSignal,
  output: OutputBuffer,
): Promise<ExecutorResult> {
  // Imported by the first run that needs it: most agents and workers never publish to RabbitMQ.
  const amqp = await import('amqplib');
  const where = formatBroker(spec.broker);
  const socketOptions: SocketOptions & { signal: AbortSignal } = {
    // Covers the TCP connect and the AMQP handshake.
    timeout: connectTimeout(spec.timeoutMs, CONNECT_TIMEOUT_MS),
    // amqplib hands these to net.connect, whose socket takes a signal: a cancelled or timed-out run
    // destroys it at once (an amqps:// handshake ends with `timeout`, at the latest as the run does).
    signal,
    clientProperties: { connection_name: 'cronplane' },
  };
  let connection: Awaited<ReturnType<typeof amqp.connect>>;
  try {
    connection = await untilAborted(amqp.connect(spec.url, socketOptions), signal, (late) => late.close());
  } catch (error) {
    throw new Error(`connecting to RabbitMQ at ${where} failed`, { cause: error });
  }
  // The broker closes a channel (and may close the connection) on an error: what it said is the reason.
  // An 'error' event nobody listens to would crash the process.
  let closedBecause: unknown = null;
  connection.on('error', (error: unknown) => {
    closedBecause ??= error;
  });
  try {
    const channel = await untilAborted(connection.createConfirmChannel(), signal);
    channel.on('error', (error: unknown) => {
      closedBecause ??= error;
    });
    let returned: { replyCode: number; replyText: string } | null = null;
    channel.on('return', (message: { fields: { replyCode: number; replyText: string } }) => {
      returned = message.fields;
    });
    const step = async <T>(what: string, work: Promise<T>): Promise<T> => {
      try {
        return await untilAborted(work, signal);
      } catch (error) {
        if (signal.aborted) throw error;
        throw new Error(`${what} on ${where} failed: ${describeError(closedBecause ?? error)}`);
      }
    };
    if (spec.declare) {
      await step(
        `declaring queue '${spec.queue}'`,
        channel.assertQueue(spec.queue, { ...spec.declare, exclusive: false }),
      );
    }
    channel.publish(spec.exchange, spec.queue, spec.body, {
      mandatory: spec.mandatory,
      contentType: spec.contentType,
      ...(spec.deliveryMode ? { deliveryMode: spec.deliveryMode } : {}),
      ...(spec.messageId ? { messageId: spec.messageId } : {}),
    });
    const target = `exchange '${spec.exchange}' with routing key '${spec.queue}'`;
    // The broker returns an unroutable mandatory message before it confirms it.
    await step(`publishing to ${target}`, channel.waitForConfirms());
    const bounced = returned as { replyCode: number; replyText: string } | null;
    if (bounced) {
      throw new Error(
        `no queue took the message published to ${target} on ${where} (${bounced.replyCode} ${bounced.replyText}); ` +
          'declare the queue (queue.create), bind it, or set message.mandatory: false to allow this',
      );
    }
    output.write(
      `published to ${target} on ${where}${spec.declare ? ` (queue '${spec.queue}' declared)` : ''}\n`,
    );
    return succeededResult(output);
  } finally {
    const closed = connection.close().catch(() => {});
    if (!signal.aborted) await closed;
  }
}
