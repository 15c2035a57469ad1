/**
 * `log`: the output goes to the log of whoever ran the job, one structured line per execution (the agent
 * prints JSON lines on stdout; the worker's go to its CloudWatch log group). Dkron prints the output
 * between `----- BEGIN OUTPUT … -----` and `----- END OUTPUT -----` lines; ours is one JSON object with
 * the ids beside the output, so a log shipper can parse it. Result: `Output in cronplane log`.
 */
import type { ProcessorConfig } from './config.ts';
import { executionFields, type Processor, type ProcessorRun } from './processor.ts';

export const LOG_RESULT = 'Output in cronplane log';

export class LogProcessor implements Processor<Extract<ProcessorConfig, { kind: 'log' }>> {
  constructor(private readonly log: (event: Record<string, unknown>) => void) {}

  async process(run: ProcessorRun): Promise<string> {
    this.log({ msg: 'execution output', ...executionFields(run.execution), output: run.execution.output });
    return LOG_RESULT;
  }
}
