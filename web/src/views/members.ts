/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { api, errorBox, type Member } from '../api.ts';
import { type Every, h, table } from '../dom.ts';

export async function membersView(view: HTMLElement, every: Every): Promise<void> {
  const load = async () => {
    try {
      const members = await api<Member[]>('GET', '/v1/members');
      const rows = members.map((m) =>
        h(
          'tr',
          {},
          h('td', {}, m.Name),
          h('td', {}, h('span', { class: `badge member-${m.statusText}` }, m.statusText)),
          h(
            'td',
            {},
            Object.entries(m.Tags ?? {}).map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`)),
          ),
          h('td', { class: 'num' }, m.running ?? 0),
          h('td', { class: 'num' }, m.capacity ?? '—'),
        ),
      );
      view.replaceChildren(
        h('h1', {}, 'Members'),
        table(['Name', 'Status', 'Tags', 'Running', 'Capacity'], rows, 'No agents have joined.'),
      );
    } catch (error) {
      view.replaceChildren(h('h1', {}, 'Members'), errorBox(error));
    }
  };
  await load();
  every(5000, load);
}
