/**
 * Job tags → target selector. A module of its own (not job.ts) because agents need it and job.ts brings
 * the schedule parser (cron-parser, luxon) along, which an agent never runs.
 */

/** Dkron tag syntax: `{"role": "web:2"}` targets 2 agents with role=web; no count = every matching agent. */
export function parseTags(tags: Record<string, string>): {
  selector: Record<string, string>;
  count: number | null;
} {
  const selector: Record<string, string> = {};
  let count: number | null = null;
  for (const [key, raw] of Object.entries(tags)) {
    const m = /^(.*?)(?::(\d+))?$/.exec(raw);
    selector[key] = m?.[1] ?? raw;
    if (m?.[2] !== undefined) {
      const n = Number(m[2]);
      count = count === null ? n : Math.min(count, n); // Dkron: the lowest count wins
    }
  }
  return { selector, count };
}
