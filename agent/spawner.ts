/**
 * Forking costs the size of the process that forks: libuv starts a child with fork(), which copies the
 * parent's page tables, so a spawn from an agent of 56 MB took 1.1 ms, from 268 MB 8.6 ms and from 688 MB
 * 28 ms (README, "Launch precision"). An agent under a burst is ~150 MB, and a thousand jobs on one second
 * queued behind each other's forks in its event loop.
 *
 * So shell jobs are started by a spawner: a small Node process beside the agent (`node -e SPAWNER_SCRIPT`,
 * no modules, ~40 MB that stay ~40 MB) that the agent talks to over an IPC channel. The agent keeps
 * everything else — the protocol, the timeouts and cancels (it signals the job's process group itself),
 * the output buffer and the result. The spawner forks the job behind the same gate as before
 * (JOB_GATE_SCRIPT: the job waits until its group is registered with a reaper), relays its output and
 * its exit, and owns the reaper of the jobs it started (REAPER_SCRIPT, started by the spawner):
 *   - the agent dies, however it dies → its end of the IPC channel closes → the spawner exits → the
 *     reaper reads end-of-file and SIGKILLs every group still registered;
 *   - the spawner dies → its reaper reads end-of-file and kills its jobs; the agent fails those runs
 *     (the spawner's exit is their end) and starts another spawner for the next job;
 *   - the reaper dies → the spawner kills its jobs itself and exits (no job runs unguarded).
 * Its environment holds only PATH: no AWS credentials or agent settings (a job's environment comes
 * with each run, built by the executor as before).
 *
 * It is started on the first shell job (or `warm()`, when a shell launch is claimed ahead of its fire
 * time) and exits after IDLE_EXIT_MS without a run, so an idle agent is no bigger than before.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { JOB_GATE_SCRIPT } from '../shared/executors/common.ts';
import { agentEnv } from './config.ts';
import { REAPER_SCRIPT } from './reaper.ts';

/** The job gate (JOB_GATE_SCRIPT), its stderr first sent into its stdout pipe: one pipe fewer a fork. */
export const SPAWNER_GATE_SCRIPT = `exec 2>&1; ${JOB_GATE_SCRIPT}`;

/**
 * The spawner's program (CommonJS, run by `node -e`; REAPER and GATE are prepended). Messages
 * (v8-serialised): in `['run', id, file, args, {cwd, env, uid, gid}, payload]`; out `['spawn', id, pid,
 * at]` or `['error', id, message]`, then `['out', id, Buffer]`…, then `['exit', id, code, signal]`.
 * A job's gate opens as soon as its `+pid` line is in the reaper's pipe.
 * Forked ahead (a launch held to its fire time): `['prep', id, file, args, options, payload, maxWaitMs]`
 * forks and registers the job, its gate shut; `['go', id]` opens it (then `spawn`, with that instant);
 * `['drop', id]`, or no `go` within maxWaitMs, kills its group (then only `exit`).
 */
