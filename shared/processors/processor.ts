/** The processor extension point: something that takes a finished execution somewhere and says where. */
import { type Execution, toApi } from '../executions/execution.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import type { ProcessorConfig } from './config.ts';

/** One processor's turn at one finished execution. */
export interface ProcessorRun {
  readonly job: JobDefinition;
  /**
   * The finished execution as the processors before this one left it: status, exit code, ids and times are
   * final; `output` is the executor's, or the result of an earlier processor without `forward`.
   */
  readonly execution: Execution;
  /**
   * A file holding the whole output when `execution.output` is the executor's output cut to its head and
   * tail (`output_truncated`). Processors that keep outputs whole (files, s3) copy it instead.
   */
  readonly fullOutputPath: string | undefined;
  /** Aborted when the processor's `timeout` is over (or the host stops). */
  readonly signal: AbortSignal;
}

export interface Processor<C extends ProcessorConfig = ProcessorConfig> {
  /**
   * Does the processor's work; answers its result, which replaces the execution's output unless the
   * processor's `forward` is true (Dkron's rule). Throws when the work failed: the execution keeps its
   * output and the error goes to its `processor_errors`.
   */
  process(run: ProcessorRun, config: C): Promise<string>;
}

/** Where processors run: `agent` (a host) or `worker` (the agentless worker, a Lambda function). */
export type ProcessorPlace = 'agent' | 'worker';

/** The processors one deployable offers. */
export interface ProcessorHost {
  readonly place: ProcessorPlace;
  /**
   * The processor for a parsed config, or why it cannot run here (a custom one not installed, a server
   * outside the worker's allow-list).
   */
  processorFor(config: ProcessorConfig): Processor | { readonly unavailable: string };
  readonly log: (event: Record<string, unknown>) => void;
}

/**
 * The execution's fields as the API shows them (ids, status, times, exit code), without the output and
 * the fields that only exist once it is stored: what processors that send records (fluent, cloudwatch,
 * custom) put beside the output.
 */
export function executionFields(e: Execution) {
  const { output: _output, output_url: _url, processor_errors: _errors, ...fields } = toApi(e);
  return fields;
}

/** `text` cut into parts of at most `maxBytes` UTF-8 bytes each, never inside a character. */
export function splitUtf8(text: string, maxBytes: number): string[] {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return [text];
  const parts: string[] = [];
  let start = 0;
  while (start < buf.length) {
    let end = Math.min(start + maxBytes, buf.length);
    // Back off continuation bytes (10xxxxxx) so the cut falls between characters.
    while (end < buf.length && end > start + 1 && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
    parts.push(buf.subarray(start, end).toString('utf8'));
    start = end;
  }
  return parts;
}
