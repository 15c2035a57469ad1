/**
 * Helpers shared by the executors in this folder: result constructors, the `timeout` setting, and a run
 * controller that merges the caller's AbortSignal with a timeout and remembers which one fired.
 */
import { type ChildProcess, spawn as nodeSpawn, type SpawnOptions } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
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
  /** Registers a group; `registered` is called once the registration has left this process. */
  add(pgid: number, registered?: () => void): void;
  remove(pgid: number): void;
}

/**
 * The gate a job's process passes before it runs the job: it waits for "go" on fd 3, which the agent
 * writes only once the process group is registered with its reaper; should the agent die first, fd 3
 * ends, the gate exits and the job never runs. So no job runs unregistered, however long the agent is
 * descheduled between the spawn and the registration (on a loaded host: tens of milliseconds).
 */
export const JOB_GATE_SCRIPT = 'IFS= read -r go <&3 && [ "$go" = go ] || exit 125; exec 3<&-; exec "$@"';

/**
 * Spawns a job's process in a process group of its own (so that a timeout or cancel kills all it
 * started), stdio piped. With `groups`, the group is registered there before the job runs (through
 * JOB_GATE_SCRIPT, by /bin/sh: `file` is found on the PATH of `options.env` as Node would find it).
 */
export function spawnJobProcess(
  file: string,
  args: readonly string[],
  options: Omit<SpawnOptions, 'stdio' | 'detached'>,
  groups?: ProcessGroups,
  spawn: typeof nodeSpawn = nodeSpawn,
): ChildProcess {
  if (!groups) return spawn(file, args, { ...options, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  const child = spawn('/bin/sh', ['-c', JOB_GATE_SCRIPT, file, file, ...args], {
    ...options,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
  });
  const gate = child.stdio[3] as Writable | null;
  gate?.on('error', () => {}); // the process died before reading it
  if (child.pid === undefined) {
    gate?.destroy();
    return child;
  }
  groups.add(child.pid, () => gate?.end('go\n'));
  return child;
}

/**
 * Where `spawn` would find `file` (PATH of `env` when it has no slash, else relative to `cwd`), or null:
 * a job whose program does not exist fails with "cannot start" before anything is spawned.
 */
export function findExecutable(
  file: string,
  env: Readonly<Record<string, string | undefined>>,
  cwd?: string,
): string | null {
  const candidates = file.includes('/')
    ? [isAbsolute(file) ? file : resolve(cwd ?? process.cwd(), file)]
    : (env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(isAbsolute(dir) ? dir : resolve(cwd ?? process.cwd(), dir), file));
  for (const path of candidates) {
    try {
      if (statSync(path).isFile()) {
        accessSync(path, constants.X_OK);
        return path;
      }
    } catch {
      // not there, or not executable: the next one
    }
  }
  return null;
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