const SPAWNER_BODY = String.raw`'use strict';
const { spawn } = require('node:child_process');
const groups = new Set();
const reaper = spawn('/bin/sh', ['-c', REAPER], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
reaper.stdin.on('error', () => {});
reaper.on('exit', () => {
  for (const g of groups) try { process.kill(-g, 'SIGKILL'); } catch {}
  process.exit(70);
});
reaper.unref();
process.on('disconnect', () => process.exit(0));
// A line written whole into the pipe (nothing left in the stream's buffer) is the reaper's: should this
// process die now, the reaper reads it before the end of the pipe. Then the job may go at once, not after
// the burst's other forks (a write's callback would wait for them all); else once the write is done.
function line(text, then) {
  let pending = then;
  const done = () => {
    if (pending) pending();
    pending = null;
  };
  reaper.stdin.write(text, done);
  if (reaper.stdin.writableLength === 0) done();
}
function send(message, done) {
  if (process.connected) process.send(message, done);
}
// Jobs forked ahead, their gates shut until 'go': id -> { pid, gate, registered, going, timer }.
const held = new Map();
process.on('message', (m) => {
  const [kind, id] = m;
  if (kind === 'go' || kind === 'drop') {
    const h = held.get(id);
    if (!h) {
      if (kind === 'go') send(['error', id, 'the job forked ahead of its start was gone']);
      return;
    }
    if (kind === 'drop') return kill(id, h);
    clearTimeout(h.timer);
    h.going = true;
    if (h.registered) open(id, h);
    return;
  }
  if (kind !== 'run' && kind !== 'prep') return;
  const [, , file, args, o, payload, maxWaitMs] = m;
  // Each pipe costs a fork ~0.13 ms of this process's CPU: stdin is one only when there is a payload
  // (without one the job reads end-of-file either way), and stderr goes into the stdout pipe
  // (SPAWNER_GATE_SCRIPT; the agent keeps one output, now in the order it was written).
  const input = payload && payload.length > 0;
  let child;
  try {
    child = spawn('/bin/sh', ['-c', GATE, file, file, ...args], {
      cwd: o.cwd, env: o.env, uid: o.uid, gid: o.gid, detached: true,
      stdio: [input ? 'pipe' : 'ignore', 'pipe', 'ignore', 'pipe'],
    });
  } catch (e) {
    send(['error', id, e.message]);
    return;
  }
  const pid = child.pid;
  const gate = child.stdio[3];
  gate.on('error', () => {});
  if (input) child.stdin.on('error', () => {});
  if (pid === undefined) {
    gate.destroy();
    child.once('error', (e) => send(['error', id, e.message]));
    return;
  }
  child.on('error', () => {});
  groups.add(pid);
  if (kind === 'run') {
    line('+' + pid + '\n', () => gate.end('go\n'));
    send(['spawn', id, pid, Date.now()]);
  } else {
    const h = { pid, gate, registered: false, going: false, timer: null };
    h.timer = setTimeout(() => kill(id, h), Math.min(maxWaitMs, 2147483647));
    held.set(id, h);
    line('+' + pid + '\n', () => {
      h.registered = true;
      if (h.going) open(id, h);
    });
  }
  if (input) child.stdin.end(payload);
  const out = child.stdout;
  out.on('data', (d) => {
    out.pause();
    send(['out', id, d], () => out.resume());
  });
  // The run ends with its command: what it left running in its group (a background child holding the
  // output pipe open) is killed then, as a container's leftovers die with its main process.
  child.on('exit', () => {
    try { process.kill(-pid, 'SIGKILL'); } catch {}
  });
  child.on('close', (code, signal) => {
    const h = held.get(id);
    if (h) clearTimeout(h.timer);
    held.delete(id);
    groups.delete(pid);
    line('-' + pid + '\n');
    send(['exit', id, code, signal]);
  });
});
function open(id, h) {
  held.delete(id);
  h.gate.end('go\n');
  send(['spawn', id, h.pid, Date.now()]);
}
function kill(id, h) {
  clearTimeout(h.timer);
  held.delete(id);
  try { process.kill(-h.pid, 'SIGKILL'); } catch {}
}
`;

/** The spawner's whole program: the reaper's script and the gate, then the body. */
export function spawnerScript(): string {
  return `const REAPER = ${JSON.stringify(REAPER_SCRIPT)};\nconst GATE = ${JSON.stringify(SPAWNER_GATE_SCRIPT)};\n${SPAWNER_BODY}`;
}

/** A spawner without a run for this long exits (the next run, or `warm()`, starts another). */
export const IDLE_EXIT_MS = 10 * 60_000;

export interface SpawnOptions {
  readonly cwd?: string | undefined;
  readonly env: Record<string, string | undefined>;
  readonly uid?: number;
  readonly gid?: number;
}

/**
 * A job started by the spawner. Events: `spawn` (pid, at: when its process existed), `data` (Buffer:
 * stdout and stderr as they come), `error` (Error: it could not start, or the spawner died under it),
 * `close` (code, signal). After `error`, nothing more.
 */
export class SpawnedJob extends EventEmitter {
  pid: number | undefined;
  private killWith: NodeJS.Signals | undefined;

