/**
 * Domain errors. Storage translates AWS failures into these where they arise; the API maps them to
 * HTTP in one table (functions/api/errors.ts). `expose` marks errors whose message is safe to show.
 */
export abstract class CronplaneError extends Error {
  abstract readonly code: string;
  readonly expose: boolean = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input. `field` is the dotted path of the offending field, `rule` what it must satisfy. */
export class ValidationError extends CronplaneError {
  readonly code = 'validation';
  constructor(
    readonly field: string,
    readonly rule: string,
    options?: { cause?: unknown },
  ) {
    super(`${field}: ${rule}`, options);
  }
}

export class NotFoundError extends CronplaneError {
  readonly code = 'not_found';
}

/** `parent_job` names no stored job: Dkron's 404 with its text, and the field and rule as for a 400. */
export class ParentNotFoundError extends NotFoundError {
  readonly field = 'parent_job';
  readonly rule: string;
  constructor(parent: string) {
    super('specified parent job not found');
    this.rule = `must name an existing job (${parent} is not stored)`;
  }
}

export class ConflictError extends CronplaneError {
  readonly code = 'conflict';
}

/**
 * A job that other jobs name as `parent_job` cannot be deleted. The API answers 404 as Dkron does for any
 * delete it refuses (clients such as pydkron take every other status for a success).
 */
export class DependentJobsError extends CronplaneError {
  readonly code = 'dependent_jobs';
}

/** The scheduler is paused: writes that would plan work are refused (Dkron answers 503). */
export class PausedError extends CronplaneError {
  readonly code = 'paused';
}

/** Another holder owns the scheduler lease, or ours was taken over (fencing token moved on). */
export class LeaseLostError extends CronplaneError {
  readonly code = 'lease_lost';
}
