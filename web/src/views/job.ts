/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { api, type Execution, errorBox, type Job, jobPath } from '../api.ts';
import { historyChart } from '../chart.ts';
import { type Every, h, statusBadge, table, time } from '../dom.ts';
import { jobActions } from './actions.ts';

export async function jobView(view: HTMLElement, every: Every, name: string): Promise<void> {
  const openOutputs = new Set<string>();
  let jsonOpen = false;
  const load = async () => {
    let job: Job;
    let executions: Execution[];
    try {
      [job, executions] = await Promise.all([
        api<Job>('GET', jobPath(name)),
        api<Execution[]>('GET', `${jobPath(name)}/executions?_order=DESC&_limit=100`),
      ]);
    } catch (error) {
      view.replaceChildren(
        h('h1', {}, name),
        errorBox(error),
        h('p', {}, h('a', { href: '#/jobs' }, '← Jobs')),
      );
      return;
    }
    const rows = executions.map((e) => {
      const output = e.output
        ? h(
            'details',
            {
              // A running job's output is open: it grows with each refresh (live output).
              open: openOutputs.has(e.id) || e.status === 'running',
              ontoggle: (ev: Event) =>
                (ev.target as HTMLDetailsElement).open ? openOutputs.add(e.id) : openOutputs.delete(e.id),
            },
            h('summary', {}, `${e.output.length} chars${e.output_truncated ? ' (truncated)' : ''}`),
            h('pre', {}, e.output),
          )
        : h('span', { class: 'muted' }, '—');
      return h(
        'tr',
        {},
        h('td', {}, h('code', {}, e.id)),
        h('td', {}, statusBadge(e.status)),
        h('td', {}, e.trigger ?? ''),
        h('td', {}, time(e.scheduled_at)),
        h('td', {}, time(e.started_at)),
        h('td', {}, time(e.finished_at)),
        h('td', {}, e.node_name || '—'),
        h('td', { class: 'num' }, e.attempt ?? ''),
        h('td', { class: 'num' }, e.exit_code ?? '—'),
        h('td', { class: 'output' }, output),
        h('td', {}, e.reason ?? ''),
      );
    });
    view.replaceChildren(
      h('p', {}, h('a', { href: '#/jobs' }, '← Jobs')),
      h(
        'h1',
        {},
        job.displayname || job.name,
        ' ',
        statusBadge(job.status),
        job.disabled ? h('span', { class: 'badge' }, 'disabled') : null,
      ),
      h(
        'div',
        { class: 'actions' },
        jobActions(job, load, () => {
          location.hash = '#/jobs';
        }),
        h('a', { class: 'button', href: `#/edit/${encodeURIComponent(job.name)}` }, 'Edit'),
      ),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Schedule'),
        h('dd', {}, h('code', {}, job.schedule), ` (${job.timezone || 'UTC'})`),
        h('dt', {}, 'Next'),
        h('dd', {}, time(job.next)),
        h('dt', {}, 'Executor'),
        h('dd', {}, job.executor ?? 'shell'),
      ),
      h('h2', {}, 'Run history', h('span', { class: 'muted small' }, ` · last ${executions.length} runs`)),
      historyChart(executions),
      h(
        'details',
        {
          class: 'job-json',
          open: jsonOpen,
          ontoggle: (ev: Event) => (jsonOpen = (ev.target as HTMLDetailsElement).open),
        },
        h('summary', {}, 'Job JSON'),
        h('pre', {}, JSON.stringify(job, null, 2)),
      ),
      h(
        'h2',
        {},
        `Executions (${executions.length})`,
        h('span', { class: 'muted small' }, ' · refreshes every 2 s'),
      ),
      table(
        'ID Status Trigger Scheduled Started Finished Node Attempt Exit Output Reason'.split(' '),
        rows,
        'No executions yet.',
      ),
    );
  };
  await load();
  every(2000, load);
}