  /** Signals the job's process group (once it exists: a kill asked for before is sent on `spawn`). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.pid === undefined) {
      this.killWith = signal;
      return;
    }
    try {
      process.kill(-this.pid, signal);
    } catch {
      // already gone
    }
  }

  /** @internal the spawner's report that the process exists */
  spawned(pid: number, at: number): void {
    this.pid = pid;
    this.emit('spawn', pid, at);
    if (this.killWith) this.kill(this.killWith);
  }
}

/** A job forked ahead by `JobSpawner.prefork`, its gate shut. */
export class PreparedJob {
  /** Gone before its start (dropped, killed, or its spawner died): `go()` answers null. */
  dead = false;

  constructor(
    private readonly spawner: JobSpawner,
    readonly id: number,
    readonly job: SpawnedJob,
    /** After this, `go()` answers null (see `JobSpawner.prefork`). */
    readonly usableUntil: number,
  ) {}

  /** Opens the gate: the job, whose `spawn` event carries this instant; null when it is gone (fork afresh). */
  go(): SpawnedJob | null {
    return this.spawner.start(this);
  }

  /** Kills it unrun (no start will come: the launch was skipped, cancelled, or the agent stops). */
  drop(): void {
    this.spawner.forget(this.id);
  }
}

export interface JobSpawnerOptions {
  readonly log?: (event: Record<string, unknown>) => void;
  /** Default IDLE_EXIT_MS. */
  readonly idleExitMs?: number;
}

/** The agent's side of the spawner (see the file's comment). */
export class JobSpawner {
  private child: ChildProcess | undefined;
  private readonly running = new Map<number, SpawnedJob>();
  /** Jobs forked ahead, not started yet (`prefork`). */
  private readonly prepared = new Map<number, PreparedJob>();
  private nextId = 1;
  private idle: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly idleExitMs: number;

  constructor(private readonly options: JobSpawnerOptions = {}) {
    this.idleExitMs = options.idleExitMs ?? IDLE_EXIT_MS;
  }

  /** The spawner's pid, while one runs (tests look for it). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the spawner ahead of a job (a claimed launch held to its fire time), if none runs. */
  warm(): void {
    if (this.closed) return;
    this.ensure();
    if (this.running.size === 0) this.armIdle();
  }

  spawn(file: string, args: readonly string[], options: SpawnOptions, payload?: Buffer): SpawnedJob {
    const job = new SpawnedJob();
    if (this.closed) {
      process.nextTick(() => job.emit('error', new Error('the agent is stopping')));
      return job;
    }
    const id = this.nextId++;
    this.running.set(id, job);
    const { cwd, env, uid, gid } = options;
    this.sendBusy(['run', id, file, args, { cwd, env, uid, gid }, payload ?? null], (error) =>
      this.end(id, 'error', new Error(`the agent's spawner did not take the job: ${error.message}`)),
    );
    return job;
  }

  /** Sends a message that gives the spawner work: it no longer idles, and its channel holds the agent. */
  private sendBusy(message: unknown[], failed: (error: Error) => void): void {
    const child = this.ensure();
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    child.channel?.ref();
    child.send(message, (error) => {
      if (error) failed(error);
    });
  }

  /**
   * Forks the job now with its gate shut (a launch held to its fire time): `go()` starts it at once, with
   * no fork left to queue behind. Not started within `maxWaitMs` (or `drop()`ed), it is killed unrun.
   */
  prefork(
    file: string,
    args: readonly string[],
    options: SpawnOptions,
    payload: Buffer | undefined,
    maxWaitMs: number,
  ): PreparedJob {
    const job = new SpawnedJob();
    const id = this.nextId++;
    // Started after half its wait, it is forked afresh instead: the spawner's own clock starts later (when
    // the message arrives), so a `go` sent in the first half always finds it there.
    const prepared = new PreparedJob(this, id, job, Date.now() + maxWaitMs / 2);
    if (this.closed) {
      prepared.dead = true;
      return prepared;
    }
    this.prepared.set(id, prepared);
    const { cwd, env, uid, gid } = options;
    this.sendBusy(['prep', id, file, args, { cwd, env, uid, gid }, payload ?? null, maxWaitMs], () =>
      this.forget(id),
    );
    return prepared;
  }

