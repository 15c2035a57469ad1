/**
 * Dkron's shell executor: `command` (split into words, or run by /bin/sh -c when `shell` is "true"),
 * `env` ("K1=v1,K2=v2"), `cwd`, `timeout` (Go duration), `payload` (base64, fed to stdin) and `su`.
 * The job runs in its own process group, so a timeout or cancel kills everything it started, and that
 * group is registered with the agent's reaper, so it dies with the agent too (agent/reaper.ts).
 * Environment: a scrubbed base (`jobBaseEnv`: no AWS_*, no CRONPLANE_*, no other variable of the
 * agent's), then the job's `env`, then ENV_JOB_NAME and CRONPLANE_JOB_NAME / _EXECUTION_ID / _SCHEDULED_AT.
 */
import { execFile, spawn as nodeSpawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Execution } from '../../shared/executions/execution.ts';
import { OutputBuffer } from '../../shared/executions/output-buffer.ts';
import {
  errorMessage,
  findExecutable,
  jobBaseEnv,
  type ProcessGroups,
  spawnJobProcess,
} from '../../shared/executors/common.ts';
import type { Executor, ExecutorResult, RunHooks } from '../../shared/executors/executor.ts';
import { rememberSecret, resolvingSecrets } from '../../shared/executors/secrets.ts';
import { parseShellConfig, type ShellSpec } from '../../shared/executors/shell-config.ts';
import type { JobDefinition } from '../../shared/jobs/definition.ts';
import { MAX_HOLD_MS } from '../../shared/timing.ts';
import { agentEnv } from '../config.ts';
import { type JobSpawner, type PreparedJob, SpawnedJob, type SpawnOptions } from '../spawner.ts';

// The config is parsed in shared/ so that the API checks it with the same rules when a job is written.
export { parseEnvList, splitCommand } from '../../shared/executors/shell-config.ts';

export interface ShellExecutorOptions {
  readonly spawn?: typeof nodeSpawn;
  /**
   * The environment every job starts from (then its own `env`, then ENV_JOB_NAME and CRONPLANE_*
   * identity variables). Default: `jobBaseEnv(agentEnv())`, the agent's environment scrubbed of its
   * credentials and configuration.
   */
  readonly baseEnv?: Record<string, string | undefined>;
  /** Where each job's process group is registered while it runs, to die with the agent. */
  readonly groups?: ProcessGroups;
  /** Resolves secret references (e.g. `{{ssm:/path}}`) in env values at run time. */
  readonly resolveEnv?: (env: Record<string, string>) => Promise<Record<string, string>>;
  /**
   * Also write the whole output to a temp file (in os.tmpdir()); when it overflows the in-memory head and
   * tail, the result's `fullOutputPath` names that file (the runner uploads it to the output bucket and
   * removes it). Without it, only the bounded output exists.
   */
  readonly outputSink?: boolean;
  /**
   * Starts jobs in the agent's spawner process (agent/spawner.ts), which owns their reaper; `groups` and
   * `spawn` are then unused. Without it, jobs are forked from this process.
   */
  readonly spawner?: JobSpawner;
}

/** How long a program found on the PATH is taken to be there without looking again. */
const FOUND_FOR_MS = 10_000;
/** A launch this close to its fire time is not forked ahead: its run follows at once. */
const PREFORK_MIN_LEAD_MS = 50;
/**
 * How long past its fire time a job forked ahead waits for its start before the spawner kills it (a
 * forgotten one: every path that does not run it drops it); started after half of that, it is forked
 * afresh (JobSpawner.prefork). A launch may wait for a slot or a `replace` past its fire time.
 */
const PREFORK_SPARE_MS = 120_000;

/** What `run` forks: the job's program and arguments, its limits and its process's options. */
interface Launch {
  readonly argv: string[];
  readonly timeoutMs: number;
  readonly spawnOptions: SpawnOptions;
  readonly payload: Buffer | undefined;
}

