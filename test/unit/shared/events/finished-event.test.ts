import { describe, expect, it } from 'vitest';
import { finishedEvent } from '../../../../shared/events/finished-event.ts';
import { type Execution, fromItem } from '../../../../shared/executions/execution.ts';
import { plannedItem } from './execution-fixture.ts';

const base = plannedItem;

describe('Execution Finished event', () => {
  const finished: Execution = fromItem({
    ...base,
    status: 'succeeded',
    finishedAt: 2_000,
    output: 'ok\n',
    success: true,
  });

  it('carries the execution API JSON', () => {
    const entry = finishedEvent(finished, 'bus');
    expect(entry).toMatchObject({
      EventBusName: 'bus',
      Source: 'cronplane',
      DetailType: 'Execution Finished',
    });
    expect(JSON.parse(entry.Detail!)).toMatchObject({
      id: base.executionId,
      job_name: 'job',
      status: 'succeeded',
      output: 'ok\n',
    });
  });

  it('cuts a large output to its tail so that the entry fits EventBridge', () => {
    const big: Execution = { ...finished, output: `${'é'.repeat(300_000)}END` };
    const detail = JSON.parse(finishedEvent(big, 'bus').Detail!);
    expect(Buffer.byteLength(JSON.stringify(detail))).toBeLessThan(256_000);
    expect(detail.output.endsWith('END')).toBe(true);
    expect(detail.output_truncated).toBe(true);
  });
});
