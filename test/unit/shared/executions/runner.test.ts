import { spawn } from 'node:child_process';
/**
 * The runner's state machine (shared/executions/runner.ts) against an in-memory store with the real
 * stores' conditions: what each state leads to, and the fault guarantees — at most once (a conditional
 * claim), the self-fence (a run whose heartbeats do not land is killed before anyone may take it as
 * lost), lost-after (a silent run elsewhere is marked lost, a live one is left alone), and "a run that
 * ended is recorded as it ended" (a failed result write is retried with the run's own result).
 * The integration tests (test/integration/scheduler.test.ts, agent-kill.test.ts, fleet.test.ts) cover the
 * same guarantees against DynamoDB and SQS.
 */
import { describe, expect, it } from 'vitest';
import type { Context } from '../../../../shared/context.ts';
import type { LaunchMessage } from '../../../../shared/dispatch/dispatch.ts';
import type { Execution } from '../../../../shared/executions/execution.ts';
import { Runner, type RunnerOptions } from '../../../../shared/executions/runner.ts';
import type { Executor, ExecutorResult } from '../../../../shared/executors/executor.ts';
import type { ClaimOutcome, ExecutionResult } from '../../../../shared/ports.ts';
import { MAX_HOLD_MS } from '../../../../shared/timing.ts';

type JobDefinition = Parameters<Executor['run']>[0];

const me = { agentId: 'agent-a', nodeName: 'a' };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function def(name: string, over: Partial<JobDefinition> = {}): JobDefinition {
  return {
    name,
    tags: {},
    concurrency: 'allow',
    executor: 'test',
    executor_config: {},
    processors: {},
    disabled: false,
    ...over,
  } as unknown as JobDefinition;
}

function execution(jobName: string, scheduledAt: number, over: Partial<Execution> = {}): Execution {
  return {
    jobName,
    executionId: `${scheduledAt}.0.1`,
    group: String(scheduledAt).padStart(13, '0'),
    slot: 0,
    attempt: 1,
    trigger: 'schedule',
    status: 'scheduled',
    scheduledAt,
    jobVersion: 1,
    queueUrl: 'q',
    claimedAt: null,
    startedAt: null,
    finishedAt: null,
    heartbeatAt: null,
    agentId: null,
    nodeName: null,
    exitCode: null,
    success: null,
    output: '',
    outputTruncated: false,
    outputUrl: null,
    reason: null,
    processorErrors: null,
    outputBytes: null,
    ...over,
  };
}

/** The stores the runner uses, in memory, each write under the condition the DynamoDB store puts on it. */
class FakeStores {
  readonly executions = new Map<string, Execution>();
  readonly jobs = new Map<string, { name: string; def: JobDefinition; version: number }>();
  readonly locks = new Map<string, { executionId: string; agentId: string; expiresAt: number }>();
  paused = false;
  /** Requests by method, to count what a launch costs. */
  readonly calls: string[] = [];
  /** Each batch read and the ReadTogether it was given. */
  readonly readsWith: Array<[string, unknown]> = [];
  /** Set to make every heartbeat (and lock renewal) fail, as an unreachable store would. */
  unreachable = false;
  /** Claims that land but whose answer is lost (a timeout after the write), as many as this. */
  loseClaimAnswers = 0;
  /** Called as each claim lands, before its answer: an edit, delete or pause racing with the claim. */
  afterClaim?: (running: Execution) => void;
  /** Results refused by a failing write before one lands (the store blinked at the result). */
  failFinishes = 0;
  readonly finished: Array<{ id: string; result: ExecutionResult }> = [];

  key = (jobName: string, id: string) => `${jobName}/${id}`;

  put(e: Execution): void {
    this.executions.set(this.key(e.jobName, e.executionId), e);
  }

  job(d: JobDefinition, version = 1): void {
    this.jobs.set(d.name, { name: d.name, def: d, version });
  }

  private update(e: Pick<Execution, 'jobName' | 'executionId'>, patch: Partial<Execution>): Execution {
    const k = this.key(e.jobName, e.executionId);
    const next = { ...this.executions.get(k)!, ...patch };
    this.executions.set(k, next);
    return next;
  }

