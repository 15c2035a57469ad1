/**
 * The spawner (agent/spawner.ts) with real processes: shell jobs started through it behave as jobs forked
 * by the agent (output, exit codes, env, cwd, payload, timeouts, cancels, a missing program), its own
 * environment carries nothing of the agent's, and no job outlives the agent or the spawner: the agent
 * killed → the spawner exits and its reaper kills the job; the spawner killed → the run fails and the job
 * dies; the reaper killed → the spawner kills its jobs. An idle spawner exits; the next job starts another.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ShellExecutor } from '../../../agent/executors/shell.ts';
import { JobSpawner, SPAWNER_GATE_SCRIPT, spawnerScript } from '../../../agent/spawner.ts';
import { rememberSecret, withSecretRedaction } from '../../../shared/executors/secrets.ts';
import { alive, execution, gone, job } from './shell-job.ts';

const spawners: JobSpawner[] = [];
const children: ChildProcess[] = [];
function newSpawner(idleExitMs?: number): JobSpawner {
  const s = new JobSpawner(idleExitMs === undefined ? {} : { idleExitMs });
  spawners.push(s);
  return s;
}

afterEach(() => {
  for (const s of spawners.splice(0)) s.close();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

describe('ShellExecutor through the spawner', () => {
  const run = (def: ReturnType<typeof job>, signal = new AbortController().signal) =>
    new ShellExecutor({ spawner: newSpawner() }).run(def, execution, signal);

  it('runs a command and captures its output and exit code, reporting its start', async () => {
    const starts: number[] = [];
    const called = Date.now();
    const r = await new ShellExecutor({ spawner: newSpawner() }).run(
      job({ command: 'echo hello' }),
      execution,
      new AbortController().signal,
      { started: (at) => starts.push(at) },
    );
    expect(r).toMatchObject({ status: 'succeeded', exitCode: 0, output: 'hello\n', reason: null });
    expect(starts).toHaveLength(1);
    expect(starts[0]!).toBeGreaterThanOrEqual(called);
  });

  it('runs through /bin/sh with shell=true, with env, cwd and payload, stdout and stderr both kept', async () => {
    const payload = Buffer.from('from-stdin').toString('base64');
    const r = await run(
      job({
        command: 'echo $GREETING $ENV_JOB_NAME $(pwd); cat; echo err >&2',
        shell: 'true',
        env: 'GREETING=hi',
        cwd: '/tmp',
        payload,
      }),
    );
    expect(r.output).toBe('hi j /tmp\nfrom-stdinerr\n');
  });

  it('forks a job with two pipes when it has no payload: stdin is /dev/null, stderr shares the stdout pipe (a socket pair, as libuv makes them)', async () => {
    // Each pipe costs the spawner ~0.13 ms of CPU a fork (issue 16: agent CPU per execution).
    const fds = 'readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2';
    const [stdin, stdout, stderr] = (await run(job({ command: fds, shell: 'true' }))).output
      .trim()
      .split('\n');
    expect(stdin).toBe('/dev/null');
    expect(stdout).toMatch(/^(pipe|socket):/);
    expect(stderr).toBe(stdout);
    const withPayload = await run(
      job({ command: fds, shell: 'true', payload: Buffer.from('x').toString('base64') }),
    );
    expect(withPayload.output.trim().split('\n')[0]).toMatch(/^(pipe|socket):/);
    // One pipe: what the job writes to either comes out in the order written.
    const mixed = await run(job({ command: 'echo a; echo b >&2; echo c; echo d >&2', shell: 'true' }));
    expect(mixed.output).toBe('a\nb\nc\nd\n');
  });

  it('carries output in order, however much (the relay waits for the agent: nothing lost or reordered)', async () => {
    const r = await run(job({ command: 'seq 1 400000; echo end', shell: 'true' }));
    expect(r.status).toBe('succeeded');
    // The output buffer keeps a head and a tail of the ~2.7 MB: both in order.
    expect(r.outputTruncated).toBe(true);
    expect(r.output.startsWith('1\n2\n3\n4\n')).toBe(true);
    expect(r.output.endsWith('399998\n399999\n400000\nend\n')).toBe(true);
    const tail = r.output
      .slice(r.output.lastIndexOf('\n', r.output.length - 30_000))
      .trim()
      .split('\n');
    const numbers = tail.slice(0, -1).map(Number);
    expect(numbers.every((n, i) => i === 0 || n === numbers[i - 1]! + 1)).toBe(true);
  });

  it('fails on a non-zero exit unless it is listed in success_exit_codes', async () => {
    expect(await run(job({ command: 'sh -c "exit 3"' }))).toMatchObject({
      status: 'failed',
      reason: 'exit code 3',
    });
    expect((await run(job({ command: 'sh -c "exit 3"' }, { success_exit_codes: [0, 3] }))).status).toBe(
      'succeeded',
    );
  });

  it('kills the whole process group on timeout', async () => {
    const started = Date.now();
    const r = await run(
      job({ command: 'echo $$; sleep 30 & sleep 30; wait', shell: 'true', timeout: '300ms' }),
    );
    expect(r.status).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await gone(Number(r.output.trim()))).toBe(true);
  });

  it('ends the run when its command exits, killing what it left running in its group', async () => {
    const started = Date.now();
    // The background sleep holds the output pipe open: without the kill the run would last 30 s.
    const r = await run(job({ command: 'sleep 30 & echo $!', shell: 'true' }));
    expect(r).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await gone(Number(r.output.trim()))).toBe(true);
  });

  it('cancels a running job, and one cancelled while its spawn is on the way', async () => {
    const controller = new AbortController();
    const running = run(job({ command: 'sleep 30' }), controller.signal);
    await new Promise((r) => setTimeout(r, 200));
    controller.abort();
    expect(await running).toMatchObject({ status: 'cancelled', reason: 'cancelled' });
    // Aborted right after the call, before the spawner has said the job exists: the kill waits for the
    // pid, then the job dies at once.
    const early = new AbortController();
    const starts: number[] = [];
    const r = run(job({ command: 'sleep 30' }), early.signal);
    queueMicrotask(() => early.abort());
    const started = Date.now();
    expect(await r).toMatchObject({ status: 'cancelled' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(starts).toEqual([]);
  });

  it('reports a program that does not exist, and a cwd that does not, as cannot start', async () => {
    expect(await run(job({ command: 'no-such-program-xyz arg' }))).toMatchObject({
      status: 'failed',
      reason: 'cannot start no-such-program-xyz: spawn no-such-program-xyz ENOENT',
    });
    const r = await run(job({ command: 'true', cwd: '/no/such/dir' }));
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(/^cannot start true: spawn \/bin\/sh ENOENT/);
  });

  it("starts no job in the spawner's own environment: it holds only PATH", async () => {
    const spawner = newSpawner();
    spawner.warm();
    const pid = spawner.pid!;
    await new Promise((r) => setTimeout(r, 200));
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
    // (and Node's own description of its channel)
    expect(
      environ.map((e) => e.slice(0, e.indexOf('='))).filter((n) => !n.startsWith('NODE_CHANNEL_')),
    ).toEqual(['PATH']);
  });
});

describe('JobSpawner', () => {
  it("lets each job of a burst run once its group is registered, not after the burst's other forks", async () => {
    // 200 jobs asked for in one turn, each printing when it ran (ms): the first ran while the spawner was
    // still forking the rest. (Gates opened by the reaper write's callback opened after every fork.)
    const executor = new ShellExecutor({ spawner: newSpawner(), baseEnv: { PATH: process.env.PATH } });
    const spawnedAt: number[] = [];
    const runs = await Promise.all(
      Array.from({ length: 200 }, () =>
        executor.run(job({ command: 'date +%s%3N' }), execution, new AbortController().signal, {
          started: (at) => spawnedAt.push(at),
        }),
      ),
    );
    expect(runs.every((r) => r.status === 'succeeded')).toBe(true);
    const ranAt = runs.map((r) => Number(r.output.trim())).sort((a, b) => a - b);
    spawnedAt.sort((a, b) => a - b);
    expect(ranAt[0]!).toBeLessThan(spawnedAt[100]!);
  });

  describe('a launch held to its fire time', () => {
    const GATE_PREFIX = `/bin/sh\0-c\0${SPAWNER_GATE_SCRIPT}`;
    /** The spawner's children that are gates still shut (the job has not been exec'd yet). */
    const shutGates = (spawner: JobSpawner): number[] =>
      readFileSync(`/proc/${spawner.pid}/task/${spawner.pid}/children`, 'utf8')
        .trim()
        .split(' ')
        .filter(Boolean)
        .map(Number)
        .filter((k) => {
          try {
            return readFileSync(`/proc/${k}/cmdline`, 'utf8').startsWith(GATE_PREFIX);
          } catch {
            return false;
          }
        });
    async function oneShutGate(spawner: JobSpawner): Promise<number> {
      const deadline = Date.now() + 3_000;
      while (Date.now() < deadline) {
        const gates = spawner.pid === undefined ? [] : shutGates(spawner);
        if (gates.length === 1) return gates[0]!;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('no gate forked ahead');
    }
    const held = () => ({ ...execution, scheduledAt: Date.now() + 2_000 });
    const env = { PATH: process.env.PATH };

    it('is forked during its hold, its gate shut, and only the gate opens at its run', async () => {
      const spawner = newSpawner();
      const executor = new ShellExecutor({ spawner, baseEnv: env });
      const def = job({ shell: 'true', command: 'echo $$ $(date +%s%3N)' });
      const e = held();
      executor.prepare(def, e);
      const gate = await oneShutGate(spawner);
      await new Promise((r) => setTimeout(r, 200));
      expect(shutGates(spawner)).toEqual([gate]); // still waiting: the job has not run
      const starts: number[] = [];
      const called = Date.now();
      const r = await executor.run(def, e, new AbortController().signal, {
        started: (at) => starts.push(at),
      });
      expect(r.status).toBe('succeeded');
      const [pid, ranAt] = r.output.trim().split(' ').map(Number);
      expect(pid).toBe(gate); // the process forked ahead is the one that ran (the gate execs the job)
      expect(ranAt!).toBeGreaterThanOrEqual(called);
      expect(starts).toHaveLength(1);
      expect(starts[0]!).toBeGreaterThanOrEqual(called);
    });

    it('is forked ahead as the agent wraps its shell executor, a secret resolved then redacted from the run', async () => {
      const spawner = newSpawner();
      // The agent's shell executor sits in the secret-redaction wrapper (shared/executors/registry.ts): what
      // the executor offers besides `run` must pass through it, and a secret resolved for the fork ahead
      // belongs to the run's scope.
      const executor = withSecretRedaction(
        new ShellExecutor({
          spawner,
          baseEnv: env,
          resolveEnv: async (extra) => {
            rememberSecret('s3cr3t-value');
            return { ...extra, TOKEN: 's3cr3t-value' };
          },
        }),
      );
      expect(executor.reportsStart).toBe(true);
      const def = job({ shell: 'true', command: 'echo $$ $TOKEN', env: 'TOKEN={{ssm:/cronplane/token}}' });
      const e = held();
      executor.prepare?.(def, e);
      const gate = await oneShutGate(spawner);
      const r = await executor.run(def, e, new AbortController().signal);
      expect(r.status).toBe('succeeded');
      expect(r.output.trim()).toBe(`${gate} [redacted]`);
    });

    it('is killed unrun when released without a run (skipped, cancelled, the agent stopping)', async () => {
      const spawner = newSpawner();
      const executor = new ShellExecutor({ spawner, baseEnv: env });
      const marker = join(mkdtempSync(join(tmpdir(), 'cronplane-prefork-')), 'ran');
      const e = held();
      executor.prepare(job({ command: `touch ${marker}` }), e);
      const gate = await oneShutGate(spawner);
      executor.release(e);
      expect(await gone(gate)).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      expect(existsSync(marker)).toBe(false);
    });

    it('is forked afresh at its run when the one forked ahead died meanwhile', async () => {
      const spawner = newSpawner();
      const executor = new ShellExecutor({ spawner, baseEnv: env });
      const def = job({ shell: 'true', command: 'echo $$' });
      const e = held();
      executor.prepare(def, e);
      const gate = await oneShutGate(spawner);
      process.kill(gate, 'SIGKILL');
      expect(await gone(gate)).toBe(true);
      await new Promise((r) => setTimeout(r, 100)); // its exit reaches the agent
      const r = await executor.run(def, e, new AbortController().signal);
      expect(r.status).toBe('succeeded');
      expect(Number(r.output.trim())).not.toBe(gate);
    });

    it('waits for its start when the launch is due far ahead on another clock (an agent on a fake clock)', async () => {
      const spawner = newSpawner();
      const executor = new ShellExecutor({ spawner, baseEnv: env });
      const def = job({ shell: 'true', command: 'echo $$' });
      // Ten years ahead of this clock: a wait counted from that overflows Node's timers (fires at once).
      const e = { ...execution, scheduledAt: Date.now() + 10 * 365 * 86_400_000 };
      executor.prepare(def, e);
      const gate = await oneShutGate(spawner);
      await new Promise((r) => setTimeout(r, 300));
      expect(shutGates(spawner)).toEqual([gate]);
      const r = await executor.run(def, e, new AbortController().signal);
      expect(r).toMatchObject({ status: 'succeeded', output: `${gate}\n` });
    });

    it('is killed by the spawner when no start comes within its wait', async () => {
      const spawner = newSpawner();
      const prepared = spawner.prefork('true', [], { env }, undefined, 300);
      const gate = await oneShutGate(spawner);
      expect(await gone(gate, 3_000)).toBe(true);
      await new Promise((r) => setTimeout(r, 100));
      expect(prepared.go()).toBeNull();
    });
  });

  it('when the spawner dies under a running job, the run fails, the job dies, and the next job gets a new spawner', async () => {
    const spawner = newSpawner();
    const executor = new ShellExecutor({ spawner });
    let jobPid = 0;
    const running = executor.run(job({ command: 'sleep 30' }), execution, new AbortController().signal, {
      started: () => {},
    });
    // the pid through a second listener: wait until the job exists
    const deadline = Date.now() + 3_000;
    while (!jobPid && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      const kids = readFileSync(`/proc/${spawner.pid}/task/${spawner.pid}/children`, 'utf8')
        .trim()
        .split(' ');
      // the spawner's children: its reaper and the job (the job's command line is sleep 30)
      for (const k of kids.filter(Boolean)) {
        if (readFileSync(`/proc/${k}/cmdline`, 'utf8').startsWith('sleep\0')) jobPid = Number(k);
      }
    }
    expect(jobPid).toBeGreaterThan(0);
    const first = spawner.pid!;
    process.kill(first, 'SIGKILL');
    const r = await running;
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(/spawner process exited \(SIGKILL\)/);
    expect(await gone(jobPid)).toBe(true);
    const next = await executor.run(job({ command: 'echo again' }), execution, new AbortController().signal);
    expect(next).toMatchObject({ status: 'succeeded', output: 'again\n' });
    expect(spawner.pid).not.toBe(first);
  });

  it('exits when idle and starts again for the next job', async () => {
    const spawner = newSpawner(200);
    const executor = new ShellExecutor({ spawner });
    expect(
      (await executor.run(job({ command: 'true' }), execution, new AbortController().signal)).status,
    ).toBe('succeeded');
    const first = spawner.pid!;
    expect(first).toBeGreaterThan(0);
    expect(await gone(first)).toBe(true);
    expect(spawner.pid).toBeUndefined();
    expect(
      (await executor.run(job({ command: 'true' }), execution, new AbortController().signal)).status,
    ).toBe('succeeded');
    expect(spawner.pid).not.toBe(first);
  });
});

