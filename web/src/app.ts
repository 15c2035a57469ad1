/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// Cronplane web UI: a dependency-free single page over the same-origin /v1 API, routed by the URL hash.
import { ApiError, api } from './api.ts';
import { $, act, h } from './dom.ts';
import { dashboardView } from './views/dashboard.ts';
import { jobFormView } from './views/form.ts';
import { jobView } from './views/job.ts';
import { jobsView } from './views/jobs.ts';
import { membersView } from './views/members.ts';

async function refreshHeader(): Promise<void> {
  try {
    const leader = await api<{ Name: string; holding: boolean }>('GET', '/v1/leader');
    $('#leader').replaceChildren(`${leader.Name}${leader.holding ? '' : ' (lease expired)'}`);
  } catch (error) {
    $('#leader').replaceChildren(
      error instanceof ApiError && error.status === 404 ? 'no tick yet' : `? (${(error as Error).message})`,
    );
  }
  try {
    const { paused } = await api<{ paused: boolean }>('GET', '/v1/pause');
    $('#pause-state').replaceChildren(paused ? 'paused' : 'running');
    $('#pause-state').className = `badge ${paused ? 'status-failed' : 'status-success'}`;
    const button = $('#pause-button') as HTMLButtonElement;
    button.replaceChildren(paused ? 'Unpause' : 'Pause');
    button.dataset.paused = String(paused);
    button.disabled = false;
  } catch (error) {
    $('#pause-state').replaceChildren(`? (${(error as Error).message})`);
  }
}

$('#pause-button').addEventListener('click', (event) => {
  const paused = (event.currentTarget as HTMLElement).dataset.paused === 'true';
  void act(
    paused ? 'Unpause' : 'Pause',
    () => api('POST', paused ? '/v1/unpause' : '/v1/pause'),
    refreshHeader,
  );
});

let timers: ReturnType<typeof setInterval>[] = [];
let renderSeq = 0;

async function render(): Promise<void> {
  for (const t of timers) clearInterval(t);
  timers = [];
  const seq = ++renderSeq;
  // Each render draws into a fresh container: a slow load of a view already left writes into a detached node.
  const view = h('div');
  $('#view').replaceChildren(view);
  const every = (ms: number, fn: () => unknown) => {
    if (seq === renderSeq) timers.push(setInterval(fn, ms));
  };
  const [pathPart = '', queryPart = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [route, arg] = pathPart.split('/');
  const param = arg === undefined ? undefined : decodeURIComponent(arg);
  for (const link of document.querySelectorAll<HTMLElement>('nav a')) {
    link.classList.toggle('active', link.dataset.nav === (route || 'jobs'));
  }
  if (route === 'jobs' && param) await jobView(view, every, param);
  else if (route === 'new') await jobFormView(view);
  else if (route === 'edit' && param) await jobFormView(view, param);
  else if (route === 'members') await membersView(view, every);
  else if (route === 'dashboard') await dashboardView(view, every);
  else await jobsView(view, every, new URLSearchParams(queryPart));
}

window.addEventListener('hashchange', () => void render());
void render();
void refreshHeader();
setInterval(refreshHeader, 5000);
