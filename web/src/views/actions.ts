/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { api, type Job, jobPath } from '../api.ts';
import { act, button } from '../dom.ts';

/** Run now / Toggle / Delete for one job; `after` reloads the view, `afterDelete` leaves it. */
export function jobActions(
  job: Job,
  after: () => unknown,
  afterDelete: () => unknown = after,
): HTMLElement[] {
  const path = jobPath(job.name);
  return [
    button('Run now', () => act(`Run ${job.name}`, () => api('POST', `${path}/run`), after)),
    button('Toggle', () => act(`Toggle ${job.name}`, () => api('POST', `${path}/toggle`), after)),
    button(
      'Delete',
      () => {
        if (confirm(`Delete job "${job.name}" and its executions?`)) {
          void act(`Delete ${job.name}`, () => api('DELETE', path), afterDelete);
        }
      },
      'danger',
    ),
  ];
}
