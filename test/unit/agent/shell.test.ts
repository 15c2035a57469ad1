import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseEnvList, ShellExecutor, splitCommand } from '../../../agent/executors/shell.ts';
import { jobBaseEnv, passThroughProblem, spawnJobProcess } from '../../../shared/executors/common.ts';
import { execution, gone, job } from './shell-job.ts';

describe('splitCommand', () => {
  it('splits words and honours quotes and escapes without expanding', () => {
    expect(splitCommand(`echo "a b" 'c $d' e\\ f`)).toEqual(['echo', 'a b', 'c $d', 'e f']);
    expect(splitCommand('  ls   -l ')).toEqual(['ls', '-l']);
    expect(splitCommand(`printf ''`)).toEqual(['printf', '']);
    expect(() => splitCommand('echo "open')).toThrow(/unterminated/);
  });
});

describe('parseEnvList', () => {
  it('reads Dkron K1=v1,K2=v2', () => {
    expect(parseEnvList('A=1,B=x=y')).toEqual({ A: '1', B: 'x=y' });
  });
});

describe('jobBaseEnv', () => {
  const agentEnv = {
    PATH: '/usr/bin:/bin',
    HOME: '/home/agent',
    USER: 'agent',
    LANG: 'C.UTF-8',
    LC_TIME: 'de_DE.UTF-8',
    TZ: 'UTC',
    TMPDIR: '/var/tmp',
    AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret',
    AWS_SESSION_TOKEN: 'token',
    AWS_ENDPOINT_URL: 'http://127.0.0.1:4566',
    AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.2/creds',
    CRONPLANE_JOBS_TABLE: 'Jobs',
    CRONPLANE_AGENT_TAGS: 'role=web',
    DATABASE_PASSWORD: 'hunter2',
    HTTPS_PROXY: 'http://user:pw@proxy:3128',
    NO_PROXY: 'localhost',
  };

  it('keeps the base (PATH, HOME, user, locale, time zone, temp dir) and nothing else', () => {
    expect(jobBaseEnv(agentEnv)).toEqual({
      PATH: '/usr/bin:/bin',
      HOME: '/home/agent',
      USER: 'agent',
      LANG: 'C.UTF-8',
      LC_TIME: 'de_DE.UTF-8',
      TZ: 'UTC',
      TMPDIR: '/var/tmp',
    });
  });

  it('adds the names an operator passes through, never AWS_* or CRONPLANE_*', () => {
    const env = jobBaseEnv(agentEnv, ['NO_PROXY', 'AWS_SECRET_ACCESS_KEY', 'cronplane_jobs_table']);
    expect(env.NO_PROXY).toBe('localhost');
    expect(Object.keys(env).filter((k) => /^(AWS|CRONPLANE)_/i.test(k))).toEqual([]);
    expect(passThroughProblem(['NO_PROXY', 'HTTPS_PROXY'])).toBeNull();
    expect(passThroughProblem(['AWS_REGION'])).toMatch(
      /AWS_REGION: AWS_\* and CRONPLANE_\* never reach jobs/,
    );
    expect(passThroughProblem(['CRONPLANE_API'])).toMatch(/never reach jobs/);
    expect(passThroughProblem(['A-B'])).toMatch(/not an environment variable name/);
  });
});