const keyOf = (e: Pick<Execution, 'jobName' | 'executionId'>) => `${e.jobName}/${e.executionId}`;

export class ShellExecutor implements Executor {
  /** `hooks.started` once the job's process exists (not called when it could not be started). */
  readonly reportsStart = true;
  /** Programs found lately, by program, PATH and cwd: a job every second does not stat the PATH each time. */
  private readonly found = new Map<string, number>();
  /** Launches forked ahead by `prepare`, by execution, until `run` starts or `release` drops them. */
  private readonly ahead = new Map<
    string,
    Promise<{ launch: Launch; secrets: ReadonlySet<string>; job: PreparedJob } | null>
  >();

  constructor(private readonly options: ShellExecutorOptions = {}) {}

  /**
   * A launch claimed and held to its fire time: through the spawner its process is forked now, its gate
   * shut (everything `run` would do up to the fork: the definition, the environment, the user), so that at
   * the fire time only the gate opens — a burst's forks happen during its hold, not at its second.
   */
  prepare(job?: JobDefinition, execution?: Execution): void {
    const spawner = this.options.spawner;
    spawner?.warm();
    if (!spawner || !job || !execution) return;
    const lead = execution.scheduledAt - Date.now();
    const key = keyOf(execution);
    if (lead < PREFORK_MIN_LEAD_MS || this.ahead.has(key)) return;
    // Secrets resolved for it now are remembered by its run (whose scope redacts its output).
    this.ahead.set(
      key,
      resolvingSecrets(() => this.launch(job, execution), { resolvesFrom: job.executor_config }).then(
        ({ value: l, secrets }) =>
          'argv' in l
            ? {
                launch: l,
                secrets,
                // A runner holds a launch at most MAX_HOLD_MS (and a clock of its own may be far from
                // this one: tests run agents on a fake clock), so the wait counts from that at most.
                job: spawner.prefork(
                  l.argv[0]!,
                  l.argv.slice(1),
                  l.spawnOptions,
                  l.payload,
                  Math.min(lead, MAX_HOLD_MS) + PREFORK_SPARE_MS,
                ),
              }
            : null,
        () => null,
      ),
    );
  }

  /** The launch will not run here (skipped, cancelled, the agent stops): its process forked ahead is killed. */
  release(execution: Execution): void {
    const key = keyOf(execution);
    const ahead = this.ahead.get(key);
    if (!ahead) return;
    this.ahead.delete(key);
    void ahead.then((a) => a?.job.drop());
  }

  /**
   * Whether `file` exists as `spawn` would look for it. A program found within FOUND_FOR_MS is not looked
   * up again (one that vanished meanwhile fails in the gate's `exec`, exit 127, instead of "cannot start").
   */
  private canStart(file: string, env: Record<string, string | undefined>, cwd: string | undefined): boolean {
    const key = `${file}\0${env.PATH ?? ''}\0${cwd ?? ''}`;
    const now = Date.now();
    const at = this.found.get(key);
    if (at !== undefined && now - at < FOUND_FOR_MS) return true;
    if (!findExecutable(file, env, cwd)) {
      this.found.delete(key);
      return false;
    }
    if (this.found.size >= 1_000) this.found.clear();
    this.found.set(key, now);
    return true;
  }

