/**
 * A fleet of real agent processes (`node bin/cronplane.js agent …`) against the emulators: fan-out to
 * every matching agent and to N of them, a launch no live agent can take, `forbid` and `replace`, the
 * shell timeout killing the whole process tree, an agent SIGKILLed mid-run (its job's processes die
 * with it, its attempt ends `lost` and the retry runs on another agent), the HTTP executor on an agent, and a graceful SIGTERM.
 *
 * The stack runs no in-process agents (the ticker still runs every second); the agents are child
 * processes with short timings: three `role=web` and one `role=db`. The tests run in order and share
 * them: the SIGKILL test kills a web agent after the fan-out tests, the SIGTERM test stops the db agent
 * last. Their JSON logs go to files in a temporary directory, kept (and named on stderr) when a test fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/stack-file.ts';
import { startTestStack, waitFor } from './support/stack.ts';

type Stack = Awaited<ReturnType<typeof startTestStack>>;

interface ApiExecution {
  id: string;
  group: string;
  status: string;
  node_name: string;
  attempt: number;
  trigger: string;
  scheduled_at: string;
  started_at: string;
  finished_at: string;
  output: string;
  reason: string | null;
}

interface Member {
  Name: string;
  statusText: string;
  Tags: Record<string, string>;
}

interface AgentProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
}

const AGENT_ENV = {
  CRONPLANE_AGENT_HEARTBEAT_MS: '1000',
  CRONPLANE_AGENT_EXECUTION_HEARTBEAT_MS: '500',
  CRONPLANE_AGENT_LOST_AFTER_MS: '4000',
  CRONPLANE_AGENT_VISIBILITY_TIMEOUT_S: '5',
  CRONPLANE_AGENT_POLL_WAIT_S: '1',
  CRONPLANE_AGENT_REGISTRY_REFRESH_MS: '1000',
};

const WEB = ['web-1', 'web-2', 'web-3'];
const FLEET: ReadonlyArray<[name: string, tag: string]> = [
  ['web-1', 'role=web'],
  ['web-2', 'role=web'],
  ['web-3', 'role=web'],
  ['db-1', 'role=db'],
];
const TERMINAL = new Set(['succeeded', 'failed', 'timeout', 'cancelled', 'lost', 'skipped']);

let stack: Stack;
const dir = mkdtempSync(join(tmpdir(), 'cronplane-fleet-'));
const agents = new Map<string, AgentProcess>();
const orphanGroups: number[] = [];
let failed = false;

function spawnAgent(name: string, tag: string): AgentProcess {
  const child = spawn(
    process.execPath,
    [join(REPO_ROOT, 'bin', 'cronplane.js'), 'agent', '--name', name, '--tag', tag, '--concurrency', '4'],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...stack.env, ...AGENT_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: false,
    },
  );
  const log = createWriteStream(join(dir, `${name}.log`));
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const agent = { name, child, exited };
  agents.set(name, agent);
  return agent;
}

function agent(name: string): AgentProcess {
  const a = agents.get(name);
  if (!a) throw new Error(`no agent ${name}`);
  return a;
}

async function members(): Promise<Member[]> {
  return (await stack.api<Member[]>('GET', '/v1/members')).body;
}

async function createJob(job: Record<string, unknown>) {
  const res = await stack.api('POST', '/v1/jobs', { schedule: '@manually', ...job });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

async function runJob(name: string) {
  const res = await stack.api('POST', `/v1/jobs/${name}/run`);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
}

async function disable(name: string) {
  const res = await stack.api<{ disabled: boolean }>('POST', `/v1/jobs/${name}/toggle`);
  expect(res.body.disabled).toBe(true);
}

async function executions(name: string): Promise<ApiExecution[]> {
  const res = await stack.api<ApiExecution[]>('GET', `/v1/jobs/${name}/executions?_order=ASC`);
  return res.status === 200 ? res.body : [];
}

/** Waits until no execution of the job is scheduled or running, and returns them all. */
async function settled(name: string, timeoutMs = 30_000): Promise<ApiExecution[]> {
  return waitFor(
    async () => {
      const list = await executions(name);
      return list.length > 0 && list.every((e) => TERMINAL.has(e.status)) ? list : null;
    },
    timeoutMs,
    `every execution of ${name} to finish`,
  );
}

function byGroup(list: readonly ApiExecution[]): Map<string, ApiExecution[]> {
  const groups = new Map<string, ApiExecution[]>();
  for (const e of list) groups.set(e.group, [...(groups.get(e.group) ?? []), e]);
  return groups;
}

/**
 * Whether a process still exists. `kill(pid, 0)` fails with ESRCH once it is gone; a killed process whose
 * parent was killed too may linger as a zombie until PID 1 reaps it, which counts as gone.
 */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Pids a job wrote, one a line, once there are `count` of them. */
