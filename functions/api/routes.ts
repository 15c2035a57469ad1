/** Dkron's /v1 routes (plus ours), each a call into shared/. */
import { busy, leader, leave, members, pauseState, setPaused } from '../../shared/cluster/cluster.ts';
import { checkHealth } from '../../shared/cluster/health.ts';
import type { Context } from '../../shared/context.ts';
import { NotFoundError, ValidationError } from '../../shared/errors.ts';
import { groupNumber } from '../../shared/executions/execution.ts';
import {
  clearExecutions,
  deleteJob,
  getExecution,
  getJob,
  listExecutions,
  listJobs,
  runJob,
  toggleJob,
  upsertJob,
} from '../../shared/jobs/jobs-service.ts';
import { LIMITS } from '../../shared/jobs/limits.ts';
import { backfillJob } from '../../shared/scheduler/backfill.ts';
import { previewSchedule } from '../../shared/scheduler/preview.ts';
import { VERSION } from '../../shared/version.ts';
import {
  backfillBody,
  backfillQuery,
  leaveBody,
  leaveQuery,
  listExecutionsQuery,
  listJobsQuery,
  parseBody,
  parseQuery,
  previewQuery,
  saveJobQuery,
} from './contract.ts';
import { openApiDocument } from './openapi.ts';
import type { ApiRequest, ApiResponse } from './request.ts';
import { RESTORE_PATH, restore } from './restore.ts';

/** Execution ids are `<fire time ms>.<slot>.<attempt>`: far below this. */
const MAX_EXECUTION_ID = 100;

type Handler = (ctx: Context, req: ApiRequest) => Promise<ApiResponse>;

const ok = (body: unknown, headers?: Record<string, string>): ApiResponse => ({ status: 200, body, headers });

/** `metadata[k]=v` or `tags[k]=v` query parameters (deepObject) as a map. */
function bracketFilter(
  query: Readonly<Record<string, string>>,
  name: 'metadata' | 'tags',
): Record<string, string> {
  const out: Record<string, string> = {};
  const prefix = `${name}[`;
  for (const [k, v] of Object.entries(query)) {
    if (k.startsWith(prefix) && k.endsWith(']') && k.length > prefix.length + 1) {
      out[k.slice(prefix.length, -1)] = v;
    }
  }
  return out;
}

async function saveJob(ctx: Context, req: ApiRequest, nameFromPath?: string): Promise<ApiResponse> {
  const { runoncreate: runOnCreate } = parseQuery(saveJobQuery, req.query); // a bad flag stops the write, not half of it
  const { job } = await upsertJob(ctx, req.body, { nameFromPath });
  // Names may hold any lowercase letter (`ñandú`); a header carries only ASCII.
  let headers: Record<string, string> = { Location: `/v1/jobs/${encodeURIComponent(job.name)}` };
  if (runOnCreate) {
    const run = await runJob(ctx, job.name);
    headers = { ...headers, 'X-Cronplane-Group': String(groupNumber(run.group)) };
  }
  return { status: 201, body: job, headers };
}

const runNow: Handler = async (ctx, req) => {
  const run = await runJob(ctx, req.params.job!);
  return {
    status: 202,
    body: { ...run.job, group: groupNumber(run.group), group_id: run.group, executions: run.executions },
  };
};

