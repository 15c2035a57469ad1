/**
 * The job: Dkron's job JSON (snake_case), validated by one schema shared by API, CLI, UI and agent.
 * Validation errors name the field and the rule; nothing is stored unless the whole job is valid.
 */
import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { parseTimeout } from '../executors/common.ts';
import { validateProcessors } from '../processors/config.ts';
import { parseDuration } from '../schedule/duration.ts';
import { parseSchedule, type Schedule } from '../schedule/schedule.ts';
import { parseTime } from '../time.ts';
import { CONCURRENCY, EXECUTORS, type JobDefinition } from './definition.ts';
import { validateExecutorConfig } from './executor-config.ts';
import { byteLength, checkDuration, checkJobSize, checkMap, LIMITS } from './limits.ts';

const stringMap = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v)),
);

const text = (max: number) => z.string().max(max, { message: `must be at most ${max} characters` });

/**
 * Dkron's job name rule (`[\p{Ll}0-9_-]`: lowercase letters of any script, `ñandú` too), also for the names a
 * job refers to (`parent_job`, `on_failure_job`).
 */
const NAME_RULE = /^[\p{Ll}0-9_-]+$/u;
const NAME_RULE_TEXT = 'may contain only lowercase letters, digits, _ and -';
const jobName = (required: boolean) => {
  const base = z
    .string({ message: required ? 'is required' : 'must be string' })
    .max(LIMITS.name, { message: `must be at most ${LIMITS.name} characters` });
  return required
    ? base.min(1, { message: 'is required' }).regex(NAME_RULE, { message: NAME_RULE_TEXT })
    : base.refine((v) => v === '' || NAME_RULE.test(v), {
        message: `must be empty or a job name: ${NAME_RULE_TEXT}`,
      });
};

const tagValue = z
  .string()
  .max(LIMITS.tagValue, { message: `must be at most ${LIMITS.tagValue} characters` })
  .regex(/^[^:,]*(:\d+)?$/, { message: 'must be value or value:count (no commas)' })
  .refine(
    (v) => {
      const count = /:(\d+)$/.exec(v)?.[1];
      return count === undefined || (Number(count) >= 1 && Number(count) <= LIMITS.fanOut);
    },
    { message: `a :count must be between 1 and ${LIMITS.fanOut}` },
  );

const time = z
  .string()
  .nullable()
  .optional()
  .refine((v) => v === null || v === undefined || v === '' || parseTime(v) !== null, {
    message: 'must be an RFC 3339 time (e.g. 2026-01-02T15:04:05Z) or 2006-01-02T15:04',
  });

/** What a user may send. Computed fields (counters, status, next) are accepted and ignored. */
export const jobInputSchema = z
  .object({
    name: jobName(true),
    displayname: text(LIMITS.label).optional(),
    schedule: text(LIMITS.schedule).optional(),
    timezone: text(LIMITS.timezone).optional(),
    owner: text(LIMITS.label).optional(),
    owner_email: text(LIMITS.label).optional(),
    disabled: z.boolean().optional(),
    tags: z
      .record(
        z
          .string()
          .min(1, { message: 'keys must not be empty' })
          .max(LIMITS.tagKey, { message: `keys must be at most ${LIMITS.tagKey} characters` })
          .regex(/^[^,=]+$/, { message: 'keys must not contain , or =' }),
        tagValue,
      )
      .optional(),
    metadata: z.record(z.string(), z.string()).optional(),
    retries: z.number().int().min(0).max(100).optional(),
    retry_backoff: text(64).optional(),
    parent_job: jobName(false).optional(),
    on_failure_job: jobName(false).optional(),
    concurrency: z.enum(CONCURRENCY, { message: `must be one of ${CONCURRENCY.join(', ')}` }).optional(),
    executor: z
      .string()
      .regex(/^[a-z][a-z0-9_-]*$/, {
        message: `must be one of ${EXECUTORS.join(', ')} or the lowercase name of a custom executor`,
      })
      .optional(),
    executor_config: stringMap.optional(),
    processors: z.record(z.string(), stringMap).optional(),
    ephemeral: z.boolean().optional(),
    starts_at: time,
    expires_at: time,
    catchup_window: text(64).optional(),
    catchup_max: z.number().int().min(0).max(1000).optional(),
    success_exit_codes: z
      .array(z.number().int().min(0).max(255))
      .max(LIMITS.successExitCodes, { message: `must have at most ${LIMITS.successExitCodes} entries` })
      .optional(),
  })
  .passthrough();

