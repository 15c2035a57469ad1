/**
 * External executors: the extension point for custom executors, as separate executables speaking JSON.
 *
 * Discovery: `discoverExternalExecutors(dirs)` registers every executable regular file named
 * `cronplane-executor-<name>` (name: lowercase letters, digits, `_` and `-`) in the given directories as
 * executor `<name>`; the first directory listing a name wins, like PATH. An operator may also map a name
 * to any executable path in the agent's configuration (`new ExternalExecutor(name, path)`). The path is
 * never taken from a job's `executor_config`: jobs pick among the executors the host offers.
 *
 * Protocol, one process per execution:
 *   - The agent starts the executable with no arguments, in its own process group (registered with the
 *     agent's reaper: it dies with the agent), with the agent's environment scrubbed (`jobBaseEnv`: no
 *     AWS_*, no CRONPLANE_* settings, no other secret of the agent's) plus CRONPLANE_EXECUTOR,
 *     CRONPLANE_JOB_NAME, CRONPLANE_EXECUTION_ID, CRONPLANE_SCHEDULED_AT and ENV_JOB_NAME.
 *   - stdin receives one JSON document, then EOF:
 *       {"job": <the job definition, Dkron JSON>,
 *        "execution": {"id": "...", "job_name": "...", "scheduled_at": "<RFC 3339>", "attempt": 1},
 *        "config": <the job's executor_config, string values>}
 *   - stdout must be exactly one JSON object (surrounding whitespace allowed), at most 8 MiB:
 *       {"success": true|false, "output": "<text>", "exit_code"?: <integer>, "error"?: "<reason>"}
 *     `output` becomes the execution's output (bounded like every output), `exit_code` its exit code (the
 *     process's own exit code when absent), `error` the reason when `success` is false.
 *   - stderr is for logs: kept (bounded) and returned as the output when the protocol is broken.
 *   - The process should exit 0. A non-zero exit fails the run even when stdout says success; stdout
 *     that is not the JSON above fails it too, with the reason saying what was wrong.
 *   - `executor_config.timeout` (seconds or a Go duration; none by default) and cancellation kill the
 *     whole process group with SIGKILL; the run is then `timeout` / `cancelled`.
 *
 * Custom processors (shared/processors/external.ts) speak the same protocol through `runExternalProgram`,
 * with their own request and environment.
 */
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Execution } from '../executions/execution.ts';
import { OutputBuffer } from '../executions/output-buffer.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import {
  errorMessage,
  failedResult,
  jobBaseEnv,
  type ProcessGroups,
  parseTimeout,
  RunControl,
  spawnJobProcess,
} from './common.ts';
import type { Executor, ExecutorResult } from './executor.ts';

export const EXTERNAL_PREFIX = 'cronplane-executor-';
export const MAX_STDOUT_BYTES = 8 * 1024 * 1024;
const NAME = /^[a-z0-9_-]+$/;

export interface ExternalRequest {
  job: JobDefinition;
  execution: { id: string; job_name: string; scheduled_at: string; attempt: number };
  config: Record<string, string>;
}

export interface ExternalResponse {
  success: boolean;
  output: string;
  exit_code?: number;
  error?: string;
}

export function buildExternalRequest(job: JobDefinition, execution: Execution): ExternalRequest {
  return {
    job,
    execution: {
      id: execution.executionId,
      job_name: job.name,
      scheduled_at: new Date(execution.scheduledAt).toISOString(),
      attempt: execution.attempt,
    },
    config: job.executor_config,
  };
}

const responseSchema = z.object({
  success: z.boolean({ message: '"success" must be true or false' }),
  output: z.string({ message: '"output" must be a string' }).optional(),
  exit_code: z
    .number({ message: '"exit_code" must be an integer' })
    .int({ message: '"exit_code" must be an integer' })
    .optional(),
  error: z.string({ message: '"error" must be a string' }).optional(),
});

/** Parses an executor's stdout. Throws an Error whose message says what is wrong with it. */
export function parseExternalResponse(stdout: string): ExternalResponse {
  const text = stdout.trim();
  if (text === '') throw new Error('printed nothing on stdout (expected a JSON result)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`stdout is not JSON: ${snippet(text)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`stdout must be a JSON object, got ${snippet(text)}`);
  }
  const result = responseSchema.safeParse(parsed);
  if (!result.success)
    throw new Error(`bad result on stdout: ${result.error.issues[0]?.message ?? 'invalid'}`);
  const r = result.data;
  return {
    success: r.success,
    output: r.output ?? '',
    ...(r.exit_code !== undefined ? { exit_code: r.exit_code } : {}),
    ...(r.error !== undefined ? { error: r.error } : {}),
  };
}

function snippet(text: string, max = 200): string {
  const one = text.replace(/\s+/g, ' ');
  return JSON.stringify(one.length > max ? `${one.slice(0, max)}…` : one);
}

export interface ExternalExecutorOptions {
  /** The environment the executor starts from. Default: `jobBaseEnv(process.env)`. */
  readonly baseEnv?: Record<string, string | undefined>;
  /** Where each run's process group is registered while it runs, to die with the agent. */
  readonly groups?: ProcessGroups;
}

export class ExternalExecutor implements Executor {
  constructor(
    readonly name: string,
    readonly path: string,
    private readonly options: ExternalExecutorOptions = {},
  ) {}

