/**
 * Real message brokers on 127.0.0.1 for a test file: Apache Kafka in KRaft mode (one combined broker and
 * controller, from the Maven Central jars scripts/ensure-brokers.sh fetches, on the Java DynamoDB Local
 * uses; plain, SASL and TLS listeners), Debian's nats-server and Debian's rabbitmq-server. Each starts on free ports with its data in a
 * temporary directory, in a process group of its own that `stop()` kills; nothing is left behind.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../../agent/stack-file.ts';

/** The user every broker knows (and SASL, in Kafka's case), with its password. */
export const BROKER_USER = 'cronplane';
export const BROKER_PASSWORD = 's3cret-broker-password';

/** Runs scripts/ensure-brokers.sh (installs what is missing) and answers the Kafka libs directory. */
export async function ensureBrokers(): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', [join(REPO_ROOT, 'scripts/ensure-brokers.sh')], {
    cwd: REPO_ROOT,
    maxBuffer: 1 << 20,
  });
  return stdout.trim().split('\n').at(-1)!;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1');
  });
}

export interface RunningBroker {
  /** Where a client connects (a bootstrap `host:port`, or a URL with the user and password). */
  readonly address: string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Runs the command with a watcher beside it in its process group: the watcher reads a pipe whose other end
 * this process holds, and when it ends (this process exited, however, even SIGKILLed) signals the group, so
 * a test run that dies leaves no broker behind.
 */
const DIES_WITH_US =
  'exec 3<&0; ( cat <&3 >/dev/null; kill -TERM 0; sleep 10; kill -KILL 0 ) & exec "$@" </dev/null 3<&-';

/** A server in a process group of its own (so that stop() takes its children too), output to `log`. */
function start(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  log: string,
  cwd: string,
): ChildProcess {
  const fd = openSync(log, 'a');
  return spawn('/bin/sh', ['-c', DIES_WITH_US, command, command, ...args], {
    cwd,
    env,
    detached: true,
    stdio: ['pipe', fd, fd],
  });
}

async function waitForPort(child: ChildProcess, port: number, what: string, log: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}):\n${tail(log)}`);
    }
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms:\n${tail(log)}`);
}

function tail(log: string): string {
  try {
    return readFileSync(log, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '(no log)';
  }
}

/** SIGTERM to the group, SIGKILL after `graceMs`; also when the leader is gone (its watcher may not be). */
async function killGroup(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.pid === undefined) return;
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, s);
    } catch {
      // already gone
    }
  };
  const exited =
    child.exitCode === null && child.signalCode === null
      ? new Promise<void>((r) => child.once('exit', () => r()))
      : Promise.resolve();
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  signal('SIGKILL'); // anything the leader left in its group
  child.stdin?.destroy();
}

export interface RunningKafka extends RunningBroker {
  /** A SASL_PLAINTEXT listener taking PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for BROKER_USER. */
  readonly saslAddress: string;
  /** An SSL listener with a self-signed certificate for 127.0.0.1 (made by openssl at start). */
  readonly tlsAddress: string;
}

/** A self-signed certificate for 127.0.0.1 and its (PKCS#8, unencrypted) key, as PEM. */
async function selfSigned(dir: string): Promise<{ cert: string; key: string }> {
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  return {
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
  };
}

/** A PEM block as one properties-file value (Properties turns `\n` back into line breaks). */
const pemValue = (pem: string) => pem.trim().replaceAll('\n', '\\n');

