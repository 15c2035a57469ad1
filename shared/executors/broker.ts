/**
 * What the message-broker executors (kafka.ts, nats.ts, rabbitmq.ts) share: each publishes one message per
 * run, runs on an agent or (untagged) in the worker like an HTTP job, and follows one sequence:
 *
 *   1. resolve `{{ssm:...}}` in the keys it lists as secret keys (credentials, URLs, message bodies), in a
 *      secret scope so that resolved values are redacted from output and reason; a reference in any other
 *      key is refused when the job is written (it would be sent as written);
 *   2. parse the config (the same parser the API runs when the job is written, with a stand-in for each
 *      secret key that holds a reference);
 *   3. check the broker(s) against the worker's allow-list (`CRONPLANE_WORKER_ALLOW` kafka / nats /
 *      rabbitmq, targets.ts): the worker would otherwise send the secrets it resolves wherever a job says;
 *   4. publish under the run's signal and `timeout` (default 30 s; seconds or a Go duration), closing the
 *      connection whatever happens.
 *
 * Reasons and output name brokers as `host:port` only, never with the credentials a URL may carry.
 */
import { OutputBuffer } from '../executions/output-buffer.ts';
import { ExecutorConfigError, errorMessage, failedResult, RunControl } from './common.ts';
import type { ExecutorResult } from './executor.ts';
import { hasSecretReferences } from './secrets.ts';
import { type BrokerAddress, type BrokerKind, brokerTargetRefusal, type WorkerAllowList } from './targets.ts';

export const DEFAULT_BROKER_TIMEOUT_MS = 30_000;

// Go's strconv.ParseBool, which Dkron's plugins use for their flags.
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** A flag: Go's ParseBool forms (`true`, `1`, `T`, …); empty or absent gives `fallback`. Throws ExecutorConfigError. */
export function parseFlag(cfg: Readonly<Record<string, string>>, key: string, fallback = false): boolean {
  const raw = (cfg[key] ?? '').trim();
  if (raw === '') return fallback;
  if (TRUE.has(raw)) return true;
  if (FALSE.has(raw)) return false;
  throw new ExecutorConfigError(key, `must be true or false, not '${raw}'`);
}

/** Dkron's `debug`: on for any value but empty or a false one (Dkron: any non-empty value). Never refused. */
export function parseDebug(cfg: Readonly<Record<string, string>>): boolean {
  const raw = (cfg.debug ?? '').trim();
  return raw !== '' && !FALSE.has(raw);
}

export function requiredKey(cfg: Readonly<Record<string, string>>, key: string, executor: string): string {
  const value = (cfg[key] ?? '').trim();
  if (value === '') throw new ExecutorConfigError(key, `is required for the ${executor} executor`);
  return value;
}

const HOST = /^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/;

/**
 * `host:port`, `[v6]:port`, or (with `defaultPort`) a bare host. Throws ExecutorConfigError naming `key`
 * and quoting `shown` (what to show of the value: a URL's host part, never its credentials).
 */
export function parseHostPort(
  text: string,
  key: string,
  defaultPort: number | null,
  shown = text,
): BrokerAddress {
  let host = text;
  let portText = '';
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(.*))?$/.exec(text);
  if (v6) {
    host = v6[1]!;
    portText = v6[2] ?? '';
  } else {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
  }
  if (!v6 && !HOST.test(host)) throw new ExecutorConfigError(key, `'${shown}' has no valid host name`);
  if (portText === '') {
    if (defaultPort === null) throw new ExecutorConfigError(key, `'${shown}' needs a port (host:port)`);
    return { host, port: defaultPort };
  }
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) {
    throw new ExecutorConfigError(key, `'${shown}' has an invalid port '${portText}'`);
  }
  return { host, port };
}

/** What a broker executor is, for the shared steps above. */
export interface BrokerDefinition<S extends { timeoutMs: number }> {
  readonly kind: BrokerKind;
  /** The key naming the broker(s): the allow-list refusal names it. */
  readonly targetKey: string;
  /**
   * The keys whose `{{ssm:...}}` references are resolved at run time, each with what stands in for a
   * value holding a reference when the job is written (so that the rest of the config is still checked).
   */
  readonly secretKeys: Readonly<Record<string, string>>;
  /** Validates `executor_config` (resolved). Throws ExecutorConfigError. */
  parse(cfg: Readonly<Record<string, string>>): S;
  targets(spec: S): readonly BrokerAddress[];
}

function withStandIns<S extends { timeoutMs: number }>(
  def: BrokerDefinition<S>,
  cfg: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = { ...cfg };
  for (const [key, standIn] of Object.entries(def.secretKeys)) {
    if (hasSecretReferences(cfg[key] ?? '')) out[key] = standIn;
  }
  return out;
}

