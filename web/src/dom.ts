/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// Every value from the API goes into DOM text nodes and attributes, never parsed as HTML.

export type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, unknown>;

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill<E extends Element>(el: E, attrs: Attrs, children: Child[]): E {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value as EventListener);
    } else if (key in el && typeof value !== 'string' && !(el instanceof SVGElement)) {
      (el as unknown as Record<string, unknown>)[key] = value;
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of (children as unknown[]).flat(Number.POSITIVE_INFINITY)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element. Children may be strings/numbers (become text nodes), nodes, arrays, null or false. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, same rules: API values only ever as text nodes or attribute values. */
export function s(tag: string, attrs: Attrs = {}, ...children: Child[]): SVGElement {
  return fill(document.createElementNS(SVG_NS, tag) as SVGElement, attrs, children);
}

export function $(selector: string): HTMLElement {
  const el = document.querySelector<HTMLElement>(selector);
  if (!el) throw new Error(`no ${selector}`);
  return el;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Local time for display, the exact RFC 3339 value as a tooltip; empty/zero times become a dash. */
export function time(value: string | null | undefined): HTMLElement {
  if (!value || value === ZERO_TIME) return h('span', { class: 'muted' }, '—');
  const date = new Date(value);
  const shown = Number.isNaN(date.getTime()) ? value : date.toLocaleString();
  return h('time', { datetime: value, title: value }, shown);
}

export function statusBadge(status: string | undefined): HTMLElement {
  return h('span', { class: `badge status-${status || 'none'}` }, status || '—');
}

export function table(headers: string[], rows: Node[], empty: string): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  const head = h(
    'tr',
    {},
    headers.map((name) => h('th', {}, name)),
  );
  return h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, head), h('tbody', {}, rows)));
}

export function button(label: string, onclick: (ev: MouseEvent) => void, className?: string): HTMLElement {
  return h('button', { type: 'button', class: className, onclick }, label);
}

let flashTimer: ReturnType<typeof setTimeout> | undefined;
export function flash(message: string, kind = 'info'): void {
  const el = $('#flash');
  el.replaceChildren(message);
  el.className = kind;
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => {
    el.hidden = true;
  }, 4000);
}

/** Short duration: 850 ms, 12.3 s, 4 m 05 s, 2 h 10 m. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000)
    return `${Math.floor(ms / 60_000)} m ${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} m`;
}

/** Runs an action from a button, reporting failure in the flash bar, then calls `after`. */
export async function act(label: string, fn: () => Promise<unknown>, after?: () => unknown): Promise<void> {
  try {
    await fn();
    flash(`${label}: done`);
  } catch (error) {
    flash(`${label}: ${error instanceof Error ? error.message : String(error)}`, 'error');
  }
  await after?.();
}

/** Registers a periodic reload for the current view; the router clears them when the view changes. */
export type Every = (ms: number, fn: () => unknown) => void;