  context(): Context {
    const claimed = (e: Execution, agent: typeof me, now: number, index = false) => {
      const stored = this.executions.get(this.key(e.jobName, e.executionId));
      if (stored?.status !== 'scheduled') return null;
      const patch = {
        status: 'running' as const,
        claimedAt: now,
        heartbeatAt: now,
        agentId: agent.agentId,
        nodeName: agent.nodeName,
        indexed: index,
      };
      this.update(e, patch);
      // As the store answers: the execution given, claimed (not the stored item read back).
      const running: Execution = { ...e, ...patch };
      this.afterClaim?.(running);
      return running;
    };
    const executions = {
      get: async (jobName: string, id: string) => {
        this.calls.push('get');
        return this.executions.get(this.key(jobName, id)) ?? null;
      },
      getMany: async (keys: ReadonlyArray<Pick<Execution, 'jobName' | 'executionId'>>, reads?: unknown) => {
        this.calls.push('getMany');
        this.readsWith.push(['getMany', reads]);
        const out = new Map<string, Execution>();
        for (const k of keys) {
          const e = this.executions.get(this.key(k.jobName, k.executionId));
          if (e) out.set(this.key(k.jobName, k.executionId), e);
        }
        return out;
      },
      claim: async (
        e: Execution,
        agent: typeof me,
        now: number,
        options?: { index?: boolean },
      ): Promise<ClaimOutcome> => {
        this.calls.push('claim');
        const running = claimed(e, agent, now, options?.index);
        if (!running) return { claimed: false, why: 'not_scheduled' };
        if (this.loseClaimAnswers > 0 && this.loseClaimAnswers--) throw new Error('request timed out');
        return { claimed: true, execution: running };
      },
      claimMany: async (list: readonly Execution[], agent: typeof me, now: number) => {
        this.calls.push('claimMany');
        return list.map((e) => {
          const running = claimed(e, agent, now);
          // The SDK retries a timed-out update; the retry's condition fails: not claimed (null).
          if (running && this.loseClaimAnswers > 0 && this.loseClaimAnswers--) return null;
          return running;
        });
      },
      heartbeat: async (e: Execution, agentId: string, now: number) => {
        this.calls.push('heartbeat');
        if (this.unreachable) throw new Error('store unreachable');
        const stored = this.executions.get(this.key(e.jobName, e.executionId));
        if (stored?.status !== 'running' || stored.agentId !== agentId) return null;
        this.update(e, { heartbeatAt: now });
        return { cancelRequested: false };
      },
      markStarted: async (e: Execution, _agentId: string, at: number) => {
        this.calls.push('markStarted');
        this.update(e, { startedAt: at });
        return true;
      },
      finish: async (e: Execution, agentId: string, result: ExecutionResult, now: number) => {
        this.calls.push('finish');
        if (this.failFinishes > 0) {
          this.failFinishes--;
          throw new Error('the store blinked');
        }
        const stored = this.executions.get(this.key(e.jobName, e.executionId));
        if (stored?.status !== 'running' || stored.agentId !== agentId) return false;
        this.update(e, {
          status: result.status,
          startedAt: e.startedAt ?? now,
          finishedAt: now,
          exitCode: result.exitCode,
          success: result.status === 'succeeded',
          output: result.output,
          reason: result.reason,
        });
        this.finished.push({ id: e.executionId, result });
        return true;
      },
      end: async (e: Execution, from: string, to: Execution['status'], reason: string, now: number) => {
        this.calls.push('end');
        const stored = this.executions.get(this.key(e.jobName, e.executionId));
        if (stored?.status !== from) return false;
        this.update(e, { status: to, reason, finishedAt: now });
        return true;
      },
      markLost: async (e: Execution, now: number, reason: string) => {
        this.calls.push('markLost');
        const stored = this.executions.get(this.key(e.jobName, e.executionId));
        if (stored?.status !== 'running' || stored.heartbeatAt !== e.heartbeatAt) return false;
        this.update(e, { status: 'lost', finishedAt: now, reason });
        return true;
      },
      requestCancel: async () => true,
      listGroup: async () => [],
    };
    const jobs = {
      get: async (name: string) => {
        this.calls.push('jobs.get');
        return this.jobs.get(name) ?? null;
      },
      getMany: async (names: readonly string[], reads?: unknown) => {
        this.calls.push('jobs.getMany');
        this.readsWith.push(['jobs.getMany', reads]);
        const out = new Map<string, { name: string; def: JobDefinition; version: number }>();
        for (const n of names) {
          const j = this.jobs.get(n);
          if (j) out.set(n, j);
        }
        return out;
      },
    };
    const control = {
      isPaused: async (reads?: unknown) => {
        this.calls.push('isPaused');
        this.readsWith.push(['isPaused', reads]);
        return this.paused;
      },
      acquireLock: async (
        jobName: string,
        holder: { executionId: string; agentId: string },
        now: number,
        ttl: number,
      ) => {
        if (this.unreachable) throw new Error('store unreachable');
        const held = this.locks.get(jobName);
        if (held && held.executionId !== holder.executionId && held.expiresAt > now) return held;
        this.locks.set(jobName, { ...holder, expiresAt: now + ttl });
        return null;
      },
      releaseLock: async (jobName: string, executionId: string) => {
        if (this.locks.get(jobName)?.executionId === executionId) this.locks.delete(jobName);
      },
    };
    return {
      clock: () => Date.now(),
      config: { outputBucket: undefined },
      executions,
      jobs,
      control,
      agents: { list: async () => [] },
      readTogether: (options?: { consistent?: boolean }) => ({
        readsTogether: true,
        n: this.readsWith.length,
        consistent: options?.consistent ?? true,
      }),
    } as unknown as Context;
  }
}

/** An executor that records each run and lasts `ms` (or until cancelled). */
function executor(ms = 0) {
  const runs: Array<{ id: string; startedAt: number; aborted: () => boolean }> = [];
  const ex: Executor = {
    async run(_def, e, signal): Promise<ExecutorResult> {
      runs.push({ id: e.executionId, startedAt: Date.now(), aborted: () => signal.aborted });
      if (ms > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, ms);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return signal.aborted
        ? { status: 'cancelled', exitCode: null, output: '', outputTruncated: false, reason: 'cancelled' }
        : { status: 'succeeded', exitCode: 0, output: 'ok', outputTruncated: false, reason: null };
    },
  };
  return { ex, runs };
}

