/**
 * `npm start` as a user runs it, as a process: it prints the URL when ready, runs the README's job, lets a
 * second agent join from another terminal, and Ctrl-C stops everything it started. With `AWS_ENDPOINT_URL`
 * set (LocalStack, a shared moto), it starts no emulator and puts everything there.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../agent/stack-file.ts';
import { type Emulators, startEmulators } from '../../local/emulators.ts';
import { createClients } from '../../shared/aws/clients.ts';
import { type Api, api, waitFor } from './support/stack.ts';

const run = promisify(execFile);
const READY_MS = 120_000;
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {}
    }
  }
});

/** The user's shell environment: no endpoints or Cronplane settings inherited from the test runner. */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_') && !k.startsWith('CRONPLANE_')),
  );
  return { ...env, ...extra };
}

interface Started {
  child: ChildProcess;
  url: string;
  api: Api;
  output: () => string;
  exited: Promise<string>;
}

/** Runs a command in its own process group, as a terminal does, collecting what it prints. */
function spawnInGroup(command: string, args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  const collect = (d: Buffer) => {
    out += String(d);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  return { child, output: () => out };
}

/** `npm start` (or its entry point) in a terminal of its own; resolves at the "running at" line. */
async function start(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Started> {
  const { child, output } = spawnInGroup(command, args, env);
  // 'close', not 'exit': 'exit' may come before the last of its output has been read (CI once saw
  // "stopping…" without the "stopped" the process had written before it exited).
  const exited = new Promise<string>((resolve) =>
    child.on('close', (code, signal) => resolve(signal ?? `exit ${code}`)),
  );
  const url = await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${output()}`);
      return /Cronplane is running at (http:\/\/127\.0\.0\.1:\d+)/.exec(output())?.[1];
    },
    READY_MS,
    'the "running at" line',
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n--- output ---\n${output()}`);
  });
  return { child, url, api: api(url), output, exited };
}

/** Every live process below `pid`, with its command line. */
function descendants(pid: number): Array<{ pid: number; cmd: string }> {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name in field 2 may hold spaces and parentheses: read past the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {}
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of parents) {
      if (parent !== p) continue;
      found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found.flatMap((p) => {
    try {
      return [{ pid: p, cmd: readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ').trim() }];
    } catch {
      return [];
    }
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};

/** The README's example job, and the executions a new user sees a few seconds later. */
async function readmeJobRuns(api: Api): Promise<void> {
  const created = await api('POST', '/v1/jobs', {
    name: 'hello',
    schedule: '@every 2s',
    executor: 'shell',
    executor_config: { command: 'echo hello' },
  });
  expect(created.status).toBe(201);
  const done = await waitFor(
    async () => {
      const res = await api<any[]>('GET', '/v1/jobs/hello/executions?_order=ASC');
      const ok = res.body.filter((e) => e.status === 'succeeded');
      return ok.length >= 3 ? ok : null;
    },
    // A new user sees them within 10 s; this file runs beside other suites on two cores.
    25_000,
    'three successful hello executions',
  );
  for (const e of done) expect(e).toMatchObject({ success: true, output: 'hello\n' });
  const times = done.map((e) => Date.parse(e.scheduled_at));
  for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(2_000);
}

/** Ctrl-C in the terminal: SIGINT to the whole process group. Resolves once it stopped cleanly. */
async function ctrlC(started: Started): Promise<void> {
  process.kill(-started.child.pid!, 'SIGINT');
  const how = await Promise.race([
    started.exited,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`did not stop within 30 s:\n${started.output()}`)), 30_000),
    ),
  ]);
  // npm and tsx pass the signal on and may end by it; the stack itself ends through its shutdown path.
  expect(['exit 0', 'SIGINT']).toContain(how);
  expect(started.output()).toMatch(/stopped\s*$/);
}