  async run(job: JobDefinition, execution: Execution, signal: AbortSignal): Promise<ExecutorResult> {
    let timeoutMs: number;
    try {
      timeoutMs = parseTimeout(job.executor_config.timeout, 0);
    } catch (error) {
      return failedResult(errorMessage(error));
    }
    return runExternalProgram({
      label: `executor ${this.name}`,
      path: this.path,
      request: buildExternalRequest(job, execution),
      env: {
        ...(this.options.baseEnv ?? jobBaseEnv(process.env)),
        CRONPLANE_EXECUTOR: this.name,
        ENV_JOB_NAME: job.name,
        CRONPLANE_JOB_NAME: job.name,
        CRONPLANE_EXECUTION_ID: execution.executionId,
        CRONPLANE_SCHEDULED_AT: new Date(execution.scheduledAt).toISOString(),
      },
      timeoutMs,
      signal,
      ...(this.options.groups ? { groups: this.options.groups } : {}),
    });
  }
}

export interface ExternalProgramRun {
  /** What the program is, in reasons: `executor <name>`, `processor <name>`. */
  readonly label: string;
  readonly path: string;
  /** Written to stdin as one JSON document, then EOF. */
  readonly request: unknown;
  readonly env: Record<string, string | undefined>;
  /** 0: none. */
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  readonly groups?: ProcessGroups;
}

/**
 * One run of an external program under the protocol above (custom executors, and custom processors:
 * shared/processors/external.ts): its own process group, the request on stdin, one JSON result on stdout.
 */
export async function runExternalProgram(run: ExternalProgramRun): Promise<ExecutorResult> {
  const control = new RunControl(run.signal, run.timeoutMs);
  try {
    const early = control.stoppedResult();
    if (early) return early;
    return await spawnAndWait(run, control);
  } finally {
    control.dispose();
  }
}

function spawnAndWait(run: ExternalProgramRun, control: RunControl): Promise<ExecutorResult> {
  const { label, groups } = run;
  const stdout: Buffer[] = [];
  let stdoutSize = 0;
  let overflow = false;
  const stderr = new OutputBuffer();
  return new Promise<ExecutorResult>((resolve) => {
    let settled = false;
    // Its own process group, registered with the agent's reaper before the program runs.
    const child = spawnJobProcess(run.path, [], { env: run.env }, groups);
    const pgid = child.pid;
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    control.signal.addEventListener('abort', killGroup, { once: true });
    const finish = (result: ExecutorResult) => {
      if (settled) return;
      settled = true;
      if (pgid !== undefined) groups?.remove(pgid);
      control.signal.removeEventListener('abort', killGroup);
      resolve(result);
    };
    child.stdout?.on('data', (d: Buffer) => {
      if (overflow) return;
      stdoutSize += d.length;
      if (stdoutSize > MAX_STDOUT_BYTES) {
        overflow = true;
        killGroup();
        return;
      }
      stdout.push(d);
    });
    child.stderr?.on('data', (d: Buffer) => stderr.write(d));
    child.stdin?.on('error', () => {}); // a program that ignores stdin may close it early
    child.stdin?.end(`${JSON.stringify(run.request)}\n`);
    child.on('error', (error) =>
      finish(failedResult(`cannot start ${label} (${run.path}): ${error.message}`)),
    );
    child.on('close', (code, sig) => {
      const stopped = control.stoppedResult(stderr, code);
      if (stopped) return finish(stopped);
      if (overflow)
        return finish(
          failedResult(`${label} printed more than ${MAX_STDOUT_BYTES} bytes on stdout`, stderr, code),
        );
      let response: ExternalResponse;
      try {
        response = parseExternalResponse(Buffer.concat(stdout).toString('utf8'));
      } catch (error) {
        const exit = code !== 0 ? ` and ${sig ? `was killed by ${sig}` : `exited with code ${code}`}` : '';
        return finish(
          failedResult(`${label} ${errorMessage(error)}${exit}${stderrHint(stderr)}`, stderr, code),
        );
      }
      const output = new OutputBuffer();
      output.write(response.output);
      const exitCode = response.exit_code ?? code;
      const base = { exitCode, output: output.toString(), outputTruncated: output.truncated };
      if (code !== 0) {
        const why = sig ? `was killed by ${sig}` : `exited with code ${code}`;
        return finish({
          ...base,
          status: 'failed',
          reason: `${label} ${why}${response.error ? `: ${response.error}` : ''}`,
        });
      }
      if (!response.success) {
        return finish({ ...base, status: 'failed', reason: response.error || `${label} reported failure` });
      }
      finish({ ...base, status: 'succeeded', reason: null });
    });
  });
}

/** The last non-empty stderr line, for a reason. */
function stderrHint(stderr: OutputBuffer): string {
  const last = stderr
    .toString()
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .at(-1);
  return last ? ` (stderr: ${last.length > 200 ? `${last.slice(0, 200)}…` : last})` : '';
}

/**
 * Finds `cronplane-executor-<name>` executables in `dirs` (missing directories are skipped; the first
 * directory with a name wins) and returns an ExternalExecutor per name.
 */
export function discoverExternalExecutors(
  dirs: string[],
  options: ExternalExecutorOptions = {},
): Record<string, Executor> {
  const found: Record<string, Executor> = {};
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const entry of entries) {
      if (!entry.startsWith(EXTERNAL_PREFIX)) continue;
      const name = entry.slice(EXTERNAL_PREFIX.length);
      if (!NAME.test(name) || Object.hasOwn(found, name)) continue;
      const path = join(dir, entry);
      if (!isExecutableFile(path)) continue;
      found[name] = new ExternalExecutor(name, path, options);
    }
  }
  return found;
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
