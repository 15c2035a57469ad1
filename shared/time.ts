/** Time formatting shared by the API, the agent and the CLI. */

/** Dkron reports unset times (e.g. `finished_at` while running) as Go's zero time. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function toRfc3339(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

/** Accepts RFC 3339 and Dkron's short `2006-01-02T15:04` (taken as UTC). */
export function parseTime(text: string): number | null {
  const short = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(text) ? `${text}:00Z` : text;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(short)) return null;
  const ms = Date.parse(short);
  return Number.isNaN(ms) ? null : ms;
}
