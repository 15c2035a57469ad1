/**
 * Dkron's NATS executor: publishes one core NATS message per run (@nats-io/transport-node). Unlike
 * Dkron, whose publish is fire-and-forget, the run waits for the server's answer to a flush and fails on
 * anything the server refused (a permissions violation, a subject it rejects). `executor_config`:
 *   - `url` (required): a server, or a comma list of them, as `nats://host[:port]`, `tls://host[:port]`
 *     (TLS required) or `host[:port]` (port 4222 by default); `nats://user:password@host` and
 *     `nats://token@host` carry credentials as in Go's client
 *   - `subject` (required): tokens separated by `.`, no spaces and no wildcards (`*`, `>`)
 *   - `message`: the payload
 *   - `userName`, `password`: user/password authentication (they win over credentials in `url`)
 *   - `debug`: any value but empty or false adds the server's name and version to the output
 *   - `timeout`: seconds or a Go duration (default 30 s) for the whole run
 *
 * `{{ssm:...}}` resolves in `url`, `message`, `userName` and `password`. Output:
 * `published to SUBJECT on host:port`.
 */
import type { Execution } from '../executions/execution.ts';
import type { OutputBuffer } from '../executions/output-buffer.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import {
  type BrokerDefinition,
  type BrokerExecutorOptions,
  connectTimeout,
  DEFAULT_BROKER_TIMEOUT_MS,
  describeError,
  parseDebug,
  parseHostPort,
  requiredKey,
  runBrokerJob,
  untilAborted,
} from './broker.ts';
import { ExecutorConfigError, parseTimeout, succeededResult } from './common.ts';
import type { Executor, ExecutorResult } from './executor.ts';
import { withSecretScope } from './secrets.ts';
import { type BrokerAddress, formatBroker } from './targets.ts';

export const DEFAULT_NATS_PORT = 4222;
/**
 * How long the first connection may take, at most (the run's timeout may be shorter). Known limit of
 * @nats-io/transport-node 3.4: a server that accepts the TCP connection but never sends its INFO keeps the
 * socket after the attempt has timed out (the client closes only connections that completed), until the
 * server closes it. The run itself still ends on time.
 */
const CONNECT_TIMEOUT_MS = 10_000;

export interface NatsSpec {
  timeoutMs: number;
  servers: BrokerAddress[];
  tls: boolean;
  subject: string;
  message: string;
  auth: { user: string; pass: string } | { token: string } | null;
  debug: boolean;
}

