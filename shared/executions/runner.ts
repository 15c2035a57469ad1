/**
 * Running one launch message: the part shared by the host agent and the agentless worker.
 *
 *   hold until the fire time → read → (lost check) → claim `scheduled → running` → concurrency policy →
 *   run the executor with heartbeats (which also carry cancel requests) → the job's processors (still
 *   heartbeating) → write the result.
 *
 * It answers what to do with the message: `done` (delete it) or `retry` (leave it; it reappears).
 */
import { rm } from 'node:fs/promises';
import { memberStatus } from '../agents/liveness.ts';
import type { Context } from '../context.ts';
import { type LaunchMessage, tagsSatisfy } from '../dispatch/dispatch.ts';
import type { Executor, ExecutorResult, RunHooks } from '../executors/executor.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import { parseTags } from '../jobs/tags.ts';
import type { ClaimOutcome, ExecutionResult } from '../ports.ts';
import { applyProcessors, hasProcessors, type ProcessedOutput } from '../processors/apply.ts';
import type { ProcessorHost } from '../processors/processor.ts';
import { MAX_HOLD_MS } from '../timing.ts';
import type { Execution } from './execution.ts';
import { fenceAfterMs, Heartbeat } from './heartbeat.ts';
import { OutputStore } from './output-store.ts';

export { fenceAfterMs };

export interface RunnerIdentity {
  readonly agentId: string;
  readonly nodeName: string;
}

export interface RunnerOptions {
  readonly executors: Readonly<Record<string, Executor>>;
  /**
   * The processors this host offers (shared/processors/registry.ts), applied to each execution that ran,
   * before its result is written. Without it, a job's `processors` are not applied.
   */
  readonly processors?: ProcessorHost;
  /** How often a running execution heartbeats (and notices cancel requests). */
  readonly heartbeatIntervalMs: number;
  /** A running execution whose heartbeat is older than this is taken as lost. */
  readonly lostAfterMs: number;
  /**
   * Self-fencing: a run whose heartbeat (or, under `forbid`/`replace`, whose lock) has not been renewed
   * for this long is killed by its own agent, so that by the time anyone may take it as lost (after
   * `lostAfterMs`) or its lock expires (`lostAfterMs` after the last renewal) it no longer runs. Must be
   * below `lostAfterMs`; default `fenceAfterMs(lostAfterMs)` (60 %).
   */
  readonly fenceAfterMs?: number;
  readonly sleep: (ms: number) => Promise<void>;
  /**
   * Takes one of the host's execution slots once the hold is over (the agent's concurrency); answers its
   * release. Without it, nothing limits how many run at once.
   */
  readonly acquireSlot?: () => Promise<() => void>;
  /** Called with each heartbeat, e.g. to extend the message's visibility. */
  readonly keepAlive?: () => Promise<void>;
  /** Lets the host cancel a run (shutdown past its grace period). */
  readonly track?: (executionId: string, controller: AbortController | null) => void;
  /**
   * How often this launch was delivered: SQS ApproximateReceiveCount, or (host agent) the hand-offs of a
   * fan-out slot counted in the message. Past MAX_SLOT_BOUNCES a slot gives up unless an agent could still take it.
   */
  readonly receiveCount?: number;
  readonly log?: (event: Record<string, unknown>) => void;
}

/**
 * What to do with the message. `done`: delete it. `retry`: hand it on (another agent may take it). `later`:
 * it arrived long before its fire time (clock skew, a hand-sent message): hide it until then. `recheck`:
 * hide it for `recheckVisibilitySeconds` — its execution runs elsewhere, not yet in the `byActive` index the
 * lost sweep reads, so this message is what finds it should its agent die.
 */
export type RunnerVerdict = 'done' | 'retry' | 'later' | 'recheck';

/** Seconds to hide a message answered `recheck`: by then a run that has not beaten since looks lost. */
export function recheckVisibilitySeconds(lostAfterMs: number): number {
  return Math.min(MAX_HIDE_SECONDS, Math.ceil(lostAfterMs / 1000) + 1);
}

/**
 * The longest a received message may be hidden: SQS refuses a visibility timeout that would keep it
 * hidden more than 12 hours after its receive (`InvalidParameterValue`: "Total VisibilityTimeout for the
 * message is beyond the limit"), and the receive was a moment ago; 5 minutes to spare.
 */
export const MAX_HIDE_SECONDS = 43_200 - 300;

/** Seconds to hide a message answered `later`. */
export function laterVisibilitySeconds(launch: LaunchMessage, now: number): number {
  return Math.min(
    MAX_HIDE_SECONDS,
    Math.max(1, Math.ceil((launch.scheduledAt - now - MAX_HOLD_MS / 2) / 1000)),
  );
}

