/**
 * `files`: one file per execution under `log_dir` (default /var/log/cronplane, created if missing), named
 * as Dkron names it: `<started_at in Unix nanoseconds>-<node name>.log`. Our start times are
 * milliseconds, so the last six digits are free: a file that already exists (two jobs started in the same
 * millisecond on one agent) is never overwritten, the next nanosecond is taken instead. The file holds the
 * whole output even when the execution keeps only its head and tail. Result: the file's path (Dkron's).
 * Runs on agents only (the worker has no disk of yours).
 */
import { constants } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProcessorConfig } from './config.ts';
import type { Processor, ProcessorRun } from './processor.ts';

/** How many following nanoseconds are tried when the name is taken. */
const MAX_NAME_TRIES = 1000;

/** Dkron's `Execution.Key()`: `<StartedAt.UnixNano()>-<NodeName>`; `nanosAfter` added to the time. */
export function executionFileName(startedAtMs: number, nodeName: string, nanosAfter = 0): string {
  const nanos = BigInt(Math.trunc(startedAtMs)) * 1_000_000n + BigInt(nanosAfter);
  // A node name is a host name or an agent id; nothing in it may leave the directory.
  const node = nodeName.replace(/[^A-Za-z0-9._@-]/g, '_').replace(/^\.+/, '_') || 'node';
  return `${nanos}-${node}.log`;
}

export class FilesProcessor implements Processor<Extract<ProcessorConfig, { kind: 'files' }>> {
  async process(run: ProcessorRun, config: Extract<ProcessorConfig, { kind: 'files' }>): Promise<string> {
    const e = run.execution;
    await mkdir(config.logDir, { recursive: true });
    for (let i = 0; i < MAX_NAME_TRIES; i++) {
      const path = join(config.logDir, executionFileName(e.startedAt ?? e.scheduledAt, e.nodeName ?? '', i));
      try {
        if (run.fullOutputPath) await copyFile(run.fullOutputPath, path, constants.COPYFILE_EXCL);
        else await writeFile(path, e.output, { flag: 'wx', mode: 0o644, signal: run.signal });
        return path;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    throw new Error(
      `no free file name in ${config.logDir} for this start time after ${MAX_NAME_TRIES} tries`,
    );
  }
}