function parseServer(
  text: string,
): BrokerAddress & { tls: boolean; user?: string; pass?: string; token?: string } {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (!scheme) return { ...parseHostPort(text, 'url', DEFAULT_NATS_PORT), tls: false };
  const protocol = scheme[1]!.toLowerCase();
  if (protocol !== 'nats' && protocol !== 'tls') {
    throw new ExecutorConfigError('url', `must be nats://, tls:// or host:port, not ${protocol}://`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ExecutorConfigError('url', `'${protocol}://…' is not a URL`);
  }
  if (url.pathname !== '' && url.pathname !== '/') {
    throw new ExecutorConfigError('url', `${protocol}://${url.host} must not have a path`);
  }
  const address = parseHostPort(url.host, 'url', DEFAULT_NATS_PORT, `${protocol}://${url.host}`);
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  return {
    ...address,
    tls: protocol === 'tls',
    ...(user !== '' && url.password !== '' ? { user, pass } : user !== '' ? { token: user } : {}),
  };
}

/** Validates a nats job's `executor_config` (resolved). Throws ExecutorConfigError. */
export function parseNatsConfig(cfg: Readonly<Record<string, string>>): NatsSpec {
  const timeoutMs = parseTimeout(cfg.timeout, DEFAULT_BROKER_TIMEOUT_MS);
  const servers = requiredKey(cfg, 'url', 'nats')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map(parseServer);
  if (servers.length === 0) throw new ExecutorConfigError('url', 'names no server');
  const subject = requiredKey(cfg, 'subject', 'nats');
  const tokens = subject.split('.');
  if (/\s/.test(subject) || tokens.some((t) => t === '' || t === '*' || t === '>')) {
    throw new ExecutorConfigError(
      'subject',
      `'${subject}' is not a subject to publish to (tokens separated by '.', no spaces, no wildcards * or >)`,
    );
  }
  const userName = cfg.userName ?? '';
  const password = cfg.password ?? '';
  if (password !== '' && userName === '')
    throw new ExecutorConfigError('userName', 'is required with password');
  const fromUrl = servers.find((s) => s.user !== undefined || s.token !== undefined);
  const auth: NatsSpec['auth'] =
    userName !== ''
      ? { user: userName, pass: password }
      : fromUrl?.user !== undefined
        ? { user: fromUrl.user, pass: fromUrl.pass ?? '' }
        : fromUrl?.token !== undefined
          ? { token: fromUrl.token }
          : null;
  return {
    timeoutMs,
    servers: servers.map(({ host, port }) => ({ host, port })),
    tls: servers.some((s) => s.tls),
    subject,
    message: cfg.message ?? '',
    auth,
    debug: parseDebug(cfg),
  };
}

export const NATS: BrokerDefinition<NatsSpec> = {
  kind: 'nats',
  targetKey: 'url',
  secretKeys: {
    url: 'nats://resolved-at-run-time.invalid',
    message: 'x',
    userName: 'x',
    password: 'x',
  },
  parse: parseNatsConfig,
  targets: (spec) => spec.servers,
};

export class NatsExecutor implements Executor {
  constructor(private readonly options: BrokerExecutorOptions = {}) {}

  run(job: JobDefinition, _execution: Execution, signal: AbortSignal): Promise<ExecutorResult> {
    return withSecretScope(() => runBrokerJob(NATS, job.executor_config, signal, this.options, publish), {
      resolvesFrom: job.executor_config,
    });
  }
}

async function publish(spec: NatsSpec, signal: AbortSignal, output: OutputBuffer): Promise<ExecutorResult> {
  // Imported by the first run that needs it: most agents and workers never publish to NATS.
  const { connect } = await import('@nats-io/transport-node');
  const servers = spec.servers.map(formatBroker);
  let nc: Awaited<ReturnType<typeof connect>>;
  try {
    nc = await untilAborted(
      connect({
        servers,
        name: 'cronplane',
        timeout: connectTimeout(spec.timeoutMs, CONNECT_TIMEOUT_MS),
        // One attempt per server: a run that cannot connect fails, and the next run tries again.
        reconnect: false,
        maxReconnectAttempts: 0,
        ...(spec.tls ? { tls: {} } : {}),
        ...(spec.auth ?? {}),
      }),
      signal,
      (late) => late.close(),
    );
  } catch (error) {
    throw new Error(`connecting to NATS at ${servers.join(',')} failed`, { cause: error });
  }
  const refused: string[] = [];
  const watching = (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'error') refused.push(describeError(status.error));
    }
  })().catch(() => {});
  try {
    nc.publish(spec.subject, spec.message);
    // The server answers the flush after it has handled the publish, and any refusal comes before that
    // answer; the client hands it to status() a few promise hops later: one turn of the event loop.
    await untilAborted(nc.flush(), signal);
    await new Promise<void>((resolve) => setImmediate(resolve));
    const server = nc.getServer();
    if (refused.length > 0) {
      throw new Error(`the NATS server at ${server} refused the message: ${refused.join('; ')}`);
    }
    if (spec.debug) {
      output.write(`server: ${nc.info?.server_name ?? '?'} (nats-server ${nc.info?.version ?? '?'})\n`);
    }
    output.write(`published to ${spec.subject} on ${server}\n`);
    return succeededResult(output);
  } finally {
    // Closing ends the status iterator, and so `watching`.
    const closed = nc
      .close()
      .then(() => watching)
      .catch(() => {});
    if (!signal.aborted) await closed;
  }
}
