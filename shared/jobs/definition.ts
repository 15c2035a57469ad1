/**
 * The stored job definition: its type and the closed sets it names. A leaf (it imports nothing), so that
 * the executors and processors, which run a definition, and job.ts, which validates one with their config
 * parsers, depend on it and not on each other.
 */

/** Built in; any other lowercase name selects a custom (external) executor installed on the agents. */
export const EXECUTORS = ['shell', 'http', 'lambda', 'sqs', 'eventbridge'] as const;
export const CONCURRENCY = ['allow', 'forbid', 'replace'] as const;

/** The normalized definition we store: defaults filled in, unknown fields dropped. */
export interface JobDefinition {
  name: string;
  displayname: string;
  schedule: string;
  timezone: string;
  owner: string;
  owner_email: string;
  disabled: boolean;
  tags: Record<string, string>;
  metadata: Record<string, string>;
  retries: number;
  retry_backoff: string;
  parent_job: string;
  on_failure_job: string;
  concurrency: (typeof CONCURRENCY)[number];
  executor: string;
  executor_config: Record<string, string>;
  processors: Record<string, Record<string, string>>;
  ephemeral: boolean;
  starts_at: string | null;
  expires_at: string | null;
  catchup_window: string;
  catchup_max: number;
  success_exit_codes: number[];
}
