/**
 * The heartbeat of a claimed execution, and its self-fence (see Heartbeat). Used by the runner (runner.ts).
 */
import type { Context } from '../context.ts';
import type { LiveOutput } from '../executors/executor.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import type { Execution } from './execution.ts';

/**
 * The default self-fence: 60 % of the time after which others take a silent run as lost. The other 40 %
 * cover the kill itself (SIGKILL of the process group: milliseconds), a heartbeat write that reached the
 * store although its answer did not (its time counts, see Heartbeat), and clock skew between hosts.
 */
export function fenceAfterMs(lostAfterMs: number): number {
  return Math.floor(lostAfterMs * 0.6);
}

/**
 * The tail of a running job's output each heartbeat writes (when it grew): enough for any terminal, and a
 * bounded write (64 KB: 64 write units at most) however much the job prints.
 */
export const LIVE_OUTPUT_BYTES = 64 * 1024;

/** What a heartbeat needs of the runner's options (RunnerOptions in runner.ts). */
export interface HeartbeatOptions {
  readonly heartbeatIntervalMs: number;
  readonly lostAfterMs: number;
  readonly fenceAfterMs?: number;
  readonly keepAlive?: () => Promise<void>;
  readonly track?: (executionId: string, controller: AbortController | null) => void;
  readonly log?: (event: Record<string, unknown>) => void;
}

/**
 * Keeps a claimed execution alive — its heartbeat (which carries cancel requests back), the job's lock
 * once held, and the message's visibility — and fences it: the run is killed by its own agent when
 *   - no heartbeat reached the store for `fenceAfterMs` (store unreachable, a partition: others will take
 *     the execution as lost `lostAfterMs` after the last heartbeat they saw, and retry it),
 *   - under `forbid`/`replace`, the lock was not renewed for `fenceAfterMs` (it expires `lostAfterMs`
 *     after its last renewal, and then another run may take it) or another execution holds it,
 *   - the store says the execution is no longer this agent's (it was marked lost meanwhile).
 * Times are those written (the `now` of each acknowledged write), so a write that reached the store
 * although its answer was lost only makes the fence earlier than needed, never later.
 */
export class Heartbeat {
  readonly controller = new AbortController();
  /** Why the run was cancelled or killed through its heartbeat, if it was. */
  cancelReason: string | null = null;
  /** Killed by the fence (the result is `failed`, so the retry policy applies), not cancelled. */
  fenced = false;
  private holdsLock = false;
  private lastBeatAt: number;
  private lastLockAt = Number.POSITIVE_INFINITY;
  private readonly fenceMs: number;
  private fenceTimer: NodeJS.Timeout | undefined;
  private holdBeat: NodeJS.Timeout | undefined;
  private interval: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The run's output as it grows (set by the executor): each beat writes its tail when it changed. */
  live: LiveOutput | undefined;
  private liveBytes = 0;

  constructor(
    private readonly ctx: Context,
    private readonly e: Execution,
    private readonly def: JobDefinition,
    private readonly me: { readonly agentId: string },
    private readonly options: HeartbeatOptions,
  ) {
    this.fenceMs = options.fenceAfterMs ?? fenceAfterMs(options.lostAfterMs);
    this.lastBeatAt = e.heartbeatAt ?? e.claimedAt ?? ctx.clock();
    this.armFence();
    const beatBy = this.lastBeatAt + this.staleAfterMs;
    if (e.scheduledAt > beatBy) {
      this.holdBeat = setTimeout(() => void this.beatLogged(), beatBy - ctx.clock());
    }
  }

  /**
   * How old the last beat may grow before a held or starting run beats out of turn: late enough that a
   * launch held the usual few seconds (a burst's are claimed up to ~12 s before their second) writes
   * nothing until its first interval beat — with half the fence, each of a thousand launches held 10 s beat
   * once while held and again at its fire time, two writes each amid the burst's spawns and results (3.2
   * writes per execution in `cron-1000-on-one-second`) — and early enough that three intervals remain for
   * beats to land before the fence. At least half the fence: never earlier than before.
   */
  private get staleAfterMs(): number {
    return Math.max(this.fenceMs / 2, this.fenceMs - 3 * this.options.heartbeatIntervalMs);
  }