async function pidsIn(file: string, count: number): Promise<number[]> {
  return waitFor(
    async () => {
      if (!existsSync(file)) return null;
      const pids = readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
      return pids.length >= count ? pids : null;
    },
    15_000,
    `${count} pids in ${file}`,
  );
}

/** A shell command that records its shell and two background children, then waits for them. */
function treeCommand(pidFile: string, seconds: number): string {
  return `echo $$ > ${pidFile}; sleep ${seconds} & echo $! >> ${pidFile}; sleep ${seconds} & echo $! >> ${pidFile}; wait`;
}

beforeAll(async () => {
  stack = await startTestStack({
    agents: [],
    // The tick's sweep marks a silent execution lost too (the agents' own check uses 4 s).
    settings: { CRONPLANE_LOST_AFTER_MS: '10000' },
  });
  for (const [name, tag] of FLEET) spawnAgent(name, tag);
  await waitFor(
    async () => {
      const alive = new Set((await members()).filter((m) => m.statusText === 'alive').map((m) => m.Name));
      return FLEET.every(([name]) => alive.has(name));
    },
    60_000,
    'every agent process to join',
  );
}, 180_000);

afterEach((context) => {
  if (context.task.result?.state === 'fail') failed = true;
});

afterAll(async () => {
  for (const a of agents.values())
    if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
  await Promise.all([...agents.values()].map((a) => a.exited));
  for (const pgid of orphanGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await stack?.stop();
  if (failed) console.error(`fleet agent logs kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
});

/** Waits until the three web agents count as alive, so that a fan-out planned now has three slots. */
async function webFleetAlive() {
  await waitFor(
    async () => {
      const alive = (await members()).filter((m) => m.statusText === 'alive').map((m) => m.Name);
      return WEB.every((n) => alive.includes(n));
    },
    15_000,
    'the web agents to be alive',
  );
}

/**
 * A schedule with two or three fire times within the next 5 s only: they are all planned when the job is
 * written (the planning window reaches past them), i.e. while the fleet is known to be alive.
 */
function shortRun() {
  return { schedule: '@every 2s', expires_at: new Date(Date.now() + 5_000).toISOString() };
}

/** Waits past the last fire time of a `shortRun` job and until all its executions finished. */
async function shortRunSettled(name: string) {
  await new Promise((r) => setTimeout(r, 5_500));
  return byGroup(await settled(name));
}

describe('fan-out', () => {
  it('runs each launch on every live matching agent, never on the others', async () => {
    await webFleetAlive();
    await createJob({
      name: 'fleet-all',
      ...shortRun(),
      tags: { role: 'web' },
      executor_config: { command: 'echo fan' },
    });
    const groups = await shortRunSettled('fleet-all');
    expect(groups.size).toBeGreaterThanOrEqual(2);
    for (const [group, runs] of groups) {
      expect(
        runs.map((e) => [e.status, e.attempt, e.trigger]),
        `group ${group}`,
      ).toEqual([
        ['succeeded', 1, 'schedule'],
        ['succeeded', 1, 'schedule'],
        ['succeeded', 1, 'schedule'],
      ]);
      expect(runs.map((e) => e.node_name).sort(), `group ${group}`).toEqual(WEB);
    }
  });

  it('runs each launch on N distinct agents with `role: web:2`', async () => {
    await webFleetAlive();
    await createJob({
      name: 'fleet-two',
      ...shortRun(),
      tags: { role: 'web:2' },
      executor_config: { command: 'echo two' },
    });
    const groups = await shortRunSettled('fleet-two');
    expect(groups.size).toBeGreaterThanOrEqual(2);
    for (const [group, runs] of groups) {
      expect(
        runs.map((e) => e.status),
        `group ${group}`,
      ).toEqual(['succeeded', 'succeeded']);
      const nodes = new Set(runs.map((e) => e.node_name));
      expect(nodes.size, `group ${group}`).toBe(2);
      for (const n of nodes) expect(WEB).toContain(n);
    }
  });

  it('fails a launch that no live agent matches, naming the tags', async () => {
    await createJob({
      name: 'fleet-nope',
      ...shortRun(),
      tags: { role: 'nope' },
      executor_config: { command: 'echo never' },
    });
    const groups = await shortRunSettled('fleet-nope');
    expect(groups.size).toBeGreaterThanOrEqual(2);
    for (const runs of groups.values()) {
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({
        status: 'failed',
        node_name: '',
        reason: 'no live agent matches tags {"role":"nope"}',
      });
    }
  });
});

describe('concurrency', () => {
  it('forbid: never two runs at once; launches that find one running are skipped', async () => {
    // Each run prints when its process really started and ended (ms), the ground truth for overlap.
    await createJob({
      name: 'fleet-forbid',
      schedule: '@every 1s',
      concurrency: 'forbid',
      executor_config: {
        shell: 'true',
        command: 'echo start $(date +%s%3N); sleep 3; echo end $(date +%s%3N)',
      },
    });
    await waitFor(
      async () => {
        const list = await executions('fleet-forbid');
        return (
          list.filter((e) => e.status === 'succeeded').length >= 2 && list.some((e) => e.status === 'skipped')
        );
      },
      30_000,
      'two runs and a skipped launch',
    );
    await disable('fleet-forbid');
    const list = await settled('fleet-forbid');
    const ran = list
      .filter((e) => e.status === 'succeeded')
      .map((e) => {
        const m = /start (\d+)\nend (\d+)/.exec(e.output);
        expect(m, e.output).not.toBeNull();
        return { id: e.id, start: Number(m?.[1]), end: Number(m?.[2]) };
      })
      .sort((a, b) => a.start - b.start);
    expect(ran.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < ran.length; i++) {
      const [prev, cur] = [ran[i - 1]!, ran[i]!];
      expect(cur.start, `${cur.id} started before ${prev.id} ended`).toBeGreaterThanOrEqual(prev.end);
    }
    const skipped = list.filter((e) => e.status === 'skipped' && e.reason?.includes('forbid'));
    expect(skipped.length).toBeGreaterThan(0);
    for (const e of list) expect(['succeeded', 'skipped']).toContain(e.status);
  }, 90_000);

  it('replace: cancels the running execution, kills its process tree, then runs the new one', async () => {
    const pidFile = join(dir, 'replace.pids');
    const fast = join(dir, 'replace.fast');
    await createJob({
      name: 'fleet-replace',
      concurrency: 'replace',
      executor_config: {
        shell: 'true',
        // The first run blocks for 30 s; once `fast` exists, a run takes a second.
        command: `if [ -e ${fast} ]; then sleep 1; echo second; exit 0; fi; ${treeCommand(pidFile, 30)}`,
      },
    });
    await runJob('fleet-replace');
    const pids = await pidsIn(pidFile, 3);
    const [first] = await waitFor(
      async () => {
        const list = await executions('fleet-replace');
        return list.length === 1 && list[0]?.status === 'running' ? list : null;
      },
      10_000,
      'the first run',
    );
    for (const pid of pids) expect(processAlive(pid)).toBe(true);
    writeFileSync(fast, '');
    await runJob('fleet-replace');
    const list = await waitFor(
      async () => {
        const l = await settled('fleet-replace');
        return l.length === 2 ? l : null;
      },
      30_000,
      'both runs to finish',
    );
    const [a, b] = [list.find((e) => e.id === first?.id), list.find((e) => e.id !== first?.id)];
    expect(a).toMatchObject({ status: 'cancelled', trigger: 'manual' });
    expect(a?.reason).toMatch(/replace/);
    expect(b, JSON.stringify(b)).toMatchObject({
      status: 'succeeded',
      output: 'second\n',
      trigger: 'manual',
    });
    expect(Date.parse(b!.finished_at)).toBeGreaterThan(Date.parse(a!.finished_at));
    for (const pid of pids) expect(processAlive(pid), `pid ${pid}`).toBe(false);
  }, 90_000);

  it('timeout: the whole process tree is killed and the run ends `timeout`', async () => {
    const pidFile = join(dir, 'timeout.pids');
    await createJob({
      name: 'fleet-timeout',
      executor_config: { shell: 'true', timeout: '1s', command: treeCommand(pidFile, 30) },
    });
    await runJob('fleet-timeout');
    const pids = await pidsIn(pidFile, 3);
    const [run] = await settled('fleet-timeout', 15_000);
    expect(run).toMatchObject({ status: 'timeout' });
    expect(run?.reason).toMatch(/timed out after 1s/);
    expect(Date.parse(run!.finished_at) - Date.parse(run!.started_at)).toBeLessThan(10_000);
    for (const pid of pids) expect(processAlive(pid), `pid ${pid}`).toBe(false);
  });
});

describe('agent failures', () => {
  it('an agent SIGKILLed mid-run: its job dies with it, the attempt ends `lost` and the retry runs on another agent', async () => {
    const pidFile = join(dir, 'lost.pids');
    const marks = join(dir, 'lost.marks');
    await createJob({
      name: 'fleet-lost',
      // One slot, on whichever web agent takes it; the others can take the retry.
      tags: { role: 'web:1' },
      retries: 1,
      retry_backoff: '1s',
      executor_config: {
        shell: 'true',
        // Attempt 1 blocks (its agent is killed) and starts a grandchild in its group; the retry
        // finishes at once. Each attempt marks its start and its end.
        command: `echo $$ >> ${pidFile}; echo "start $CRONPLANE_EXECUTION_ID" >> ${marks}; if [ "\${CRONPLANE_EXECUTION_ID##*.}" = 1 ]; then sleep 20 & echo $! >> ${pidFile}; sleep 20; fi; echo "done $CRONPLANE_EXECUTION_ID" >> ${marks}; echo attempt done`,
      },
    });
    await runJob('fleet-lost');
    const [first] = await waitFor(
      async () => {
        const list = await executions('fleet-lost');
        return list[0]?.status === 'running' && list[0].node_name ? list : null;
      },
      15_000,
      'attempt 1 to run',
    );
    const victim = first!.node_name;
    expect(WEB).toContain(victim);
    const [shellPid, grandchild] = await pidsIn(pidFile, 2);
    // Killed at the end should the reaper fail, so that a failing test leaves nothing behind.
    orphanGroups.push(shellPid!);
    agent(victim).child.kill('SIGKILL');
    await agent(victim).exited;
    // The agent's reaper kills the job's whole process group as soon as the agent is gone.
    await waitFor(
      async () => !processAlive(shellPid!) && !processAlive(grandchild!),
      5_000,
      "the SIGKILLed agent's job processes to die with it",
    );

    const list = await waitFor(
      async () => {
        const l = await executions('fleet-lost');
        return l.length === 2 && l.every((e) => TERMINAL.has(e.status)) ? l : null;
      },
      40_000,
      'attempt 1 lost and attempt 2 finished',
    );
    const [lost, retry] = [list.find((e) => e.attempt === 1), list.find((e) => e.attempt === 2)];
    expect(lost).toMatchObject({ status: 'lost', node_name: victim, trigger: 'manual' });
    expect(lost?.reason).toContain(`agent ${victim} stopped heartbeating`);
    expect(retry).toMatchObject({
      status: 'succeeded',
      trigger: 'retry',
      group: lost?.group,
      output: 'attempt done\n',
    });
    expect(retry?.node_name).not.toBe(victim);
    expect(WEB).toContain(retry?.node_name);
    // The lost attempt started and never finished; the retry did both.
    const lines = readFileSync(marks, 'utf8').split('\n').filter(Boolean);
    expect(lines).toEqual([`start ${lost!.id}`, `start ${retry!.id}`, `done ${retry!.id}`]);
    await waitFor(
      async () => (await members()).find((m) => m.Name === victim)?.statusText === 'failed',
      15_000,
      `${victim} to show as failed`,
    );
  }, 90_000);

  it('HTTP executor on an agent: expectCode and expectBody decide success', async () => {
    let requests = 0;
    const server: Server = createServer((_req, res) => {
      requests++;
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ping`;
      await createJob({
        name: 'fleet-http-ok',
        tags: { role: 'db' },
        executor: 'http',
        executor_config: { method: 'GET', url, expectCode: '200', expectBody: 'ok' },
      });
      await createJob({
        name: 'fleet-http-201',
        tags: { role: 'db' },
        executor: 'http',
        executor_config: { method: 'GET', url, expectCode: '201' },
      });
      await runJob('fleet-http-ok');
      await runJob('fleet-http-201');
      const [ok] = await settled('fleet-http-ok', 15_000);
      const [bad] = await settled('fleet-http-201', 15_000);
      expect(ok).toMatchObject({ status: 'succeeded', node_name: 'db-1', output: 'ok' });
      expect(bad).toMatchObject({ status: 'failed', node_name: 'db-1' });
      expect(bad?.reason).toMatch(/unexpected status 200 \(expected 201\)/);
      expect(requests).toBe(2);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('SIGTERM: the agent finishes its running job, exits 0 and leaves', async () => {
    await createJob({
      name: 'fleet-term',
      tags: { role: 'db' },
      executor_config: { shell: 'true', command: 'sleep 2; echo finished' },
    });
    await runJob('fleet-term');
    await waitFor(
      async () => (await executions('fleet-term'))[0]?.status === 'running',
      15_000,
      'the job to run on db-1',
    );
    const db = agent('db-1');
    db.child.kill('SIGTERM');
    expect(await db.exited).toBe(0);
    const [run] = await executions('fleet-term');
    expect(run).toMatchObject({ status: 'succeeded', node_name: 'db-1', output: 'finished\n' });
    expect((await members()).find((m) => m.Name === 'db-1')?.statusText).toBe('left');
  });

  it('leaves nothing running anywhere', async () => {
    const busy = await waitFor(
      async () => {
        const list = (await stack.api<ApiExecution[]>('GET', '/v1/busy')).body;
        return list.length === 0 ? list : null;
      },
      15_000,
      'no running executions',
    );
    expect(busy).toEqual([]);
  });
});
