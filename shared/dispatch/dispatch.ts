/**
 * Dispatch: which SQS queue serves a job's tag set, and sending launch messages to it.
 * The canonical tag set (sorted key=value) names a queue, created on first use and recorded in the
 * Control table's registry; jobs without tags use the default queue that every agent polls.
 */

import { createHash } from 'node:crypto';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { GetCommand, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../aws/clients.ts';
import type { Config } from '../config.ts';
import { controlKeys } from '../control/control-keys.ts';
import { isAgentless } from '../executors/registry.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import { parseTags } from '../jobs/tags.ts';

export interface LaunchMessage {
  readonly jobName: string;
  readonly executionId: string;
  readonly scheduledAt: number;
  /** How often agents handed this fan-out slot on (see Agent: a slot it may not take). */
  readonly bounces?: number;
}

/**
 * "A queue for this tag set was just created": sent on the default queue, which every agent polls, by
 * whoever creates a tag-set queue, so that the agents it concerns poll it within a moment instead of at
 * their next registry scan. Only a hint: an agent whose tags satisfy `tagSet` reads the queue's registry
 * entry (the URL comes from there, never from a message) and polls it.
 *
 * The creator reads the live members first and shares out among the copies, in `awaiting`, the agents
 * whose tags satisfy the tag set (every copy names the one agent when there is one). A copy is passed on
 * (as a fresh message: SQS gives it to whichever agent polls next) until every agent it names has received
 * it, after `hopLimit` hops (`awaitingHopLimit`: a named agent that died or stopped polling), or after
 * QUEUE_HINT_TTL_MS. `min(QUEUE_HINT_COPIES, live members)` copies go out: one agent gets one message, and of
 * N agents a named one is reached after ~N / copies hops. Without `awaiting` (the fleet could not be read,
 * or it is larger than MAX_AWAITING), a copy is passed on QUEUE_HINT_HOPS times, whoever has seen it. A
 * forged or repeated hint costs a registry read at most, as often as the agent allows.
 */
export interface QueueHint {
  readonly queueCreated: string;
  readonly hops: number;
  readonly sentAt: number;
  /** Agent ids this copy has yet to reach. */
  readonly awaiting?: readonly string[];
  /** With `awaiting`: the hops after which the copy ends all the same (at most QUEUE_HINT_HOPS_AWAITING). */
  readonly hopLimit?: number;
}
/**
 * Copies of a hint sent. Without `awaiting`, each is passed on up to QUEUE_HINT_HOPS times: with N agents on
 * the default queue, one misses all of them with probability (1 - 1/N)^(copies × hops), 10^-6 for 10 agents,
 * 28 % for 100 (those find the queue at their next registry scan).
 */
export const QUEUE_HINT_COPIES = 4;
export const QUEUE_HINT_HOPS = 32;
/** The most hops of a copy that names the agents it awaits (see `awaitingHopLimit`). */
export const QUEUE_HINT_HOPS_AWAITING = 512;

/**
 * Hops of a copy that awaits agents among `members` live ones: 8 + 10 per member, at most 512. SQS gives a
 * message to any of the N agents polling, so the copy that names an agent misses it for that many hops with
 * probability (1 - 1/N)^(8 + 10N) < e^-10 ≈ 5·10^-5 up to N = 50; past that the limit stays 512, and the
 * other copies, which wake it too, travel longer before they find their own N/4 (at N = 200 all four reach
 * the limit: missed in all 2,048 deliveries with probability 4·10^-5). The limit bounds what a copy costs
 * when an agent it names never polls (it died within its liveness window, or is busy to its concurrency).
 */
export function awaitingHopLimit(members: number): number {
  return Math.min(QUEUE_HINT_HOPS_AWAITING, 8 + 10 * members);
}
export const QUEUE_HINT_TTL_MS = 15_000;
/** The most agents a hint names (an id is at most 128 characters: 26 KB of a 256 KB message). */
export const MAX_AWAITING = 200;

/** A member of the cluster as a hint names it. */
export interface HintedMember {
  readonly agentId: string;
  readonly tags: Record<string, string>;
}
/** The live members, read at most once per planning pass (the planner's snapshot: scheduler/plan.ts). */
export type LiveMembers = () => Promise<readonly HintedMember[]>;

/** The hints to send for a queue just created, given the live members (null: not known). */
export function firstHints(tagSet: string, fleet: readonly HintedMember[] | null, now: number): QueueHint[] {
  const base = { queueCreated: tagSet, hops: 0, sentAt: now };
  if (fleet === null || fleet.length > MAX_AWAITING) return Array(QUEUE_HINT_COPIES).fill(base);
  const selector = parseTagSet(tagSet);
  const awaiting = fleet.filter((a) => tagsSatisfy(a.tags, selector)).map((a) => a.agentId);
  // No live agent serves it: an agent that joins later scans the registry when it starts.
  if (awaiting.length === 0) return [];
  // The named agents are shared out among the copies (m groups, m ≤ copies): a copy ends when its own have
  // it. Any copy wakes any agent it reaches, so sharing costs no agent its first chance, only messages.
  const copies = Math.min(QUEUE_HINT_COPIES, fleet.length);
  const groups = Math.min(copies, awaiting.length);
  const hopLimit = awaitingHopLimit(fleet.length);
  return Array.from({ length: copies }, (_, i) => ({
    ...base,
    awaiting: awaiting.filter((_, j) => j % groups === i % groups),
    hopLimit,
  }));
}

/** What agent `agentId`, having received `hint`, passes on: the next hop, or null when the copy ends. */
export function nextHint(hint: QueueHint, agentId: string, now: number): QueueHint | null {
  if (now - hint.sentAt >= QUEUE_HINT_TTL_MS) return null;
  if (hint.awaiting === undefined) {
    return hint.hops + 1 < QUEUE_HINT_HOPS ? { ...hint, hops: hint.hops + 1 } : null;
  }
  const awaiting = hint.awaiting.filter((id) => id !== agentId);
  const limit = Math.min(hint.hopLimit ?? QUEUE_HINT_HOPS_AWAITING, QUEUE_HINT_HOPS_AWAITING);
  if (awaiting.length === 0 || hint.hops + 1 >= limit) return null;
  return { ...hint, hops: hint.hops + 1, awaiting };
}

/**
 * A message as a consumer received it. `launch` is null when the body is not a launch; `hint` is set
 * when it is a queue-created hint instead.
 */
export interface ReceivedLaunch {
  readonly receiptHandle: string;
  readonly body: string;
  readonly launch: LaunchMessage | null;
  readonly hint?: QueueHint;
  readonly receiveCount: number;
}

/** `{"dc":"eu","role":"web"}` → `dc=eu,role=web`; empty for no tags. */
export function canonicalTagSet(selector: Record<string, string>): string {
  return Object.keys(selector)
    .sort()
    .map((k) => `${k}=${selector[k]}`)
    .join(',');
}

/** An agent serves a tag set when it carries every key=value of it. */
export function tagsSatisfy(agentTags: Record<string, string>, tagSet: Record<string, string>): boolean {
  return Object.entries(tagSet).every(([k, v]) => agentTags[k] === v);
}

export function parseTagSet(canonical: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of canonical.split(',').filter(Boolean)) {
    const i = pair.indexOf('=');
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}

export interface QueueEntry {
  readonly tagSet: string;
  readonly url: string;
}

/**
 * SQS delays are whole seconds up to 900: a launch is made visible `leadSeconds` (at least 1) early, and
 * the agent that takes it claims it at once and holds it to the exact millisecond.
 */
export function delaySecondsFor(fireAtMs: number, now: number, leadSeconds = 1): number {
  return delaySecondsBefore(fireAtMs, now, Math.max(1, leadSeconds) * 1_000);
}

/**
 * The worker function's SQS event source mapping gathers launches for up to this long before it invokes
 * the function (`MaximumBatchingWindowInSeconds`, infra/lib/worker.ts), and launches for the worker's
 * queue get this much more lead, so a launch gathered for the whole window still arrives before its fire
 * time. Without a window each receive was one invocation, and a receive answers as soon as one launch is
 * visible: ~1 launch an invocation, each holding the billed invocation to its own fire time (README, Cost).
 */
export const WORKER_BATCH_WINDOW_SECONDS = 1;
/**
 * What the worker's launches are given beyond the batching window: the invocation starts at least this
 * long before the fire time. A warm invocation's start and the claim take tens of ms; agents' queues get a
 * whole second (`delaySecondsFor`), but the worker holds its billed invocation for whatever lead is left,
 * so its launches get this margin and are sent at a chosen phase of the second (`phaseWaitMs`).
 */
export const WORKER_START_MARGIN_MS = 300;
/**
 * A launch with no other worker launch in the WORKER_WARM_MS before it likely meets a cold start (Lambda
 * retires an idle environment within minutes; starting Node and the bundle takes hundreds of ms), so it
 * gets this much more margin: a whole second, which keeps the phase of the warm ones. What a lone launch's
 * longer hold costs is that one launch's; a steady stream pays the warm margin.
 */
export const WORKER_COLD_EXTRA_MS = 1_000;
/** How far back another worker launch of the same send makes a launch count as warm. */
export const WORKER_WARM_MS = 60_000;
/**
 * A worker launch becomes visible between its lead and this much earlier. SQS delays are whole seconds
 * from the send: sent at any moment, a launch becomes visible up to a second earlier than asked; the
 * sender waits for the part of the second in which the error stays under this (a quarter of every second).
 */
export const WORKER_PHASE_TOLERANCE_MS = 250;
/**
 * The most one dispatcher (a process: a tick's chunks and shards share it) waits for the phase in a
 * minute: a tick planning thousands of agentless jobs in chunks would otherwise wait in every chunk's send.
 * What goes out beyond it goes out as it can.
 */
export const WORKER_PHASE_BUDGET_MS = 5_000;
/** The period the phase budget is counted over. */
export const WORKER_PHASE_BUDGET_PERIOD_MS = 60_000;

/**
 * Milliseconds before its fire time that a worker launch is to become visible: the batching window, the
 * start margin (a second more for a launch likely to meet a cold start), and the busy second's extra
 * staging lead (`leadSeconds` − 1, as agents get it).
 */
export function workerLeadMs(leadSeconds: number, warm = true): number {
  return (
    WORKER_BATCH_WINDOW_SECONDS * 1_000 +
    WORKER_START_MARGIN_MS +
    (warm ? 0 : WORKER_COLD_EXTRA_MS) +
    Math.max(0, leadSeconds - 1) * 1_000
  );
}

/**
 * Of launches sorted by fire time: whether each fire time has another launch between WORKER_WARM_MS and
 * one second before it (whose invocation likely left a warm environment behind).
 */
export function warmFireTimes(ordered: readonly LaunchMessage[]): (fireAt: number) => boolean {
  const times = [...new Set(ordered.map((m) => m.scheduledAt))];
  const warm = new Set<number>();
  let from = 0;
  for (const at of times) {
    while (from < times.length && times[from]! < at - WORKER_WARM_MS) from++;
    if (from < times.length && times[from]! <= at - 1_000) warm.add(at);
  }
  return (fireAt) => warm.has(fireAt);
}

/** Whole seconds of delay (0–900) that make a launch visible no later than `leadMs` before `fireAtMs`. */
export function delaySecondsBefore(fireAtMs: number, now: number, leadMs: number): number {
  return Math.max(0, Math.min(900, Math.floor((fireAtMs - leadMs - now) / 1000)));
}

/**
 * How long to wait before sending a launch so that it becomes visible at most `toleranceMs` earlier than
 * `leadMs` before its fire time: sent at `now`, it is visible `(fireAtMs − leadMs − now) mod 1000` ms early.
 * 0 when that is within the tolerance, when the launch is due within its lead (it goes at once), or when
 * it is beyond SQS's longest delay (900 s: visible early whatever the phase).
 */
export function phaseWaitMs(fireAtMs: number, now: number, leadMs: number, toleranceMs: number): number {
  const ahead = fireAtMs - leadMs - now;
  if (ahead < 0 || ahead >= 901_000) return 0;
  const early = ahead % 1_000;
  return early > toleranceMs ? early - toleranceMs + 10 : 0;
}

/**
 * The most launches one worker invocation takes (`BatchSize`; above 10 SQS mappings need a window). The
 * launches of one fire second are gathered into one invocation, which holds once for all of them.
 */
export const WORKER_BATCH_SIZE = 100;

/** Launches of one second that one more second of lead is given for (see `stagingLeadSeconds`). */
export const LAUNCHES_PER_LEAD_SECOND = 100;
/** The most lead a busy second gets; agents hold a launch for at most MAX_HOLD_MS (15 s). */
export const MAX_LEAD_SECONDS = 12;

/**
 * How early the launches of a second with `launches` due become visible: 1 s, plus 1 s per 100 of them,
 * at most 12 s. Agents claim a launch when it arrives, and claiming a thousand takes the database a few
 * seconds; a quiet second keeps the short lead (a held launch occupies one of the agent's slots).
 */
export function stagingLeadSeconds(launches: number): number {
  return Math.min(MAX_LEAD_SECONDS, 1 + Math.floor(launches / LAUNCHES_PER_LEAD_SECOND));
}

/** SendMessageBatch calls in flight per `send`. */
const SEND_PARALLEL = 8;

export class Dispatcher {
  private readonly known = new Map<string, string>();
  /** The wait for the phase the sends to the worker's queue share, and what they waited this period. */
  private phaseGate: Promise<void> | null = null;
  private readonly phaseBudget = { from: 0, used: 0 };

  constructor(
    private readonly clients: AwsClients,
    private readonly config: Config,
    /** How a send to the worker's queue waits for its phase; null: it does not (`withoutPhaseWait`). */
    private readonly sleep: ((ms: number) => Promise<void>) | null = (ms) =>
      new Promise((resolve) => setTimeout(resolve, ms)),
  ) {}

  /**
   * This dispatcher, sending worker launches at once, whatever the phase: for a caller that someone waits
   * on (the API planning a new job's first minute), for whom up to ¾ s more matters more than the longer
   * holds of that minute's launches.
   */
  withoutPhaseWait(): Dispatcher {
    return new Dispatcher(this.clients, this.config, null);
  }

  /**
   * Agentless jobs go to the worker's queue; the rest to the queue of their tag set. `members`: the live
   * members, read only if the queue is created here, to name the agents its hint awaits (see QueueHint).
   */
  async queueForJob(def: JobDefinition, members?: LiveMembers): Promise<string> {
    if (this.config.workerQueueUrl && isAgentless(def)) return this.config.workerQueueUrl;
    return this.queueFor(parseTags(def.tags).selector, members);
  }

  async queueFor(selector: Record<string, string>, members?: LiveMembers): Promise<string> {
    const tagSet = canonicalTagSet(selector);
    if (tagSet === '') return this.config.defaultQueueUrl;
    const cached = this.known.get(tagSet);
    if (cached) return cached;
    const key = controlKeys.queue(tagSet);
    const found = await this.clients.doc.send(
      new GetCommand({ TableName: this.config.tables.control, Key: key }),
    );
    let url = found.Item?.url as string | undefined;
    if (!url) {
      // CreateQueue is idempotent for identical attributes, so racing creators end with the same URL.
      const name = `${this.config.queuePrefix}tags-${createHash('sha256').update(tagSet).digest('hex').slice(0, 16)}`;
      const attributes: Record<string, string> = {
        VisibilityTimeout: '60',
        ReceiveMessageWaitTimeSeconds: '20',
      };
      if (this.config.dlqArn) {
        attributes.RedrivePolicy = JSON.stringify({
          deadLetterTargetArn: this.config.dlqArn,
          maxReceiveCount: 5,
        });
      }
      const created = await this.clients.sqs.send(
        new CreateQueueCommand({ QueueName: name, Attributes: attributes }),
      );
      url = created.QueueUrl as string;
      await this.clients.doc.send(
        new PutCommand({
          TableName: this.config.tables.control,
          Item: { ...key, tagSet, url, kind: 'queue' },
        }),
      );
      // After the registry has it: an agent woken by the hint reads the queue's entry there.
      const fleet = members ? await members().catch(() => null) : null;
      await Promise.all(firstHints(tagSet, fleet, Date.now()).map((h) => this.hintQueueCreated(h))).catch(
        () => {
          // Only a hint: the agents' periodic registry scan finds the queue all the same.
        },
      );
    }
    this.known.set(tagSet, url);
    return url;
  }

  /** Sends (or passes on) a queue-created hint on the default queue. */
  async hintQueueCreated(hint: QueueHint): Promise<void> {
    await this.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: this.config.defaultQueueUrl, MessageBody: JSON.stringify(hint) }),
    );
  }

  /** The URL the registry holds for a tag set's queue (a consistent read), or null when it has none. */
  async registered(tagSet: string): Promise<string | null> {
    const found = await this.clients.doc.send(
      new GetCommand({
        TableName: this.config.tables.control,
        Key: controlKeys.queue(tagSet),
        ProjectionExpression: '#u',
        ExpressionAttributeNames: { '#u': 'url' },
        ConsistentRead: true,
      }),
    );
    const url = found.Item?.url;
    return typeof url === 'string' && url !== '' ? url : null;
  }

  /** Every registered tag-set queue plus the default queue (tag set ''). */
  async registry(): Promise<QueueEntry[]> {
    const entries: QueueEntry[] = [{ tagSet: '', url: this.config.defaultQueueUrl }];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.clients.doc.send(
        new ScanCommand({
          TableName: this.config.tables.control,
          FilterExpression: 'kind = :q',
          ExpressionAttributeValues: { ':q': 'queue' },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of out.Items ?? [])
        entries.push({ tagSet: item.tagSet as string, url: item.url as string });
      start = out.LastEvaluatedKey;
    } while (start);
    return entries;
  }

  /**
   * Sends launches in batches of ten, SEND_PARALLEL batches at a time, each visible `leadFor(its fire
   * time)` seconds early (default 1). Each batch's delays are counted from `clock()` when it is sent, not
   * from when its launches were planned: a tick that spent two seconds writing a burst would otherwise
   * make each of them visible two seconds late, after its fire time.
   *
   * The worker's queue: each launch is visible `workerLeadMs` early (the batching window and the start
   * margin; a second more for one with no launch in the minute before it in this send), and a batch is
   * sent only in the part of the second that makes it visible at most WORKER_PHASE_TOLERANCE_MS earlier
   * than that: the worker holds its billed invocation from the launch's arrival to its fire time, and a
   * launch sent at any phase came half a second more early on average. The senders wait together, at most
   * WORKER_PHASE_BUDGET_MS a minute in all (concurrent sends share one wait).
   */
  async send(
    queueUrl: string,
    messages: readonly LaunchMessage[],
    clock: () => number,
    leadFor: (fireAt: number) => number = () => 1,
  ): Promise<void> {
    // In fire-time order: a batch's launches then share their second, so they come due together and one
    // receive hands them over together (to be claimed together). In the order planned — each job's fire
    // times one after another — a batch held ten seconds of one job, every launch came due alone, and each
    // receive, claim read and pause-flag read served ~1 launch.
    const ordered = [...messages].sort((a, b) => a.scheduledAt - b.scheduledAt);
    const batches: LaunchMessage[][] = [];
    for (let i = 0; i < ordered.length; i += 10) batches.push(ordered.slice(i, i + 10));
    const toWorker = queueUrl === this.config.workerQueueUrl;
    const warm = toWorker ? warmFireTimes(ordered) : () => true;
    const leadMs = (fireAt: number) => workerLeadMs(leadFor(fireAt), warm(fireAt));
    const delayFor = toWorker
      ? (fireAt: number, now: number) => delaySecondsBefore(fireAt, now, leadMs(fireAt))
      : (fireAt: number, now: number) => delaySecondsFor(fireAt, now, leadFor(fireAt));
    // The senders share one wait for the phase (while one waits the others do not send) and a budget.
    const inPhase = async (fireAt: number) => {
      if (this.phaseGate) return this.phaseGate;
      if (!this.sleep) return;
      const wait = phaseWaitMs(fireAt, clock(), leadMs(fireAt), WORKER_PHASE_TOLERANCE_MS);
      if (wait === 0 || !this.spendPhaseBudget(wait)) return;
      this.phaseGate = this.sleep(wait).finally(() => {
        this.phaseGate = null;
      });
      return this.phaseGate;
    };
    // A burst of launches goes out SEND_PARALLEL batches at a time, earliest first.
    let next = 0;
    const sender = async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        if (toWorker) await inPhase(batch[0]!.scheduledAt);
        await this.sendBatch(queueUrl, batch, clock(), delayFor);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SEND_PARALLEL, batches.length) }, sender));
  }

  /** Takes `ms` from this period's phase budget (real time: it bounds real waiting); false if it has not that much. */
  private spendPhaseBudget(ms: number): boolean {
    const now = Date.now();
    if (now - this.phaseBudget.from >= WORKER_PHASE_BUDGET_PERIOD_MS) {
      this.phaseBudget.from = now;
      this.phaseBudget.used = 0;
    }
    if (this.phaseBudget.used + ms > WORKER_PHASE_BUDGET_MS) return false;
    this.phaseBudget.used += ms;
    return true;
  }

  /** Entries SQS refuses are sent again, twice at most; any still refused then fail the call. */
  private async sendBatch(
    queueUrl: string,
    messages: readonly LaunchMessage[],
    now: number,
    delayFor: (fireAt: number, now: number) => number,
  ) {
    let batch = messages.map((m, j) => ({
      Id: String(j),
      MessageBody: JSON.stringify(m),
      DelaySeconds: delayFor(m.scheduledAt, now),
    }));
    for (let round = 0; round < 3 && batch.length > 0; round++) {
      const out = await this.clients.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: batch }),
      );
      const failed = new Set((out.Failed ?? []).map((f) => f.Id));
      batch = batch.filter((b) => failed.has(b.Id));
    }
    if (batch.length > 0) throw new Error(`SQS refused ${batch.length} launch message(s) for ${queueUrl}`);
  }

  async receive(
    queueUrl: string,
    options: { max: number; waitSeconds: number; visibilitySeconds: number; signal?: AbortSignal },
  ): Promise<ReceivedLaunch[]> {
    const out = await this.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: Math.max(1, Math.min(10, options.max)),
        WaitTimeSeconds: options.waitSeconds,
        VisibilityTimeout: options.visibilitySeconds,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
      { abortSignal: options.signal },
    );
    return (out.Messages ?? []).map((m) => {
      let launch: LaunchMessage | null = null;
      let hint: QueueHint | undefined;
      try {
        const parsed = JSON.parse(m.Body ?? '') as Partial<LaunchMessage & QueueHint>;
        if (
          typeof parsed.jobName === 'string' &&
          typeof parsed.executionId === 'string' &&
          typeof parsed.scheduledAt === 'number'
        ) {
          launch = parsed as LaunchMessage;
        } else if (
          typeof parsed.queueCreated === 'string' &&
          typeof parsed.hops === 'number' &&
          typeof parsed.sentAt === 'number'
        ) {
          hint = { queueCreated: parsed.queueCreated, hops: parsed.hops, sentAt: parsed.sentAt };
          const awaiting = parsed.awaiting as unknown;
          if (Array.isArray(awaiting) && awaiting.every((id) => typeof id === 'string')) {
            const hopLimit = typeof parsed.hopLimit === 'number' ? parsed.hopLimit : QUEUE_HINT_HOPS_AWAITING;
            hint = { ...hint, awaiting: awaiting.slice(0, MAX_AWAITING), hopLimit };
          }
        }
      } catch {
        launch = null;
      }
      return {
        receiptHandle: m.ReceiptHandle ?? '',
        body: m.Body ?? '',
        launch,
        ...(hint ? { hint } : {}),
        receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
      };
    });
  }

  /** The launch is settled: remove its message. */
  async ack(queueUrl: string, receiptHandle: string): Promise<void> {
    await this.clients.sqs.send(
      new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }),
    );
  }

  /**
   * Removes up to 10 messages of one queue in one request. Answers, per receipt handle in order, null or
   * why SQS refused to delete it (a handle that expired: the message was delivered again meanwhile).
   */
  async ackMany(queueUrl: string, receiptHandles: readonly string[]): Promise<Array<string | null>> {
    if (receiptHandles.length === 0) return [];
    if (receiptHandles.length > 10) throw new Error('DeleteMessageBatch takes at most 10 messages');
    const out = await this.clients.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: receiptHandles.map((ReceiptHandle, i) => ({ Id: String(i), ReceiptHandle })),
      }),
    );
    const failed = new Map((out.Failed ?? []).map((f) => [f.Id, `${f.Code}: ${f.Message ?? ''}`]));
    return receiptHandles.map((_, i) => failed.get(String(i)) ?? null);
  }

  /** Keeps a message invisible for `seconds` more (running job) or until later (early arrival). */
  async hide(queueUrl: string, receiptHandle: string, seconds: number): Promise<void> {
    await this.clients.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  }

  /** Re-queues a launch as a fresh message, so hand-offs do not count as receives toward the DLQ. */
  async handOff(queueUrl: string, launch: LaunchMessage, delaySeconds: number): Promise<void> {
    await this.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify({ ...launch, bounces: (launch.bounces ?? 0) + 1 }),
        DelaySeconds: delaySeconds,
      }),
    );
  }
}
