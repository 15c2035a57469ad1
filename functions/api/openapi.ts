/**
 * GET /v1/openapi.json: the OpenAPI 3.1 document of every route, generated from the zod schemas the routes
 * validate with (contract.ts, and the job schema of shared/jobs/job.ts) by zod's own JSON Schema export.
 * Every operation lists the statuses it can answer: 400 (bad input, naming the field), 404, 413 (a body
 * over 10 MB), 503 (the store is not answering, or the scheduler is paused), and 409 where a write can
 * race another. Error bodies are JSON (`error`, `field`, `rule`), or Dkron's plain text for a client that
 * sends no Accept header.
 */
import { z } from 'zod';
import { jobInputSchema } from '../../shared/jobs/job.ts';
import { LIMITS } from '../../shared/jobs/limits.ts';
import { VERSION } from '../../shared/version.ts';
import {
  backfillBody,
  backfillQuery,
  errorSchema,
  executionSchema,
  jobSchema,
  leaderSchema,
  leaveBody,
  leaveQuery,
  listExecutionsQuery,
  listJobsQuery,
  memberSchema,
  previewQuery,
  restoreResultSchema,
  runSchema,
  saveJobQuery,
  statusSchemas,
} from './contract.ts';

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'output'): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    io,
    target: 'draft-2020-12',
    unrepresentable: 'any',
    reused: 'inline',
  }) as JsonSchema;
  return rest;
}

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

/**
 * The job a write takes. Dkron (Go) writes empty fields as null and a job read back from it carries them:
 * null is every optional field's default here, so the document allows it. Old-format jobs (a top-level
 * `command`, and `shell`) run as shell jobs.
 */
function jobInput(): JsonSchema {
  const schema = jsonSchema(jobInputSchema, 'input');
  const required = new Set((schema.required as string[] | undefined) ?? []);
  const properties = schema.properties as Record<string, JsonSchema>;
  for (const [name, property] of Object.entries(properties)) {
    if (!required.has(name)) properties[name] = { anyOf: [property, { type: 'null' }] };
  }
  properties.command = {
    type: ['string', 'null'],
    description: "Dkron's old format: the command of a shell job (becomes executor_config.command).",
  };
  properties.shell = {
    anyOf: [{ type: 'boolean' }, { type: 'string' }, { type: 'null' }],
    description: "Dkron's old format: run through /bin/sh -c.",
  };
  return {
    ...schema,
    description:
      "A job in Dkron's JSON. Computed fields (id, status, counters, next, …) may be sent and are ignored. " +
      'Schedule, time zone, durations, executor_config and sizes are checked beyond this schema: a ' +
      'violation is a 400 naming the field and the rule.',
  };
}

