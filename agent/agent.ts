/**
 * The host agent: long-polls the queues its tags satisfy, claims each execution through the
 * conditional `scheduled → running` transition, runs it with its executor, keeps the message and the
 * execution heartbeat alive while it runs, writes the result, then deletes the message.
 */

import { setMaxListeners } from 'node:events';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import type { Context } from '../shared/context.ts';
import {
  nextHint,
  parseTagSet,
  type QueueEntry,
  type ReceivedLaunch,
  tagsSatisfy,
} from '../shared/dispatch/dispatch.ts';
import { ValidationError } from '../shared/errors.ts';
import {
  fenceAfterMs,
  laterVisibilitySeconds,
  Runner,
  type RunnerOptions,
  type RunnerVerdict,
  recheckVisibilitySeconds,
} from '../shared/executions/runner.ts';
import { jobBaseEnv } from '../shared/executors/common.ts';
import type { Executor } from '../shared/executors/executor.ts';
import { discoverExternalExecutors } from '../shared/executors/external.ts';
import { BUILT_IN_EXECUTORS, createExecutors } from '../shared/executors/registry.ts';
import { createSsmResolver } from '../shared/executors/secrets.ts';
import type { ProcessorHost } from '../shared/processors/processor.ts';
import { createProcessorHost } from '../shared/processors/registry.ts';
import {
  AGENT_GRACE_MS,
  AGENT_HEARTBEAT_MS,
  EXECUTION_HEARTBEAT_MS,
  LOST_AFTER_MS,
} from '../shared/timing.ts';
import { VERSION } from '../shared/version.ts';
import { AckBatcher } from './acks.ts';
import { agentEnv } from './config.ts';
import { ShellExecutor } from './executors/shell.ts';
import { JobReaper } from './reaper.ts';
import { JobSpawner } from './spawner.ts';

export interface AgentOptions {
  readonly agentId: string;
  readonly nodeName?: string;
  readonly tags?: Record<string, string>;
  readonly concurrency?: number;
  readonly heartbeatIntervalMs?: number;
  /** Long-poll wait; shorter in tests so that shutdown is quick. */
  readonly pollWaitSeconds?: number;
  readonly visibilityTimeoutSeconds?: number;
  readonly registryRefreshMs?: number;
  /** Poll exactly these queues instead of the tag-set registry (the local agentless worker). */
  readonly queues?: readonly string[];
  /** How often a running execution heartbeats; cancel requests are noticed at this pace. */
  readonly executionHeartbeatMs?: number;
  /** A running execution whose heartbeat is older than this is taken as lost (agent died). */
  readonly lostAfterMs?: number;
  /**
   * Names of the agent's environment variables that jobs inherit besides the base (PATH, HOME, locale,
   * ...; see jobBaseEnv). AWS_* and CRONPLANE_* never reach jobs.
   */
  readonly jobEnvPassThrough?: readonly string[];
  readonly version?: string;
  readonly executors?: Readonly<Record<string, Executor>>;
  /**
   * Whether shell jobs are started by a spawner process beside the agent (agent/spawner.ts: a fork
   * costs the forking process's size) rather than forked from the agent itself. Default true.
   */
  readonly spawner?: boolean;
  /**
   * The processors applied to finished executions (shared/processors/registry.ts). Default: every
   * built-in, and custom processors (`cronplane-processor-<name>`) found on `processorPath`.
   */
  readonly processors?: ProcessorHost;
  /** Where custom processors are looked up; default: the agent's PATH. */
  readonly processorPath?: string;
  readonly log?: (event: Record<string, unknown>) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Whether to appear in the member list (the local stand-in of the worker Lambda does not). */
  readonly member?: boolean;
  /** Called after the agent left because an operator asked it to (POST /v1/leave). */
  readonly onLeave?: () => void;
  /** Called once, when the first message arrives (agent/cli.ts turns V8's optimizing compiler on). */
  readonly onFirstWork?: () => void;
}

/**
 * A launch for a second its agent already holds `concurrency` launches for is passed on to the queue
 * (another agent may have a free slot), at most this often and only while its fire time is at least
 * HANDOFF_MIN_LEAD_MS away; then the agent keeps it and it waits for a slot. When the fleet's slots only
 * just cover a burst, three hand-offs left ~1.5 % of 1,000 launches on agents that were full (they
 * started ~20 s late, when the first runs ended); a hop costs a send, a delete and a receive (tens of ms).
 */
const MAX_CAPACITY_HANDOFFS = 8;
const HANDOFF_MIN_LEAD_MS = 1_000;