const routes: Array<[string, RegExp, string[], Handler]> = [
  [
    'GET',
    /^\/health$/,
    [],
    async (ctx) => {
      const health = await checkHealth(ctx); // each store part, with a short timeout; 503 names what is down
      return { status: health.status === 'healthy' ? 200 : 503, body: health };
    },
  ],
  [
    'GET',
    /^\/v1\/?$/,
    [],
    async (ctx) =>
      ok({ agent: { name: 'cronplane', version: VERSION, backend: 'dynamodb' }, ...(await pauseState(ctx)) }),
  ],
  [
    'GET',
    /^\/v1\/members$/,
    [],
    async (ctx) => {
      const list = await members(ctx);
      return ok(list, { 'X-Total-Count': String(list.length) });
    },
  ],
  // The OpenAPI 3.1 document of these routes, from the zod schemas they validate with (openapi.ts).
  ['GET', /^\/v1\/openapi\.json$/, [], async (_ctx, req) => ok(openApiDocument(req.basePath || '/'))],
  ['GET', /^\/v1\/leader$/, [], async (ctx) => ok(await leader(ctx))],
  [
    'GET',
    /^\/v1\/isleader$/,
    [],
    // No API node is ever the scheduler here: the tick function is. Dkron's follower answer, word for word.
    async () => ({ status: 404, body: 'I am a follower' }),
  ],
  [
    'GET',
    /^\/v1\/busy$/,
    [],
    async (ctx) => {
      const list = await busy(ctx);
      return ok(list, { 'X-Total-Count': String(list.length) });
    },
  ],
  [
    'POST',
    /^\/v1\/leave$/,
    [],
    async (ctx, req) => {
      const fromQuery = parseQuery(leaveQuery, req.query).name;
      return ok(await leave(ctx, fromQuery ?? parseBody(leaveBody, req.body)?.name));
    },
  ],
  ['GET', /^\/v1\/pause$/, [], async (ctx) => ok(await pauseState(ctx))],
  ['POST', /^\/v1\/pause$/, [], async (ctx) => ok(await setPaused(ctx, true))],
  ['POST', /^\/v1\/unpause$/, [], async (ctx) => ok(await setPaused(ctx, false))],
  // Dkron's restore of a backup file (multipart field `file`, or a JSON array body); see ./restore.ts.
  ['POST', RESTORE_PATH, [], restore],
  [
    'GET',
    /^\/v1\/schedule\/preview$/,
    [],
    async (_ctx, req) => {
      const q = parseQuery(previewQuery, req.query);
      return ok(
        previewSchedule({
          schedule: q.schedule,
          timezone: q.timezone,
          from: q.from,
          count: q.count === undefined ? undefined : String(q.count),
          // `~`/`H` fields hash the job name: previewing with `job` shows that job's fire times.
          jobName: q.job,
        }),
      );
    },
  ],
  [
    'GET',
    /^\/v1\/jobs\/?$/,
    [],
    async (ctx, req) => {
      const q = parseQuery(listJobsQuery, req.query);
      const { total, jobs } = await listJobs(ctx, {
        sort: q._sort,
        order: q._order,
        q: q.q,
        metadata: bracketFilter(req.query, 'metadata'),
        tags: bracketFilter(req.query, 'tags'),
        status: q.status,
        disabled: q.disabled,
        start: q._start,
        end: q._end,
      });
      return ok(jobs, { 'X-Total-Count': String(total) });
    },
  ],
  ['POST', /^\/v1\/jobs\/?$/, [], (ctx, req) => saveJob(ctx, req)],
  ['PATCH', /^\/v1\/jobs\/?$/, [], (ctx, req) => saveJob(ctx, req)],
  ['GET', /^\/v1\/jobs\/([^/]+)$/, ['job'], async (ctx, req) => ok(await getJob(ctx, req.params.job!))],
  ['PUT', /^\/v1\/jobs\/([^/]+)$/, ['job'], (ctx, req) => saveJob(ctx, req, req.params.job)],
  ['DELETE', /^\/v1\/jobs\/([^/]+)$/, ['job'], async (ctx, req) => ok(await deleteJob(ctx, req.params.job!))],
  ['POST', /^\/v1\/jobs\/([^/]+)$/, ['job'], runNow],
  ['POST', /^\/v1\/jobs\/([^/]+)\/run$/, ['job'], runNow],
  [
    'POST',
    /^\/v1\/jobs\/([^/]+)\/toggle$/,
    ['job'],
    async (ctx, req) => ok(await toggleJob(ctx, req.params.job!)),
  ],
  [
    'POST',
    /^\/v1\/jobs\/([^/]+)\/backfill$/,
    ['job'],
    // Range in the JSON body `{"from": …, "to": …}` or in the query string; see shared/scheduler/backfill.ts.
    async (ctx, req) => {
      const body = parseBody(backfillBody, req.body) ?? {};
      const q = parseQuery(backfillQuery, req.query);
      const result = await backfillJob(ctx, req.params.job!, {
        from: body.from ?? q.from,
        to: body.to ?? q.to,
      });
      return { status: 202, body: result };
    },
  ],
  [
    'GET',
    /^\/v1\/jobs\/([^/]+)\/executions$/,
    ['job'],
    async (ctx, req) => {
      const q = parseQuery(listExecutionsQuery, req.query);
      const { total, executions } = await listExecutions(ctx, req.params.job!, {
        order: q._order,
        sort: q._sort,
        outputSizeLimit: q.output_size_limit,
        limit: q._limit,
        planned: q.planned,
      });
      return ok(executions, { 'X-Total-Count': String(total) });
    },
  ],
  [
    // The executions route of Dkron before 1.0, which the `dkron` Python package still calls.
    'GET',
    /^\/v1\/executions\/([^/]+)$/,
    ['job'],
    async (ctx, req) => {
      const { total, executions } = await listExecutions(ctx, req.params.job!, {});
      return ok(executions, { 'X-Total-Count': String(total) });
    },
  ],
  [
    'DELETE',
    /^\/v1\/jobs\/([^/]+)\/executions$/,
    ['job'],
    async (ctx, req) => ok(await clearExecutions(ctx, req.params.job!)),
  ],
  [
    'GET',
    /^\/v1\/jobs\/([^/]+)\/executions\/([^/]+)$/,
    ['job', 'id'],
    async (ctx, req) => ok(await getExecution(ctx, req.params.job!, req.params.id!)),
  ],
];

/** Every route's method and path pattern (the OpenAPI test checks that the document covers each). */
export function routeTable(): Array<{ method: string; pattern: RegExp }> {
  return routes.map(([method, pattern]) => ({ method, pattern }));
}

/**
 * A path parameter, %-decoded. A malformed escape is a 400; a name or id longer than any stored one can
 * be (a DynamoDB key refuses it with a 500 otherwise) is a 404, as for any job or execution that is not there.
 */
function pathParam(name: string, raw: string): string {
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    throw new ValidationError(name, 'must be a valid URL path segment (a malformed %-escape)');
  }
  const max = name === 'job' ? LIMITS.name : MAX_EXECUTION_ID;
  if (value.length > max) {
    throw new NotFoundError(`${name === 'job' ? 'job' : 'execution'} ${value.slice(0, 64)}… not found`);
  }
  return value;
}

export async function route(
  ctx: Context,
  method: string,
  path: string,
  req: Omit<ApiRequest, 'params' | 'method' | 'path'>,
) {
  let pathMatched = false;
  // Dkron (gin) redirects `/v1/jobs/x/executions/` to the path without the slash, which clients follow
  // (pydkron calls that form); here the same route simply answers.
  const bare = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  for (const [m, pattern, names, handler] of routes) {
    const match = pattern.exec(path) ?? pattern.exec(bare);
    if (!match) continue;
    pathMatched = true;
    if (m !== method) continue;
    const params: Record<string, string> = {};
    names.forEach((n, i) => {
      params[n] = pathParam(n, match[i + 1] ?? '');
    });
    return handler(ctx, { ...req, method, path, params });
  }
  if (pathMatched) return { status: 405, body: { error: `method ${method} not allowed on ${path}` } };
  throw new NotFoundError(`no route for ${method} ${path}`);
}
