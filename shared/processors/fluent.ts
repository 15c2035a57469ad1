/**
 * `fluent`: the execution as one event of the Fluent forward protocol (v1, Message mode) to
 * `fluent_host`:`fluent_port` (default 127.0.0.1:24224) over TCP, MessagePack-encoded:
 *
 *   [tag, EventTime(finished_at), {host, job_name, message, …ids, status, times}, {chunk}?]
 *
 * The record has Dkron's three fields (`host`: the node, `job_name`, `message`: the output) and the
 * execution's own (id, group, attempt, status, success, exit code, times). The tag is `fluent_tag`
 * (default `cronplane`; Dkron reads its tag, host and port from the FLUENTBIT_TAG, FLUENTBIT_HOST and
 * FLUENTBIT_PORT variables of each server). With `require_ack: "true"` the processor waits for the
 * receiver's `{"ack": chunk}` and fails without it; otherwise it is done once the event is handed to the
 * connection (Dkron's logger does not ask for acks either, and sends in the background: an unreachable
 * receiver is only in its log). Result: `Output sent to Fluent` (Dkron's).
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { Execution } from '../executions/execution.ts';
import type { ProcessorConfig } from './config.ts';
import { executionFields, type Processor, type ProcessorRun } from './processor.ts';

type FluentConfig = Extract<ProcessorConfig, { kind: 'fluent' }>;

export const FLUENT_RESULT = 'Output sent to Fluent';
/** The forward protocol's EventTime: extension type 0, seconds and nanoseconds as big-endian uint32s. */
export const EVENT_TIME_TYPE = 0;

export function eventTimeBytes(ms: number): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, Math.floor(ms / 1000));
  view.setUint32(4, (ms % 1000) * 1_000_000);
  return bytes;
}

export function fluentRecord(e: Execution): Record<string, unknown> {
  // Dkron's three fields first (`job_name` is also one of the execution's fields).
  const { job_name, ...fields } = executionFields(e);
  return { host: e.nodeName ?? '', job_name, message: e.output, ...fields };
}

/** The encoded Message-mode entry; `chunk` asks for an ack. */
export async function fluentEntry(e: Execution, tag: string, chunk?: string): Promise<Uint8Array> {
  // Imported on first use: an agent whose jobs never use fluent never loads the codec.
  const { encode, ExtData } = await import('@msgpack/msgpack');
  const time = new ExtData(EVENT_TIME_TYPE, eventTimeBytes(e.finishedAt ?? Date.now()));
  return encode(chunk ? [tag, time, fluentRecord(e), { chunk }] : [tag, time, fluentRecord(e)]);
}

export class FluentProcessor implements Processor<FluentConfig> {
  async process(run: ProcessorRun, config: FluentConfig): Promise<string> {
    const chunk = config.requireAck ? randomBytes(16).toString('base64') : undefined;
    const entry = await fluentEntry(run.execution, config.tag, chunk);
    const { decode } = await import('@msgpack/msgpack');
    await new Promise<void>((resolve, reject) => {
      const socket = connect({ host: config.host, port: config.port, signal: run.signal });
      let acked = false;
      socket.on('error', reject);
      socket.once('connect', () => {
        if (!chunk) {
          socket.end(entry, () => resolve());
          return;
        }
        socket.write(entry);
        let received = Buffer.alloc(0);
        socket.on('data', (d: Buffer) => {
          received = Buffer.concat([received, d]);
          let answer: unknown;
          try {
            answer = decode(received);
          } catch {
            return; // not all of it yet
          }
          const ack = (answer as { ack?: unknown } | null)?.ack;
          if (ack !== chunk) {
            reject(new Error(`the receiver answered something else than the ack: ${JSON.stringify(answer)}`));
          } else {
            acked = true;
            resolve();
          }
          socket.end();
        });
        socket.once('close', () => {
          if (!acked) reject(new Error('the receiver closed the connection without an ack'));
        });
      });
    });
    return FLUENT_RESULT;
  }
}
