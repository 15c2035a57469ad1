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

export class ConflictError extends CronplaneError {
  readonly code = 'conflict';
}

/** The scheduler is paused: writes that would plan work are refused (Dkron answers 503). */
export class PausedError extends CronplaneError {
  readonly code = 'paused';
}

/** Another holder owns the scheduler lease, or ours was taken over (fencing token moved on). */
export class LeaseLostError extends CronplaneError {
  readonly code = 'lease_lost';
}