  /** The fire time: from now on it beats every interval (and at once if the last beat is old). */
  begin(): void {
    if (this.stopped) return;
    if (this.holdBeat) clearTimeout(this.holdBeat);
    this.options.track?.(this.e.executionId, this.controller);
    // Each interval's beat waits for the I/O already in (setImmediate runs after the poll phase): in a
    // burst a job's exit may have come in behind the timer, and a run that has ended needs no beat.
    this.interval = setInterval(
      () =>
        setImmediate(() => {
          if (!this.stopped) void this.beatLogged();
        }),
      this.options.heartbeatIntervalMs,
    );
    if (this.ctx.clock() - this.lastBeatAt > this.staleAfterMs) void this.beatLogged();
  }

  /** The run took the job's lock at `at` (forbid/replace): from then on each beat extends it. */
  lockTaken(at: number): void {
    this.holdsLock = true;
    this.lastLockAt = at;
    this.armFence();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.interval);
    clearTimeout(this.holdBeat);
    clearTimeout(this.fenceTimer);
    this.options.track?.(this.e.executionId, null);
  }

  private get fenceAt(): number {
    return Math.min(this.lastBeatAt, this.lastLockAt) + this.fenceMs;
  }

  private armFence(): void {
    if (this.stopped) return;
    clearTimeout(this.fenceTimer);
    this.fenceTimer = setTimeout(
      () => {
        if (this.ctx.clock() < this.fenceAt) return this.armFence();
        const silent = Math.round((this.ctx.clock() - Math.min(this.lastBeatAt, this.lastLockAt)) / 1000);
        this.kill(
          `killed by its agent: no ${this.lastLockAt < this.lastBeatAt ? 'lock renewal' : 'heartbeat'} ` +
            `reached the store for ${silent} s (fence ${this.fenceMs / 1000} s, others take it as lost ` +
            `after ${this.options.lostAfterMs / 1000} s)`,
        );
      },
      Math.max(0, this.fenceAt - this.ctx.clock()),
    );
  }

  private kill(reason: string): void {
    if (this.stopped || this.controller.signal.aborted) return;
    this.fenced = true;
    this.cancelReason = reason;
    this.options.log?.({ msg: 'execution fenced', job: this.e.jobName, id: this.e.executionId, reason });
    this.controller.abort();
  }

  private async beat(): Promise<void> {
    const now = this.ctx.clock();
    // Live output rides on the beat (no write of its own): the last LIVE_OUTPUT_BYTES, when it grew.
    // (The window is built only when the job printed something since the last beat.)
    const live =
      this.live && this.live.bytes !== this.liveBytes ? this.live.view(LIVE_OUTPUT_BYTES) : undefined;
    const state = await this.ctx.executions.heartbeat(this.e, this.me.agentId, now, live);
    if (live) this.liveBytes = Math.max(this.liveBytes, live.bytes);
    if (state === null) {
      this.kill('killed by its agent: the execution is no longer its own (marked lost meanwhile)');
      return;
    }
    this.lastBeatAt = Math.max(this.lastBeatAt, now);
    if (this.holdsLock && this.def.concurrency !== 'allow') {
      const holder = await this.ctx.control.acquireLock(
        this.e.jobName,
        { executionId: this.e.executionId, agentId: this.me.agentId },
        now,
        this.options.lostAfterMs,
      );
      if (holder !== null) {
        this.kill(`killed by its agent: execution ${holder.executionId} holds the job's lock now`);
        return;
      }
      this.lastLockAt = Math.max(this.lastLockAt, now);
    }
    this.armFence();
    if (state.cancelRequested && !this.controller.signal.aborted) {
      this.cancelReason = 'cancelled: replaced by a newer execution (concurrency: replace)';
      this.controller.abort();
    }
    await this.options.keepAlive?.();
  }

  private beatLogged(): Promise<void> {
    return this.beat().catch((error: unknown) =>
      this.options.log?.({ msg: 'heartbeat failed', error: (error as Error).message }),
    );
  }
}