function options(ex: Executor, over: Partial<RunnerOptions> = {}): RunnerOptions {
  return {
    executors: { test: ex },
    heartbeatIntervalMs: 40,
    lostAfterMs: 400,
    sleep,
    ...over,
  };
}

const launchOf = (e: Execution): LaunchMessage => ({
  jobName: e.jobName,
  executionId: e.executionId,
  scheduledAt: e.scheduledAt,
});

/** Stores holding `es`, each planned for version 1 of its job. */
function storesWith(es: readonly Execution[]): FakeStores {
  const s = new FakeStores();
  for (const e of es) {
    s.put(e);
    s.job(def(e.jobName));
  }
  return s;
}

/** The launches of `es` received together by `runner`, each with `options(ex)`: their verdicts, in order. */
function processTogether(runner: Runner, es: readonly Execution[], ex: Executor) {
  return Promise.all(
    runner.processMany(
      es.map(launchOf),
      es.map(() => options(ex)),
    ),
  );
}

/** One launch of job `j` due in `holdMs`, run by a runner of its own with `ex` to the end. */
async function runAlone(ex: Executor, over: Partial<RunnerOptions>, holdMs = 20) {
  const s = new FakeStores();
  const e = execution('j', Date.now() + holdMs);
  s.put(e);
  s.job(def('j'));
  const verdict = await new Runner(s.context(), me).process(launchOf(e), options(ex, over));
  expect(verdict).toBe('done');
  return { s, e };
}