  /** @internal PreparedJob.go: the job becomes a running one. */
  start(prepared: PreparedJob): SpawnedJob | null {
    if (
      prepared.dead ||
      !this.prepared.has(prepared.id) ||
      !this.child?.connected ||
      Date.now() > prepared.usableUntil
    ) {
      this.forget(prepared.id);
      return null;
    }
    this.prepared.delete(prepared.id);
    this.running.set(prepared.id, prepared.job);
    this.child.send(['go', prepared.id], (error) => {
      if (error)
        this.end(
          prepared.id,
          'error',
          new Error(`the agent's spawner did not take the job: ${error.message}`),
        );
    });
    return prepared.job;
  }

  /** @internal PreparedJob.drop, and a prepared job that died before its start. */
  forget(id: number): void {
    const prepared = this.prepared.get(id);
    if (!prepared) return;
    prepared.dead = true;
    this.prepared.delete(id);
    if (this.child?.connected) this.child.send(['drop', id], () => {});
    this.settle();
  }

  /** Ends the channel: the spawner exits (its reaper kills whatever is still registered: nothing, after a drain). */
  close(): void {
    this.closed = true;
    if (this.idle) clearTimeout(this.idle);
    const child = this.child;
    this.child = undefined;
    this.failAll('the agent stopped');
    if (child?.connected) child.disconnect();
  }

  private ensure(): ChildProcess {
    if (this.child) return this.child;
    const child = spawn(process.execPath, ['-e', spawnerScript()], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced',
      env: { PATH: agentEnv().PATH },
    });
    this.child = child;
    child.on('message', (m: unknown[]) => this.onMessage(m));
    child.on('error', (error) => this.options.log?.({ msg: 'job spawner failed', error: error.message }));
    child.once('exit', (code, signal) => {
      // A spawner let go (idle, or the agent stopping) has no jobs; one that died had them all.
      if (this.child !== child) return;
      this.child = undefined;
      if (this.closed) return;
      if (this.running.size > 0)
        this.options.log?.({ msg: 'job spawner exited', code, signal, jobs: this.running.size });
      this.failAll(
        `the agent's spawner process exited (${signal ?? `code ${code}`}); the job's process group was killed with it`,
      );
    });
    // Neither the process nor its channel keeps the agent alive while no job runs through it.
    child.unref();
    child.channel?.unref();
    return child;
  }

  private onMessage(m: unknown[]): void {
    const id = m[1] as number;
    // A job forked ahead that ended before its start (killed from outside, or could not be forked): the
    // run will fork it afresh.
    if (this.prepared.has(id) && (m[0] === 'exit' || m[0] === 'error')) {
      this.forget(id);
      return;
    }
    const job = this.running.get(id);
    if (!job) return;
    switch (m[0]) {
      case 'spawn':
        job.spawned(m[2] as number, m[3] as number);
        break;
      case 'out':
        job.emit('data', Buffer.from(m[2] as Uint8Array));
        break;
      case 'error':
        this.end(id, 'error', new Error(m[2] as string));
        break;
      case 'exit':
        this.end(id, 'close', m[2], m[3]);
        break;
    }
  }

  private end(id: number, event: 'error' | 'close', ...args: unknown[]): void {
    const job = this.running.get(id);
    if (!job) return;
    this.running.delete(id);
    this.settle();
    job.emit(event, ...args);
  }

  /** With nothing running or forked ahead, the channel no longer holds the agent and the idle clock runs. */
  private settle(): void {
    if (this.running.size > 0 || this.prepared.size > 0) return;
    this.child?.channel?.unref();
    this.armIdle();
  }

  private failAll(reason: string): void {
    for (const p of [...this.prepared.values()]) {
      p.dead = true;
      this.prepared.delete(p.id);
    }
    for (const id of [...this.running.keys()]) this.end(id, 'error', new Error(reason));
  }

  private armIdle(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = setTimeout(() => {
      this.idle = undefined;
      if (this.running.size > 0 || this.prepared.size > 0) return;
      const child = this.child;
      this.child = undefined;
      if (child?.connected) child.disconnect();
    }, this.idleExitMs);
    this.idle.unref();
  }
}
