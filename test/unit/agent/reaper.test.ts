/**
 * The job reaper (agent/reaper.ts) with real processes: the POSIX shell loop kills every registered
 * process group when its stdin reaches end-of-file, spares the groups it was told are over, never
 * signals group 0 or 1 or anything that is not a number, and the agent's side starts a new reaper that
 * knows every live group should the first one die.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { JobReaper, REAPER_SCRIPT } from '../../../agent/reaper.ts';

const started: ChildProcess[] = [];

/** A process in a group of its own (as a job runs): its pid is its process group id. */
function groupLeader(): number {
  const child = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
  started.push(child);
  return child.pid!;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A detached child that exited is a zombie until we reap it: wait for its exit event instead. */
function exited(pid: number, withinMs: number): Promise<boolean> {
  const child = started.find((c) => c.pid === pid)!;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), withinMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

afterEach(() => {
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function reaperShell(): ChildProcess {
  return spawn('/bin/sh', ['-c', REAPER_SCRIPT], { stdio: ['pipe', 'ignore', 'pipe'], detached: true });
}

describe('REAPER_SCRIPT', () => {
  it('kills every registered group at end-of-file and spares the ones removed', async () => {
    const [a, b, c] = [groupLeader(), groupLeader(), groupLeader()];
    const reaper = reaperShell();
    reaper.stdin!.write(`+${a}\n+${b}\n+${c}\n-${b}\n`);
    await new Promise((r) => setTimeout(r, 200));
    expect([alive(a), alive(b), alive(c)]).toEqual([true, true, true]);
    const done = new Promise((r) => reaper.once('exit', r));
    reaper.stdin!.end();
    await done;
    expect(await exited(a, 2_000)).toBe(true);
    expect(await exited(c, 2_000)).toBe(true);
    expect(await exited(b, 300)).toBe(false);
  });

  it('ignores SIGTERM, SIGINT and SIGHUP: only the end of its pipe ends it', async () => {
    const a = groupLeader();
    const reaper = reaperShell();
    reaper.stdin!.write(`+${a}\n`);
    await new Promise((r) => setTimeout(r, 200));
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) reaper.kill(s);
    await new Promise((r) => setTimeout(r, 200));
    expect(reaper.exitCode).toBeNull();
    expect(alive(a)).toBe(true);
    reaper.stdin!.end();
    expect(await exited(a, 2_000)).toBe(true);
  });

  it('never signals group 0 or 1, negative ids or anything but digits', async () => {
    // `kill -- -0` would be its own group (here: its own, detached), `-1` every process we may signal.
    const reaper = reaperShell();
    let stderr = '';
    reaper.stderr!.on('data', (d) => {
      stderr += String(d);
    });
    const done = new Promise<number | null>((r) => reaper.once('exit', (code) => r(code)));
    reaper.stdin!.end('+0\n+1\n+-5\n+12x\n+ 7\n+$(true)\n+\n');
    expect(await done).toBe(0);
    expect(stderr).toBe('');
    expect(process.pid).toBeGreaterThan(0); // the test process is still here
  });
});

describe('JobReaper', () => {
  it('starts on the first group, and kills the groups still registered when closed', async () => {
    const reaper = new JobReaper();
    expect(reaper.pid).toBeUndefined();
    const [a, b] = [groupLeader(), groupLeader()];
    reaper.add(a);
    reaper.add(b);
    reaper.remove(b);
    expect(reaper.pid).toBeGreaterThan(0);
    reaper.close();
    expect(await exited(a, 2_000)).toBe(true);
    expect(await exited(b, 300)).toBe(false);
  });

  it('starts another reaper that knows every live group when its reaper dies', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const reaper = new JobReaper({ log: (e) => logs.push(e) });
    const a = groupLeader();
    reaper.add(a);
    const first = reaper.pid!;
    await new Promise((r) => setTimeout(r, 100));
    process.kill(first, 'SIGKILL');
    // Killed, not closed: its group lives on, and a new reaper (after at most a second) takes it over.
    const second = await new Promise<number>((resolve, reject) => {
      const deadline = Date.now() + 3_000;
      const poll = () => {
        if (reaper.pid !== undefined && reaper.pid !== first) return resolve(reaper.pid);
        if (Date.now() > deadline) return reject(new Error('no new reaper'));
        setTimeout(poll, 50);
      };
      poll();
    });
    expect(second).not.toBe(first);
    expect(alive(a)).toBe(true);
    expect(logs.some((l) => l.msg === 'job reaper exited; starting another')).toBe(true);
    // End-of-file on the new reaper's pipe, as when the agent dies: the group it was told about dies.
    reaper.close();
    expect(await exited(a, 2_000)).toBe(true);
  });

  it('refuses ids that are not real process groups', () => {
    const reaper = new JobReaper();
    reaper.add(0);
    reaper.add(1);
    reaper.add(-3);
    reaper.add(2.5);
    expect(reaper.pid).toBeUndefined();
    reaper.close();
  });
});