const MAX_SLOT_BOUNCES = 10;
/** Hard limit on hand-offs of a slot while some live matching agent still holds no slot of its group. */
const MAX_SLOT_BOUNCES_WHILE_FREE = 120;
/** How long a `replace` waits for the execution it cancelled to let go of the lock. */
const REPLACE_WAIT_MS = 30_000;
/** A run still going this long after its start gets its `startedAt` written (shorter ones: with the result). */
const START_RECORD_DELAY_MS = 1_000;

function failure(reason: string): ExecutorResult {
  return { status: 'failed', exitCode: null, output: '', outputTruncated: false, reason };
}

/**
 * Runs launch messages for one host (an agent, or one worker invocation): one object per host, so that
 * the holds of one burst share their timers (see `holdUntil`) and nothing is module-global.
 *
 * A launch goes through these states, each answered by a verdict for its message:
 *
 *   arrived ──(fire time > MAX_HOLD_MS ahead)────────────────────────────────────────────► later
 *      │ read execution + job
 *      ├─(no execution / already ended)──────────────────────────────────────────────────► done
 *      ├─(running elsewhere: alive → leave it; silent past lost-after → mark `lost`)──────► done
 *      │ claim `scheduled → running` (conditional: the at-most-once step)
 *      ├─(job changed: retarget once, or end `skipped`/`cancelled`)──────────────────────► done
 *      ├─(paused → `skipped`; slot taken → retry, or `failed` when no agent could take it)► retry | done
 *      ▼ claimed
 *   held to the fire time (fence armed) → slot → lock (forbid/replace) → run, heartbeating
 *      → processors → result written as the run ended ───────────────────────────────────► done
 *
 * Whatever happens after the claim, the execution is not left `running`: it is ended with the run's own
 * result when there is one (a run that ended is recorded as it ended, even when the fence fires after
 * it), else with why it did not run, else (the store unreachable) its heartbeat stops and the lost check
 * ends it.
 */
export class Runner {
  /** Holds by instant: every hold for the same instant shares one timer (see `holdUntil`). */
  private readonly alarms = new Map<number, Promise<void>>();
  /**
   * The `claimedAt` of every claim this runner sent, by execution, until the launch is settled: a claim
   * whose answer was lost (a timeout, then a retry refused because the first attempt had landed) is known
   * by it as this runner's own, and run — not left `running` for the sweep to mark lost.
   */
  private readonly claimsSent = new Map<string, Set<number>>();
  /** Executions this runner holds or runs now (a duplicate of one of their messages is dropped). */
  private readonly active = new Set<string>();
  /**
   * Claim requests in flight, by execution: a claim may land before its answer arrives, and a duplicate
   * read in between finds the execution running under this agent with a claim this runner sent — not a
   * lost answer (its sender is about to run it), so not in doubt.
   */
  private readonly claiming = new Map<string, number>();

  constructor(
    private readonly ctx: Context,
    private readonly me: RunnerIdentity,
  ) {}

  /** One launch, read and claimed on its own. */
  async process(launch: LaunchMessage, options: RunnerOptions): Promise<RunnerVerdict> {
    const verdict = await this.processOne(launch, options);
    // Settled: its claims are forgotten (one that failed with an error is kept: the message comes back).
    if (!this.active.has(keyOf(launch))) this.claimsSent.delete(keyOf(launch));
    return verdict;
  }

