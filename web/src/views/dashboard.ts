/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The dashboard: runs by status over the last 24 h, the fleet's capacity and load, the leader, and the
// next fire times across jobs.
import { api, type Execution, errorBox, type Job, jobPath, type Member } from '../api.ts';
import { barChart } from '../chart.ts';
import { type Every, h, statusBadge, table, time, ZERO_TIME } from '../dom.ts';

const DAY_MS = 24 * 3600_000;
/** Executions read per job; a job with more runs in 24 h than this shows its latest only. */
const PER_JOB = 200;
const STATUS_ORDER = ['succeeded', 'failed', 'timeout', 'lost', 'cancelled', 'skipped', 'running'];

/** How many of these executions, started or due in the last 24 h, ended in each status. */
export function countByStatus(executions: Execution[], now = Date.now()): Array<[string, number]> {
  const counts = new Map<string, number>(STATUS_ORDER.map((s) => [s, 0]));
  for (const e of executions) {
    // Runs that never started (skipped, lost before the claim) count at their fire time.
    const started = e.started_at && e.started_at !== ZERO_TIME ? e.started_at : undefined;
    const at = Date.parse(started ?? e.scheduled_at ?? '');
    if (!(at >= now - DAY_MS) || e.status === 'scheduled') continue;
    counts.set(e.status, (counts.get(e.status) ?? 0) + 1);
  }
  return [...counts];
}

/**
 * The jobs that can have runs in the window: a run since `now - 24 h` (its last success or error), or one
 * running now. The others cost no request, so the dashboard's reads grow with active jobs, not all jobs.
 */
export function ranRecently(jobs: Job[], now = Date.now()): Job[] {
  const since = now - DAY_MS;
  const at = (t: unknown) => (typeof t === 'string' ? Date.parse(t) : Number.NaN);
  return jobs.filter(
    (j) => j.status === 'running' || at(j.last_success) >= since || at(j.last_error) >= since,
  );
}

async function inBatches<T, R>(items: T[], size: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size)
    out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

interface Leader {
  Name?: string;
  holding?: boolean;
  expiresAt?: string;
}

export async function dashboardView(view: HTMLElement, every: Every): Promise<void> {
  const load = async () => {
    const now = Date.now();
    const [jobs, members, leader] = await Promise.allSettled([
      api<Job[]>('GET', '/v1/jobs?_sort=next&_order=ASC'),
      api<Member[]>('GET', '/v1/members'),
      api<Leader>('GET', '/v1/leader'),
    ]);
    let runs: HTMLElement;
    if (jobs.status === 'fulfilled') {
      const lists = await inBatches(ranRecently(jobs.value, now), 6, (j) =>
        api<Execution[]>(
          'GET',
          `${jobPath(j.name)}/executions?_order=DESC&_limit=${PER_JOB}&output_size_limit=0`,
        ).catch(() => [] as Execution[]),
      );
      const counts = countByStatus(lists.flat(), now);
      const total = counts.reduce((n, [, c]) => n + c, 0);
      runs = h(
        'section',
        { class: 'card', id: 'runs-24h' },
        h('h2', {}, 'Runs in the last 24 h', h('span', { class: 'muted small' }, ` · ${total} in all`)),
        barChart(
          counts,
          `Runs in the last 24 hours by status: ${counts.map(([s, n]) => `${s} ${n}`).join(', ')}`,
        ),
      );
    } else
      runs = h(
        'section',
        { class: 'card', id: 'runs-24h' },
        h('h2', {}, 'Runs in the last 24 h'),
        errorBox(jobs.reason),
      );

    const fleet = h(
      'section',
      { class: 'card', id: 'fleet' },
      h('h2', {}, 'Fleet'),
      members.status === 'fulfilled'
        ? [
            h(
              'p',
              { class: 'muted small' },
              `${members.value.filter((m) => m.statusText === 'alive').length} alive · ` +
                `${members.value.reduce((n, m) => n + (m.running ?? 0), 0)} running of ` +
                `${members.value.filter((m) => m.statusText === 'alive').reduce((n, m) => n + (m.capacity ?? 0), 0)} slots`,
            ),
            table(
              ['Agent', 'Status', 'Running / capacity', 'Tags'],
              members.value.map((m) =>
                h(
                  'tr',
                  {},
                  h('td', {}, m.Name),
                  h('td', {}, h('span', { class: `badge member-${m.statusText}` }, m.statusText)),
                  h(
                    'td',
                    { class: 'num' },
                    h('meter', { min: 0, max: m.capacity || 1, value: m.running ?? 0 }),
                    ` ${m.running ?? 0} / ${m.capacity ?? '?'}`,
                  ),
                  h(
                    'td',
                    {},
                    Object.entries(m.Tags ?? {}).map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`)),
                  ),
                ),
              ),
              'No agents have joined.',
            ),
          ]
        : errorBox(members.reason),
    );

    const leaderCard = h(
      'section',
      { class: 'card', id: 'leader-card' },
      h('h2', {}, 'Leader'),
      leader.status === 'fulfilled'
        ? h(
            'p',
            {},
            h('strong', {}, leader.value.Name ?? '?'),
            ' ',
            statusBadge(leader.value.holding ? 'holding' : 'lease expired'),
            leader.value.expiresAt ? [' · lease until ', time(leader.value.expiresAt)] : null,
          )
        : h(
            'p',
            { class: 'muted' },
            leader.reason instanceof Error && 'status' in leader.reason && leader.reason.status === 404
              ? 'No tick has run yet.'
              : String(leader.reason),
          ),
    );

    const upcoming =
      jobs.status === 'fulfilled'
        ? jobs.value
            .filter((j) => j.next && !j.disabled)
            .sort((a, b) => Date.parse(a.next!) - Date.parse(b.next!))
            .slice(0, 10)
        : [];
    const upcomingCard = h(
      'section',
      { class: 'card', id: 'upcoming' },
      h('h2', {}, 'Upcoming'),
      table(
        ['Next', 'Job', 'Schedule'],
        upcoming.map((j) =>
          h(
            'tr',
            {},
            h('td', {}, time(j.next)),
            h('td', {}, h('a', { href: `#/jobs/${encodeURIComponent(j.name)}` }, j.name)),
            h('td', {}, h('code', {}, j.schedule)),
          ),
        ),
        'Nothing scheduled.',
      ),
    );
    view.replaceChildren(
      h('h1', {}, 'Dashboard'),
      h('div', { class: 'dashboard' }, runs, fleet, leaderCard, upcomingCard),
    );
  };
  await load();
  every(10_000, load);
}