describe('ShellExecutor', () => {
  const run = (def: ReturnType<typeof job>, signal = new AbortController().signal) =>
    new ShellExecutor().run(def, execution, signal);

  it('reports its start once the process exists, after the call', async () => {
    const called = Date.now();
    const starts: number[] = [];
    // Resolving env first (as with SSM references) puts the spawn after the call.
    const executor = new ShellExecutor({
      resolveEnv: async (env) => {
        await new Promise((r) => setTimeout(r, 30));
        return env;
      },
    });
    const r = await executor.run(job({ command: 'true' }), execution, new AbortController().signal, {
      started: (at) => starts.push(at),
    });
    expect(r.status).toBe('succeeded');
    expect(starts).toHaveLength(1);
    expect(starts[0]!).toBeGreaterThanOrEqual(called + 30);
  });

  it('runs a command and captures its output and exit code', async () => {
    const r = await run(job({ command: 'echo hello' }));
    expect(r).toMatchObject({ status: 'succeeded', exitCode: 0, output: 'hello\n' });
  });

  it('ends the run when its command exits, killing what it left running in its group', async () => {
    const started = Date.now();
    // The background sleep holds the output pipes open: without the kill the run would last 30 s.
    const r = await run(job({ command: 'sleep 30 & echo $!', shell: 'true' }));
    expect(r).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await gone(Number(r.output.trim()))).toBe(true);
  });

  it('runs through /bin/sh with shell=true, with env, cwd and payload', async () => {
    const payload = Buffer.from('from-stdin').toString('base64');
    const r = await run(
      job({
        command: 'echo $GREETING $ENV_JOB_NAME $(pwd); cat',
        shell: 'true',
        env: 'GREETING=hi',
        cwd: '/tmp',
        payload,
      }),
    );
    expect(r.output).toBe('hi j /tmp\nfrom-stdin');
  });

  describe('environment', () => {
    afterEach(() => {
      vi.unstubAllEnvs();
    });

    it("does not hand the agent's credentials, settings or secrets to the job", async () => {
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAAGENT');
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'agent-secret');
      vi.stubEnv('AWS_SESSION_TOKEN', 'agent-token');
      vi.stubEnv('CRONPLANE_JOBS_TABLE', 'Jobs');
      vi.stubEnv('SOME_AGENT_SECRET', 'hunter2');
      vi.stubEnv('TZ', 'Europe/Berlin');
      const r = await run(
        job({
          command: 'env',
          env: 'JOB_OWN=1,AWS_REGION=eu-west-1',
        }),
      );
      expect(r.status).toBe('succeeded');
      const env = Object.fromEntries(
        r.output
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      // The agent's: gone. The base, the job's own env (even an AWS_* it sets itself) and the identity: there.
      expect(r.output).not.toMatch(/AKIAAGENT|agent-secret|agent-token|hunter2|CRONPLANE_JOBS_TABLE/);
      expect(env).toMatchObject({
        PATH: process.env.PATH,
        TZ: 'Europe/Berlin',
        JOB_OWN: '1',
        AWS_REGION: 'eu-west-1',
        ENV_JOB_NAME: 'j',
        CRONPLANE_JOB_NAME: 'j',
        CRONPLANE_EXECUTION_ID: execution.executionId,
      });
      const inherited = Object.keys(env).filter(
        (k) => !['JOB_OWN', 'AWS_REGION', 'ENV_JOB_NAME', 'PWD', 'SHLVL', '_', 'OLDPWD'].includes(k),
      );
      for (const k of inherited)
        expect(k, 'only the base and the identity').toMatch(
          /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|TZ|TMPDIR|TERM|HOSTNAME|SSL_CERT_FILE|SSL_CERT_DIR|LC_[A-Z_]+|CRONPLANE_(JOB_NAME|EXECUTION_ID|SCHEDULED_AT))$/,
        );
    });
  });

  it('does not start a job whose run was cancelled before it began', async () => {
    const controller = new AbortController();
    controller.abort();
    const r = await run(job({ shell: 'true', command: 'echo started' }), controller.signal);
    expect(r).toMatchObject({ status: 'cancelled', output: '' });
  });

  it('registers its process group with the reaper while it runs, and removes it after', async () => {
    const events: string[] = [];
    let pid = 0;
    const executor = new ShellExecutor({
      groups: {
        add: (g, registered) => {
          events.push(`+${g}`);
          registered?.();
        },
        remove: (g) => events.push(`-${g}`),
      },
    });
    const r = await executor.run(
      job({ shell: 'true', command: 'echo $$' }),
      execution,
      new AbortController().signal,
    );
    pid = Number(r.output.trim());
    expect(events).toEqual([`+${pid}`, `-${pid}`]);
  });

  it('does not run the command until its group is registered; a gate that ends without "go" runs nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cronplane-gate-'));
    const ran = join(dir, 'ran');
    // Registration never completes (the agent is descheduled, then dies): the command must not run.
    let gate: (() => void) | undefined;
    const child = spawnJobProcess(
      '/bin/sh',
      ['-c', `echo ran > ${ran}`],
      {},
      {
        add: (_g, registered) => {
          gate = registered;
        },
        remove: () => {},
      },
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(ran)).toBe(false);
    expect(gate).toBeDefined();
    // The agent dies: its end of fd 3 closes without "go".
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    (child.stdio[3] as Writable).destroy();
    expect(await exited).toBe(125);
    expect(existsSync(ran)).toBe(false);

    // Registered: it runs, as the same process (its pid is its group).
    const registered = spawnJobProcess(
      '/bin/sh',
      ['-c', `echo $$ > ${ran}`],
      {},
      {
        add: (_g, done) => done?.(),
        remove: () => {},
      },
    );
    await new Promise((r) => registered.once('exit', r));
    expect(Number(readFileSync(ran, 'utf8'))).toBe(registered.pid);
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports a program that does not exist as it would without the gate', async () => {
    const executor = new ShellExecutor({ groups: { add: (_g, r) => r?.(), remove: () => {} } });
    const r = await executor.run(
      job({ command: 'no-such-program-xyz arg' }),
      execution,
      new AbortController().signal,
    );
    expect(r).toMatchObject({
      status: 'failed',
      reason: 'cannot start no-such-program-xyz: spawn no-such-program-xyz ENOENT',
    });
    const ok = await executor.run(job({ command: 'echo gated' }), execution, new AbortController().signal);
    expect(ok).toMatchObject({ status: 'succeeded', output: 'gated\n' });
  });

  it('fails on a non-zero exit unless it is listed in success_exit_codes', async () => {
    expect((await run(job({ command: 'sh -c "exit 3"' }))).status).toBe('failed');
    expect((await run(job({ command: 'sh -c "exit 3"' }, { success_exit_codes: [0, 3] }))).status).toBe(
      'succeeded',
    );
  });

  it('kills the whole process group on timeout', async () => {
    const started = Date.now();
    const r = await run(job({ command: 'sleep 30 & sleep 30; wait', shell: 'true', timeout: '300ms' }));
    expect(r.status).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('reports a command that cannot start', async () => {
    const r = await run(job({ command: '/nonexistent/binary' }));
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(/cannot start/);
  });
});