/** One KRaft node (broker + controller): storage formatted with kafka.tools.StorageTool, then kafka.Kafka. */
export async function startKafka(libs: string): Promise<RunningKafka> {
  const dir = mkdtempSync(join(tmpdir(), 'cronplane-kafka-'));
  const [port, saslPort, tlsPort, controllerPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const removeDir = (error: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  };
  const pem = await selfSigned(dir).catch(removeDir);
  const jaas = (module: string, extra = '') => `org.apache.kafka.common.security.${module} required${extra};`;
  writeFileSync(
    join(dir, 'server.properties'),
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},SASL_PLAINTEXT://127.0.0.1:${saslPort},SSL://127.0.0.1:${tlsPort},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port},SASL_PLAINTEXT://127.0.0.1:${saslPort},SSL://127.0.0.1:${tlsPort}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT',
      'listener.name.ssl.ssl.keystore.type=PEM',
      `listener.name.ssl.ssl.keystore.certificate.chain=${pemValue(pem.cert)}`,
      `listener.name.ssl.ssl.keystore.key=${pemValue(pem.key)}`,
      'listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
      `listener.name.sasl_plaintext.plain.sasl.jaas.config=${jaas('plain.PlainLoginModule', ` user_${BROKER_USER}="${BROKER_PASSWORD}"`)}`,
      `listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=${jaas('scram.ScramLoginModule')}`,
      `listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=${jaas('scram.ScramLoginModule')}`,
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=3',
      'auto.create.topics.enable=true',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'group.initial.rebalance.delay.ms=0',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'log4j2.properties'),
    [
      'rootLogger.level=WARN',
      'rootLogger.appenderRef.out.ref=OUT',
      'appender.out.type=Console',
      'appender.out.name=OUT',
      'appender.out.layout.type=PatternLayout',
      'appender.out.layout.pattern=[%d] %p %m (%c)%n',
      '',
    ].join('\n'),
  );
  const log = join(dir, 'kafka.log');
  // A small heap and the client compiler: a test broker holds a few messages and must start fast.
  const jvm = [
    '-Xms128m',
    '-Xmx512m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`,
    '-cp',
    `${libs}/*`,
  ];
  const clusterId = randomBytes(16).toString('base64url');
  const scram = (mechanism: string) => [
    '--add-scram',
    `${mechanism}=[name=${BROKER_USER},password=${BROKER_PASSWORD}]`,
  ];
  await promisify(execFile)(
    'java',
    [
      ...jvm,
      'kafka.tools.StorageTool',
      'format',
      // `=`: a base64url id may begin with '-' (1 in 64), which argparse would take for an option.
      `--cluster-id=${clusterId}`,
      '-c',
      join(dir, 'server.properties'),
      ...scram('SCRAM-SHA-256'),
      ...scram('SCRAM-SHA-512'),
    ],
    { cwd: dir },
  ).catch(removeDir);
  const child = start('java', [...jvm, 'kafka.Kafka', join(dir, 'server.properties')], process.env, log, dir);
  const stop = async () => {
    await killGroup(child, 10_000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(child, port, 'Kafka', log);
    await waitForPort(child, saslPort, 'Kafka (SASL listener)', log);
    await waitForPort(child, tlsPort, 'Kafka (SSL listener)', log);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    address: `127.0.0.1:${port}`,
    saslAddress: `127.0.0.1:${saslPort}`,
    tlsAddress: `127.0.0.1:${tlsPort}`,
    port,
    stop,
  };
}

export interface RunningNats extends RunningBroker {
  /** `nats://127.0.0.1:<port>` without credentials. */
  readonly url: string;
}

/**
 * nats-server with two users: BROKER_USER may publish anywhere, `limited` (same password) only to
 * `allowed.>` (to see a refused publish fail its run).
 */
export async function startNats(): Promise<RunningNats> {
  const dir = mkdtempSync(join(tmpdir(), 'cronplane-nats-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'nats.conf'),
    `listen: "127.0.0.1:${port}"
authorization {
  users = [
    { user: "${BROKER_USER}", password: "${BROKER_PASSWORD}" }
    { user: "limited", password: "${BROKER_PASSWORD}", permissions: { publish: ["allowed.>"], subscribe: ["_INBOX.>"] } }
  ]
}
`,
  );
  const log = join(dir, 'nats.log');
  const child = start('nats-server', ['-c', join(dir, 'nats.conf')], process.env, log, dir);
  const stop = async () => {
    await killGroup(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(child, port, 'nats-server', log);
  } catch (error) {
    await stop();
    throw error;
  }
  return { address: `127.0.0.1:${port}`, url: `nats://127.0.0.1:${port}`, port, stop };
}

export interface RunningRabbitMq extends RunningBroker {
  /** `amqp://BROKER_USER:BROKER_PASSWORD@127.0.0.1:<port>/`. */
  readonly url: string;
}

/**
 * rabbitmq-server as the current user: its own node name, ports, Mnesia and log directories, config (the
 * default user is BROKER_USER) and Erlang port mapper (epmd on a free port, killed by stop()).
 */
export async function startRabbitMq(): Promise<RunningRabbitMq> {
  const dir = mkdtempSync(join(tmpdir(), 'cronplane-rabbitmq-'));
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  writeFileSync(
    join(dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.default = 127.0.0.1:${port}`,
      `default_user = ${BROKER_USER}`,
      `default_pass = ${BROKER_PASSWORD}`,
      'loopback_users = none',
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir, // the Erlang cookie
    RABBITMQ_NODENAME: `cronplane-test-${process.pid}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_LOGS: '-',
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'), // none: not the system's
    // One scheduler thread each: the test broker carries a handful of messages on a two-core machine.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '+S 1:1 +A 4',
  };
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  const log = join(dir, 'rabbitmq.log');
  // Our own epmd, in the foreground: the one rabbitmq-server would start daemonizes out of our reach.
  const epmd = start('epmd', ['-port', String(epmdPort), '-address', '127.0.0.1'], env, log, dir);
  const child = start('/usr/lib/rabbitmq/bin/rabbitmq-server', [], env, log, dir);
  const stop = async () => {
    await killGroup(child, 10_000);
    await killGroup(epmd);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(epmd, epmdPort, 'epmd', log);
    await waitForPort(child, port, 'rabbitmq-server', log, 90_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    address: `127.0.0.1:${port}`,
    url: `amqp://${BROKER_USER}:${BROKER_PASSWORD}@127.0.0.1:${port}/`,
    port,
    stop,
  };
}