/**
 * Seconds until a launch whose processing failed with an error (a DynamoDB request that failed after the
 * SDK's retries, say) is delivered again. Left alone, it would come back only after the visibility
 * timeout (60 s); the claim is conditional, so an early second try is safe.
 */
const ERROR_RETRY_VISIBILITY_SECONDS = 1;

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Agent {
  readonly agentId: string;
  readonly nodeName: string;
  readonly tags: Record<string, string>;
  readonly concurrency: number;
  private readonly heartbeatIntervalMs: number;
  private readonly pollWaitSeconds: number;
  private readonly visibilityTimeoutSeconds: number;
  private readonly registryRefreshMs: number;
  private readonly fixedQueues: readonly string[] | undefined;
  private readonly executionHeartbeatMs: number;
  private readonly lostAfterMs: number;
  /** A run that cannot renew its heartbeat or lock this long is killed by this agent (runner.ts). */
  private readonly fenceAfterMs: number;
  private readonly executors: Readonly<Record<string, Executor>>;
  private readonly processors: ProcessorHost;
  private readonly log: (event: Record<string, unknown>) => void;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly onLeave: (() => void) | undefined;
  private onFirstWork: (() => void) | undefined;
  private readonly member: boolean;
  private readonly startedAt: number;
  private readonly version: string;
  /** Kills the jobs' process groups should this process die (agent/reaper.ts). */
  private readonly reaper: JobReaper;
  /** Starts shell jobs (agent/spawner.ts), unless `spawner: false`. */
  private readonly spawner: JobSpawner | undefined;

  private stopping = false;
  private readonly stopController = new AbortController();
  private readonly pollers = new Map<string, Promise<void>>();
  /** The tag sets of the queues polled (the default queue's is ''). */
  private readonly polledTagSets = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly running = new Map<string, AbortController>();
  private readonly capacityWaiters: Array<() => void> = [];
  /** Executions past their hold that run now (at most `concurrency`), and those waiting for a slot. */
  private runningSlots = 0;
  /** Launches claimed or being claimed, held for a fire time still ahead, by second. */
  private readonly heldFor = new Map<number, number>();
  private readonly slotWaiters: Array<() => void> = [];
  private timers: NodeJS.Timeout[] = [];
  /** Settled messages are deleted in batches (agent/acks.ts). */
  private readonly acks: AckBatcher;
  /** Runs this agent's launches (one runner: a burst's holds share their timers). */
  private readonly runner: Runner;

  constructor(
    private readonly ctx: Context,
    options: AgentOptions,
  ) {
    this.agentId = options.agentId;
    this.nodeName = options.nodeName ?? options.agentId;
    // Every long poll (one per queue served, up to 64) listens on this signal while it waits, and lets go
    // when it ends: past ten, Node's "possible memory leak" warning would be a false alarm.
    setMaxListeners(0, this.stopController.signal);
    this.tags = options.tags ?? {};
    this.concurrency = options.concurrency ?? 4;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? AGENT_HEARTBEAT_MS;
    this.pollWaitSeconds = options.pollWaitSeconds ?? 20;
    this.visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? 60;
    this.registryRefreshMs = options.registryRefreshMs ?? 15_000;
    this.fixedQueues = options.queues;
    this.executionHeartbeatMs = options.executionHeartbeatMs ?? EXECUTION_HEARTBEAT_MS;
    this.lostAfterMs = options.lostAfterMs ?? LOST_AFTER_MS;
    // Anyone may take a silent run as lost after the shorter of the agents' and the tick's limits: the
    // fence is measured against that one, so that a run is gone before either may declare it lost.
    this.fenceAfterMs = fenceAfterMs(Math.min(this.lostAfterMs, ctx.config.lostAfterMs));
    if (this.executionHeartbeatMs * 3 > this.fenceAfterMs) {
      throw new ValidationError(
        'executionHeartbeatMs',
        `must be at most a third of the self-fence (${this.fenceAfterMs} ms, 60 % of lost-after ` +
          `${Math.min(this.lostAfterMs, ctx.config.lostAfterMs)} ms), so that a missed beat or two does not kill runs`,
      );
    }
    this.version = options.version ?? VERSION;
    this.log = options.log ?? (() => {});
    this.reaper = new JobReaper({ log: this.log });
    this.spawner = options.spawner === false ? undefined : new JobSpawner({ log: this.log });
    this.acks = new AckBatcher((url, handles) => ctx.dispatch.ackMany(url, handles));
    this.runner = new Runner(ctx, { agentId: this.agentId, nodeName: this.nodeName });
    this.executors = options.executors ?? this.defaultExecutors(options.jobEnvPassThrough ?? []);
    this.processors =
      options.processors ??
      createProcessorHost({
        place: 'agent',
        clients: ctx.clients,
        outputBucket: ctx.config.outputBucket,
        log: this.log,
        hostName: this.agentId,
        searchPath: options.processorPath ?? agentEnv().PATH ?? '',
        baseEnv: jobBaseEnv(agentEnv(), options.jobEnvPassThrough ?? []),
        groups: this.reaper,
      });
    this.sleep = options.sleep ?? defaultSleep;
    this.onLeave = options.onLeave;
    this.onFirstWork = options.onFirstWork;
    this.member = options.member ?? true;
    this.startedAt = ctx.clock();
  }

  /** Shell and external executors run jobs in a scrubbed environment, in process groups the reaper owns. */
  private defaultExecutors(passThrough: readonly string[]): Record<string, Executor> {
    const baseEnv = jobBaseEnv(agentEnv(), passThrough);
    const external = discoverExternalExecutors(
      [join(homedir(), '.cronplane', 'executors'), '/usr/local/lib/cronplane/executors'],
      { baseEnv, groups: this.reaper },
    );
    // One resolver for shell env and HTTP secrets, limited to the configured path (CRONPLANE_SECRETS_PATH).
    const resolver = createSsmResolver(this.ctx.clients, { secretsPath: this.ctx.config.secretsPath });
    return {
      ...Object.fromEntries(Object.entries(external).filter(([name]) => !BUILT_IN_EXECUTORS.has(name))),
      ...createExecutors({
        clients: this.ctx.clients,
        resolver,
        shell: new ShellExecutor({
          baseEnv,
          groups: this.reaper,
          ...(this.spawner ? { spawner: this.spawner } : {}),
          resolveEnv: resolver,
          outputSink: this.ctx.config.outputBucket !== undefined,
        }),
      }),
    };
  }

  get runningCount(): number {
    return this.running.size;
  }

  /**
   * Launches taken from the queue at once: `concurrency` running plus as many claimed and held until
   * their fire time. A held launch does not take an execution slot (it takes one at its fire time), so
   * an agent running short jobs every second is not throttled by the second or two each launch waits.
   */
  private get maxInFlight(): number {
    return this.concurrency * 2;
  }

  /** Waits for one of the `concurrency` execution slots; answers its release. */
  private async acquireSlot(): Promise<() => void> {
    while (this.runningSlots >= this.concurrency) {
      await new Promise<void>((r) => this.slotWaiters.push(r));
    }
    this.runningSlots++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.runningSlots--;
      this.slotWaiters.shift()?.();
    };
  }

  async start(): Promise<void> {
    await this.heartbeat();
    await this.refreshQueues();
    this.timers.push(
      setInterval(
        () => void this.heartbeat().catch((e) => this.logError('heartbeat', e)),
        this.heartbeatIntervalMs,
      ),
    );
    this.timers.push(
      setInterval(
        () => void this.refreshQueues().catch((e) => this.logError('registry', e)),
        this.registryRefreshMs,
      ),
    );
    this.log({
      msg: 'agent started',
      agentId: this.agentId,
      tags: this.tags,
      queues: [...this.pollers.keys()],
    });
  }

  /** Stops taking work; running jobs get `graceMs` to finish, then are cancelled. */
  async stop(graceMs = AGENT_GRACE_MS): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.stopController.abort();
    for (const wake of this.capacityWaiters.splice(0)) wake();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    const drained = Promise.all([...this.inFlight]);
    const timedOut = await Promise.race([drained.then(() => false), this.sleep(graceMs).then(() => true)]);
    if (timedOut) {
      for (const c of this.running.values()) c.abort();
      await drained;
    }
    await Promise.allSettled([...this.pollers.values()]);
    this.reaper.close();
    this.spawner?.close();
    if (this.member) await this.ctx.agents.leave(this.agentId, this.ctx.clock()).catch(() => {});
    this.log({ msg: 'agent stopped', agentId: this.agentId });
  }

  private logError(where: string, error: unknown) {
    this.log({ msg: `${where} failed`, error: error instanceof Error ? error.message : String(error) });
  }

  private async heartbeat(): Promise<void> {
    if (this.stopping || !this.member) return;
    const { leaveRequested } = await this.ctx.agents.heartbeat({
      agentId: this.agentId,
      hostname: hostname(),
      tags: this.tags,
      version: this.version,
      capacity: this.concurrency,
      running: this.running.size,
      startedAt: this.startedAt,
      lastHeartbeatAt: this.ctx.clock(),
      heartbeatIntervalMs: this.heartbeatIntervalMs,
    });
    if (leaveRequested) {
      this.log({ msg: 'asked to leave the cluster; finishing running jobs' });
      void this.stop().then(() => this.onLeave?.());
    }
  }

  /** Polls every queue whose tag set our tags satisfy (the default queue has the empty tag set). */
  private async refreshQueues(): Promise<void> {
    if (this.stopping) return;
    const entries = this.fixedQueues
      ? this.fixedQueues.map((url) => ({ url, tagSet: '' }))
      : await this.ctx.dispatch.registry();
    for (const entry of entries) {
      if (tagsSatisfy(this.tags, parseTagSet(entry.tagSet))) this.pollQueue(entry);
    }
  }

  private pollQueue(entry: QueueEntry): void {
    if (this.stopping || this.pollers.has(entry.url)) return;
    this.polledTagSets.add(entry.tagSet);
    this.pollers.set(entry.url, this.poll(entry.url));
  }

  /**
   * A queue-created hint (see QueueHint): when the new queue is ours to poll, read its registry entry and
   * poll it; then pass the hint on while it awaits other agents, and delete this copy (send first: a crash
   * in between only duplicates a hint).
   */
  private async onQueueHint(queueUrl: string, m: ReceivedLaunch): Promise<void> {
    const hint = m.hint!;
    const ours =
      !this.fixedQueues &&
      !this.polledTagSets.has(hint.queueCreated) &&
      tagsSatisfy(this.tags, parseTagSet(hint.queueCreated));
    if (ours) {
      const url = await this.ctx.dispatch.registered(hint.queueCreated);
      if (url) this.pollQueue({ tagSet: hint.queueCreated, url });
      this.log({
        msg: 'queue hint',
        tagSet: hint.queueCreated,
        polling: this.polledTagSets.has(hint.queueCreated),
      });
    }
    const next = nextHint(hint, this.agentId, Date.now());
    if (next) await this.ctx.dispatch.hintQueueCreated(next);
    await this.acks.ack(queueUrl, m.receiptHandle);
  }

  private async waitForCapacity(): Promise<void> {
    while (!this.stopping && this.inFlight.size >= this.maxInFlight) {
      await new Promise<void>((r) => this.capacityWaiters.push(r));
    }
  }

  private async poll(queueUrl: string): Promise<void> {
    while (!this.stopping) {
      await this.waitForCapacity();
      if (this.stopping) break;
      let messages: ReceivedLaunch[] = [];
      try {
        messages = await this.ctx.dispatch.receive(queueUrl, {
          max: this.maxInFlight - this.inFlight.size,
          waitSeconds: this.pollWaitSeconds,
          visibilitySeconds: this.visibilityTimeoutSeconds,
          signal: this.stopController.signal,
        });
      } catch (error) {
        if (this.stopping) break;
        this.logError('receive', error);
        await this.sleep(1_000);
        continue;
      }
      if (messages.some((m) => m.hint)) {
        for (const m of messages.filter((x) => x.hint)) {
          void this.onQueueHint(queueUrl, m).catch((error) => this.logError('queue hint', error));
        }
        messages = messages.filter((m) => !m.hint);
      }
      if (messages.length > 0 && this.onFirstWork) {
        const first = this.onFirstWork;
        this.onFirstWork = undefined;
        first();
      }
      for (const p0 of this.handleAll(queueUrl, messages)) {
        const p: Promise<void> = p0
          .catch((error) => this.logError('execution', error))
          .finally(() => {
            this.inFlight.delete(p);
            this.capacityWaiters.shift()?.();
          });
        this.inFlight.add(p);
      }
    }
  }

  /** One promise per message: well-formed launches are claimed together, then each runs on its own. */
  private handleAll(queueUrl: string, messages: readonly ReceivedLaunch[]): Promise<void>[] {
    const now = this.ctx.clock();
    // Never hold more launches for one second than there are slots to start them in: the rest go back
    // to the queue as fresh messages for other agents (while there is time; then they wait for a slot).
    const launches: Array<{ m: ReceivedLaunch; release: () => void }> = [];
    const passed = new Set<ReceivedLaunch>();
    for (const m of messages) {
      if (!m.launch) continue;
      const second = Math.floor(m.launch.scheduledAt / 1000);
      const future = m.launch.scheduledAt > now;
      const held = this.heldFor.get(second) ?? 0;
      const passable =
        m.launch.scheduledAt - now >= HANDOFF_MIN_LEAD_MS && (m.launch.bounces ?? 0) < MAX_CAPACITY_HANDOFFS;
      if (future && held >= this.concurrency && passable) {
        passed.add(m);
        continue;
      }
      let released = !future;
      if (future) this.heldFor.set(second, held + 1);
      launches.push({
        m,
        release: () => {
          if (released) return;
          released = true;
          const left = (this.heldFor.get(second) ?? 1) - 1;
          if (left > 0) this.heldFor.set(second, left);
          else this.heldFor.delete(second);
        },
      });
    }
    const verdicts = this.runner.processMany(
      launches.map(({ m }) => m.launch!),
      launches.map(({ m, release }) => this.runnerOptions(queueUrl, m, release)),
    );
    const byMessage = new Map(launches.map(({ m, release }, i) => [m, { verdict: verdicts[i]!, release }]));
    return messages.map(async (m) => {
      if (passed.has(m)) {
        this.log({
          msg: 'launch passed on',
          job: m.launch!.jobName,
          id: m.launch!.executionId,
          why: 'enough held for its second',
        });
        await this.ctx.dispatch.handOff(queueUrl, m.launch!, 0);
        await this.acks.ack(queueUrl, m.receiptHandle);
        return;
      }
      const entry = byMessage.get(m);
      if (!entry) {
        this.log({ msg: 'dropping malformed message', body: m.body });
        await this.acks.ack(queueUrl, m.receiptHandle);
        return;
      }
      try {
        await this.settle(queueUrl, m, await entry.verdict);
      } catch (error) {
        this.log({
          msg: 'launch failed; delivering it again',
          job: m.launch!.jobName,
          id: m.launch!.executionId,
          error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        });
        await this.ctx.dispatch.hide(queueUrl, m.receiptHandle, ERROR_RETRY_VISIBILITY_SECONDS);
      } finally {
        entry.release();
      }
    });
  }

  private runnerOptions(queueUrl: string, m: ReceivedLaunch, releaseHold: () => void): RunnerOptions {
    /** When the message's visibility timeout last started (its receive, then each extension). */
    let visibleFrom = Date.now();
    return {
      executors: this.executors,
      processors: this.processors,
      heartbeatIntervalMs: this.executionHeartbeatMs,
      lostAfterMs: this.lostAfterMs,
      fenceAfterMs: this.fenceAfterMs,
      sleep: this.sleep,
      receiveCount: Math.max(m.receiveCount, (m.launch?.bounces ?? 0) + 1),
      log: this.log,
      track: (id, controller) => {
        if (controller) this.running.set(id, controller);
        else this.running.delete(id);
      },
      // The message stays hidden while its execution runs; extended once half its visibility has passed
      // (not on every heartbeat: a request per beat, and the job's own heartbeat is what tells others
      // whether it is alive).
      keepAlive: async () => {
        const now = Date.now();
        if (now - visibleFrom < (this.visibilityTimeoutSeconds * 1000) / 2) return;
        await this.ctx.dispatch.hide(queueUrl, m.receiptHandle, this.visibilityTimeoutSeconds);
        visibleFrom = now;
      },
      acquireSlot: () => {
        releaseHold();
        return this.acquireSlot();
      },
    };
  }

  private async settle(queueUrl: string, m: ReceivedLaunch, verdict: RunnerVerdict): Promise<void> {
    const launch = m.launch!;
    if (verdict === 'done') {
      await this.acks.ack(queueUrl, m.receiptHandle);
    } else if (verdict === 'retry') {
      // A fan-out slot this agent may not take (it holds another slot of the group): hand it on as a
      // fresh message. Making the same message visible again would count each hand-off as a receive, and
      // after the queue's maxReceiveCount SQS moves it to the dead-letter queue: the slot would stay
      // `scheduled` for ever. Send first, then delete: a crash in between only duplicates it (harmless).
      await this.ctx.dispatch.handOff(queueUrl, launch, 1);
      await this.acks.ack(queueUrl, m.receiptHandle);
    } else if (verdict === 'recheck') {
      // Running elsewhere, not in the lost sweep's index: back when a silent run would look lost.
      await this.ctx.dispatch.hide(queueUrl, m.receiptHandle, recheckVisibilitySeconds(this.lostAfterMs));
    } else {
      await this.ctx.dispatch.hide(
        queueUrl,
        m.receiptHandle,
        laterVisibilitySeconds(launch, this.ctx.clock()),
      );
    }
  }
}