/** Catch-up default: fire times missed by up to an hour still run (trigger "catchup"); older are counted as missed. */
export const DEFAULT_CATCHUP_WINDOW = '1h';
/** …and of those, at most this many (the newest) run, so an outage never ends in an unbounded burst. */
export const DEFAULT_CATCHUP_MAX = 10;
export const DEFAULT_RETRY_BACKOFF = '10s';

function firstIssue(error: z.ZodError): ValidationError {
  const issue = error.issues[0];
  // A key can be anything the client sent: keep the field name short.
  const part = (p: PropertyKey) => (String(p).length > 64 ? `${String(p).slice(0, 64)}…` : String(p));
  const field = issue && issue.path.length > 0 ? issue.path.map(part).join('.') : 'body';
  let rule = issue?.message ?? 'is invalid';
  if (issue?.code === 'invalid_type') {
    rule = issue.input === undefined ? 'is required' : `must be ${issue.expected}`;
  }
  return new ValidationError(field, rule);
}

/**
 * Jobs in Dkron's old format (before executors: a top-level `command`, and `shell` for `/bin/sh -c`), as
 * pydkron's README and the `dkron` package still write them. Dkron 4 stores such a job and then has no
 * executor to run it with; we run it as the shell job it was written as: `command` (and `shell`) become the
 * shell executor's config. A job that also names an executor, or carries its own `executor_config.command`,
 * keeps those.
 */
function fromOldFormat(input: Record<string, unknown>): Record<string, unknown> {
  const { command, shell, ...rest } = input;
  if (command === undefined) return input;
  const executor = rest.executor ?? 'shell';
  const config = rest.executor_config;
  if (executor !== 'shell' || typeof command !== 'string') return input;
  if (config !== undefined && (typeof config !== 'object' || Array.isArray(config))) return input;
  const current = (config ?? {}) as Record<string, unknown>;
  if (current.command !== undefined) return input;
  const converted: Record<string, unknown> = { ...current, command };
  if (shell !== undefined && current.shell === undefined) converted.shell = String(shell);
  return { ...rest, executor, executor_config: converted };
}

export function isValidTimezone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Pure validation and normalization (Dkron's Job.Validate). Throws ValidationError. */
export function validateJob(
  input: unknown,
  options: {
    /**
     * Leave a built-in executor's own config keys unchecked (its `timeout` and the size limits still
     * apply): restore takes a backup as Dkron does, where a job whose http `url` is not a URL yet is
     * stored and then fails at each run with the reason.
     */
    readonly deferExecutorConfig?: boolean;
  } = {},
): JobDefinition {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ValidationError('body', 'must be a JSON object describing a job');
  }
  // Dkron (Go) writes empty maps, slices and pointers as null: a job read back from Dkron and posted here
  // carries `"tags": null`, `"processors": null`, … A null field means the field's default.
  const present = fromOldFormat(Object.fromEntries(Object.entries(input).filter(([, v]) => v !== null)));
  const parsed = jobInputSchema.safeParse(present);
  if (!parsed.success) throw firstIssue(parsed.error);
  const j = parsed.data;
  const timezone = j.timezone ?? '';
  if (timezone !== '' && !isValidTimezone(timezone)) {
    throw new ValidationError('timezone', `"${timezone}" is not an IANA time zone (e.g. Europe/Berlin)`);
  }
  const schedule = (j.schedule ?? '').trim();
  if (schedule === '' && !j.parent_job) {
    throw new ValidationError('schedule', 'is required unless parent_job is set');
  }
  const def: JobDefinition = {
    name: j.name,
    displayname: j.displayname ?? '',
    schedule,
    timezone,
    owner: j.owner ?? '',
    owner_email: j.owner_email ?? '',
    disabled: j.disabled ?? false,
    tags: j.tags ?? {},
    metadata: j.metadata ?? {},
    retries: j.retries ?? 0,
    retry_backoff: j.retry_backoff ?? DEFAULT_RETRY_BACKOFF,
    parent_job: j.parent_job ?? '',
    on_failure_job: j.on_failure_job ?? '',
    concurrency: j.concurrency ?? 'allow',
    executor: j.executor ?? 'shell',
    executor_config: j.executor_config ?? {},
    processors: j.processors ?? {},
    ephemeral: j.ephemeral ?? false,
    starts_at: j.starts_at || null,
    expires_at: j.expires_at || null,
    catchup_window: j.catchup_window ?? DEFAULT_CATCHUP_WINDOW,
    catchup_max: j.catchup_max ?? DEFAULT_CATCHUP_MAX,
    success_exit_codes: j.success_exit_codes ?? [0],
  };
  checkLimits(def);
  if (def.schedule !== '') jobSchedule(def);
  checkDuration('catchup_window', parseDuration(def.catchup_window, 'catchup_window'));
  checkDuration('retry_backoff', parseDuration(def.retry_backoff, 'retry_backoff'));
  if (def.parent_job === def.name)
    throw new ValidationError('parent_job', 'the job can not have itself as parent'); // Dkron's text
  // Every executor's timeout, custom ones included; the rest of a built-in's config just below.
  if (def.executor_config.timeout) {
    let timeoutMs: number;
    try {
      timeoutMs = parseTimeout(def.executor_config.timeout, 0);
    } catch {
      throw new ValidationError(
        'executor_config.timeout',
        'must be a number of seconds or a duration like 30s or 1m',
      );
    }
    checkDuration('executor_config.timeout', timeoutMs);
  }
  if (!options.deferExecutorConfig) validateExecutorConfig(def.executor, def.executor_config);
  if (!options.deferExecutorConfig) validateProcessors(def);
  const starts = def.starts_at ? parseTime(def.starts_at) : null;
  const expires = def.expires_at ? parseTime(def.expires_at) : null;
  if (starts !== null && expires !== null && expires <= starts) {
    throw new ValidationError('expires_at', 'must be after starts_at');
  }
  return def;
}

