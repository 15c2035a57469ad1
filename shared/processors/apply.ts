/**
 * Applying a job's processors to one finished execution, before its result is written
 * (shared/executions/runner.ts), so that what the store and every reaction see is what the processors
 * left: Dkron applies them where the execution is reported done, before it stores it.
 *
 * In the order the job lists them, each processor gets the execution as the previous one left it (Dkron
 * chains them the same way, in Go's random map order): with `forward: "true"` the output stays as it was,
 * otherwise the processor's result (a file path, `Output in syslog`, an `s3://` URL, a custom processor's
 * `output`) replaces it for the processors after it and for the stored execution.
 *
 * A processor never loses the result: one whose config no longer parses, that is not installed where the
 * job ran, that fails or that does not end within its `timeout` leaves the output as it was, and its error
 * goes to the execution's `processor_errors` (`{"<name>": "<error>"}`) and to the host's log. The
 * execution's status is the executor's either way: a processor is about where the output goes, not about
 * whether the job worked.
 */
import type { Execution } from '../executions/execution.ts';
import { errorMessage } from '../executors/common.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import { type ProcessorConfig, ProcessorConfigError, parseProcessor, placementProblem } from './config.ts';
import type { ProcessorHost } from './processor.ts';

export interface ProcessedOutput {
  readonly output: string;
  readonly outputTruncated: boolean;
  /** Processor name → what went wrong; null when none failed. */
  readonly errors: Readonly<Record<string, string>> | null;
}

/** The longest error text kept per processor (the execution item must stay small). */
const MAX_ERROR_CHARS = 1_000;

export function hasProcessors(def: Pick<JobDefinition, 'processors'>): boolean {
  return Object.keys(def.processors).length > 0;
}

/**
 * Runs the job's processors in order on `execution` (finished: status, times and output final). Never
 * throws; answers the output to store and the processors' errors.
 */
export async function applyProcessors(
  host: ProcessorHost,
  job: JobDefinition,
  execution: Execution,
  fullOutputPath: string | undefined,
): Promise<ProcessedOutput> {
  let current = execution;
  let full = execution.outputTruncated ? fullOutputPath : undefined;
  const errors: Record<string, string> = {};
  for (const [name, cfg] of Object.entries(job.processors)) {
    const started = Date.now();
    try {
      const config = configFor(name, cfg, host);
      const processor = host.processorFor(config);
      if ('unavailable' in processor) throw new Error(processor.unavailable);
      const result = await withTimeout(config.timeoutMs, (signal) =>
        processor.process({ job, execution: current, fullOutputPath: full, signal }, config),
      );
      if (!config.forward) {
        current = { ...current, output: result, outputTruncated: false };
        full = undefined;
      }
      host.log({
        msg: 'processor done',
        job: job.name,
        id: execution.executionId,
        processor: name,
        forward: config.forward,
        ms: Date.now() - started,
      });
    } catch (error) {
      const message = errorMessage(error);
      errors[name] = message.length > MAX_ERROR_CHARS ? `${message.slice(0, MAX_ERROR_CHARS)}…` : message;
      host.log({
        msg: 'processor failed',
        job: job.name,
        id: execution.executionId,
        processor: name,
        error: errors[name],
        ms: Date.now() - started,
      });
    }
  }
  return {
    output: current.output,
    outputTruncated: current.outputTruncated,
    errors: Object.keys(errors).length > 0 ? errors : null,
  };
}

/** The parsed config, checked again at run time (a job stored before a rule existed, a restore). */
function configFor(
  name: string,
  cfg: Readonly<Record<string, string>>,
  host: ProcessorHost,
): ProcessorConfig {
  let config: ProcessorConfig;
  try {
    config = parseProcessor(name, cfg);
  } catch (error) {
    if (error instanceof ProcessorConfigError) {
      throw new Error(
        error.key === '' ? `processors.${name}: ${error.problem}` : `processors.${name}.${error.message}`,
      );
    }
    throw error;
  }
  const misplaced = placementProblem(config, host.place === 'worker');
  if (misplaced) {
    throw new Error(
      `processors.${name}${misplaced.key === '' ? '' : `.${misplaced.key}`}: ${misplaced.problem}`,
    );
  }
  return config;
}

/**
 * Runs `work` with a signal that aborts after `ms`, and gives up waiting at that moment even if the work
 * does not listen to its signal: a processor is bounded however it is written.
 */
export async function withTimeout<T>(ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`timed out after ${ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`}`);
      controller.abort(error);
      reject(error);
    }, ms);
  });
  const working = work(controller.signal);
  working.catch(() => {}); // a late failure after the timeout is no one's business
  try {
    return await Promise.race([working, expired]);
  } finally {
    clearTimeout(timer);
  }
}
