/**
 * Helpers shared by the executors in this folder: result constructors, the `timeout` setting, and a run
 * controller that merges the caller's AbortSignal with a timeout and remembers which one fired.
 */
import type { OutputBuffer } from '../executions/output-buffer.ts';
import { parseDuration } from '../schedule/duration.ts';
import type { ExecutorResult } from './executor.ts';

/** A problem with a job's `executor_config`: the run fails with this message as its reason. */
export class ExecutorConfigError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`executor_config.${key}: ${problem}`);
    this.name = 'ExecutorConfigError';
  }
}

export function failedResult(
  reason: string,
  output?: OutputBuffer | string,
  exitCode: number | null = null,
): ExecutorResult {
  const text = typeof output === 'string' ? output : (output?.toString() ?? '');
  const truncated = typeof output === 'object' ? output.truncated : false;
  return { status: 'failed', exitCode, output: text, outputTruncated: truncated, reason };
}

export function succeededResult(
  output: OutputBuffer | string,
  exitCode: number | null = null,
): ExecutorResult {
  const text = typeof output === 'string' ? output : output.toString();
  const truncated = typeof output === 'object' ? output.truncated : false;
  return { status: 'succeeded', exitCode, output: text, outputTruncated: truncated, reason: null };
}

/** The message of anything thrown, for a failure reason. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code)
      ? `${code}: ${error.message}`
      : error.message;
  }
  return String(error);
}

/**
 * The `timeout` setting in milliseconds: a plain number is seconds (Dkron's HTTP executor: `"30"`,
 * `"1.5"`), anything else a Go duration (`"5s"`, `"1m30s"`). `0` means no timeout; empty or absent gives
 * `defaultMs`. Throws ExecutorConfigError.
 */
export function parseTimeout(value: string | undefined, defaultMs: number, key = 'timeout'): number {
  const text = (value ?? '').trim();
  if (text === '') return defaultMs;
  if (/^\d+(\.\d*)?$|^\.\d+$/.test(text)) return Math.round(Number(text) * 1000);
  let ms: number;
  try {
    ms = parseDuration(text, `executor_config.${key}`);
  } catch {
    throw new ExecutorConfigError(
      key,
      `'${text}' is neither a number of seconds nor a duration like 30s or 1m`,
    );
  }
  if (ms < 0) throw new ExecutorConfigError(key, `'${text}' is negative`);
  return ms;
}

/** A readable form of a timeout for reasons: whole seconds as `30s`, else milliseconds. */
export function describeMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * Merges the run's AbortSignal with an optional timeout (`timeoutMs` > 0). `signal` aborts on either;
 * `stoppedBy` says which came first. Call `dispose()` when the run is over.
 */
export class RunControl {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | null;
  private stopped: 'timeout' | 'cancelled' | null = null;

  constructor(
    private readonly outer: AbortSignal,
    readonly timeoutMs: number,
  ) {
    this.timer = timeoutMs > 0 ? setTimeout(() => this.stop('timeout'), timeoutMs) : null;
    outer.addEventListener('abort', this.onAbort, { once: true });
    if (outer.aborted) this.stop('cancelled');
  }

  private readonly onAbort = () => this.stop('cancelled');

  private stop(why: 'timeout' | 'cancelled'): void {
    if (this.stopped) return;
    this.stopped = why;
    this.controller.abort(
      new Error(why === 'timeout' ? `timed out after ${describeMs(this.timeoutMs)}` : 'cancelled'),
    );
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get stoppedBy(): 'timeout' | 'cancelled' | null {
    return this.stopped;
  }

  /** The timeout / cancelled result when the run was stopped, else null. */
  stoppedResult(output: OutputBuffer | string = '', exitCode: number | null = null): ExecutorResult | null {
    if (!this.stopped) return null;
    const text = typeof output === 'string' ? output : output.toString();
    const truncated = typeof output === 'object' ? output.truncated : false;
    return this.stopped === 'timeout'
      ? {
          status: 'timeout',
          exitCode,
          output: text,
          outputTruncated: truncated,
          reason: `timed out after ${describeMs(this.timeoutMs)}`,
        }
      : { status: 'cancelled', exitCode, output: text, outputTruncated: truncated, reason: 'cancelled' };
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.outer.removeEventListener('abort', this.onAbort);
  }
}

/**
 * Where an executor registers the process groups it spawns, so that they die with the host process: the
 * agent's JobReaper (agent/reaper.ts) SIGKILLs every registered group when the agent dies.
 */
export interface ProcessGroups {
  add(pgid: number): void;
  remove(pgid: number): void;
}

/**
 * What a job process inherits from the agent's environment: a sane base (PATH, HOME, user, shell,
 * locale, time zone, temp dir, terminal, CA bundles) and the names an operator lists (`passThrough`),
 * nothing else — no AWS credentials or settings, no CRONPLANE_* configuration, no other secret the agent
 * was started with. The job's own `env` and the variables the executor sets (ENV_JOB_NAME,
 * CRONPLANE_JOB_NAME, ...) are added on top by the executor.
 */
export const JOB_BASE_ENV: readonly string[] = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'TERM',
  'HOSTNAME',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
];
const LOCALE = /^LC_[A-Z_]+$/;
/** Names an operator may not pass through to jobs: the agent's credentials and configuration. */
export const NEVER_PASSED_TO_JOBS = /^(AWS_|CRONPLANE_)/i;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Checks a pass-through list; answers the problem with it, or null. */
export function passThroughProblem(names: readonly string[]): string | null {
  for (const name of names) {
    if (!ENV_NAME.test(name)) return `"${name}" is not an environment variable name`;
    if (NEVER_PASSED_TO_JOBS.test(name)) return `${name}: AWS_* and CRONPLANE_* never reach jobs`;
  }
  return null;
}

export function jobBaseEnv(
  env: Readonly<Record<string, string | undefined>>,
  passThrough: readonly string[] = [],
): Record<string, string> {
  const keep = new Set([...JOB_BASE_ENV, ...passThrough.filter((n) => !NEVER_PASSED_TO_JOBS.test(n))]);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && (keep.has(name) || LOCALE.test(name))) out[name] = value;
  }
  return out;
}