  private async processOne(launch: LaunchMessage, options: RunnerOptions): Promise<RunnerVerdict> {
    const { ctx } = this;
    // Launch messages arrive ahead of their fire time (SQS delays are whole seconds, and a busy second is
    // staged earlier). Everything but the start happens at once — read, claim (the at-most-once step),
    // heartbeats — and the execution is held, claimed, until its exact fire time.
    const early = launch.scheduledAt - ctx.clock();
    if (early > MAX_HOLD_MS) return 'later';

    // One eventually consistent read of both (one request, half the read units), trusted only to go on to
    // the claim, which is conditional on `scheduled`. Anything else — not found yet, running, ended, or
    // the job not found — is read again consistently: a resumed claim, a lost mark or a skip is decided
    // on the latest write, never on a stale one.
    const reads = ctx.readTogether({ consistent: false });
    let [execution, job] = await Promise.all([
      ctx.executions.getMany([launch], reads).then((found) => found.get(keyOf(launch)) ?? null),
      ctx.jobs.getMany([launch.jobName], reads).then((found) => found.get(launch.jobName) ?? null),
    ]);
    if (execution?.status !== 'scheduled' || !job) {
      [execution, job] = await Promise.all([
        ctx.executions.get(launch.jobName, launch.executionId),
        ctx.jobs.get(launch.jobName),
      ]);
    }
    const skip = (why: string): RunnerVerdict => {
      options.log?.({ msg: 'launch not run', job: launch.jobName, id: launch.executionId, why });
      return 'done';
    };
    if (!execution) return skip('no such execution');
    if (this.claimedInDoubt(execution)) return this.resumeClaim(execution, options);
    if (execution.status === 'running') return this.runningElsewhere(execution, options);
    if (execution.status !== 'scheduled') return skip(`already ${execution.status}`);

    if (!job || execution.jobVersion !== job.version) {
      // The job was edited (or deleted) after planning; its write path retargets or skips planned
      // executions. Give it a moment, then either claim under the new version or record why not.
      await options.sleep(300);
      [execution, job] = await Promise.all([
        ctx.executions.get(launch.jobName, launch.executionId).then((e) => e ?? execution!),
        ctx.jobs.get(launch.jobName),
      ]);
      if (execution.status !== 'scheduled') return skip(`already ${execution.status}`);
      if (!job) {
        await ctx.executions.end(execution, 'scheduled', 'cancelled', 'job deleted', ctx.clock());
        return 'done';
      }
      if (execution.jobVersion !== job.version) {
        const why = job.def.disabled ? 'job disabled' : 'job changed after planning';
        await ctx.executions.end(execution, 'scheduled', 'skipped', why, ctx.clock());
        return 'done';
      }
    }

    const tagged = Object.keys(job.def.tags).length > 0;
    // A message delivered before may not come back again (the queue's maxReceiveCount): the run it
    // launches enters the lost sweep's index at its claim (see ExecutionsStore's ACTIVE_SHARDS).
    const index = (options.receiveCount ?? 1) > 1;
    const claim = await this.claim(execution, { oneSlotPerAgent: tagged, index });
    if (!claim.claimed) {
      if (claim.why === 'slot_taken') {
        // Hand-offs are random (whoever polls next), so a slot may meet agents that already hold one of
        // its group several times before the free one: give up only when no live agent could take it.
        const delivered = options.receiveCount ?? 1;
        if (delivered < MAX_SLOT_BOUNCES) return 'retry';
        const free = job !== null && (await this.freeSlotTakers(job.def, execution)) > 0;
        if (free && delivered < MAX_SLOT_BOUNCES_WHILE_FREE) return 'retry';
        await ctx.executions.end(
          execution,
          'scheduled',
          'failed',
          free
            ? `no free agent took this slot after ${delivered} tries`
            : 'no other live agent took this slot',
          ctx.clock(),
        );
      }
      if (claim.why === 'not_scheduled') {
        // Refused because an earlier attempt of this very claim landed (its answer was lost)?
        const now = await ctx.executions.get(launch.jobName, launch.executionId);
        if (now && this.claimedInDoubt(now)) return this.resumeClaim(now, options);
      }
      return skip(`claim refused: ${claim.why}`);
    }
    return this.runFromClaim(claim.execution, options);
  }

  /**
   * Launches received together, claimed together: one consistent BatchGetItem for their executions and
   * jobs and one claim transaction, instead of three requests each. A thousand launches on one second are
   * claimed in a hundred transactions before they fire. Only the plain case goes this way (untagged jobs,
   * executions still scheduled at the version planned, no duplicates); anything else, or a transaction
   * that fails for any reason, goes through `process` one by one, which tells the cases apart. Answers
   * one verdict per launch, in order.
   */
  processMany(
    launches: readonly LaunchMessage[],
    options: readonly RunnerOptions[],
  ): Promise<RunnerVerdict>[] {
    if (launches.length < 2) return launches.map((l, i) => this.process(l, options[i]!));
    const claimed = this.claimTogether(launches, options).catch((error: unknown) => {
      options[0]?.log?.({ msg: 'batch claim failed; claiming one by one', error: String(error) });
      return launches.map(() => null);
    });
    return launches.map(async (launch, i): Promise<RunnerVerdict> => {
      const c = (await claimed)[i];
      if (!c) return this.process(launch, options[i]!);
      if (c.def) return this.runFromClaim(c.execution, options[i]!, c.def);
      this.active.delete(keyOf(c.execution));
      this.claimsSent.delete(keyOf(c.execution)); // ended after its claim (confirmClaims)
      return 'done';
    });
  }

