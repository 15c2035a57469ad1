/**
 * The agent owns its jobs' processes: a job runs in a process group of its own (so that a timeout or a
 * cancel kills everything it started), and such a group outlives its parent. Were the agent killed
 * (SIGKILL, the OOM killer, a crash), its jobs would run on, reparented to PID 1, while another agent
 * marks the attempt `lost` and the retry runs the same fire time a second time.
 *
 * So each agent starts one tiny reaper — a POSIX shell loop (~1 MB resident, no Node) whose stdin is a
 * pipe from the agent. The agent writes `+<pgid>` when it has spawned a job's process group and
 * `-<pgid>` when the job is over; the job's process waits at a gate until its `+<pgid>` has left the
 * agent (JOB_GATE_SCRIPT in shared/executors/common.ts), so no job runs unregistered. The only writer of that pipe is the agent (Node opens every other
 * descriptor close-on-exec, so no job inherits it): when the agent dies, however it dies, the reaper
 * reads end-of-file, SIGKILLs every group still registered and exits. It ignores SIGINT, SIGTERM and
 * SIGHUP (a terminal's Ctrl-C or a service manager's stop reaches the agent, which stops gracefully and
 * then closes the pipe); a job that leaves its process group (setsid, a daemon) escapes it — systemd's
 * `KillMode=control-group` catches those.
 *
 * Windows: none (Linux and other POSIX hosts with /bin/sh only).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { ProcessGroups } from '../shared/executors/common.ts';

/**
 * The reaper. Groups are kept as " 12 34 " (one space around each). It never signals a group id below 2:
 * `kill -- -0` would hit its own group and `kill -- -1` every process it may signal.
 */
export const REAPER_SCRIPT = `trap '' INT TERM HUP PIPE
groups=' '
while IFS= read -r line; do
  p=\${line#?}
  case $p in ''|*[!0-9]*) continue ;; esac
  [ "$p" -gt 1 ] || continue
  case $line in
    +*) groups="$groups$p " ;;
    -*) case $groups in *" $p "*) groups="\${groups%% $p *} \${groups#* $p }" ;; esac ;;
  esac
done
for p in $groups; do kill -s KILL -- "-$p" 2>/dev/null; done
exit 0
`;

export interface JobReaperOptions {
  readonly log?: (event: Record<string, unknown>) => void;
}

/** A reaper that dies is started again at once, but not more often than this (a broken shell would spin). */
const RESTART_MIN_INTERVAL_MS = 1_000;

/**
 * The agent's side of the reaper: started on the first registered group, started again (with every
 * group still registered) should it die, closed by `close()` when the agent stops.
 */
export class JobReaper implements ProcessGroups {
  private child: ChildProcess | undefined;
  private readonly groups = new Set<number>();
  private closed = false;
  private startedAt = 0;
  private restart: NodeJS.Timeout | undefined;
  /** Lines for the reaper not yet written, and whom to tell once they are (see `flush`). */
  private queued = '';
  private readonly queuedDone: Array<() => void> = [];
  private flushQueued = false;

  constructor(private readonly options: JobReaperOptions = {}) {}

  /** The reaper's pid, once started (tests look for it). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Registers a job's group; `registered` runs once the line has been handed to the reaper's pipe. */
  add(pgid: number, registered?: () => void): void {
    if (this.closed || !Number.isInteger(pgid) || pgid <= 1) {
      registered?.();
      return;
    }
    this.groups.add(pgid);
    this.send(`+${pgid}\n`, registered);
  }

  remove(pgid: number): void {
    if (!this.groups.delete(pgid)) return;
    this.send(`-${pgid}\n`);
  }

  /** Ends the pipe: the reaper kills what is still registered (nothing, after a graceful stop) and exits. */
  close(): void {
    this.closed = true;
    if (this.restart) clearTimeout(this.restart);
    this.flush(); // what this turn registered, before the end of the pipe
    const child = this.child;
    this.child = undefined;
    child?.stdin?.end();
  }

  /**
   * Writes a line to the reaper (a new reaper is told every registered group instead). `done` runs once
   * the write has left this process (or at once, should there be no reaper to tell: a job is not held
   * back because the reaper could not start; that is logged).
   */
  private send(line: string, done?: () => void): void {
    let text = line;
    if (!this.child) {
      if (this.groups.size === 0) {
        done?.();
        return;
      }
      this.start();
      text = [...this.groups].map((g) => `+${g}\n`).join('');
    }
    // Lines written in the same turn of the event loop go in one write (a burst spawns dozens of jobs in a
    // turn: one pipe write and one wake-up of the reaper instead of one each).
    this.queued += text;
    if (done) this.queuedDone.push(done);
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.queued === '' && this.queuedDone.length === 0) return;
    const text = this.queued;
    const done = this.queuedDone.splice(0);
    this.queued = '';
    const stdin = this.child?.stdin;
    const all = () => {
      for (const d of done) d();
    };
    if (!stdin?.writable || text === '') {
      all();
      return;
    }
    // A write is atomic up to PIPE_BUF (4 KB on Linux): a line is never torn, and a longer write is
    // read whole by the reaper anyway (it reads lines, wherever the write was split).
    stdin.write(text, all);
  }

  private start(): void {
    let child: ChildProcess;
    this.startedAt = Date.now();
    try {
      child = spawn('/bin/sh', ['-c', REAPER_SCRIPT], {
        stdio: ['pipe', 'ignore', 'ignore'],
        // Its own process group: a signal to the agent's group (Ctrl-C) does not reach it.
        detached: true,
      });
    } catch (error) {
      this.options.log?.({ msg: 'job reaper failed to start', error: String(error) });
      return;
    }
    child.stdin?.on('error', () => {}); // EPIPE if it died; its exit handler starts a new one
    child.on('error', (error) => {
      this.options.log?.({ msg: 'job reaper failed', error: error.message });
      if (child.pid === undefined && this.child === child) this.child = undefined; // never started
    });
    child.once('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.closed) return;
      this.options.log?.({ msg: 'job reaper exited; starting another', code, signal });
      const again = () => {
        this.restart = undefined;
        if (this.closed || this.child || this.groups.size === 0) return;
        this.send('');
      };
      const wait = this.startedAt + RESTART_MIN_INTERVAL_MS - Date.now();
      if (wait <= 0) again();
      else {
        this.restart = setTimeout(again, wait);
        this.restart.unref();
      }
    });
    // Neither keeps the agent's event loop alive.
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    this.child = child;
  }
}
