/**
 * `cronplane logs JOB [--follow] [--id ID]`: a job's output, as it comes.
 *
 * While a job runs, each heartbeat of its agent (every 2 s) writes the last 64 KB of its output to the
 * execution with `output_size`, the bytes printed so far; the result replaces both when it ends (see
 * shared/executions/runner.ts, LIVE_OUTPUT_BYTES). This reads the execution every second and prints what
 * the stream holds past what was printed: nothing twice, and a gap (more than 64 KB printed between two
 * reads) said as such. At the end: the status and the exit code, and the exit status 0 only for success.
 * When the stored output is not the stream (cut to head and tail, or replaced by a processor), the end
 * says so instead of printing a part twice.
 */
import { type ExecutionStatus, TERMINAL } from '../shared/executions/execution.ts';

/** GET a path of the API: the parsed JSON body, or a thrown Error naming the status. */
export type ApiGet = (path: string) => Promise<unknown>;

interface ExecutionView {
  readonly id: string;
  readonly status: ExecutionStatus;
  readonly output: string;
  readonly output_size?: number | null;
  readonly exit_code: number | null;
  readonly reason: string | null;
}

export interface LogsOptions {
  readonly follow: boolean;
  /** One execution of the job; default the newest. */
  readonly id?: string;
  readonly intervalMs?: number;
  readonly write: (text: string) => void;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Prints the output; resolves to the process's exit status (1 when the run did not succeed). */
export async function printLogs(get: ApiGet, job: string, options: LogsOptions): Promise<number> {
  const base = `/v1/jobs/${encodeURIComponent(job)}/executions`;
  const sleep = options.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  let e: ExecutionView | undefined;
  if (options.id) {
    e = (await get(`${base}/${encodeURIComponent(options.id)}`)) as ExecutionView;
  } else {
    // The newest that is due (a launch planned ahead of its fire time is not listed), waiting for a
    // first one with --follow (a run-now just asked for).
    for (;;) {
      e = ((await get(`${base}?_limit=1`)) as ExecutionView[])[0];
      if (e || !options.follow) break;
      await sleep(options.intervalMs ?? 1_000);
    }
    if (e) e = (await get(`${base}/${encodeURIComponent(e.id)}`)) as ExecutionView;
  }
  if (!e) {
    options.write(`no execution of ${job} yet\n`);
    return 1;
  }
  let printed = 0;
  let atLineStart = true;
  const write = (out: string) => {
    if (out === '') return;
    options.write(out);
    atLineStart = out.endsWith('\n');
  };
  for (;;) {
    const text = Buffer.from(e.output, 'utf8');
    const terminal = TERMINAL.has(e.status);
    const size = e.output_size;
    if (typeof size === 'number' && (!terminal || text.length === size)) {
      // `output` is the stream's last bytes, ending at `size`.
      const start = size - text.length;
      if (printed < start) {
        write(
          `${atLineStart ? '' : '\n'}… [${start - printed} bytes not shown: more than came between two reads] …\n`,
        );
        printed = start;
      }
      if (size > printed) {
        write(text.subarray(printed - start).toString('utf8'));
        printed = size;
      }
    } else if (terminal) {
      if (printed === 0) write(e.output);
      else if (text.length > 0)
        write(
          `${atLineStart ? '' : '\n'}… [the stored output is not the stream (cut to its head and tail, or a processor's result): ` +
            `GET ${base}/${e.id}] …\n`,
        );
    }
    if (terminal || !options.follow) break;
    await sleep(options.intervalMs ?? 1_000);
    e = (await get(`${base}/${encodeURIComponent(e.id)}`)) as ExecutionView;
  }
  const ended = TERMINAL.has(e.status);
  const code = e.exit_code === null ? '' : ` (exit code ${e.exit_code})`;
  const why = e.reason && e.status !== 'succeeded' ? `: ${e.reason}` : '';
  options.write(`${atLineStart ? '' : '\n'}[cronplane] ${job} ${e.id}: ${e.status}${code}${why}\n`);
  return !ended || e.status === 'succeeded' ? 0 : 1;
}