  /** The conditional claim, its `claimedAt` remembered (see `claimsSent`), in flight until answered. */
  private async claim(
    e: Execution,
    options: { oneSlotPerAgent?: boolean; index?: boolean },
  ): Promise<ClaimOutcome> {
    const at = this.ctx.clock();
    this.claimSent(e, at);
    const done = this.claimingStarts([e]);
    try {
      const outcome = await this.ctx.executions.claim(e, this.me, at, options);
      // Held from its answer on (runFromClaim holds it too, a few turns later).
      if (outcome.claimed) this.active.add(keyOf(e));
      return outcome;
    } finally {
      done();
    }
  }

  /** Marks claims in flight; the function answered ends them. */
  private claimingStarts(es: readonly Execution[]): () => void {
    for (const e of es) this.claiming.set(keyOf(e), (this.claiming.get(keyOf(e)) ?? 0) + 1);
    return () => {
      for (const e of es) {
        const left = (this.claiming.get(keyOf(e)) ?? 1) - 1;
        if (left > 0) this.claiming.set(keyOf(e), left);
        else this.claiming.delete(keyOf(e));
      }
    };
  }

  private claimSent(e: Execution, at: number): void {
    const key = keyOf(e);
    const sent = this.claimsSent.get(key) ?? new Set<number>();
    sent.add(at);
    this.claimsSent.set(key, sent);
  }

  /**
   * Running under this agent's name with the `claimedAt` of a claim this runner sent, and not held or run
   * here: the claim landed but its answer did not. Another process of the same name (the agent restarted)
   * never sent that claim, so an attempt that may have run before a restart is never run again.
   */
  private claimedInDoubt(e: Execution): boolean {
    const key = keyOf(e);
    return (
      e.status === 'running' &&
      e.agentId === this.me.agentId &&
      e.claimedAt !== null &&
      !this.active.has(key) &&
      !this.claiming.has(key) &&
      (this.claimsSent.get(key)?.has(e.claimedAt) ?? false)
    );
  }

  private resumeClaim(e: Execution, options: RunnerOptions) {
    options.log?.({ msg: 'claim answer lost; running it', job: e.jobName, id: e.executionId });
    return this.runFromClaim(e, options);
  }

  /**
   * Resolves at `at` by the wall clock (never earlier: timers may fire a millisecond early against it).
   * Every hold for the same instant shares one timer, so a burst's launches all start in the same turn of
   * the event loop: with a timer each, timers set a millisecond apart expired in different turns, and the
   * results of the first half (written after their runs) delayed the start of the second half.
   */
  holdUntil(at: number, sleep: (ms: number) => Promise<void>): Promise<void> {
    const clock = this.ctx.clock;
    if (at <= clock()) return Promise.resolve();
    let alarm = this.alarms.get(at);
    if (!alarm) {
      alarm = (async () => {
        for (let wait = at - clock(); wait > 0; wait = at - clock()) await sleep(wait);
        this.alarms.delete(at);
      })();
      this.alarms.set(at, alarm);
    }
    return alarm;
  }