function queryParameters(schema: z.ZodObject): JsonSchema[] {
  const shape = jsonSchema(schema, 'input');
  const required = new Set((shape.required as string[] | undefined) ?? []);
  return Object.entries(shape.properties as Record<string, JsonSchema>).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: 'query',
      required: required.has(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

const METADATA_FILTER: JsonSchema = {
  name: 'metadata',
  in: 'query',
  style: 'deepObject',
  explode: true,
  description: 'Only jobs whose metadata has these values: `metadata[key]=value`.',
  schema: { type: 'object', additionalProperties: { type: 'string' } },
};

const TAGS_FILTER: JsonSchema = {
  name: 'tags',
  in: 'query',
  style: 'deepObject',
  explode: true,
  description: 'Only jobs whose tags have these values, a fan-out count aside: `tags[role]=web` (ours).',
  schema: { type: 'object', additionalProperties: { type: 'string' } },
};

const PATH_PARAMS: Record<'job' | 'id', JsonSchema> = {
  job: {
    name: 'job',
    in: 'path',
    required: true,
    description: `The job's name (at most ${LIMITS.name} characters; a longer one is a job that is not there).`,
    schema: { type: 'string' },
  },
  id: {
    name: 'id',
    in: 'path',
    required: true,
    description: "The execution's id.",
    schema: { type: 'string' },
  },
};

const TOTAL = {
  'X-Total-Count': { description: 'How many there are in all (before paging).', schema: { type: 'string' } },
};

function json(schema: JsonSchema, description: string, headers?: JsonSchema): JsonSchema {
  return { description, ...(headers ? { headers } : {}), content: { 'application/json': { schema } } };
}

const ERROR: JsonSchema = {
  content: {
    'application/json': { schema: ref('Error') },
    'text/plain': {
      schema: { type: 'string', description: "Dkron's text, for a client sending no Accept." },
    },
  },
};
const ERRORS: Record<string, string> = {
  '400': 'Bad input: `field` names it and `rule` says what it must be. Nothing was changed.',
  '404': 'Not found.',
  '413': 'The body is over 10 MB.',
  '503': 'The store is not answering or throttles (retry), or the scheduler is paused.',
};

const EXAMPLE_JOB = {
  name: 'nightly-report',
  schedule: '@every 1h',
  executor: 'shell',
  executor_config: { command: 'echo report' },
  tags: { role: 'web' },
  retries: 1,
};

/** What a stored job's name leads to (for clients and stateful fuzzers such as Schemathesis). */
const JOB_LINKS: JsonSchema = Object.fromEntries(
  [
    ['GetJob', 'getJob'],
    ['ToggleJob', 'toggleJob'],
    ['RunJob', 'runJobNow'],
    ['ListExecutions', 'listExecutions'],
    ['BackfillJob', 'backfillJob'],
    ['DeleteJob', 'deleteJob'],
  ].map(([name, operationId]) => [name, { operationId, parameters: { job: '$response.body#/name' } }]),
);

interface Operation {
  readonly method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly tag: string;
  readonly params?: ReadonlyArray<'job' | 'id'>;
  readonly query?: z.ZodObject;
  readonly metadataFilter?: boolean;
  readonly body?: JsonSchema;
  readonly responses: Record<string, JsonSchema>;
  /** Writes another write can race (a version check): 409. */
  readonly conflicts?: boolean;
}

function operations(): Operation[] {
  const jobBody: JsonSchema = {
    required: true,
    content: { 'application/json': { schema: ref('JobInput'), example: EXAMPLE_JOB } },
  };
  const job = json(ref('Job'), 'The job.');
  const saved = {
    ...json(ref('Job'), 'Stored.', {
      Location: { description: "The job's URL.", schema: { type: 'string' } },
      'X-Cronplane-Group': {
        description: 'With ?runoncreate: the group of the run.',
        schema: { type: 'string' },
      },
    }),
    links: JOB_LINKS,
  };
  const run = {
    ...json(jsonSchema(runSchema), 'Launched: the run-now group and its executions (202: it runs now).'),
    links: {
      GetExecution: {
        operationId: 'getExecution',
        parameters: { job: '$response.body#/name', id: '$response.body#/executions/0' },
      },
    },
  };
  return [
    {
      method: 'get',
      path: '/health',
      operationId: 'health',
      summary: 'Health of each store part (tables, queue); 503 names the parts that are down.',
      tag: 'cluster',
      responses: {
        '200': json(jsonSchema(statusSchemas.health), 'Healthy.'),
        '503': json(jsonSchema(statusSchemas.health), 'A part is down.'),
      },
    },
    {
      method: 'get',
      path: '/v1',
      operationId: 'status',
      summary: 'Version and whether the scheduler is paused.',
      tag: 'cluster',
      responses: { '200': json(jsonSchema(statusSchemas.root), 'Status.') },
    },
    {
      method: 'get',
      path: '/v1/openapi.json',
      operationId: 'openapi',
      summary: 'This document.',
      tag: 'cluster',
      responses: { '200': json({ type: 'object' }, 'The OpenAPI 3.1 document.') },
    },
    {
      method: 'get',
      path: '/v1/members',
      operationId: 'members',
      summary: 'The agents, as Dkron members (Serf status number and text).',
      tag: 'cluster',
      responses: { '200': json({ type: 'array', items: ref('Member') }, 'Members.', TOTAL) },
    },
    {
      method: 'get',
      path: '/v1/leader',
      operationId: 'leader',
      summary: 'The scheduler: the last holder of the tick lease, member-shaped, with the lease.',
      tag: 'cluster',
      responses: { '200': json(ref('Leader'), 'The leader.') },
    },
    {
      method: 'get',
      path: '/v1/isleader',
      operationId: 'isLeader',
      summary: "Dkron's leader check: no API node is the scheduler here (404, Dkron's follower answer).",
      tag: 'cluster',
      responses: { '404': json({ type: 'string', const: 'I am a follower' }, 'Not the leader.') },
    },
    {
      method: 'get',
      path: '/v1/busy',
      operationId: 'busy',
      summary: 'Executions running now.',
      tag: 'executions',
      responses: { '200': json({ type: 'array', items: ref('Execution') }, 'Running executions.', TOTAL) },
    },
    {
      method: 'post',
      path: '/v1/leave',
      operationId: 'leave',
      summary: 'Ask an agent to stop taking work and leave (at its next heartbeat).',
      tag: 'cluster',
      query: leaveQuery,
      body: {
        required: false,
        content: {
          'application/json': { schema: jsonSchema(leaveBody.unwrap(), 'input') },
        },
      },
      responses: { '200': json(jsonSchema(statusSchemas.leave), 'Leave requested.') },
    },
    {
      method: 'get',
      path: '/v1/pause',
      operationId: 'pauseState',
      summary: 'Whether the scheduler is paused.',
      tag: 'cluster',
      responses: { '200': json(jsonSchema(statusSchemas.paused), 'Pause state.') },
    },
    {
      method: 'post',
      path: '/v1/pause',
      operationId: 'pause',
      summary: 'Pause the scheduler: no launches, writes that would plan refused (503).',
      tag: 'cluster',
      responses: { '200': json(jsonSchema(statusSchemas.paused), 'Paused.') },
    },
    {
      method: 'post',
      path: '/v1/unpause',
      operationId: 'unpause',
      summary: 'Resume the scheduler.',
      tag: 'cluster',
      responses: { '200': json(jsonSchema(statusSchemas.paused), 'Resumed.') },
    },
    {
      method: 'post',
      path: '/v1/restore',
      operationId: 'restore',
      summary: "Restore a backup (Dkron's multipart field `file`, or a JSON array): all jobs or none.",
      tag: 'jobs',
      conflicts: true,
      body: {
        required: true,
        content: {
          'multipart/form-data': {
            schema: {
              type: 'object',
              required: ['file'],
              properties: { file: { type: 'string', contentMediaType: 'application/json' } },
            },
          },
          'application/json': {
            schema: { type: 'array', maxItems: LIMITS.restoreJobs, items: ref('JobInput') },
          },
        },
      },
      responses: { '200': json(jsonSchema(restoreResultSchema), 'Every job written.') },
    },
    {
      method: 'get',
      path: '/v1/schedule/preview',
      operationId: 'previewSchedule',
      summary: 'The next fire times of a schedule, by the engine the tick uses.',
      tag: 'jobs',
      query: previewQuery,
      responses: { '200': json(jsonSchema(statusSchemas.preview), 'Fire times.') },
    },
    {
      method: 'get',
      path: '/v1/jobs',
      operationId: 'listJobs',
      summary: "Jobs: Dkron's filters, sort and react-admin paging.",
      tag: 'jobs',
      query: listJobsQuery,
      metadataFilter: true,
      responses: { '200': json({ type: 'array', items: ref('Job') }, 'Jobs.', TOTAL) },
    },
    {
      method: 'post',
      path: '/v1/jobs',
      operationId: 'createOrUpdateJob',
      summary: 'Create or replace a job (Dkron).',
      tag: 'jobs',
      query: saveJobQuery,
      body: jobBody,
      conflicts: true,
      responses: { '201': saved },
    },
    {
      method: 'patch',
      path: '/v1/jobs',
      operationId: 'patchJob',
      summary: 'Create or replace a job (as POST).',
      tag: 'jobs',
      query: saveJobQuery,
      body: jobBody,
      conflicts: true,
      responses: { '201': saved },
    },
    {
      method: 'get',
      path: '/v1/jobs/{job}',
      operationId: 'getJob',
      summary: 'One job, with its change history.',
      tag: 'jobs',
      params: ['job'],
      responses: { '200': job },
    },
    {
      method: 'put',
      path: '/v1/jobs/{job}',
      operationId: 'putJob',
      summary: 'Create or replace the job named in the path.',
      tag: 'jobs',
      params: ['job'],
      query: saveJobQuery,
      body: jobBody,
      conflicts: true,
      responses: { '201': saved },
    },
    {
      method: 'delete',
      path: '/v1/jobs/{job}',
      operationId: 'deleteJob',
      summary: 'Delete a job (404, as in Dkron, while other jobs name it as parent).',
      tag: 'jobs',
      params: ['job'],
      conflicts: true,
      responses: { '200': json(ref('Job'), 'Deleted; the job as it was.') },
    },
    {
      method: 'post',
      path: '/v1/jobs/{job}',
      operationId: 'runJob',
      summary: 'Run the job now (Dkron).',
      tag: 'jobs',
      params: ['job'],
      responses: { '202': run },
    },
    {
      method: 'post',
      path: '/v1/jobs/{job}/run',
      operationId: 'runJobNow',
      summary: 'Run the job now.',
      tag: 'jobs',
      params: ['job'],
      responses: { '202': run },
    },
    {
      method: 'post',
      path: '/v1/jobs/{job}/toggle',
      operationId: 'toggleJob',
      summary: 'Enable a disabled job, disable an enabled one.',
      tag: 'jobs',
      params: ['job'],
      conflicts: true,
      responses: { '200': job },
    },
    {
      method: 'post',
      path: '/v1/jobs/{job}/backfill',
      operationId: 'backfillJob',
      summary: "Launch now every fire time of the job's schedule in [from, to).",
      tag: 'jobs',
      params: ['job'],
      query: backfillQuery,
      body: {
        required: false,
        content: {
          'application/json': { schema: jsonSchema(backfillBody.unwrap(), 'input') },
        },
      },
      responses: { '202': json(jsonSchema(statusSchemas.backfill), 'Launched.') },
    },
    {
      method: 'get',
      path: '/v1/jobs/{job}/executions',
      operationId: 'listExecutions',
      summary: "The job's executions, newest first.",
      tag: 'executions',
      params: ['job'],
      query: listExecutionsQuery,
      responses: { '200': json({ type: 'array', items: ref('Execution') }, 'Executions.', TOTAL) },
    },
    {
      method: 'delete',
      path: '/v1/jobs/{job}/executions',
      operationId: 'clearExecutions',
      summary: "Delete the job's executions and reset its counters.",
      tag: 'executions',
      params: ['job'],
      responses: { '200': json(jsonSchema(statusSchemas.cleared), 'Cleared.') },
    },
    {
      method: 'get',
      path: '/v1/jobs/{job}/executions/{id}',
      operationId: 'getExecution',
      summary: 'One execution, with its whole output.',
      tag: 'executions',
      params: ['job', 'id'],
      responses: { '200': json(ref('Execution'), 'The execution.') },
    },
    {
      method: 'get',
      path: '/v1/executions/{job}',
      operationId: 'listExecutionsOld',
      summary: "The job's executions (Dkron's route before 1.0, which the `dkron` Python package calls).",
      tag: 'executions',
      params: ['job'],
      responses: { '200': json({ type: 'array', items: ref('Execution') }, 'Executions.', TOTAL) },
    },
  ];
}

/** The document; `serverUrl` is where the API's paths start (the stage on API Gateway, `/` locally). */
export function openApiDocument(serverUrl = '/'): JsonSchema {
  // Built once per process (the schemas do not change), then only the server differs.
  built ??= buildDocument();
  return { ...built, servers: [{ url: serverUrl }] };
}

let built: JsonSchema | undefined;

function buildDocument(): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const op of operations()) {
    const parameters = [
      ...(op.params ?? []).map((p) => PATH_PARAMS[p]),
      ...(op.query ? queryParameters(op.query) : []),
      ...(op.metadataFilter ? [METADATA_FILTER, TAGS_FILTER] : []),
    ];
    const responses: Record<string, JsonSchema> = { ...op.responses };
    for (const [status, description] of Object.entries(ERRORS)) {
      responses[status] ??= { description, ...ERROR };
    }
    if (op.conflicts)
      responses['409'] ??= { description: 'Another write changed it first; retry.', ...ERROR };
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      operationId: op.operationId,
      summary: op.summary,
      tags: [op.tag],
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(op.body ? { requestBody: op.body } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Cronplane API',
      version: VERSION,
      description:
        "Dkron's /v1 API (jobs, executions, members, leader, pause, restore) and Cronplane's additions. " +
        'On AWS every call is signed with SigV4 (IAM).',
    },
    paths,
    components: {
      schemas: {
        JobInput: jobInput(),
        Job: jsonSchema(jobSchema),
        Execution: jsonSchema(executionSchema),
        Member: jsonSchema(memberSchema),
        Leader: jsonSchema(leaderSchema),
        Error: jsonSchema(errorSchema),
      },
    },
  };
}
