/**
 * The timing thresholds every deployable must agree on, each defined once. The config schemas
 * (shared/config.ts for the Lambda functions and the local stack, agent/config.ts for the agent) take
 * their defaults from here; an operator who changes one changes it everywhere (README, "The agent owns
 * its jobs").
 */

/** How often a running execution heartbeats, on an agent or the worker; cancel requests are noticed at this pace. */
export const EXECUTION_HEARTBEAT_MS = 2_000;

/**
 * A running execution whose heartbeat is older than this is lost, for the agents and the worker (the hosts
 * that run jobs); a `forbid`/`replace` lock expires this long after its last renewal. A run fences itself
 * (is killed by its own host) at 60 % of it, so the heartbeat must be at most a third of that.
 */
export const LOST_AFTER_MS = 30_000;

/**
 * The tick's sweep marks a silent run lost only after three times the hosts' limit: it must never be
 * below theirs (a run would be declared lost before its host fences it).
 */
export const TICK_LOST_AFTER_MS = 3 * LOST_AFTER_MS;

/** How often an agent writes its member heartbeat; a member is alive while it beat within three of these. */
export const AGENT_HEARTBEAT_MS = 5_000;

/** On SIGTERM an agent lets its running jobs finish for this long, then cancels them. */
export const AGENT_GRACE_MS = 30_000;

/**
 * The longest an agent or the worker holds an early launch message in memory, claimed, before its fire
 * time; longer waits go back to SQS. So a run was claimed at most this long before its fire time.
 */
export const MAX_HOLD_MS = 15_000;

/** How far past "now" one tick plans: the tick runs once a minute on AWS. */
export const TICK_PERIOD_MS = 60_000;

/** How far the tick plans beyond its period, so that a late next tick finds its launches already sent. */
export const TICK_MARGIN_MS = 15_000;
