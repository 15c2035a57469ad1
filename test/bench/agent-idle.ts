/**
 * Figure `agent_idle`: one agent process joined to a local stack with no jobs, idle. After a settle
 * period, RSS is sampled every second from /proc/<pid>/status and CPU time is the utime+stime delta
 * of /proc/<pid>/stat over the window. Targets: RSS ≤ 60 MB, near-zero CPU.
 *
 * The settle period (10 s after "agent started") is longer than V8's memory reducer delay: about 8 s after
 * start-up V8 collects start-up garbage, shrinks the young generation and hands the pages back (for the
 * bundle, ~70 → ~55 MB). Until then the process is still finishing its start-up, not idling; that peak is
 * reported as `rss_peak_mb` (the process's high-water mark), `rss_mb` is the RSS at the end of the window
 * and `rss_max_mb` the highest sample in it.
 *
 * Variants:
 *   - `bin/cronplane.js`: the agent as shipped (tsx's loader transpiles the TypeScript at start-up)
 *   - `esbuild-bundle`: dist/cronplane-agent.mjs as `npm run bundle` builds it (scripts/bundle-agent.mjs,
 *     written to a temp dir), run by plain node as the README's systemd unit does
 *   - `esbuild-bundle-after-work`: the bundle again, idling after it has run `jobsBefore` shell jobs (one a
 *     second): what a host agent with an hourly job looks like between runs
 *   - `node-baseline`: `node -e 'setInterval(() => {}, 1000)'`, the floor of any Node.js process
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LocalStack } from '../../local/stack.ts';
import {
  clockTicksPerSecond,
  cpuTicks,
  emit,
  memoryMb,
  progress,
  REPO_ROOT,
  sleep,
  spawnAgent,
  startStack,
  stopStack,
} from './support.ts';

export interface AgentIdleOptions {
  readonly seconds: number;
  readonly settleMs?: number;
  /** how many runs of a shell job the `-after-work` variant does before it idles; default 20 */
  readonly jobsBefore?: number;
}

/** Runs `n` executions of a shell job on the stack's only agent (one a second), then deletes the job. */
async function runJobs(stack: LocalStack, n: number): Promise<void> {
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${stack.url}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  const created = await call('POST', '/v1/jobs', {
    name: 'bench-idle-work',
    schedule: '@every 1s',
    executor_config: { command: 'echo work' },
  });
  if (created.status !== 201) throw new Error(`creating the job: ${created.status} ${await created.text()}`);
  const deadline = Date.now() + n * 1_000 + 60_000;
  for (;;) {
    const job = (await (await call('GET', '/v1/jobs/bench-idle-work')).json()) as { success_count: number };
    if (job.success_count >= n) break;
    if (Date.now() > deadline) throw new Error(`only ${job.success_count} of ${n} runs succeeded`);
    await sleep(1_000);
  }
  await call('DELETE', '/v1/jobs/bench-idle-work');
}

/** The shipped artifact: `npm run bundle`'s script (scripts/bundle-agent.mjs), written to a temp dir. */
async function bundleAgent(dir: string): Promise<string> {
  const outfile = join(dir, 'cronplane-agent.mjs');
  await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'scripts', 'bundle-agent.mjs'), outfile], {
    cwd: REPO_ROOT,
  });
  return outfile;
}

/** Samples one process for `seconds` after `settleMs`. */
async function sample(pid: number, seconds: number, settleMs: number) {
  await sleep(settleMs);
  const hz = clockTicksPerSecond();
  const c0 = cpuTicks(pid);
  const t0 = performance.now();
  const rss: number[] = [];
  for (let i = 0; i < seconds; i++) {
    await sleep(1_000);
    rss.push(memoryMb(pid).rss);
  }
  const cpuSeconds = (cpuTicks(pid) - c0) / hz;
  const wallSeconds = (performance.now() - t0) / 1000;
  const mem = memoryMb(pid);
  return {
    seconds,
    rss_mb: mem.rss,
    rss_max_mb: Math.max(...rss),
    rss_peak_mb: mem.hwm,
    cpu_percent: Math.round((cpuSeconds / wallSeconds) * 1000) / 10,
    cpu_seconds: Math.round(cpuSeconds * 100) / 100,
  };
}

export async function agentIdle(o: AgentIdleOptions): Promise<void> {
  const settleMs = o.settleMs ?? 10_000;
  progress(`agent_idle: ${o.seconds} s per variant after ${settleMs / 1000} s settle`);
  const stack = await startStack({ agents: [], tickIntervalMs: 1_000 });
  const dir = mkdtempSync(join(tmpdir(), 'cronplane-bench-'));
  try {
    let bundle: Promise<string> | undefined;
    const variants: Array<{ variant: string; entry: () => Promise<string>; work?: number }> = [
      { variant: 'bin/cronplane.js', entry: async () => join(REPO_ROOT, 'bin', 'cronplane.js') },
      { variant: 'esbuild-bundle', entry: () => (bundle ??= bundleAgent(dir)) },
      // The same agent idling after it has run jobs (its compilers are on from the first launch).
      {
        variant: 'esbuild-bundle-after-work',
        entry: () => (bundle ??= bundleAgent(dir)),
        work: o.jobsBefore ?? 20,
      },
    ];
    for (const v of variants) {
      let entry: string;
      try {
        entry = await v.entry();
      } catch (error) {
        progress(`  ${v.variant}: could not be prepared: ${(error as Error).message}`);
        emit('agent_idle', { variant: v.variant, error: (error as Error).message.slice(0, 300) });
        continue;
      }
      const t0 = Date.now();
      const agent = spawnAgent(`bench-idle-${v.variant.replace(/\W+/g, '-')}`, [], stack.env, entry);
      try {
        await Promise.race([
          agent.started,
          sleep(90_000).then(() => Promise.reject(new Error('the agent did not start within 90 s'))),
        ]);
        const startupMs = Date.now() - t0;
        if (v.work) await runJobs(stack, v.work);
        progress(`  ${v.variant}: started in ${startupMs} ms (pid ${agent.pid}); sampling`);
        const s = await sample(agent.pid, o.seconds, settleMs);
        emit('agent_idle', {
          variant: v.variant,
          ...(v.work ? { jobs_before: v.work } : {}),
          ...s,
          settle_s: settleMs / 1000,
          startup_ms: startupMs,
          target_rss_mb: 60,
          problem_lines: agent.problems.length,
        });
      } finally {
        await agent.stop();
      }
    }
    // The floor: an idle Node.js process doing nothing.
    const baseline: ChildProcess = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      stdio: 'ignore',
    });
    try {
      const s = await sample(baseline.pid ?? -1, Math.min(o.seconds, 5), 1_000);
      emit('agent_idle', { variant: 'node-baseline', ...s });
    } finally {
      baseline.kill('SIGKILL');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await stopStack(stack);
  }
}