  /**
   * Claims the plain launches of a batch together. Answers per launch: the claim and the definition to run
   * (null: ended after the claim, see `confirmClaims`), or null where the launch goes through `process`.
   */
  private async claimTogether(
    launches: readonly LaunchMessage[],
    options: readonly RunnerOptions[],
  ): Promise<Array<{ execution: Execution; def: JobDefinition | null } | null>> {
    const { ctx, me } = this;
    const none = launches.map(() => null);
    const now = ctx.clock();
    // First deliveries only: a claim from a later one indexes its run (`process`).
    const first = new Set(launches.filter((_, i) => (options[i]?.receiveCount ?? 1) <= 1));
    const holdable = (l: LaunchMessage) => first.has(l) && l.scheduledAt - now <= MAX_HOLD_MS;
    const soon = launches.filter(holdable);
    if (soon.length < 2) return none;
    // One request for both (ReadTogether), eventually consistent (half the read units): a stale answer
    // costs a detour, never a wrong launch. An execution or job not found yet, or versions that differ,
    // leave the launch out (`process` reads consistently); a stale `scheduled` is refused by the claim's
    // condition and the launch goes one by one too; the read after the claim, which decides whether it
    // runs, is consistent (and reads the execution again before ending it for a changed job).
    const reads = ctx.readTogether({ consistent: false });
    const [executions, jobs] = await Promise.all([
      ctx.executions.getMany(soon, reads),
      ctx.jobs.getMany(
        soon.map((l) => l.jobName),
        reads,
      ),
    ]);
    const seen = new Set<string>();
    const plain = launches.map((l) => {
      const key = `${l.jobName}/${l.executionId}`;
      const e = executions.get(key);
      const job = jobs.get(l.jobName);
      const ok =
        holdable(l) &&
        !seen.has(key) &&
        e?.status === 'scheduled' &&
        job !== undefined &&
        job.version === e.jobVersion &&
        Object.keys(job.def.tags).length === 0;
      seen.add(key);
      return ok ? e : null;
    });
    const candidates = plain.filter((c) => c !== null);
    if (candidates.length < 2) return none;
    const claimAt = ctx.clock();
    for (const c of candidates) this.claimSent(c, claimAt);
    // In flight, then held from the answer on: a duplicate of one of their messages read while the claims
    // are in flight, or during the reads after them, finds the execution running under this agent with a
    // claim this runner sent, and must not take it for a claim whose answer was lost (it ran it twice).
    const done = this.claimingStarts(candidates);
    let running: Execution[];
    try {
      running = (await ctx.executions.claimMany(candidates, me, claimAt)).filter((e) => e !== null);
      for (const e of running) this.active.add(keyOf(e));
    } finally {
      done();
    }
    let defs: Array<JobDefinition | null>;
    try {
      defs = await this.confirmClaims(running);
    } catch (error) {
      for (const e of running) this.active.delete(keyOf(e));
      throw error;
    }
    const byKey = new Map(running.map((e, k) => [keyOf(e), { execution: e, def: defs[k]! }]));
    return plain.map((c) => (c ? (byKey.get(keyOf(c)) ?? null) : null));
  }

  /**
   * The checks of a claim that has landed: the job still exists at the version planned, and (unless the
   * launch is manual) the scheduler is not paused — one consistent read of the jobs and of the pause flag,
   * after the claim. An edit, a delete or a pause that landed before this read ends the launch here with
   * the reason (the write path has ended, or retargeted, every launch still `scheduled` by the time it
   * answers); one that lands after it is later than this launch, which runs as planned. Answers the
   * definition to run, or null for a launch ended here.
   */
  private async confirmClaims(claimed: readonly Execution[]): Promise<Array<JobDefinition | null>> {
    if (claimed.length === 0) return [];
    const { ctx } = this;
    // One request for both (ReadTogether).
    const reads = ctx.readTogether();
    const [jobs, paused] = await Promise.all([
      ctx.jobs.getMany(
        claimed.map((e) => e.jobName),
        reads,
      ),
      claimed.some((e) => e.trigger !== 'manual') ? ctx.control.isPaused(reads) : false,
    ]);
    return Promise.all(
      claimed.map(async (e) => {
        const job = jobs.get(e.jobName);
        // The version the execution was claimed at, as read before the claim — stale, when that read was
        // eventually consistent (claimTogether), for an execution the job's write path had retargeted:
        // read again (consistently) before ending it for a changed job (rare: an edit in flight).
        const version =
          job && job.version !== e.jobVersion
            ? ((await ctx.executions.get(e.jobName, e.executionId))?.jobVersion ?? e.jobVersion)
            : e.jobVersion;
        const ended: readonly ['cancelled' | 'skipped', string] | null = !job
          ? ['cancelled', 'job deleted']
          : paused && e.trigger !== 'manual'
            ? ['skipped', 'scheduler paused']
            : job.version !== version
              ? ['skipped', job.def.disabled ? 'job disabled' : 'job changed after planning']
              : null;
        if (!ended) return job!.def;
        await ctx.executions.end(e, 'running', ended[0], ended[1], ctx.clock());
        return null;
      }),
    );
  }

  /** After the claim: heartbeats, hold to the fire time, concurrency policy, run, result. */
  private async runFromClaim(
    running: Execution,
    options: RunnerOptions,
    confirmed?: JobDefinition,
  ): Promise<RunnerVerdict> {
    const key = keyOf(running);
    this.active.add(key);
    try {
      const def = confirmed ?? (await this.confirmClaims([running]))[0];
      if (!def) return 'done';
      return await this.runClaimed(running, def, options);
    } finally {
      this.active.delete(key);
      this.claimsSent.delete(key);
    }
  }

