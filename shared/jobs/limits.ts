/**
 * The limits of a job, checked when it is written (a 400 naming the field and the limit), so that no job can
 * break the planner, a queue name, a DynamoDB key (2,048 bytes) or item (400 KB), or a function's memory.
 *
 * They are generous for real jobs and written down in the README ("Limits"). Where Dkron has no limit (it
 * keeps jobs in memory on servers we do not have), we pick one a human-written job never reaches.
 */
import { ValidationError } from '../errors.ts';

export const LIMITS = {
  /** Job names are DynamoDB keys, queue-registry and S3 key parts. */
  name: 200,
  /** displayname, owner, owner_email. */
  label: 256,
  timezone: 64,
  schedule: 256,
  tags: 32,
  tagKey: 128,
  tagValue: 256,
  /** The canonical tag set (`k=v,k=v`) is part of a DynamoDB key in the queue registry. */
  tagSetBytes: 1024,
  /** `"role": "web:N"`: one execution per slot and fire time. Dkron has no limit; one fire time of 1,000 slots is already a burst. */
  fanOut: 1000,
  metadata: 64,
  metadataKey: 128,
  metadataValue: 1024,
  configKeys: 64,
  configKey: 128,
  /** A shell command, an HTTP body, an env list. */
  configValue: 64 * 1024,
  processors: 16,
  successExitCodes: 256,
  /** The whole definition as stored (JSON): leaves room in the 400 KB item for counters and history. */
  jobBytes: 128 * 1024,
  /** How many child jobs may name one parent (`dependent_jobs` is stored on the parent). */
  children: 500,
  /** Jobs in one `POST /v1/restore`: written and planned well within API Gateway's 29 s. */
  restoreJobs: 1000,
  /** Ancestors above a child job (`parent_job` chains). */
  parentDepth: 100,
} as const;

/** Durations a job may carry, in milliseconds: [min, max] and what to call the max in the message. */
export const DURATION_LIMITS = {
  catchup_window: { min: 0, max: 31 * 86_400_000, maxText: '744h (31 days)' },
  retry_backoff: { min: 0, max: 86_400_000, maxText: '24h' },
  'executor_config.timeout': { min: 0, max: 7 * 86_400_000, maxText: '168h (7 days)' },
} as const;

export function checkDuration(field: keyof typeof DURATION_LIMITS, ms: number): void {
  const { min, max, maxText } = DURATION_LIMITS[field];
  if (ms < min) throw new ValidationError(field, 'must not be negative');
  if (ms > max) throw new ValidationError(field, `must be at most ${maxText}`);
}

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');

/** A string map's entries, keys and values within limits; `field` is the map's name. */
export function checkMap(
  field: string,
  map: Readonly<Record<string, string>>,
  limits: { entries: number; key: number; value: number },
): void {
  const entries = Object.entries(map);
  if (entries.length > limits.entries) {
    throw new ValidationError(field, `must have at most ${limits.entries} entries`);
  }
  for (const [key, value] of entries) {
    if (key.length === 0) throw new ValidationError(field, 'keys must not be empty');
    if (key.length > limits.key) {
      throw new ValidationError(
        `${field}.${key.slice(0, 40)}…`,
        `keys must be at most ${limits.key} characters`,
      );
    }
    if (utf8(value) > limits.value) {
      throw new ValidationError(`${field}.${key}`, `must be at most ${limits.value} bytes`);
    }
  }
}

/** The stored size of a definition (its JSON), refused above LIMITS.jobBytes. */
export function checkJobSize(def: unknown): void {
  const bytes = utf8(JSON.stringify(def));
  if (bytes > LIMITS.jobBytes) {
    throw new ValidationError(
      'body',
      `a job must be at most ${LIMITS.jobBytes} bytes as JSON (this one is ${bytes})`,
    );
  }
}

export function byteLength(s: string): number {
  return utf8(s);
}
