/** Wires the stores of one deployable: built once from config and clients, then passed around. */
import { AgentsStore } from './agents/agents-store.ts';
import { type AwsClients, createClients, type Env } from './aws/clients.ts';
import { ReadBatch } from './aws/read-batch.ts';
import { type Config, loadConfig, processEnv } from './config.ts';
import { ControlStore } from './control/control-store.ts';
import { Dispatcher } from './dispatch/dispatch.ts';
import { ExecutionsStore } from './executions/executions-store.ts';
import { JobsStore } from './jobs/jobs-store.ts';
import { type MetricsSink, noMetrics } from './metrics/metrics.ts';
import type { AgentsPort, ControlPort, ExecutionsPort, JobsPort, ReadTogether } from './ports.ts';

export interface Context {
  readonly config: Config;
  readonly clients: AwsClients;
  /** The stores, by their ports (ports.ts): the DynamoDB implementations are created below. */
  readonly jobs: JobsPort;
  readonly executions: ExecutionsPort;
  readonly control: ControlPort;
  readonly agents: AgentsPort;
  readonly dispatch: Dispatcher;
  readonly clock: () => number;
  /** Where the tick and the reactions record their metrics (shared/metrics/metrics.ts). */
  readonly metrics: MetricsSink;
  /**
   * A fresh set of reads to send together (ports.ts ReadTogether); `consistent: false` for eventually
   * consistent reads (default: consistent).
   */
  readonly readTogether: (options?: { readonly consistent?: boolean }) => ReadTogether;
}

/** Records no metrics: a deployable that has a sink puts it in (`{ ...createContext(), metrics }`). */
export function createContext(env: Env = processEnv(), clock: () => number = Date.now): Context {
  const config = loadConfig(env);
  const clients = createClients(env);
  return {
    config,
    clients,
    clock,
    metrics: noMetrics,
    jobs: new JobsStore(clients, config),
    executions: new ExecutionsStore(clients, config),
    control: new ControlStore(clients, config),
    agents: new AgentsStore(clients, config),
    dispatch: new Dispatcher(clients, config),
    readTogether: (options = {}) => new ReadBatch(clients, options.consistent ?? true),
  };
}