  private async runClaimed(
    running: Execution,
    def: JobDefinition,
    options: RunnerOptions,
  ): Promise<RunnerVerdict> {
    const { ctx, me } = this;
    // Held to the fire time with the fence armed but (mostly) without heartbeats: the claim wrote a fresh
    // one and a hold is at most MAX_HOLD_MS (a thousand held launches beating every second or two would
    // swamp the database just before they fire); a hold longer than half the fence beats once on the way.
    const heart = new Heartbeat(ctx, running, def, me, options);
    const outcome: RunOutcome = {};
    options.executors[def.executor]?.prepare?.(def, running);
    await this.holdUntil(running.scheduledAt, options.sleep);
    // From here on heartbeats run, through the lock wait as well: a `replace` may wait seconds for the run
    // it cancelled to let go, and a claimed execution without heartbeats would look lost to everyone else.
    heart.begin();
    let releaseSlot = () => {};
    try {
      if (options.acquireSlot) releaseSlot = await options.acquireSlot();
      const lockedAt = heart.controller.signal.aborted
        ? null
        : def.concurrency === 'allow'
          ? Number.POSITIVE_INFINITY
          : await this.takeLock(running, def, options, heart);
      if (lockedAt === null || heart.controller.signal.aborted) {
        const [status, reason] = heart.controller.signal.aborted
          ? ([
              heart.fenced ? 'failed' : 'cancelled',
              heart.cancelReason ?? 'cancelled: the agent stopped before it could run',
            ] as const)
          : def.concurrency === 'forbid'
            ? (['skipped', 'another execution of this job is running (concurrency: forbid)'] as const)
            : (['skipped', 'the execution it replaces did not stop in time (concurrency: replace)'] as const);
        await ctx.executions.end(running, 'running', status, reason, ctx.clock());
        return 'done';
      }
      if (def.concurrency !== 'allow') heart.lockTaken(lockedAt);
      await this.run(running, def, options, heart, outcome);
    } catch (error) {
      // Not left `running` to be found lost later: record what went wrong (if the write fails too, the
      // heartbeat stops and the lost-check ends it).
      const message = error instanceof Error ? error.message : String(error);
      // A fenced run keeps its reason (its result write may be what failed: the store was unreachable).
      const reason = heart.fenced && heart.cancelReason ? heart.cancelReason : `agent error: ${message}`;
      options.log?.({
        msg: 'execution failed',
        job: running.jobName,
        id: running.executionId,
        error: reason,
      });
      // A run that ended and whose result could not be written: its result, not a failure (which would be
      // retried: the fire time would run twice).
      const ran = outcome.result;
      await (ran
        ? ctx.executions.finish(ran.e, me.agentId, ran.final, ran.finishedAt)
        : ctx.executions.finish(running, me.agentId, failure(reason), ctx.clock())
      ).catch(() => false);
    } finally {
      heart.stop();
      releaseSlot();
      options.executors[def.executor]?.release?.(running);
      if (def.concurrency !== 'allow') await ctx.control.releaseLock(running.jobName, running.executionId);
    }
    return 'done';
  }

  /** Live agents matching the job's tags that hold no slot of this execution's group (could take it). */
  private async freeSlotTakers(def: JobDefinition, e: Execution): Promise<number> {
    const { ctx } = this;
    const { selector } = parseTags(def.tags);
    const now = ctx.clock();
    // Every claim in a group records its agent (the slot guard is per group and agent, any attempt);
    // listGroup leaves agentId out, so read the claimed ones.
    const claimed = (await ctx.executions.listGroup(e.jobName, e.group)).filter(
      (x) => x.status !== 'scheduled',
    );
    const holders = new Set(
      (await Promise.all(claimed.map((x) => ctx.executions.get(x.jobName, x.executionId)))).map(
        (x) => x?.agentId,
      ),
    );
    return (await ctx.agents.list()).filter(
      (a) => memberStatus(a, now) === 'alive' && tagsSatisfy(a.tags, selector) && !holders.has(a.agentId),
    ).length;
  }

  /**
   * `forbid`: take the job's lock or give up. `replace`: cancel the holder, then wait for its lock.
   * Answers the time the lock was taken at (it expires `lostAfterMs` later unless renewed), or null.
   */
  private async takeLock(
    e: Execution,
    def: JobDefinition,
    options: RunnerOptions,
    heart: Heartbeat,
  ): Promise<number | null> {
    const { ctx, me } = this;
    const ttl = options.lostAfterMs;
    const holder = { executionId: e.executionId, agentId: me.agentId };
    let at = ctx.clock();
    let held = await ctx.control.acquireLock(e.jobName, holder, at, ttl);
    if (held === null) return at;
    if (def.concurrency === 'forbid') return null;
    const victim = held.executionId;
    await ctx.executions.requestCancel(
      { jobName: e.jobName, executionId: victim },
      `replaced by ${e.executionId}`,
    );
    options.log?.({ msg: 'replacing running execution', job: e.jobName, victim, by: e.executionId });
    const deadline = ctx.clock() + REPLACE_WAIT_MS;
    while (ctx.clock() < deadline) {
      await options.sleep(200);
      // Replaced in turn while waiting: give up, the newer run takes over.
      if (heart.controller.signal.aborted) return null;
      at = ctx.clock();
      held = await ctx.control.acquireLock(e.jobName, holder, at, ttl);
      if (held === null) return at;
      if (held.executionId !== victim && held.executionId !== '') {
        await ctx.executions.requestCancel(
          { jobName: e.jobName, executionId: held.executionId },
          `replaced by ${e.executionId}`,
        );
      }
    }
    return null;
  }

