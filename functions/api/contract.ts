/**
 * The API's contract in zod: the query parameters each route validates with (routes.ts parses with these
 * very schemas), the job body (shared/jobs/job.ts's `jobInputSchema`, the one every write validates
 * with), and the shapes the routes answer with. openapi.ts turns this file into the OpenAPI 3.1 document
 * at GET /v1/openapi.json, so the document cannot drift from what is checked.
 *
 * Query values arrive as strings: integers are coerced (`z.coerce`), flags are `''`/`true`/`1`/`false`/`0`.
 * A bad value is a 400 naming the parameter (`parseQuery`).
 */
import { z } from 'zod';
import { ValidationError } from '../../shared/errors.ts';
import { CONCURRENCY } from '../../shared/jobs/definition.ts';
import {
  EXECUTION_SORT_FIELDS as EXECUTION_SORT,
  JOB_SORT_FIELDS as JOB_SORT,
} from '../../shared/jobs/jobs-service.ts';
import { MAX_PREVIEW } from '../../shared/scheduler/preview.ts';

/** Paging and size parameters: anything above is a typo, not a page. */
export const MAX_INT_PARAM = 1_000_000_000;

/** An integer; empty (`?_limit=`) is absent, as in Dkron. */
const intParam = (description: string, min = 0, max = MAX_INT_PARAM) => {
  const rule = `must be an integer from ${min} to ${max}`;
  const int = z.coerce
    .number({ message: rule })
    .int({ message: rule })
    .min(min, { message: rule })
    .max(max, { message: rule });
  return z
    .union([z.literal('').transform(() => undefined), int], { message: rule })
    .optional()
    .describe(description);
};

const FLAG_VALUES = ['', 'true', '1', 'false', '0'] as const;
/** A flag: absent is false; present with no value (`?runoncreate`), `true` or `1` is true; `false`/`0` is false. */
const flagParam = (description: string) =>
  z
    .enum(FLAG_VALUES, { message: 'must be true or false' })
    .optional()
    .transform((v) => v === '' || v === 'true' || v === '1')
    .describe(description);

const orderParam = z
  .enum(['ASC', 'DESC', 'asc', 'desc'], { message: 'must be ASC or DESC' })
  .optional()
  .describe('Sort order: ASC or DESC.');

export const listJobsQuery = z.object({
  _sort: z
    .enum(JOB_SORT, { message: `must be one of ${JOB_SORT.join(', ')}` })
    .optional()
    .describe('Field to sort by (Dkron: `id` is the name).'),
  _order: orderParam,
  _start: intParam('First index of the page (react-admin paging).'),
  _end: intParam('Index after the last of the page.'),
  q: z.string().optional().describe('Case-insensitive search in name and displayname.'),
  status: z
    .string()
    .optional()
    .describe('Last run status: success, failed, running, partially_failed, or untriggered.'),
  disabled: z.enum(['true', 'false'], { message: 'must be true or false' }).optional(),
});

export const saveJobQuery = z.object({
  runoncreate: flagParam('Run the job once, now, after it is stored (Dkron).'),
});

export const listExecutionsQuery = z.object({
  _sort: z
    .enum(EXECUTION_SORT, { message: `must be one of ${EXECUTION_SORT.join(', ')}` })
    .optional()
    .describe('Field to sort by; `id` is fire-time order.'),
  _order: orderParam,
  _limit: intParam('At most this many executions.'),
  output_size_limit: intParam("Cut each output to its last N characters (Dkron's UI sends it)."),
  planned: flagParam('Include launches planned ahead of their fire time.'),
});

export const previewQuery = z.object({
  schedule: z.string({ message: 'is required' }).describe('A schedule as a job takes it.'),
  timezone: z.string().optional().describe('IANA time zone (default UTC).'),
  from: z.string().optional().describe('RFC 3339 time to start from (default now).'),
  count: intParam(`How many fire times (default 10).`, 1, MAX_PREVIEW),
  job: z.string().optional().describe('Job name that `~`/`H` fields hash.'),
});

const rangeTime = z.string({ message: 'must be an RFC 3339 time' });
export const backfillBody = z
  .object({ from: rangeTime.optional(), to: rangeTime.optional() }, { message: 'must be a JSON object' })
  .optional();
export const backfillQuery = z.object({
  from: z.string().optional().describe('RFC 3339 start of the range (or in the JSON body).'),
  to: z.string().optional().describe('RFC 3339 end of the range, not after now (or in the JSON body).'),
});

/** Longer than any agent id (the Agents table's key) can be. */
export const MAX_MEMBER_NAME = 512;
const memberName = z
  .string({ message: 'must be a string: the member (agent id) that should leave' })
  .max(MAX_MEMBER_NAME, { message: `must be at most ${MAX_MEMBER_NAME} characters` });

export const leaveQuery = z.object({
  name: memberName
    .optional()
    .describe('The member (agent id) that should leave (or `{"name"}` in the body).'),
});
export const leaveBody = z.object({ name: memberName.optional() }).optional();

/** Parses a route's query string with its schema; the first problem is a 400 naming the parameter. */
export function parseQuery<S extends z.ZodType>(
  schema: S,
  query: Readonly<Record<string, string>>,
): z.output<S> {
  return parseWith(schema, query, 'query');
}

