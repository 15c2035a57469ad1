import { ValidationError } from '../errors.ts';

/** A schedule expression that cannot be parsed; `rule` says what is wrong (field is always `schedule`). */
export class ScheduleError extends ValidationError {
  constructor(rule: string, options?: { cause?: unknown }) {
    super('schedule', rule, options);
  }
}
