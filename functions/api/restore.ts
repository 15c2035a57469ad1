/**
 * `POST /v1/restore`: Dkron's restore of a backup file. The file is a JSON array of jobs (what
 * `GET /v1/jobs` answers), in the multipart/form-data field `file` as `curl -F file=@jobs.json` sends it;
 * a JSON array as the body is taken too. The rules (Dkron's, and where we differ) are in
 * shared/jobs/restore.ts.
 *
 * Answers, per Dkron's status codes:
 * - 200 with one result per job, in write order (parents first): `{"index", "name", "result", "status", …}`.
 *   `result` is Dkron's own line, `success create NAME` or `fail create NAME`, so scripts that look for
 *   "fail" in the answer keep working; `status` is what `POST /v1/jobs` would have answered for that job
 *   (201).
 *   Dkron answers a JSON *string* holding that list of lines (its handler encodes the list twice); we
 *   answer the list itself.
 * - 400 when the file is not there, not JSON or not an array (naming the field, `file` or `body`), or when
 *   any job is invalid: then nothing is written and `results` lists every invalid job with its `field`
 *   and `rule`; the top-level `field` points into the file (`file[2].schedule`). Dkron answers 404 for a
 *   missing `file` field, and a bare 400 at the first invalid job.
 * - 503 while the scheduler is paused, as every job write; nothing is written.
 * - Should a write fail after the checks (a concurrent change: 409; the store: 500), the jobs already
 *   written are put back and the answer is that write's error, saying so; nothing of the file stays.
 */
import type { Context } from '../../shared/context.ts';
import { ValidationError } from '../../shared/errors.ts';
import { type RestoreInvalid, type RestoreWrite, restoreJobs } from '../../shared/jobs/restore.ts';
import { errorResponse } from './errors.ts';
import { MultipartForm } from './multipart.ts';
import type { ApiRequest, ApiResponse } from './request.ts';

export const RESTORE_PATH = /^\/v1\/restore\/?$/;

export interface RestoreResult {
  /** The job's position in the file, from 0. */
  readonly index: number;
  readonly name: string;
  /** Dkron's line: `success create NAME` or `fail create NAME`. */
  readonly result: string;
  readonly status: number;
  readonly created?: boolean;
  readonly error?: string;
  readonly field?: string;
  readonly rule?: string;
}

const FILE_RULE =
  'is required: a multipart/form-data field holding a JSON array of jobs (curl -F file=@jobs.json)';

/** The jobs of the request, and where they came from (`file` or `body`), or a 400 naming the field. */
function jobsOf(body: unknown): { source: 'file' | 'body'; jobs: unknown[] } {
  if (body instanceof MultipartForm) {
    const text = body.text('file');
    if (text === undefined) throw new ValidationError('file', FILE_RULE);
    if (typeof text !== 'string') throw new ValidationError('file', 'must be sent once');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ValidationError('file', `must be valid JSON (${(error as Error).message})`);
    }
    if (!Array.isArray(parsed)) throw new ValidationError('file', 'must be a JSON array of jobs');
    return { source: 'file', jobs: parsed };
  }
  if (body === undefined)
    throw new ValidationError('file', `${FILE_RULE}, or send the JSON array as the body`);
  if (!Array.isArray(body)) {
    throw new ValidationError(
      'body',
      'must be a JSON array of jobs (or multipart/form-data with a file field)',
    );
  }
  return { source: 'body', jobs: body };
}

function invalidResult({ index, name, error }: RestoreInvalid): RestoreResult {
  return {
    index,
    name,
    result: `fail create ${name}`,
    status: 400,
    error: error.message,
    field: error.field,
    rule: error.rule,
  };
}

function writeResult({ index, name, created }: RestoreWrite): RestoreResult {
  return { index, name, result: `success create ${name}`, status: 201, created };
}

export async function restore(ctx: Context, req: ApiRequest): Promise<ApiResponse> {
  const { source, jobs } = jobsOf(req.body);
  const outcome = await restoreJobs(ctx, jobs);
  if (outcome.rejected) {
    const results = outcome.invalid.map(invalidResult);
    const first = outcome.invalid[0]!;
    const more = results.length > 1 ? ` (and ${results.length - 1} more invalid, see results)` : '';
    return {
      status: 400,
      body: {
        error: `${source}[${first.index}] (${first.name || 'no name'}): ${first.error.message}${more}; nothing was restored`,
        field: `${source}[${first.index}].${first.error.field}`,
        rule: first.error.rule,
        results,
      },
    };
  }
  if (outcome.failed) {
    const { index, name, error } = outcome.failed;
    const { statusCode, body } = errorResponse(error);
    if (statusCode >= 500) console.error(error);
    const { notRestored } = outcome.undone;
    const left =
      notRestored.length === 0
        ? 'nothing was restored (the jobs already written were put back)'
        : `the jobs already written were put back except ${notRestored.join(', ')}`;
    return {
      status: statusCode,
      body: {
        ...body,
        error: `${source}[${index}] (${name}): ${body.error}; ${left}`,
        not_put_back: notRestored,
      },
    };
  }
  return { status: 200, body: outcome.writes.map(writeResult) };
}