/**
 * The spawner program driven as an agent drives it, from a plain Node process (the "agent") that the
 * test can SIGKILL: it starts the spawner, asks for `sleep 60`, and prints the spawner's and the job's pids.
 */
function fakeAgent(): Promise<{ agent: ChildProcess; spawnerPid: number; jobPid: number }> {
  const program = `
const { spawn } = require('node:child_process');
const s = spawn(process.execPath, ['-e', process.env.SPAWNER], {
  stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced', env: { PATH: process.env.PATH },
});
s.on('message', (m) => { if (m[0] === 'spawn') console.log(s.pid + ' ' + m[2]); });
s.send(['run', 1, 'sleep', ['60'], { env: { PATH: process.env.PATH } }, null]);
`;
  const agent = spawn(process.execPath, ['-e', program], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { PATH: process.env.PATH, SPAWNER: spawnerScript() },
  });
  children.push(agent);
  return new Promise((resolve, reject) => {
    let text = '';
    agent.stdout!.on('data', (d: Buffer) => {
      text += d.toString();
      const m = /^(\d+) (\d+)\n/.exec(text);
      if (m) resolve({ agent, spawnerPid: Number(m[1]), jobPid: Number(m[2]) });
    });
    agent.once('exit', () => reject(new Error(`agent exited: ${text}`)));
  });
}

describe('SPAWNER_SCRIPT', () => {
  it('exits when the agent is SIGKILLed, and its reaper kills the running job', async () => {
    const { agent, spawnerPid, jobPid } = await fakeAgent();
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(jobPid)).toBe(true);
    agent.kill('SIGKILL');
    expect(await gone(spawnerPid)).toBe(true);
    expect(await gone(jobPid)).toBe(true);
  });

  it('kills its jobs and exits when its reaper dies: no job runs unguarded', async () => {
    const { spawnerPid, jobPid } = await fakeAgent();
    const reaperPid = readFileSync(`/proc/${spawnerPid}/task/${spawnerPid}/children`, 'utf8')
      .trim()
      .split(' ')
      .map(Number)
      .find((p) => p !== jobPid)!;
    expect(readFileSync(`/proc/${reaperPid}/cmdline`, 'utf8')).toMatch(/^\/bin\/sh\0-c\0trap/);
    process.kill(reaperPid, 'SIGKILL');
    expect(await gone(jobPid)).toBe(true);
    expect(await gone(spawnerPid)).toBe(true);
  });
});