describe('ShellExecutor su', () => {
  const run = (config: Record<string, string>) =>
    new ShellExecutor().run(job(config), execution, new AbortController().signal);
  const root = process.getuid?.() === 0;

  it.runIf(root)(
    'runs the command as the user su names, with that user’s HOME, USER and groups',
    async () => {
      const r = await run({
        shell: 'true',
        command: 'echo "$(id -un) $(id -u) $(id -G) $USER $HOME"',
        su: 'nobody',
      });
      expect(r.status).toBe('succeeded');
      const nobody = (await import('node:child_process'))
        .execFileSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' })
        .split(':');
      // Only nobody's own group: none of the agent's (root's) supplementary groups.
      expect(r.output.trim()).toBe(`nobody ${nobody[2]} ${nobody[3]} nobody ${nobody[5]}`);
    },
  );

  it.runIf(!root)('refuses to run a job as another user when the agent is not root', async () => {
    const r = await run({ command: 'id -un', su: 'root' });
    expect(r).toMatchObject({ status: 'failed' });
    expect(r.reason).toMatch(/^su root: the agent runs as uid \d+, not root/);
  });

  it('fails the run, naming the user, when the user does not exist here', async () => {
    const r = await run({ command: 'true', su: 'no-such-user-here' });
    expect(r).toMatchObject({ status: 'failed', reason: 'su no-such-user-here: no such user on this host' });
  });

  it('refuses a su that is not a user name when the job is written', () => {
    expect(() => job({ command: 'true', su: 'root; rm -rf /' })).toThrow(/executor_config.su/);
  });
});
