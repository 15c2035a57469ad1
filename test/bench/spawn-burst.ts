/**
 * `spawn_burst`: what starting a burst of shell jobs costs the agent, forked from the agent itself or
 * through its spawner (agent/spawner.ts), as the agent grows. This process plays the agent: it holds
 * `ballastMb` of touched memory (an agent under a burst is ~150 MB; the in-process bench ~700 MB), then
 * starts `jobs` runs of `true` through the real ShellExecutor in one turn of the event loop, as a burst's
 * held launches are released, and waits for every result. Per variant: when each job's process existed
 * (the executor's `started` hook) after the burst's instant — p50 / p99 / max — the time until every result
 * was in, and the CPU of this process and of the spawner per job (the jobs' own CPU excluded); beside them,
 * how long bash takes to start as many processes (`bash_forks_all_ms`: the host's floor). No emulator: the
 * spawn path alone. Variant `…-1000`: a whole burst of 1,000 through one spawner.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { ShellExecutor } from '../../agent/executors/shell.ts';
import { JobReaper } from '../../agent/reaper.ts';
import { JobSpawner } from '../../agent/spawner.ts';
import type { Execution } from '../../shared/executions/execution.ts';
import { validateJob } from '../../shared/jobs/job.ts';
import { clockTicksPerSecond, cpuTicks, emit, progress, quantiles, sleep } from './support.ts';

export interface SpawnBurstOptions {
  readonly jobs: number;
  readonly ballastMb: readonly number[];
  readonly rounds: number;
  /** Default both. */
  readonly modes?: readonly ('agent' | 'spawner')[];
}

/**
 * The host's own floor for `jobs` process starts: bash (a ~4 MB process) forking `/bin/true` that many times
 * in a loop, in the background, then waiting for them all (ms, the best of 3).
 */
function bashForksMs(jobs: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    execFileSync('bash', ['-c', `for ((i=0;i<${jobs};i++)); do /bin/true & done; wait`]);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return Math.round(best);
}

const execution = { executionId: '0000000000001.0.1', scheduledAt: 1 } as Execution;
const job = validateJob({
  name: 'burst',
  schedule: '@manually',
  executor: 'shell',
  executor_config: { command: 'true' },
});

async function burst(
  executor: ShellExecutor,
  jobs: number,
): Promise<{ starts: number[]; allDoneMs: number }> {
  const t0 = Date.now();
  const starts: number[] = [];
  const runs = Array.from({ length: jobs }, () =>
    executor.run(job, execution, new AbortController().signal, { started: (at) => starts.push(at - t0) }),
  );
  const results = await Promise.all(runs);
  const failed = results.filter((r) => r.status !== 'succeeded');
  if (failed.length > 0) throw new Error(`${failed.length} runs failed: ${failed[0]!.reason}`);
  return { starts, allDoneMs: Date.now() - t0 };
}

export async function spawnBurst(o: SpawnBurstOptions): Promise<void> {
  const ballast: Buffer[] = [];
  let held = 0;
  for (const mb of o.ballastMb) {
    // Touched memory (Buffer.alloc zero-fills it): the pages a fork has to map into the child.
    while (held < mb) {
      ballast.push(Buffer.alloc(1024 * 1024, 1));
      held++;
    }
    const rssMb = Math.round(process.memoryUsage().rss / 1e6);
    for (const mode of o.modes ?? (['agent', 'spawner'] as const)) {
      const reaper = new JobReaper();
      const spawner = mode === 'spawner' ? new JobSpawner() : undefined;
      const executor = new ShellExecutor({ groups: reaper, ...(spawner ? { spawner } : {}) });
      spawner?.warm();
      await burst(executor, 20); // warm-up: the spawner's start, the reaper, the code paths
      await sleep(200);
      const starts: number[] = [];
      let allDone = 0;
      let selfTicks = 0;
      let spawnerTicks = 0;
      for (let r = 0; r < o.rounds; r++) {
        const s0 = cpuTicks(process.pid);
        const p0 = spawner?.pid ? cpuTicks(spawner.pid) : 0;
        const b = await burst(executor, o.jobs);
        selfTicks += cpuTicks(process.pid) - s0;
        spawnerTicks += spawner?.pid ? cpuTicks(spawner.pid) - p0 : 0;
        starts.push(...b.starts);
        allDone += b.allDoneMs;
        await sleep(300);
      }
      spawner?.close();
      reaper.close();
      const q = quantiles(starts);
      const perJobMs = (ticks: number) =>
        Math.round(((ticks * 1000) / clockTicksPerSecond() / (o.jobs * o.rounds)) * 100) / 100;
      emit('spawn_burst', {
        variant: `${mode}-${rssMb}mb-${o.jobs}`,
        started_by: mode === 'agent' ? 'the agent (fork of the agent)' : 'the spawner process',
        agent_rss_mb: rssMb,
        jobs: o.jobs,
        rounds: o.rounds,
        started_after_ms: { p50: q.p50, p99: q.p99, max: q.max },
        all_results_ms: Math.round(allDone / o.rounds),
        agent_cpu_ms_per_job: perJobMs(selfTicks),
        spawner_cpu_ms_per_job: perJobMs(spawnerTicks),
        bash_forks_all_ms: bashForksMs(o.jobs),
        cores: availableParallelism(),
      });
      progress(`spawn_burst ${mode} at ${rssMb} MB done`);
    }
  }
  ballast.length = 0;
}