  /** The run itself: the executor, the processors, the result. */
  private async run(
    e: Execution,
    def: JobDefinition,
    options: RunnerOptions,
    heart: Heartbeat,
    outcome: RunOutcome,
  ): Promise<void> {
    const { ctx, me } = this;
    let result: ExecutorResult;
    let startedAt = ctx.clock();
    // The start is recorded after it, not before: with the result for a run shorter than a second (no
    // extra write in a burst), else a second in. The second counts from the real start when the executor
    // reports one (a shell job: once its process exists): in a burst the spawns queue behind each other for
    // seconds, and a job that then ran for milliseconds wrote a start record of its own (with heartbeats,
    // 3.2 writes per execution instead of 1.1 in bursts of 1,000: `cron-1000-on-one-second`).
    let recorded: Promise<unknown> = Promise.resolve();
    let record: NodeJS.Timeout | undefined;
    let ran = false;
    const armStartRecord = () => {
      clearTimeout(record);
      // The write waits for the I/O already in (setImmediate: after the poll phase): on a busy event loop
      // the job's exit may be waiting behind the timer, and then the result carries the start.
      record = setTimeout(
        () =>
          setImmediate(() => {
            if (ran) return;
            recorded = ctx.executions
              .markStarted(e, me.agentId, startedAt)
              .catch((error: unknown) =>
                options.log?.({ msg: 'recording the start failed', error: String(error) }),
              );
          }),
        START_RECORD_DELAY_MS,
      );
    };
    const hooks: RunHooks = {
      started: (at) => {
        startedAt = Math.max(startedAt, at);
        armStartRecord();
      },
      output: (live) => {
        heart.live = live;
      },
    };
    // An executor that reports its real start arms the timer then; any other, now.
    const executor = options.executors[def.executor];
    if (!executor?.reportsStart) armStartRecord();
    try {
      result = executor
        ? await executor.run(def, { ...e, startedAt }, heart.controller.signal, hooks)
        : failure(`executor ${def.executor} is not available on ${me.agentId}`);
    } catch (error) {
      result = failure(`executor error: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      ran = true;
      clearTimeout(record);
    }
    // Without processors the run is over: no beat from here on (the result write follows).
    if (!(options.processors && hasProcessors(def))) heart.stop();
    // Whether the fence cut the run short. A fence that fires once the job has ended (its result is being
    // written, or its processors run) kills nothing: the run happened, and its result is written as it is —
    // marked failed, it would be retried and the fire time would run twice.
    const fencedInRun = heart.fenced;
    const finishedAt = ctx.clock();
    let processed: ProcessedOutput | null = null;
    try {
      // Let every other launch due this instant start before this one's result is written (preparing an
      // SDK request costs CPU, and a burst's launches are released together).
      await new Promise<void>((resolve) => setImmediate(resolve));
      result = settled(result, heart, fencedInRun);
      // The processors run before the result is written (their result may replace the output), with the
      // heartbeat still going: the execution stays this agent's while they work, however long they take
      // (each is bounded by its `timeout`).
      if (options.processors && hasProcessors(def)) {
        processed = await applyProcessors(
          options.processors,
          def,
          {
            ...e,
            startedAt,
            finishedAt,
            status: result.status,
            exitCode: result.exitCode,
            success: result.status === 'succeeded',
            output: result.output,
            outputTruncated: result.outputTruncated,
            reason: result.reason,
          },
          result.fullOutputPath,
        );
        result = settled(result, heart, fencedInRun);
      }
    } finally {
      heart.stop();
    }
    const outputUrl = await this.storeFullOutput(e, result.fullOutputPath, options);
    await recorded;
    const final: ExecutionResult = {
      ...result,
      ...(processed
        ? {
            output: processed.output,
            outputTruncated: processed.outputTruncated,
            processorErrors: processed.errors,
          }
        : {}),
      ...(outputUrl ? { outputUrl } : {}),
      // How much the job printed in all (the live view's count): `cronplane logs --follow` prints the rest.
      ...(heart.live ? { outputBytes: heart.live.bytes } : {}),
    };
    outcome.result = { e: { ...e, startedAt }, final, finishedAt };
    const written = await ctx.executions.finish({ ...e, startedAt }, me.agentId, final, finishedAt);
    // A line per run that did not simply succeed: a success is in the store, and at thousands of runs a
    // minute a line each is CPU and log volume for nothing.
    if (result.status === 'succeeded' && written && !processed?.errors) return;
    options.log?.({
      msg: 'execution finished',
      job: e.jobName,
      id: e.executionId,
      status: result.status,
      written,
      ...(processed?.errors ? { processor_errors: processed.errors } : {}),
    });
  }

  /**
   * A truncated output's full copy (a temp file): uploaded to the output bucket when one is configured,
   * removed in any case. A failed upload loses only the full copy, never the result.
   */
  private async storeFullOutput(
    e: Execution,
    path: string | undefined,
    options: RunnerOptions,
  ): Promise<string | undefined> {
    const { ctx } = this;
    if (!path) return undefined;
    try {
      if (!ctx.config.outputBucket) return undefined;
      return await new OutputStore(ctx.clients, ctx.config.outputBucket).put(e.jobName, e.executionId, path);
    } catch (error) {
      options.log?.({
        msg: 'output upload failed',
        job: e.jobName,
        id: e.executionId,
        error: (error as Error).message,
      });
      return undefined;
    } finally {
      await rm(path, { force: true }).catch(() => {});
    }
  }

  /**
   * The message came back while its execution is `running`: either its agent is alive and this is a
   * duplicate, or the agent died (SIGKILL, host lost) and the heartbeat went stale — then the attempt is
   * recorded as `lost` and the retry policy (events reaction) decides what happens next.
   */
  /**
   * A duplicate (or a message back after its visibility timeout) of a launch running elsewhere — or under
   * this agent's name but not held here: a process of the same name before a restart. Silent past
   * lost-after: marked `lost`. Alive: left alone; the message is deleted when the run is in `byActive` (the
   * lost sweep watches it), else it comes back when a silent run would look lost (`recheck`): a run not
   * in the index is watched through its messages only.
   */
  private async runningElsewhere(e: Execution, options: RunnerOptions): Promise<RunnerVerdict> {
    const { ctx, me } = this;
    const key = keyOf(e);
    if (e.agentId === me.agentId && (this.active.has(key) || this.claiming.has(key))) return 'done';
    const age = ctx.clock() - (e.heartbeatAt ?? e.startedAt ?? 0);
    if (age <= options.lostAfterMs) return e.indexed ? 'done' : 'recheck';
    const marked = await ctx.executions.markLost(
      e,
      ctx.clock(),
      `agent ${e.agentId} stopped heartbeating ${Math.round(age / 1000)} s ago`,
    );
    if (marked) await ctx.control.releaseLock(e.jobName, e.executionId);
    options.log?.({ msg: 'execution lost', job: e.jobName, id: e.executionId, agent: e.agentId, marked });
    return 'done';
  }
}

/** Launches received together (an agentless worker's batch), on a runner of their own (see Runner.processMany). */
export function processLaunches(
  ctx: Context,
  launches: readonly LaunchMessage[],
  me: RunnerIdentity,
  options: readonly RunnerOptions[],
): Promise<RunnerVerdict>[] {
  return new Runner(ctx, me).processMany(launches, options);
}

const keyOf = (e: Pick<Execution, 'jobName' | 'executionId'>) => `${e.jobName}/${e.executionId}`;

/** A run's result once it has one: should writing it fail, it is what the runner writes again. */
interface RunOutcome {
  result?: { readonly e: Execution; readonly final: ExecutionResult; readonly finishedAt: number };
}

/**
 * The executor's result as the heartbeat leaves it: failed when the fence cut the run short, the cancel's
 * reason. A fenced run whose executor still reports how it ended (not `cancelled`: it ended by itself
 * before the kill reached it, the fence's timer and its end seen in the same turn of a busy event loop)
 * is recorded as it ended: marked failed, it would be retried and its fire time would run twice.
 */
function settled(result: ExecutorResult, heart: Heartbeat, fencedInRun: boolean): ExecutorResult {
  if (fencedInRun && result.status === 'cancelled')
    return { ...result, status: 'failed', reason: heart.cancelReason };
  if (result.status === 'cancelled' && heart.cancelReason) return { ...result, reason: heart.cancelReason };
  return result;
}