/** Sizes and counts (see limits.ts); the per-field lengths are in the schema. */
function checkLimits(def: JobDefinition): void {
  if (Object.keys(def.tags).length > LIMITS.tags) {
    throw new ValidationError('tags', `must have at most ${LIMITS.tags} entries`);
  }
  const tagSet = Object.entries(def.tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  if (byteLength(tagSet) > LIMITS.tagSetBytes) {
    throw new ValidationError('tags', `must be at most ${LIMITS.tagSetBytes} bytes in all (as key=value,…)`);
  }
  checkMap('metadata', def.metadata, {
    entries: LIMITS.metadata,
    key: LIMITS.metadataKey,
    value: LIMITS.metadataValue,
  });
  checkMap('executor_config', def.executor_config, {
    entries: LIMITS.configKeys,
    key: LIMITS.configKey,
    value: LIMITS.configValue,
  });
  const processors = Object.entries(def.processors);
  if (processors.length > LIMITS.processors) {
    throw new ValidationError('processors', `must have at most ${LIMITS.processors} entries`);
  }
  for (const [name, config] of processors) {
    if (name.length === 0 || name.length > LIMITS.configKey) {
      throw new ValidationError('processors', `names must be 1 to ${LIMITS.configKey} characters`);
    }
    checkMap(`processors.${name}`, config, {
      entries: LIMITS.configKeys,
      key: LIMITS.configKey,
      value: LIMITS.configValue,
    });
  }
  checkJobSize(def);
}

/** The job's schedule object; `@every` intervals are anchored at `starts_at` when set, else the epoch. */
export function jobSchedule(def: JobDefinition): Schedule {
  const anchor = def.starts_at ? parseTime(def.starts_at) : null;
  return parseSchedule(def.schedule || '@manually', {
    timezone: def.timezone || 'UTC',
    jobName: def.name,
    anchorMs: anchor ?? 0,
  });
}

/**
 * The first fire time at or after `fromMs` that lies within [starts_at, expires_at], or null.
 * Disabled jobs have none: they carry no `nextRunAt`, so the sparse due index never lists them.
 */
export function firstFireAtOrAfter(def: JobDefinition, fromMs: number): number | null {
  // A child job runs after its parent, never on a schedule of its own (Dkron's rule).
  if (def.disabled || def.schedule === '' || def.parent_job !== '') return null;
  const starts = def.starts_at ? (parseTime(def.starts_at) ?? 0) : 0;
  const t = jobSchedule(def).next(Math.max(fromMs, starts) - 1);
  return t !== null && withinExpiry(def, t) ? t : null;
}

export function withinExpiry(def: JobDefinition, t: number): boolean {
  const expires = def.expires_at ? parseTime(def.expires_at) : null;
  return expires === null || t <= expires;
}