/**
 * The check the API runs when a job is written: a reference outside the secret keys is refused, and the
 * config is parsed with stand-ins for the values that hold one. Throws ExecutorConfigError.
 */
export function checkBrokerConfig<S extends { timeoutMs: number }>(
  def: BrokerDefinition<S>,
  cfg: Readonly<Record<string, string>>,
): void {
  for (const [key, value] of Object.entries(cfg)) {
    if (!Object.hasOwn(def.secretKeys, key) && hasSecretReferences(value)) {
      throw new ExecutorConfigError(
        key,
        `{{ssm:...}} is not resolved here (the ${def.kind} executor resolves it in ${Object.keys(def.secretKeys).join(', ')})`,
      );
    }
  }
  def.parse(withStandIns(def, cfg));
}

/**
 * The brokers a job names as written, for the API's allow-list check; null when the broker key holds a
 * reference (the worker checks what it resolves to) or the config does not parse (checkBrokerConfig says why).
 */
export function writtenBrokers<S extends { timeoutMs: number }>(
  def: BrokerDefinition<S>,
  cfg: Readonly<Record<string, string>>,
): readonly BrokerAddress[] | null {
  if (hasSecretReferences(cfg[def.targetKey] ?? '')) return null;
  try {
    return def.targets(def.parse(withStandIns(def, cfg)));
  } catch {
    return null;
  }
}

export interface BrokerExecutorOptions {
  /** Resolves `{{ssm:...}}` in the secret keys (e.g. `createSsmResolver(clients).resolveSecrets`). */
  readonly resolveSecrets?: (text: string) => Promise<string>;
  /** The worker's allow-list: its entry for this executor (when set) bounds the brokers it reaches. */
  readonly allow?: WorkerAllowList | null;
}

/**
 * Steps 1–4 for one run; call inside `withSecretScope`. `publish` sends the message, writing what it
 * reports to `output`, and must give up when `signal` aborts (timeout or cancel) and close what it opened.
 */
export async function runBrokerJob<S extends { timeoutMs: number }>(
  def: BrokerDefinition<S>,
  config: Readonly<Record<string, string>>,
  signal: AbortSignal,
  options: BrokerExecutorOptions,
  publish: (spec: S, signal: AbortSignal, output: OutputBuffer) => Promise<ExecutorResult>,
): Promise<ExecutorResult> {
  const cfg: Record<string, string> = { ...config };
  for (const key of Object.keys(def.secretKeys)) {
    const text = cfg[key];
    if (text === undefined || !hasSecretReferences(text)) continue;
    if (!options.resolveSecrets) {
      return failedResult(
        `executor_config.${key}: has an {{ssm:...}} reference but no SSM resolver is configured`,
      );
    }
    try {
      cfg[key] = await options.resolveSecrets(text);
    } catch (error) {
      return failedResult(`executor_config.${key}: ${errorMessage(error)}`);
    }
  }
  let spec: S;
  try {
    spec = def.parse(cfg);
  } catch (error) {
    return failedResult(errorMessage(error));
  }
  // Checked after resolution, so a broker taken from a secret is bounded too.
  const refusal = brokerTargetRefusal(def.kind, def.targets(spec), options.allow ?? null);
  if (refusal) return failedResult(`executor_config.${def.targetKey}: ${refusal}`);
  const control = new RunControl(signal, spec.timeoutMs);
  const output = new OutputBuffer();
  try {
    const early = control.stoppedResult(output);
    if (early) return early;
    return await publish(spec, control.signal, output);
  } catch (error) {
    const stopped = control.stoppedResult(output);
    if (stopped) return stopped;
    return failedResult(describeError(error), output);
  } finally {
    control.dispose();
  }
}

/**
 * Settles with `promise`, or rejects with the signal's reason as soon as it aborts. `lateClose` gets the
 * value should `promise` fulfil after that (a connection nobody will use: close it).
 */
export function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  lateClose?: (value: T) => unknown,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let late = false;
    const abandon = () => {
      late = true;
      reject(signal.reason);
    };
    if (signal.aborted) abandon();
    else signal.addEventListener('abort', abandon, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abandon);
        if (late) Promise.resolve(lateClose?.(value)).catch(() => {});
        else resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abandon);
        reject(error);
      },
    );
  });
}

/**
 * How long a client may take to connect: `atMost`, or less when the run's timeout is shorter (so that a
 * connection attempt the run has given up on ends about when the run does).
 */
export function connectTimeout(timeoutMs: number, atMost: number): number {
  return timeoutMs > 0 ? Math.min(timeoutMs, atMost) : atMost;
}

/** An error with the messages of its causes that it does not already say (clients wrap socket errors). */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const text = errorMessage(current);
    // A wrapper often repeats its cause's message, with or without the cause's code in front.
    const message = current instanceof Error ? current.message : text;
    if (text !== '' && !parts.some((p) => p.includes(message))) parts.push(text);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ') || 'unknown error';
}