describe('Runner', () => {
  it('claims, holds to the fire time, runs once and writes the result: done', async () => {
    const s = new FakeStores();
    const fireAt = Date.now() + 150;
    const e = execution('j', fireAt);
    s.put(e);
    s.job(def('j'));
    const { ex, runs } = executor();
    const verdict = await new Runner(s.context(), me).process(
      launchOf(e),
      options(ex, { heartbeatIntervalMs: 2_000, lostAfterMs: 30_000 }),
    );
    expect(verdict).toBe('done');
    expect(runs).toHaveLength(1);
    expect(runs[0]!.startedAt).toBeGreaterThanOrEqual(fireAt);
    const stored = s.executions.get(`j/${e.executionId}`)!;
    expect(stored).toMatchObject({ status: 'succeeded', agentId: me.agentId, output: 'ok' });
    expect(stored.claimedAt!).toBeLessThan(fireAt);
    // A run under a second: the start goes with the result, no write of its own; no heartbeat either.
    expect(s.calls.filter((c) => c === 'markStarted' || c === 'heartbeat')).toEqual([]);
  });

  it('records the start of a run that lasts a second, counted from its real start when the executor reports one', async () => {
    /** Waits `queuedMs` (a spawn queued behind others), reports the start, then runs `runMs`. */
    const reporting = (queuedMs: number, runMs: number, reportsStart = true) => {
      const started: number[] = [];
      const ex: Executor = {
        reportsStart,
        async run(_def, _e, _signal, hooks): Promise<ExecutorResult> {
          await sleep(queuedMs);
          const at = Date.now();
          started.push(at);
          hooks?.started?.(at);
          await sleep(runMs);
          return { status: 'succeeded', exitCode: 0, output: 'ok', outputTruncated: false, reason: null };
        },
      };
      return { ex, started };
    };
    const runOnce = async (ex: Executor) => {
      const { s, e } = await runAlone(ex, { heartbeatIntervalMs: 5_000, lostAfterMs: 30_000 });
      return {
        calls: s.calls.filter((c) => c === 'markStarted'),
        stored: s.executions.get(`j/${e.executionId}`)!,
      };
    };
    // Queued 1.2 s, then a 20 ms run: no start record (the result carries the real start).
    const queued = reporting(1_200, 20);
    const a = await runOnce(queued.ex);
    expect(a.calls).toEqual([]);
    expect(a.stored.startedAt).toBe(queued.started[0]);
    // Started at once and running 1.2 s: its start is recorded while it runs.
    const long = reporting(0, 1_200);
    expect((await runOnce(long.ex)).calls).toEqual(['markStarted']);
    // An executor that reports no start: the second counts from the call, as before.
    const silent = reporting(1_200, 20, false);
    expect((await runOnce(silent.ex)).calls).toEqual(['markStarted']);
  });

  it('writes neither a start record nor a heartbeat for a run whose exit came in while the event loop was busy', async () => {
    // The job's exit (a real child process: I/O) arrives while the loop is busy past the start record's
    // second and several heartbeat intervals, as in a burst: the timers are due first, but the exit is
    // already in, so the result carries the start and nothing else is written.
    const ex: Executor = {
      reportsStart: true,
      async run(_def, _e, _signal, hooks): Promise<ExecutorResult> {
        hooks?.started?.(Date.now());
        const child = spawn('sleep', ['0.05']);
        const exited = new Promise((r) => child.once('exit', r));
        // Busy in the check phase: the next turn starts with the due timers, then reads the exit.
        await new Promise<void>((busyDone) =>
          setImmediate(() => {
            const until = Date.now() + 1_300;
            while (Date.now() < until) {
              // a burst's other launches
            }
            busyDone();
          }),
        );
        await exited;
        return { status: 'succeeded', exitCode: 0, output: 'ok', outputTruncated: false, reason: null };
      },
    };
    const { s, e } = await runAlone(ex, { heartbeatIntervalMs: 200, lostAfterMs: 30_000 });
    expect(s.executions.get(`j/${e.executionId}`)).toMatchObject({ status: 'succeeded' });
    expect(s.calls.filter((c) => c === 'markStarted' || c === 'heartbeat')).toEqual([]);
  });

  it('writes no heartbeat for a short run held a while, until three intervals before the fence', async () => {
    // lostAfter 3 s: fence 1.8 s; interval 200 ms: a held or starting run beats out of turn once its last
    // beat (the claim) is 1.2 s old (half the fence, 0.9 s, before).
    const beatsWhenHeld = async (holdMs: number) => {
      const { ex } = executor(20);
      const { s, e } = await runAlone(ex, { heartbeatIntervalMs: 200, lostAfterMs: 3_000 }, holdMs);
      expect(s.executions.get(`j/${e.executionId}`)).toMatchObject({ status: 'succeeded' });
      return s.calls.filter((c) => c === 'heartbeat').length;
    };
    expect(await beatsWhenHeld(1_000)).toBe(0);
    expect(await beatsWhenHeld(1_500)).toBe(1);
  });

  it('answers `later` for a launch further ahead than it holds, without reading anything', async () => {
    const s = new FakeStores();
    const e = execution('j', Date.now() + MAX_HOLD_MS + 5_000);
    s.put(e);
    s.job(def('j'));
    const { ex, runs } = executor();
    expect(await new Runner(s.context(), me).process(launchOf(e), options(ex))).toBe('later');
    expect(s.calls).toEqual([]);
    expect(runs).toHaveLength(0);
  });

  it('runs a launch delivered twice at most once (the claim is conditional)', async () => {
    const s = new FakeStores();
    const e = execution('j', Date.now());
    s.put(e);
    s.job(def('j'));
    const { ex, runs } = executor(50);
    const runner = new Runner(s.context(), me);
    const other = new Runner(s.context(), { agentId: 'agent-b', nodeName: 'b' });
    const verdicts = await Promise.all([
      runner.process(launchOf(e), options(ex)),
      other.process(launchOf(e), options(ex)),
      runner.process(launchOf(e), options(ex)),
    ]);
    expect(verdicts).toEqual(['done', 'done', 'done']);
    expect(runs).toHaveLength(1);
    // Delivered again once it ended: nothing runs.
    expect(await other.process(launchOf(e), options(ex))).toBe('done');
    expect(runs).toHaveLength(1);
  });

  it('runs a launch claimed in a batch once when a duplicate of its message is read during the reads after the claim', async () => {
    const now = Date.now();
    const es = [execution('j1', now), execution('j2', now)];
    const s = storesWith(es);
    const { ex, runs } = executor();
    const duplicate: Array<Promise<string>> = [];
    let jobReads = 0;
    const runner: Runner = new Runner(
      {
        ...s.context(),
        jobs: {
          ...s.context().jobs,
          getMany: async (names: readonly string[], reads?: never) => {
            // The second read is the one after the batch's claims landed: the duplicate arrives then.
            if (++jobReads === 2) {
              duplicate.push(runner.process(launchOf(es[0]!), options(ex)));
              await duplicate[0];
            }
            return s.context().jobs.getMany(names, reads);
          },
        },
      } as Context,
      me,
    );
    const verdicts = await processTogether(runner, es, ex);
    expect(verdicts).toEqual(['done', 'done']);
    expect(await duplicate[0]).toBe('done');
    expect(runs.map((r) => r.id).sort()).toEqual(es.map((e) => e.executionId).sort());
  });

  it('runs a launch once when a duplicate of its message is read while its claim is in flight (landed, not answered)', async () => {
    for (const batch of [false, true]) {
      const now = Date.now();
      const es = batch ? [execution('j1', now), execution('j2', now)] : [execution('j1', now)];
      const s = storesWith(es);
      const { ex, runs } = executor();
      const duplicate: Array<Promise<string>> = [];
      const base = s.context().executions;
      // The claim has landed in the store; before its answer arrives, a duplicate is read and processed.
      const meanwhile = async () => {
        duplicate.push(runner.process(launchOf(es[0]!), options(ex)));
        await duplicate[0];
      };
      const runner: Runner = new Runner(
        {
          ...s.context(),
          executions: {
            ...base,
            claim: async (...args: Parameters<typeof base.claim>) => {
              const outcome = await base.claim(...args);
              if (duplicate.length === 0) await meanwhile();
              return outcome;
            },
            claimMany: async (...args: Parameters<typeof base.claimMany>) => {
              const outcome = await base.claimMany(...args);
              await meanwhile();
              return outcome;
            },
          },
        } as Context,
        me,
      );
      const verdicts = batch
        ? await processTogether(runner, es, ex)
        : [await runner.process(launchOf(es[0]!), options(ex))];
      expect(verdicts, `batch: ${batch}`).toEqual(es.map(() => 'done'));
      expect(await duplicate[0]).toBe('done');
      expect(runs.map((r) => r.id).sort(), `batch: ${batch}`).toEqual(es.map((e) => e.executionId).sort());
    }
  });

  it('runs a batch launch its stale read showed at the version before a retarget (the job and it were edited)', async () => {
    const now = Date.now();
    const es = [execution('j1', now), execution('j2', now)];
    const s = storesWith(es);
    const { ex, runs } = executor();
    const base = s.context();
    const runner = new Runner(
      {
        ...base,
        executions: {
          ...base.executions,
          // The read before the claim answers version 1 of both; meanwhile j1 and its execution went to 2.
          getMany: async (...args: Parameters<typeof base.executions.getMany>) => {
            const stale = await base.executions.getMany(...args);
            s.job(def('j1'), 2);
            s.put({ ...es[0]!, jobVersion: 2 });
            return stale;
          },
        },
      } as Context,
      me,
    );
    const verdicts = await processTogether(runner, es, ex);
    expect(verdicts).toEqual(['done', 'done']);
    expect(runs.map((r) => r.id).sort()).toEqual(es.map((e) => e.executionId).sort());
    expect(s.executions.get(`j1/${es[0]!.executionId}`)!.status).toBe('succeeded');
  });

  it('reads a launch eventually consistent and goes on to the claim on it alone; anything else is read again', async () => {
    const s = new FakeStores();
    const e = execution('j', Date.now());
    s.put(e);
    s.job(def('j'));
    const { ex, runs } = executor();
    const base = s.context();
    let stale: Execution | null = null;
    const runner = new Runner(
      {
        ...base,
        executions: {
          ...base.executions,
          // Once `stale` is set, the eventually consistent read answers it (it has not seen a later write).
          getMany: async (...args: Parameters<typeof base.executions.getMany>) =>
            stale ? new Map([[`j/${e.executionId}`, stale]]) : base.executions.getMany(...args),
        },
      } as Context,
      me,
    );
    s.loseClaimAnswers = 1;
    // Claimed, its answer lost: the message comes back. Meanwhile the attempt was marked lost elsewhere.
    await expect(runner.process(launchOf(e), options(ex))).rejects.toThrow('timed out');
    stale = s.executions.get(`j/${e.executionId}`)!;
    expect(stale).toMatchObject({ status: 'running', agentId: me.agentId });
    s.put({ ...stale, status: 'lost' });
    // The stale read shows this runner's claim in doubt; the consistent one, lost: not resumed.
    expect(await runner.process(launchOf(e), options(ex))).toBe('done');
    expect(runs).toHaveLength(0);
    expect(s.executions.get(`j/${e.executionId}`)!.status).toBe('lost');

    // A scheduled launch: one eventually consistent read, then the claim (no consistent read before it).
    const s2 = new FakeStores();
    const e2 = execution('k', Date.now());
    s2.put(e2);
    s2.job(def('k'));
    const second = executor();
    expect(await new Runner(s2.context(), me).process(launchOf(e2), options(second.ex))).toBe('done');
    expect(second.runs).toHaveLength(1);
    expect(s2.calls.slice(0, s2.calls.indexOf('claim'))).toEqual(['getMany', 'jobs.getMany']);
    expect(s2.readsWith[0]![1]).toMatchObject({ consistent: false });
  });

  it('leaves a run elsewhere alone while it heartbeats, and marks it lost once silent past lost-after', async () => {
    const s = new FakeStores();
    const now = Date.now();
    const alive = execution('j', now - 1_000, {
      status: 'running',
      agentId: 'agent-b',
      claimedAt: now - 1_000,
      heartbeatAt: now - 100,
    });
    const silent = execution('k', now - 5_000, {
      status: 'running',
      agentId: 'agent-b',
      claimedAt: now - 5_000,
      heartbeatAt: now - 1_000,
    });
    s.put(alive);
    s.put(silent);
    s.job(def('j'));
    s.job(def('k'));
    s.locks.set('k', { executionId: silent.executionId, agentId: 'agent-b', expiresAt: now + 10_000 });
    const { ex, runs } = executor();
    const runner = new Runner(s.context(), me);
    // Not in the lost sweep's index: the message comes back when a silent run would look lost.
    expect(await runner.process(launchOf(alive), options(ex))).toBe('recheck');
    expect(s.executions.get(`j/${alive.executionId}`)!.status).toBe('running');
    // In it (it lived a second, or beat): the sweep watches it, the message goes.
    s.put({ ...alive, indexed: true });
    expect(await runner.process(launchOf(alive), options(ex))).toBe('done');
    expect(s.executions.get(`j/${alive.executionId}`)!.status).toBe('running');
    expect(await runner.process(launchOf(silent), options(ex))).toBe('done');
    expect(s.executions.get(`k/${silent.executionId}`)!.status).toBe('lost');
    expect(s.locks.has('k')).toBe(false);
    // Under this agent's name but not held here (a process of that name before a restart), silent: lost.
    const mine = execution('m', now - 5_000, {
      status: 'running',
      agentId: me.agentId,
      claimedAt: now - 5_000,
      heartbeatAt: now - 1_000,
    });
    s.put(mine);
    s.job(def('m'));
    expect(await runner.process(launchOf(mine), options(ex))).toBe('done');
    expect(s.executions.get(`m/${mine.executionId}`)!.status).toBe('lost');
    expect(runs).toHaveLength(0);
  });

  it('claims from a first delivery without indexing the run, from any later one indexed at once', async () => {
    for (const receiveCount of [1, 2]) {
      const s = new FakeStores();
      const e = execution('j', Date.now());
      s.put(e);
      s.job(def('j'));
      const { ex, runs } = executor();
      s.afterClaim = (running) => expect(running.indexed, `receive ${receiveCount}`).toBe(receiveCount > 1);
      expect(await new Runner(s.context(), me).process(launchOf(e), options(ex, { receiveCount }))).toBe(
        'done',
      );
      expect(runs).toHaveLength(1);
    }
    // A batch of first deliveries is claimed together; one delivered before goes alone, indexed.
    const s = new FakeStores();
    const es = ['a', 'b', 'c'].map((n) => execution(n, Date.now() + 50));
    for (const e of es) {
      s.put(e);
      s.job(def(e.jobName));
    }
    const indexed: string[] = [];
    s.afterClaim = (running) => {
      if (running.indexed) indexed.push(running.jobName);
    };
    const { ex, runs } = executor();
    const verdicts = await Promise.all(
      new Runner(s.context(), me).processMany(
        es.map(launchOf),
        es.map((_, i) => options(ex, { receiveCount: i === 2 ? 3 : 1 })),
      ),
    );
    expect(verdicts).toEqual(['done', 'done', 'done']);
    expect(indexed).toEqual(['c']);
    expect(s.calls.filter((c) => c === 'claimMany')).toHaveLength(1);
    expect(s.calls.filter((c) => c === 'claim')).toHaveLength(1);
    expect(runs).toHaveLength(3);
  });

  it('ends a launch it may not run with why: paused → skipped, forbid with the lock held → skipped', async () => {
    const s = new FakeStores();
    const { ex, runs } = executor();
    const runner = new Runner(s.context(), me);
    s.paused = true;
    const p = execution('p', Date.now());
    s.put(p);
    s.job(def('p'));
    expect(await runner.process(launchOf(p), options(ex))).toBe('done');
    expect(s.executions.get(`p/${p.executionId}`)).toMatchObject({
      status: 'skipped',
      reason: 'scheduler paused',
    });
    s.paused = false;
    const f = execution('f', Date.now());
    s.put(f);
    s.job(def('f', { concurrency: 'forbid' }));
    s.locks.set('f', { executionId: 'older', agentId: 'agent-b', expiresAt: Date.now() + 10_000 });
    expect(await runner.process(launchOf(f), options(ex))).toBe('done');
    expect(s.executions.get(`f/${f.executionId}`)).toMatchObject({
      status: 'skipped',
      reason: 'another execution of this job is running (concurrency: forbid)',
    });
    expect(runs).toHaveLength(0);
  });

  it('readies the executor when it holds a launch, and releases it once settled, run or not', async () => {
    // The shell executor forks a held launch's process ahead (agent/executors/shell.ts): whatever the
    // launch comes to, what was readied must be let go.
    const events: string[] = [];
    const { ex: base } = executor();
    const ex: Executor = {
      ...base,
      prepare: (_def, e) => events.push(`prepare ${e.jobName} ${e.status}`),
      release: (e) => events.push(`release ${e.jobName}`),
      run: (d, e, signal, hooks) => {
        events.push(`run ${e.jobName}`);
        return base.run(d, e, signal, hooks);
      },
    };
    const s = new FakeStores();
    const runner = new Runner(s.context(), me);
    const ran = execution('ran', Date.now() + 50);
    s.put(ran);
    s.job(def('ran'));
    expect(await runner.process(launchOf(ran), options(ex))).toBe('done');
    const skipped = execution('skipped', Date.now() + 50);
    s.put(skipped);
    s.job(def('skipped', { concurrency: 'forbid' }));
    s.locks.set('skipped', { executionId: 'older', agentId: 'agent-b', expiresAt: Date.now() + 10_000 });
    expect(await runner.process(launchOf(skipped), options(ex))).toBe('done');
    expect(s.executions.get(`skipped/${skipped.executionId}`)?.status).toBe('skipped');
    expect(events).toEqual([
      'prepare ran running',
      'run ran',
      'release ran',
      'prepare skipped running',
      'release skipped',
    ]);
  });

  it('checks the job and the pause flag after its claim lands: a change racing the claim ends the launch with why', async () => {
    // The claim is one conditional update; the edit, delete or pause lands right after it (`afterClaim`),
    // before the runner's read. Alone and in a batch, each launch ends with the reason and never runs.
    const races: Array<[string, (s: FakeStores, e: Execution) => void, string, string]> = [
      ['edited', (s, e) => s.job(def(e.jobName), 2), 'skipped', 'job changed after planning'],
      ['disabled', (s, e) => s.job(def(e.jobName, { disabled: true }), 2), 'skipped', 'job disabled'],
      ['deleted', (s, e) => s.jobs.delete(e.jobName), 'cancelled', 'job deleted'],
      ['paused', (s) => (s.paused = true), 'skipped', 'scheduler paused'],
    ];
    for (const batch of [false, true]) {
      for (const [name, race, status, reason] of races) {
        const s = new FakeStores();
        const es = (batch ? ['a', 'b'] : ['a']).map((n) => execution(`${name}-${n}`, Date.now() + 50));
        for (const e of es) {
          s.put(e);
          s.job(def(e.jobName));
        }
        s.afterClaim = (running) => race(s, running);
        const { ex, runs } = executor();
        const runner = new Runner(s.context(), me);
        const verdicts = batch
          ? await processTogether(runner, es, ex)
          : [await runner.process(launchOf(es[0]!), options(ex))];
        expect(verdicts, name).toEqual(es.map(() => 'done'));
        expect(s.calls.includes(batch ? 'claimMany' : 'claim'), name).toBe(true);
        for (const e of es) {
          expect(s.executions.get(`${e.jobName}/${e.executionId}`), `${name} ${batch}`).toMatchObject({
            status,
            reason,
          });
        }
        expect(runs, name).toEqual([]);
      }
    }
    // A run-now is not held back by the pause; a change that lands after the check is later than the launch.
    const s = new FakeStores();
    const manual = { ...execution('m', Date.now() + 50), trigger: 'manual' as const };
    const late = execution('late', Date.now() + 50);
    for (const e of [manual, late]) {
      s.put(e);
      s.job(def(e.jobName));
    }
    s.afterClaim = () => {
      s.paused = true;
    };
    const { ex, runs } = executor();
    expect(await new Runner(s.context(), me).process(launchOf(manual), options(ex))).toBe('done');
    s.paused = false;
    s.afterClaim = undefined;
    const checked = s.calls.length;
    let jobReads = 0;
    const runner = new Runner(
      {
        ...s.context(),
        jobs: {
          ...s.context().jobs,
          getMany: async (names: readonly string[]) => {
            const read = await s.context().jobs.getMany(names);
            // Edited just after the runner's read after the claim (the second: the first is before it).
            if (++jobReads === 2) s.job(def('late'), 2);
            return read;
          },
        },
      } as Context,
      me,
    );
    expect(await runner.process(launchOf(late), options(ex))).toBe('done');
    expect(s.calls.slice(checked)).toContain('claim');
    expect(runs.map((r) => r.id)).toEqual([manual.executionId, late.executionId]);
  });

  it('fences: a run whose heartbeats do not reach the store is killed before lost-after, and ends failed', async () => {
    const s = new FakeStores();
    const e = execution('j', Date.now());
    s.put(e);
    s.job(def('j'));
    const { ex, runs } = executor(5_000);
    s.unreachable = true; // from the start: no heartbeat lands
    const t0 = Date.now();
    const lostAfterMs = 400;
    const verdict = await new Runner(s.context(), me).process(
      launchOf(e),
      options(ex, { lostAfterMs, heartbeatIntervalMs: 40 }),
    );
    const tookMs = Date.now() - t0;
    expect(verdict).toBe('done');
    expect(runs[0]!.aborted()).toBe(true);
    // Killed at the fence (60 % of lost-after after the claim's heartbeat), well before anyone may take it as lost.
    expect(tookMs).toBeLessThan(lostAfterMs);
    expect(s.executions.get(`j/${e.executionId}`)).toMatchObject({ status: 'failed' });
    expect(s.executions.get(`j/${e.executionId}`)!.reason).toMatch(/^killed by its agent: no heartbeat/);
  });

  it('records a run that ended by itself as it ended, though the fence fired before its end was seen', async () => {
    const s = new FakeStores();
    const e = execution('j', Date.now());
    s.put(e);
    s.job(def('j'));
    s.unreachable = true; // no heartbeat lands: the fence fires at 60 % of lost-after
    const runs: string[] = [];
    // The job exits by itself; its exit is seen only after the fence's timer (a busy event loop).
    const late: Executor = {
      async run(_def, x, signal) {
        runs.push(x.executionId);
        await new Promise<void>((r) => signal.addEventListener('abort', () => r()));
        return { status: 'succeeded', exitCode: 0, output: 'done', outputTruncated: false, reason: null };
      },
    };
    s.unreachable = true;
    const verdict = await new Runner(s.context(), me).process(launchOf(e), {
      ...options(late, { lostAfterMs: 400 }),
    });
    expect(verdict).toBe('done');
    expect(runs).toHaveLength(1);
    expect(s.executions.get(`j/${e.executionId}`)).toMatchObject({ status: 'succeeded', output: 'done' });
  });

  it('kills its run once the store says the execution is no longer its own (marked lost meanwhile)', async () => {
    const s = new FakeStores();
    const e = execution('j', Date.now());
    s.put(e);
    s.job(def('j'));
    const { ex, runs } = executor(5_000);
    const running = new Runner(s.context(), me).process(launchOf(e), options(ex));
    await sleep(60);
    s.executions.set(`j/${e.executionId}`, {
      ...s.executions.get(`j/${e.executionId}`)!,
      status: 'lost',
    });
    expect(await running).toBe('done');
    expect(runs[0]!.aborted()).toBe(true);
    // Its result is refused (the execution is not running any more): the lost attempt stays lost.
    expect(s.executions.get(`j/${e.executionId}`)!.status).toBe('lost');
  });

  it('records a run that ended as it ended when the first result write fails, never as a failure', async () => {
    const s = new FakeStores();
    const e = execution('j', Date.now());
    s.put(e);
    s.job(def('j'));
    const { ex, runs } = executor();
    s.failFinishes = 1;
    const logs: Array<Record<string, unknown>> = [];
    const verdict = await new Runner(s.context(), me).process(
      launchOf(e),
      options(ex, { log: (l) => logs.push(l) }),
    );
    expect(verdict).toBe('done');
    expect(runs).toHaveLength(1);
    expect(s.finished).toHaveLength(1);
    expect(s.finished[0]!.result).toMatchObject({ status: 'succeeded', output: 'ok' });
    expect(s.executions.get(`j/${e.executionId}`)!.status).toBe('succeeded');
    expect(logs.some((l) => l.msg === 'execution failed')).toBe(true);
  });

  it('claims launches received together in one claim, and falls back one by one for the odd one', async () => {
    const s = new FakeStores();
    const fireAt = Date.now() + 100;
    const es = ['a', 'b', 'c'].map((n) => execution(n, fireAt));
    for (const e of es) {
      s.put(e);
      s.job(def(e.jobName));
    }
    const { ex, runs } = executor();
    const runner = new Runner(s.context(), me);
    const verdicts = await processTogether(runner, es, ex);
    expect(verdicts).toEqual(['done', 'done', 'done']);
    expect(s.calls.filter((c) => c === 'claimMany')).toHaveLength(1);
    expect(s.calls.filter((c) => c === 'claim')).toHaveLength(0);
    // The read before the claim (executions and jobs) and the one after it (jobs and the pause flag):
    // each is asked for together, one request each (ReadTogether).
    const [before1, before2, after1, after2] = s.readsWith;
    expect(s.readsWith.map(([call]) => call)).toEqual([
      'getMany',
      'jobs.getMany',
      'jobs.getMany',
      'isPaused',
    ]);
    expect(before1![1]).toBeDefined();
    expect(before2![1]).toBe(before1![1]);
    expect(after1![1]).toBeDefined();
    expect(after2![1]).toBe(after1![1]);
    expect(after1![1]).not.toBe(before1![1]);
    // The read before the claim may be stale (eventually consistent); the one after it, which decides, not.
    expect(before1![1]).toMatchObject({ consistent: false });
    expect(after1![1]).toMatchObject({ consistent: true });
    expect(runs.map((r) => r.id).sort()).toEqual(es.map((e) => e.executionId).sort());

    // One of them is another agent's already, and one is delivered twice: the transaction is refused,
    // each goes on its own, and each runs once at most.
    const s2 = new FakeStores();
    const more = ['a', 'b', 'c'].map((n) => execution(n, Date.now() + 100));
    for (const e of more) {
      s2.put(e);
      s2.job(def(e.jobName));
    }
    s2.put({ ...more[0]!, status: 'running', agentId: 'agent-b', heartbeatAt: Date.now() });
    const second = executor();
    const batch = [...more, more[1]!];
    const v2 = await processTogether(new Runner(s2.context(), me), batch, second.ex);
    // The other agent's (alive, not in the sweep's index) comes back later to be checked again.
    expect(v2).toEqual(['recheck', 'done', 'done', 'done']);
    expect(second.runs.map((r) => r.id).sort()).toEqual([more[1]!.executionId, more[2]!.executionId].sort());
  });

  it('runs a claim whose answer was lost, once; another process of the same agent name never does', async () => {
    const s = new FakeStores();
    const e = execution('j', Date.now());
    s.put(e);
    s.job(def('j'));
    const { ex, runs } = executor();
    s.loseClaimAnswers = 1;
    const runner = new Runner(s.context(), me);
    // The claim landed but its answer did not: the error sends the message back...
    await expect(runner.process(launchOf(e), options(ex))).rejects.toThrow('timed out');
    expect(s.executions.get(`j/${e.executionId}`)).toMatchObject({ status: 'running', agentId: me.agentId });
    // ...and a restarted agent (same name, another process) receiving it leaves it alone (it cannot know
    // whether the attempt ran before the restart): it comes back, to be marked lost once silent past
    // lost-after, and the retry policy decides...
    expect(await new Runner(s.context(), me).process(launchOf(e), options(ex))).toBe('recheck');
    expect(runs).toHaveLength(0);
    // ...while the runner that sent the claim knows it as its own, and runs it once.
    expect(await runner.process(launchOf(e), options(ex))).toBe('done');
    expect(await runner.process(launchOf(e), options(ex))).toBe('done');
    expect(runs).toHaveLength(1);
    expect(s.executions.get(`j/${e.executionId}`)!.status).toBe('succeeded');

    // A batch claim whose answer was lost (the SDK's retry refused: the first attempt had landed).
    const fireAt = Date.now() + 50;
    const es = ['a', 'b', 'c'].map((n) => execution(n, fireAt));
    for (const x of es) {
      s.put(x);
      s.job(def(x.jobName));
    }
    s.loseClaimAnswers = 1;
    const batch = executor();
    const verdicts = await processTogether(runner, es, batch.ex);
    expect(verdicts).toEqual(['done', 'done', 'done']);
    expect(batch.runs.map((r) => r.id).sort()).toEqual(es.map((x) => x.executionId).sort());
  });

  it('holds every launch for one instant on one timer', async () => {
    const s = new FakeStores();
    const runner = new Runner(s.context(), me);
    const at = Date.now() + 50;
    const a = runner.holdUntil(at, sleep);
    const b = runner.holdUntil(at, sleep);
    expect(a).toBe(b);
    await a;
    expect(Date.now()).toBeGreaterThanOrEqual(at);
    // Another runner (another host) has timers of its own.
    const later = Date.now() + 50;
    expect(new Runner(s.context(), me).holdUntil(later, sleep)).not.toBe(runner.holdUntil(later, sleep));
  });
});