  /** Everything up to the fork: the parsed definition, the user, the environment, the program found. */
  private async launch(job: JobDefinition, execution: Execution): Promise<Launch | ExecutorResult> {
    let spec: ShellSpec;
    try {
      spec = parseShellConfig(job.executor_config);
    } catch (error) {
      return failed(errorMessage(error));
    }
    const { argv, timeoutMs } = spec;
    let user: RunAs | undefined;
    if (spec.su) {
      try {
        user = await runAs(spec.su);
      } catch (error) {
        return failed(`su ${spec.su}: ${errorMessage(error)}`);
      }
    }
    let extra = spec.env;
    if (this.options.resolveEnv) extra = await this.options.resolveEnv(extra);
    const env = {
      ...(this.options.baseEnv ?? jobBaseEnv(agentEnv())),
      ...(user ? { HOME: user.home, USER: user.name, LOGNAME: user.name } : {}),
      ...extra,
      ENV_JOB_NAME: job.name,
      CRONPLANE_JOB_NAME: job.name,
      CRONPLANE_EXECUTION_ID: execution.executionId,
      CRONPLANE_SCHEDULED_AT: new Date(execution.scheduledAt).toISOString(),
    };
    // Through the reaper's gate the program is started by /bin/sh: a missing one is reported as Node would.
    if (
      (this.options.groups || this.options.spawner) &&
      !this.canStart(argv[0]!, env, spec.cwd || undefined)
    ) {
      return failed(`cannot start ${argv[0]}: spawn ${argv[0]} ENOENT`);
    }
    return {
      argv,
      timeoutMs,
      spawnOptions: {
        cwd: spec.cwd || undefined,
        env,
        // libuv drops the agent's supplementary groups when it switches the user.
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
      },
      payload: spec.payload ? Buffer.from(spec.payload, 'base64') : undefined,
    };
  }

  async run(
    job: JobDefinition,
    execution: Execution,
    signal: AbortSignal,
    hooks?: RunHooks,
  ): Promise<ExecutorResult> {
    const cfg = job.executor_config;
    const key = keyOf(execution);
    const ahead = this.ahead.get(key);
    this.ahead.delete(key);
    const forked = ahead ? await ahead : null;
    for (const secret of forked?.secrets ?? []) rememberSecret(secret);
    const prepared = forked?.launch ?? (await this.launch(job, execution));
    if (!('argv' in prepared)) return prepared;
    if (signal.aborted) {
      forked?.job.drop();
      return { ...failed('cancelled before it started'), status: 'cancelled' };
    }
    const { argv, timeoutMs, spawnOptions, payload } = prepared;
    // Named only when the output outgrows the buffer (os.tmpdir() reads the environment each call).
    const spillPath = this.options.outputSink
      ? () => join(tmpdir(), `cronplane-output-${execution.executionId}-${randomUUID()}.log`)
      : undefined;
    const output = new OutputBuffer(undefined, undefined, spillPath);
    hooks?.output?.(output);
    return new Promise<ExecutorResult>((resolve) => {
      let settled = false;
      let spawned = false;
      let killedFor: 'timeout' | 'cancelled' | null = null;
      // Its own process group (kill(-pid) reaches grandchildren too), registered with a reaper before the
      // command runs: should the agent die from then on, the group dies with it. Through the spawner
      // (agent/spawner.ts) when there is one: forking from the agent costs the agent's size.
      // Forked ahead (`prepare`): only its gate opens now; gone meanwhile, it is forked afresh.
      const child =
        forked?.job.go() ??
        (this.options.spawner
          ? this.options.spawner.spawn(argv[0]!, argv.slice(1), spawnOptions, payload)
          : localJob(argv, spawnOptions, payload, this.options.groups, this.options.spawn ?? nodeSpawn));
      // The run starts when its process exists (forking costs more as the agent grows, and a burst's
      // spawns queue behind each other): that, not the call, is the execution's start.
      child.once('spawn', (_pid: number, at: number) => {
        spawned = true;
        hooks?.started?.(at);
      });
      const killGroup = (why: 'timeout' | 'cancelled') => {
        if (killedFor || settled) return;
        killedFor = why;
        child.kill('SIGKILL');
      };
      const timer = timeoutMs > 0 ? setTimeout(() => killGroup('timeout'), timeoutMs) : null;
      const onAbort = () => killGroup('cancelled');
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
      child.on('data', (d: Buffer) => output.write(d));
      const finish = (result: ExecutorResult) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        void output.close().then(
          (fullOutputPath) => resolve(fullOutputPath ? { ...result, fullOutputPath } : result),
          () => resolve(result),
        );
      };
      child.on('error', (error: Error) =>
        finish(failed(spawned ? error.message : `cannot start ${argv[0]}: ${error.message}`, output)),
      );
      child.on('close', (code: number | null, sig: NodeJS.Signals | null) => {
        const text = output.toString();
        if (killedFor === 'timeout') {
          finish({
            status: 'timeout',
            exitCode: code,
            output: text,
            outputTruncated: output.truncated,
            reason: `timed out after ${cfg.timeout}`,
          });
        } else if (killedFor === 'cancelled' && code === null) {
          // Killed. (An exit code means it ended by itself before the kill reached it — the kill was sent
          // after its exit, in the same turn of a busy event loop: its own result, not a cancellation.)
          finish({
            status: 'cancelled',
            exitCode: code,
            output: text,
            outputTruncated: output.truncated,
            reason: 'cancelled',
          });
        } else {
          const ok = code !== null && job.success_exit_codes.includes(code);
          finish({
            status: ok ? 'succeeded' : 'failed',
            exitCode: code,
            output: text,
            outputTruncated: output.truncated,
            reason: ok ? null : sig ? `killed by ${sig}` : `exit code ${code}`,
          });
        }
      });
    });
  }
}

