/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The jobs list: search (q), filters (status, disabled, tag and metadata key=value), sort and paging, all kept in the
// URL hash so a filtered page can be linked and survives a reload.
import { apiList, errorBox, type Job } from '../api.ts';
import { type Every, h, statusBadge, table, time } from '../dom.ts';
import { jobActions } from './actions.ts';

const PAGE_SIZES = [10, 25, 50, 100];
const SORTS: Array<[string, string]> = [
  ['name', 'Name'],
  ['next', 'Next run'],
  ['last_error', 'Last error'],
  ['last_success', 'Last success'],
  ['error_count', 'Errors'],
  ['success_count', 'Successes'],
  ['schedule', 'Schedule'],
];
const STATUSES = ['', 'success', 'failed', 'partially_failed', 'running', 'untriggered'];

export interface ListState {
  q: string;
  status: string;
  disabled: string;
  meta: string;
  tag: string;
  sort: string;
  order: string;
  page: number;
  size: number;
}

export function listState(params: URLSearchParams): ListState {
  const size = Number(params.get('size'));
  return {
    q: params.get('q') ?? '',
    status: params.get('status') ?? '',
    disabled: params.get('disabled') ?? '',
    meta: params.get('meta') ?? '',
    tag: params.get('tag') ?? '',
    sort: params.get('sort') || 'name',
    order: params.get('order') === 'DESC' ? 'DESC' : 'ASC',
    page: Math.max(0, Number(params.get('page')) || 0),
    size: PAGE_SIZES.includes(size) ? size : 25,
  };
}

/**
 * The API query for a state: `q`, `status`, `disabled`, `metadata[k]=v`, `tags[k]=v`, `_sort`, `_order`,
 * `_start`, `_end`.
 */
export function listQuery(st: ListState): string {
  const q = new URLSearchParams({ _sort: st.sort, _order: st.order });
  q.set('_start', String(st.page * st.size));
  q.set('_end', String((st.page + 1) * st.size));
  if (st.q) q.set('q', st.q);
  if (st.status) q.set('status', st.status);
  if (st.disabled) q.set('disabled', st.disabled);
  const eq = st.meta.indexOf('=');
  if (eq > 0) q.set(`metadata[${st.meta.slice(0, eq).trim()}]`, st.meta.slice(eq + 1).trim());
  const teq = st.tag.indexOf('=');
  if (teq > 0) q.set(`tags[${st.tag.slice(0, teq).trim()}]`, st.tag.slice(teq + 1).trim());
  return q.toString();
}

function toHash(st: ListState): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(st)) {
    const dflt = (listState(new URLSearchParams()) as unknown as Record<string, unknown>)[k];
    if (v !== dflt) p.set(k, String(v));
  }
  const qs = p.toString();
  return `#/jobs${qs ? `?${qs}` : ''}`;
}

export async function jobsView(view: HTMLElement, every: Every, params: URLSearchParams): Promise<void> {
  const st = listState(params);
  const go = (change: Partial<ListState>) => {
    location.hash = toHash({ ...st, page: 0, ...change });
  };

  const search = h('input', { type: 'search', name: 'q', value: st.q, placeholder: 'name or display name' });
  const status = h(
    'select',
    { name: 'status' },
    STATUSES.map((v) => h('option', { value: v, selected: v === st.status }, v || 'any')),
  );
  const disabled = h(
    'select',
    { name: 'disabled' },
    [
      ['', 'any'],
      ['false', 'enabled'],
      ['true', 'disabled'],
    ].map(([v, label]) => h('option', { value: v, selected: v === st.disabled }, label)),
  );
  const meta = h('input', { type: 'text', name: 'meta', value: st.meta, placeholder: 'key=value' });
  const tag = h('input', { type: 'text', name: 'tag', value: st.tag, placeholder: 'role=web' });
  const sort = h(
    'select',
    { name: 'sort' },
    SORTS.map(([v, label]) => h('option', { value: v, selected: v === st.sort }, label)),
  );
  const order = h(
    'select',
    { name: 'order' },
    [
      ['ASC', 'ascending'],
      ['DESC', 'descending'],
    ].map(([v, label]) => h('option', { value: v, selected: v === st.order }, label)),
  );
  const size = h(
    'select',
    { name: 'size' },
    PAGE_SIZES.map((n) => h('option', { value: n, selected: n === st.size }, String(n))),
  );
  const filters = h(
    'form',
    {
      class: 'filters',
      role: 'search',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        go({
          q: search.value.trim(),
          status: status.value,
          disabled: disabled.value,
          meta: meta.value.trim(),
          tag: tag.value.trim(),
          sort: sort.value,
          order: order.value,
          size: Number(size.value),
        });
      },
      onchange: (ev: Event) => {
        if (ev.target instanceof HTMLSelectElement) filters.requestSubmit();
      },
    },
    h('label', {}, 'Search ', search),
    h('label', {}, 'Status ', status),
    h('label', {}, 'Enabled ', disabled),
    h('label', {}, 'Tag ', tag),
    h('label', {}, 'Metadata ', meta),
    h('label', {}, 'Sort by ', sort),
    h('label', {}, 'Order ', order),
    h('label', {}, 'Per page ', size),
    h('button', { type: 'submit' }, 'Apply'),
  );
  const results = h('div', { class: 'results' });
  view.replaceChildren(
    h('h1', {}, 'Jobs ', h('a', { class: 'button', href: '#/new' }, 'New job')),
    filters,
    results,
  );

  const load = async () => {
    try {
      const { items: jobs, total } = await apiList<Job>(`/v1/jobs?${listQuery(st)}`);
      const rows = jobs.map((job) =>
        h(
          'tr',
          { class: job.disabled ? 'disabled' : '' },
          h('td', {}, h('a', { href: `#/jobs/${encodeURIComponent(job.name)}` }, job.name)),
          h('td', {}, h('code', {}, job.schedule)),
          h('td', {}, job.timezone || 'UTC'),
          h('td', {}, time(job.next)),
          h('td', {}, statusBadge(job.status)),
          h(
            'td',
            { class: 'num' },
            h('span', { class: 'ok' }, job.success_count ?? 0),
            ' / ',
            h('span', { class: 'bad' }, job.error_count ?? 0),
          ),
          h('td', {}, job.disabled ? 'yes' : 'no'),
          h('td', { class: 'row-actions' }, jobActions(job, load)),
        ),
      );
      const first = total === 0 ? 0 : st.page * st.size + 1;
      const last = st.page * st.size + jobs.length;
      const filtered = st.q || st.status || st.disabled || st.meta || st.tag;
      results.replaceChildren(
        table(
          ['Name', 'Schedule', 'Timezone', 'Next', 'Status', 'Success / Error', 'Disabled', ''],
          rows,
          filtered ? 'No jobs match these filters.' : 'No jobs yet.',
        ),
        h(
          'nav',
          { class: 'pager', 'aria-label': 'pages' },
          h('span', { class: 'page-info' }, `${first}–${last} of ${total}`),
          h(
            'button',
            { type: 'button', disabled: st.page === 0, onclick: () => go({ page: st.page - 1 }) },
            '‹ Previous',
          ),
          h(
            'button',
            { type: 'button', disabled: last >= total, onclick: () => go({ page: st.page + 1 }) },
            'Next ›',
          ),
        ),
      );
    } catch (error) {
      results.replaceChildren(errorBox(error));
    }
  };
  await load();
  every(5000, load);
}
