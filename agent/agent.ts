/**
 * The host agent: long-polls the queues its tags satisfy, claims each execution through the
 * conditional `scheduled → running` transition, runs it with its executor, keeps the message and the
 * execution heartbeat alive while it runs, writes the result, then deletes the message.
 */

import { hostname } from 'node:os';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import type { Context } from '../shared/context.ts';
import { type LaunchMessage, parseTagSet, tagsSatisfy } from '../shared/dispatch/dispatch.ts';
import type { Execution } from '../shared/executions/execution.ts';
import type { Executor, ExecutorResult } from '../shared/executors/executor.ts';
import type { JobDefinition } from '../shared/jobs/job.ts';
import { ShellExecutor } from './executors/shell.ts';

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
  readonly version?: string;
  readonly executors?: Readonly<Record<string, Executor>>;
  readonly log?: (event: Record<string, unknown>) => void;
  readonly sleep?: (ms: number) => Promise<void>;
}

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
  private readonly executors: Readonly<Record<string, Executor>>;
  private readonly log: (event: Record<string, unknown>) => void;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly startedAt: number;
  private readonly version: string;

  private stopping = false;
  private readonly stopController = new AbortController();
  private readonly pollers = new Map<string, Promise<void>>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly running = new Map<string, AbortController>();
  private readonly capacityWaiters: Array<() => void> = [];
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly ctx: Context,
    options: AgentOptions,
  ) {
    this.agentId = options.agentId;
    this.nodeName = options.nodeName ?? options.agentId;
    this.tags = options.tags ?? {};
    this.concurrency = options.concurrency ?? 4;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5_000;
    this.pollWaitSeconds = options.pollWaitSeconds ?? 20;
    this.visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? 60;
    this.registryRefreshMs = options.registryRefreshMs ?? 15_000;
    this.version = options.version ?? '0.1.0';
    this.executors = options.executors ?? { shell: new ShellExecutor() };
    this.log = options.log ?? (() => {});
    this.sleep = options.sleep ?? defaultSleep;
    this.startedAt = ctx.clock();
  }

  get runningCount(): number {
    return this.running.size;
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
  async stop(graceMs = 30_000): Promise<void> {
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
    await this.ctx.agents.leave(this.agentId, this.ctx.clock()).catch(() => {});
    this.log({ msg: 'agent stopped', agentId: this.agentId });
  }

  private logError(where: string, error: unknown) {
    this.log({ msg: `${where} failed`, error: error instanceof Error ? error.message : String(error) });
  }

  private async heartbeat(): Promise<void> {
    await this.ctx.agents.heartbeat({
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
  }

  /** Polls every queue whose tag set our tags satisfy (the default queue has the empty tag set). */
  private async refreshQueues(): Promise<void> {
    if (this.stopping) return;
    for (const entry of await this.ctx.dispatch.registry()) {
      if (this.pollers.has(entry.url) || !tagsSatisfy(this.tags, parseTagSet(entry.tagSet))) continue;
      this.pollers.set(entry.url, this.poll(entry.url));
    }
  }

  private async waitForCapacity(): Promise<void> {
    while (!this.stopping && this.inFlight.size >= this.concurrency) {
      await new Promise<void>((r) => this.capacityWaiters.push(r));
    }
  }

  private async poll(queueUrl: string): Promise<void> {
    while (!this.stopping) {
      await this.waitForCapacity();
      if (this.stopping) break;
      let messages: Message[] = [];
      try {
        const out = await this.ctx.clients.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(10, this.concurrency - this.inFlight.size),
            WaitTimeSeconds: this.pollWaitSeconds,
            VisibilityTimeout: this.visibilityTimeoutSeconds,
          }),
          { abortSignal: this.stopController.signal },
        );
        messages = out.Messages ?? [];
      } catch (error) {
        if (this.stopping) break;
        this.logError('receive', error);
        await this.sleep(1_000);
        continue;
      }
      for (const m of messages) {
        const p: Promise<void> = this.handle(queueUrl, m)
          .catch((error) => this.logError('execution', error))
          .finally(() => {
            this.inFlight.delete(p);
            this.capacityWaiters.shift()?.();
          });
        this.inFlight.add(p);
      }
    }
  }

  private async deleteMessage(queueUrl: string, m: Message) {
    await this.ctx.clients.sqs.send(
      new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }),
    );
  }

  private async handle(queueUrl: string, m: Message): Promise<void> {
    let launch: LaunchMessage;
    try {
      launch = JSON.parse(m.Body ?? '') as LaunchMessage;
    } catch {
      this.log({ msg: 'dropping malformed message', body: m.Body });
      await this.deleteMessage(queueUrl, m);
      return;
    }
    // SQS delays are whole seconds: a message may arrive early; hold it to the exact fire time.
    const early = launch.scheduledAt - this.ctx.clock();
    if (early > 0) await this.sleep(early);

    let execution = await this.ctx.executions.get(launch.jobName, launch.executionId);
    if (execution?.status !== 'scheduled') {
      await this.deleteMessage(queueUrl, m);
      return;
    }
    let claim = await this.ctx.executions.claim(
      execution,
      { agentId: this.agentId, nodeName: this.nodeName },
      this.ctx.clock(),
      {
        ignorePause: execution.trigger === 'manual',
      },
    );
    if (!claim.claimed && claim.why === 'job_changed') {
      // The job was edited after planning; its write path retargets or skips planned executions. Give
      // it a moment, then either run under the new version or record why we did not.
      await this.sleep(300);
      const job = await this.ctx.jobs.get(launch.jobName);
      execution = (await this.ctx.executions.get(launch.jobName, launch.executionId)) ?? execution;
      if (!job) {
        await this.ctx.executions.end(execution, 'scheduled', 'cancelled', 'job deleted', this.ctx.clock());
      } else if (execution.status === 'scheduled' && execution.jobVersion === job.version) {
        claim = await this.ctx.executions.claim(
          execution,
          { agentId: this.agentId, nodeName: this.nodeName },
          this.ctx.clock(),
        );
      } else {
        await this.ctx.executions.end(
          execution,
          'scheduled',
          'skipped',
          job.def.disabled ? 'job disabled' : 'job changed after planning',
          this.ctx.clock(),
        );
      }
    }
    if (!claim.claimed) {
      if (claim.why === 'paused') {
        await this.ctx.executions.end(
          execution,
          'scheduled',
          'skipped',
          'scheduler paused',
          this.ctx.clock(),
        );
      }
      await this.deleteMessage(queueUrl, m);
      return;
    }
    await this.run(queueUrl, m, claim.execution);
  }

  private async run(queueUrl: string, m: Message, execution: Execution): Promise<void> {
    const job = await this.ctx.jobs.get(execution.jobName);
    const controller = new AbortController();
    this.running.set(execution.executionId, controller);
    const keepAlive = setInterval(
      () => {
        void this.ctx.executions
          .heartbeat(execution, this.agentId, this.ctx.clock())
          .catch((e) => this.logError('exec heartbeat', e));
        void this.ctx.clients.sqs
          .send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: queueUrl,
              ReceiptHandle: m.ReceiptHandle,
              VisibilityTimeout: this.visibilityTimeoutSeconds,
            }),
          )
          .catch((e) => this.logError('visibility', e));
      },
      Math.min(this.heartbeatIntervalMs, (this.visibilityTimeoutSeconds * 1000) / 3),
    );
    let result: ExecutorResult;
    try {
      result = job ? await this.execute(job.def, execution, controller.signal) : missing('job deleted');
    } catch (error) {
      result = missing(`executor error: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      clearInterval(keepAlive);
      this.running.delete(execution.executionId);
    }
    const written = await this.ctx.executions.finish(execution, this.agentId, result, this.ctx.clock());
    this.log({
      msg: 'execution finished',
      job: execution.jobName,
      id: execution.executionId,
      status: result.status,
      written,
    });
    await this.deleteMessage(queueUrl, m);
  }

  private execute(def: JobDefinition, execution: Execution, signal: AbortSignal): Promise<ExecutorResult> {
    const executor = this.executors[def.executor];
    if (!executor)
      return Promise.resolve(missing(`executor ${def.executor} is not available on agent ${this.agentId}`));
    return executor.run(def, execution, signal);
  }
}

function missing(reason: string): ExecutorResult {
  return { status: 'failed', exitCode: null, output: '', outputTruncated: false, reason };
}