/**
 * A job forked from this process (no spawner: tests, and hosts that ask for none), as the events a
 * spawner's job has (`SpawnedJob`): `spawn`, `data`, `error`, `close`; `kill` signals its group.
 */
function localJob(
  argv: readonly string[],
  options: SpawnOptions,
  payload: Buffer | undefined,
  groups: ProcessGroups | undefined,
  spawn: typeof nodeSpawn,
): SpawnedJob {
  const job = new SpawnedJob();
  const child = spawnJobProcess(argv[0]!, argv.slice(1), options, groups, spawn);
  const pid = child.pid;
  if (pid !== undefined) process.nextTick(() => job.spawned(pid, Date.now()));
  child.stdout?.on('data', (d: Buffer) => job.emit('data', d));
  child.stderr?.on('data', (d: Buffer) => job.emit('data', d));
  child.stdin?.on('error', () => {});
  child.stdin?.end(payload);
  let ended = false;
  const end = (event: 'error' | 'close', ...args: unknown[]) => {
    if (ended) return;
    ended = true;
    if (pid !== undefined) groups?.remove(pid);
    // after `spawn` (a failed start has no pid: `error` comes on its own)
    process.nextTick(() => job.emit(event, ...args));
  };
  child.on('error', (error) => end('error', error));
  // As in the spawner: the command's exit ends the run, and kills what it left running in its group.
  child.on('exit', () => job.kill());
  child.on('close', (code, sig) => end('close', code, sig));
  return job;
}

interface RunAs {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/**
 * Who `su` names on this host (getent: local and directory users alike, by name or uid). Only an agent
 * running as root can switch; any other refuses a job for another user rather than run it as itself.
 */
async function runAs(user: string): Promise<RunAs> {
  let line: string;
  try {
    line = (await promisify(execFile)('getent', ['passwd', user])).stdout.split('\n')[0]!;
  } catch {
    throw new Error('no such user on this host');
  }
  const [name, , uid, gid, , home] = line.split(':');
  const me = process.getuid?.();
  if (me !== 0 && me !== Number(uid)) {
    throw new Error(`the agent runs as uid ${me}, not root: it cannot run jobs as another user`);
  }
  return { name: name!, uid: Number(uid), gid: Number(gid), home: home || '/' };
}

function failed(reason: string, output?: OutputBuffer): ExecutorResult {
  return {
    status: 'failed',
    exitCode: null,
    output: output?.toString() ?? '',
    outputTruncated: output?.truncated ?? false,
    reason,
  };
}