// Each test starts a whole stack as a process (emulators included); a loaded CI machine takes its time.
describe('npm start', { timeout: 240_000 }, () => {
  it('runs the whole system, lets a second agent join, and Ctrl-C stops all it started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cronplane-start-'));
    const stackFile = join(dir, 'local.json');
    const started = await start(
      'npm',
      ['start'],
      userEnv({ PORT: '0', CRONPLANE_LOCAL_STACK_FILE: stackFile }),
    );
    const processes = descendants(started.child.pid!);
    expect(processes.some((p) => /\bjava\b.*DynamoDBLocal/.test(p.cmd))).toBe(true);
    expect(processes.some((p) => p.cmd.includes('moto-server.py'))).toBe(true);
    expect(JSON.parse(readFileSync(stackFile, 'utf8')).url).toBe(started.url);

    await readmeJobRuns(started.api);

    // README: "Add a second host locally — in another terminal of the same checkout".
    const { child: agent, output: agentOut } = spawnInGroup(
      'node',
      ['bin/cronplane.js', 'agent', '--tag', 'role=web', '--name', 'web-1'],
      userEnv({ CRONPLANE_LOCAL_STACK_FILE: stackFile }),
    );
    await waitFor(async () => agentOut().includes('joined the local stack'), 30_000, 'the agent to join');
    expect(
      (
        await started.api('POST', '/v1/jobs', {
          name: 'on-web',
          schedule: '@manually',
          tags: { role: 'web:1' },
          executor_config: { command: 'echo web' },
        })
      ).status,
    ).toBe(201);
    await waitFor(
      async () =>
        (await started.api<any[]>('GET', '/v1/members')).body.some(
          (m) => m.Name === 'web-1' && m.statusText === 'alive',
        ),
      30_000,
      'web-1 among the members',
    );
    expect((await started.api('POST', '/v1/jobs/on-web/run')).status).toBe(202);
    const run = await waitFor(
      async () =>
        (await started.api<any[]>('GET', '/v1/jobs/on-web/executions')).body.find((e) => e.success === true),
      20_000,
      'the run on web-1',
    );
    expect(run).toMatchObject({ node_name: 'web-1', output: 'web\n' });
    process.kill(-agent.pid!, 'SIGINT');

    await ctrlC(started);
    const left = processes.filter((p) => alive(p.pid));
    expect(left).toEqual([]);
    expect(existsSync(stackFile)).toBe(false);
    await expect(fetch(`${started.url}/health`)).rejects.toThrow();
  });

  it('says which port is taken and how to choose another, and exits 1', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const failed = await run('npx', ['tsx', 'local/start.ts'], {
        cwd: REPO_ROOT,
        env: userEnv({ PORT: String(port) }),
      }).catch((error: { code: number; stderr: string }) => error);
      expect(failed).toMatchObject({ code: 1 });
      expect((failed as { stderr: string }).stderr).toContain(`port ${port} on 127.0.0.1 is in use`);
      expect((failed as { stderr: string }).stderr).toMatch(/PORT=\d+ npm start/);
    } finally {
      taken.close();
    }
  });

  describe('with AWS_ENDPOINT_URL set', () => {
    let emulators: Emulators | undefined;
    afterAll(async () => {
      await emulators?.stop();
    });

    it('starts no emulator and provisions and runs everything at those endpoints', async () => {
      // Stands in for LocalStack: endpoints that are already running.
      emulators = await startEmulators();
      const started = await start(
        'npx',
        ['tsx', 'local/start.ts'],
        userEnv({
          PORT: '0',
          CRONPLANE_LOCAL_STACK_FILE: join(mkdtempSync(join(tmpdir(), 'cronplane-start-')), 'local.json'),
          AWS_ENDPOINT_URL: emulators.endpoints.other,
          AWS_ENDPOINT_URL_DYNAMODB: emulators.endpoints.dynamodb,
          AWS_ENDPOINT_URL_DYNAMODB_STREAMS: emulators.endpoints.dynamodb,
        }),
      );
      const processes = descendants(started.child.pid!);
      expect(processes.filter((p) => /\bjava\b|moto/.test(p.cmd))).toEqual([]);

      const { dynamodb } = createClients(emulators.env);
      const tables = async () => (await dynamodb.send(new ListTablesCommand({}))).TableNames;
      expect(await tables()).toEqual(expect.arrayContaining(['cronplane-Jobs', 'cronplane-Executions']));

      await readmeJobRuns(started.api);
      await ctrlC(started);
      // What it did not start, it does not stop.
      expect(await tables()).toContain('cronplane-Jobs');
      dynamodb.destroy();
    });
  });
});
