/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// A job's recent runs as plain SVG: one point per run at its actual start (x) and duration (y), coloured by
// status, with a line back to its scheduled fire time, so late starts show as a tail to the left.
import type { Execution } from './api.ts';
import { duration, h, s } from './dom.ts';

const W = 720;
const H = 220;
const PAD = { left: 64, right: 16, top: 16, bottom: 36 };

export const STATUS_COLOURS: Record<string, string> = {
  succeeded: '#1a7f37',
  failed: '#cf222e',
  timeout: '#bc4c00',
  lost: '#8250df',
  cancelled: '#6e7781',
  skipped: '#afb8c1',
  running: '#0969da',
  scheduled: '#54aeff',
};

const ms = (t: string | undefined) => (t ? Date.parse(t) : Number.NaN);

export interface Run {
  id: string;
  status: string;
  scheduled: number;
  started: number;
  duration: number;
}

/** The runs a chart can place: started ones, their duration so far for those still running. */
export function runsOf(executions: Execution[], now = Date.now()): Run[] {
  const runs: Run[] = [];
  for (const e of executions) {
    const started = ms(e.started_at);
    if (Number.isNaN(started) || started <= 0) continue;
    const finished = ms(e.finished_at);
    const end = Number.isNaN(finished) || finished < started ? now : finished;
    const scheduled = ms(e.scheduled_at);
    runs.push({
      id: e.id,
      status: e.status,
      scheduled: Number.isNaN(scheduled) ? started : scheduled,
      started,
      duration: end - started,
    });
  }
  return runs.sort((a, b) => a.started - b.started);
}

export function historyChart(executions: Execution[], now = Date.now()): HTMLElement {
  const runs = runsOf(executions, now);
  if (runs.length === 0) return h('p', { class: 'muted chart-empty' }, 'No runs to chart yet.');
  const t0 = Math.min(...runs.map((r) => r.scheduled));
  const t1 = Math.max(...runs.map((r) => r.started), t0 + 1000);
  const dMax = Math.max(...runs.map((r) => r.duration), 1);
  const x = (t: number) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (d: number) => H - PAD.bottom - (d / dMax) * (H - PAD.top - PAD.bottom);
  const fmt = (t: number) => new Date(t).toLocaleTimeString();

  const grid = [0, 0.5, 1].map((f) =>
    s(
      'g',
      { class: 'grid' },
      s('line', { x1: PAD.left, x2: W - PAD.right, y1: y(f * dMax), y2: y(f * dMax) }),
      s('text', { x: PAD.left - 6, y: y(f * dMax) + 4, 'text-anchor': 'end' }, duration(f * dMax)),
    ),
  );
  const points = runs.map((r) => {
    const colour = STATUS_COLOURS[r.status] ?? '#57606a';
    const late = r.started - r.scheduled;
    return s(
      'g',
      { class: `run run-${r.status}`, 'data-id': r.id, 'data-status': r.status },
      s(
        'title',
        {},
        `${r.id} · ${r.status} · ${duration(r.duration)} · started ${duration(Math.max(0, late))} after its fire time`,
      ),
      late > 0
        ? s('line', {
            class: 'lateness',
            x1: x(r.scheduled),
            x2: x(r.started),
            y1: y(r.duration),
            y2: y(r.duration),
            stroke: colour,
          })
        : null,
      late > 0
        ? s('circle', {
            class: 'scheduled',
            cx: x(r.scheduled),
            cy: y(r.duration),
            r: 2.5,
            fill: 'none',
            stroke: colour,
          })
        : null,
      s('circle', { class: 'started', cx: x(r.started), cy: y(r.duration), r: 5, fill: colour }),
    );
  });
  const present = [...new Set(runs.map((r) => r.status))];
  return h(
    'figure',
    { class: 'chart' },
    s(
      'svg',
      {
        viewBox: `0 0 ${W} ${H}`,
        width: '100%',
        role: 'img',
        'aria-label': `Run history: ${runs.length} runs, duration over time`,
        class: 'history-chart',
      },
      grid,
      s('line', { class: 'axis', x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom }),
      s('text', { class: 'axis-label', x: PAD.left, y: H - 12 }, fmt(t0)),
      s('text', { class: 'axis-label', x: W - PAD.right, y: H - 12, 'text-anchor': 'end' }, fmt(t1)),
      s(
        'text',
        {
          class: 'axis-label',
          x: 12,
          y: PAD.top,
          transform: `rotate(-90 12 ${PAD.top})`,
          'text-anchor': 'end',
        },
        'duration',
      ),
      points,
    ),
    h(
      'figcaption',
      { class: 'legend' },
      present.map((st) =>
        h(
          'span',
          { class: 'legend-item' },
          h('span', { class: 'swatch', style: `background:${STATUS_COLOURS[st] ?? '#57606a'}` }),
          st,
        ),
      ),
      h(
        'span',
        { class: 'muted small' },
        ' ● actual start · ○— scheduled fire time (late starts trail left)',
      ),
    ),
  );
}

/** Horizontal bars, one per label (the dashboard's counts by status). */
export function barChart(counts: Array<[string, number]>, label: string): SVGElement {
  const max = Math.max(1, ...counts.map(([, n]) => n));
  const rowH = 26;
  const w = 420;
  return s(
    'svg',
    {
      viewBox: `0 0 ${w} ${counts.length * rowH + 4}`,
      width: '100%',
      role: 'img',
      'aria-label': label,
      class: 'bar-chart',
    },
    counts.map(([name, n], i) =>
      s(
        'g',
        { class: 'bar', 'data-status': name },
        s('text', { x: 100, y: i * rowH + 18, 'text-anchor': 'end' }, name),
        s('rect', {
          x: 108,
          y: i * rowH + 4,
          height: rowH - 8,
          width: Math.max(1, (n / max) * (w - 160)),
          fill: STATUS_COLOURS[name] ?? '#57606a',
        }),
        s('text', { class: 'count', x: 114 + (n / max) * (w - 160), y: i * rowH + 18 }, String(n)),
      ),
    ),
  );
}