/** Parses a (small, non-job) JSON body with its schema; the first problem is a 400 naming the field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  return parseWith(schema, body, 'body');
}

function parseWith<S extends z.ZodType>(schema: S, value: unknown, whole: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.map(String).join('.') || whole;
  throw new ValidationError(field, issue?.message ?? 'is invalid');
}

// --- what the routes answer --------------------------------------------------------------------

const time = z.string().describe('RFC 3339');
const nullableTime = time.nullable();
const stringMap = z.record(z.string(), z.string());

const jobChange = z.object({
  version: z.number().int(),
  at: nullableTime,
  by: z.string(),
  action: z.enum(['created', 'updated', 'enabled', 'disabled']),
});

export const jobSchema = z.object({
  id: z.string().describe('The name (react-admin keys records by `id`).'),
  name: z.string(),
  displayname: z.string(),
  schedule: z.string(),
  timezone: z.string(),
  owner: z.string(),
  owner_email: z.string(),
  disabled: z.boolean(),
  tags: stringMap,
  metadata: stringMap,
  retries: z.number().int(),
  retry_backoff: z.string(),
  parent_job: z.string(),
  on_failure_job: z.string(),
  concurrency: z.enum(CONCURRENCY),
  executor: z.string(),
  executor_config: stringMap,
  processors: z.record(z.string(), stringMap),
  ephemeral: z.boolean(),
  starts_at: nullableTime,
  expires_at: nullableTime,
  catchup_window: z.string(),
  catchup_max: z.number().int(),
  success_exit_codes: z.array(z.number().int()),
  dependent_jobs: z.array(z.string()).nullable(),
  status: z.string().describe('Last run status; empty before the first run.'),
  next: nullableTime,
  success_count: z.number().int(),
  error_count: z.number().int(),
  missed_count: z.number().int(),
  last_success: nullableTime,
  last_error: nullableTime,
  version: z.number().int(),
  created_at: nullableTime,
  created_by: z.string().nullable(),
  updated_at: nullableTime,
  updated_by: z.string().nullable(),
  plan_error: z.string().nullable(),
  plan_error_at: nullableTime,
  history: z.array(jobChange).optional().describe('Last changes, oldest first (GET of one job only).'),
});

export const executionSchema = z.object({
  id: z.string(),
  job_name: z.string(),
  group: z.number().int().describe('Dkron: an int64 (here the fire time in ms).'),
  group_id: z.string(),
  attempt: z.number().int(),
  status: z.string(),
  trigger: z.string(),
  scheduled_at: time,
  started_at: time,
  finished_at: time,
  success: z.boolean(),
  exit_code: z.number().int().nullable(),
  output: z.string(),
  output_truncated: z.boolean(),
  output_url: z.string().nullable(),
  node_name: z.string(),
  reason: z.string().nullable(),
  processor_errors: z
    .record(z.string(), z.string())
    .nullable()
    .describe("Each failed processor's error by name; null when none failed."),
  output_size: z
    .number()
    .int()
    .nullable()
    .describe(
      'Bytes the job printed: so far while it runs (`output` is then its last 64 KB, updated with each heartbeat), in all once it ended.',
    ),
});

const memberFields = {
  id: z.string(),
  Name: z.string(),
  Addr: z.string(),
  Port: z.number().int(),
  Tags: stringMap,
  Status: z.number().int().describe("Serf's: 0 none, 1 alive, 2 leaving, 3 left, 4 failed."),
  statusText: z.string(),
};

export const memberSchema = z.object({
  ...memberFields,
  version: z.string(),
  capacity: z.number().int(),
  running: z.number().int(),
  started_at: nullableTime,
  last_heartbeat_at: nullableTime,
});

export const leaderSchema = z.object({
  ...memberFields,
  holding: z.boolean(),
  in_tick: z.boolean(),
  last_tick_at: nullableTime,
  fencing_token: z.number().int(),
  lease_expires_at: nullableTime,
});

export const errorSchema = z
  .object({
    error: z.string(),
    field: z.string().optional().describe('The offending field or parameter (bad input).'),
    rule: z.string().optional().describe('What it must satisfy.'),
  })
  .loose();

export const runSchema = jobSchema
  .omit({ history: true })
  .extend({ group: z.number().int(), group_id: z.string(), executions: z.array(z.string()) });

export const restoreResultSchema = z.array(
  z.object({
    index: z.number().int(),
    name: z.string(),
    result: z.string(),
    status: z.number().int(),
    created: z.boolean(),
  }),
);

export const statusSchemas = {
  root: z.object({
    agent: z.object({ name: z.string(), version: z.string(), backend: z.string() }),
    paused: z.boolean(),
  }),
  paused: z.object({ paused: z.boolean() }),
  leave: z.object({ name: z.string(), leave_requested: z.boolean() }),
  preview: z.object({ times: z.array(time) }),
  backfill: z.object({
    job: z.string(),
    launched: z.number().int(),
    existing: z.number().int(),
    failed: z.number().int(),
    executions: z.array(z.string()),
  }),
  cleared: z.object({ job: jobSchema, removed: z.number().int() }),
  health: z.object({
    status: z.enum(['healthy', 'unhealthy']),
    down: z.array(z.string()),
    checks: z.record(
      z.string(),
      z.object({ status: z.enum(['up', 'down']), ms: z.number(), error: z.string().optional() }),
    ),
  }),
};
