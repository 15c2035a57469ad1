// Cronplane web UI: a dependency-free single page over the same-origin /v1 API.
// Every value from the API goes into DOM text nodes and attributes, never parsed as HTML: always escaped.

const EXAMPLE_JOB = {
  name: 'hello',
  schedule: '@every 5s',
  executor: 'shell',
  executor_config: { command: 'echo hello' },
};
// Returned by the API but not part of a job definition: dropped before editing.
const COMPUTED_FIELDS =
  'status next success_count error_count missed_count last_success last_error dependent_jobs version'.split(
    ' ',
  );
const ZERO_TIME = '0001-01-01T00:00:00Z';

// ---------- helpers ----------

/** Builds an element. Children may be strings/numbers (become text nodes), nodes, arrays, null or false. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const $ = (selector) => document.querySelector(selector);

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `HTTP ${status}`);
    this.status = status;
    this.body = body ?? {};
  }
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? undefined : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text };
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

const jobPath = (name) => `/v1/jobs/${encodeURIComponent(name)}`;

/** Local time for display, the exact RFC 3339 value as a tooltip; empty/zero times become a dash. */
function time(value) {
  if (!value || value === ZERO_TIME) return h('span', { class: 'muted' }, '—');
  const date = new Date(value);
  const shown = Number.isNaN(date.getTime()) ? value : date.toLocaleString();
  return h('time', { datetime: value, title: value }, shown);
}

function statusBadge(status) {
  return h('span', { class: `badge status-${status || 'none'}` }, status || '—');
}

function errorBox(error) {
  const body = error instanceof ApiError ? error.body : {};
  return h(
    'div',
    { class: 'error', role: 'alert' },
    h('strong', {}, error instanceof ApiError ? `${error.status}: ` : 'Error: '),
    error.message,
    body.field || body.rule
      ? h('div', { class: 'muted small' }, [
          `field: ${body.field ?? '—'}`,
          body.rule && ` · rule: ${body.rule}`,
        ])
      : null,
  );
}

let flashTimer;
function flash(message, kind = 'info') {
  const el = $('#flash');
  el.replaceChildren(message);
  el.className = kind;
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => {
    el.hidden = true;
  }, 4000);
}

/** Runs an action from a button, reporting failure in the flash bar, then calls `after`. */
async function act(label, fn, after) {
  try {
    await fn();
    flash(`${label}: done`);
  } catch (error) {
    flash(`${label}: ${error.message}`, 'error');
  }
  await after?.();
}

function table(headers, rows, empty) {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  const head = h(
    'tr',
    {},
    headers.map((name) => h('th', {}, name)),
  );
  return h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, head), h('tbody', {}, rows)));
}

// ---------- header: leader and pause ----------

async function refreshHeader() {
  try {
    const leader = await api('GET', '/v1/leader');
    $('#leader').replaceChildren(`${leader.Name}${leader.holding ? '' : ' (lease expired)'}`);
  } catch (error) {
    $('#leader').replaceChildren(error.status === 404 ? 'no tick yet' : `? (${error.message})`);
  }
  try {
    const { paused } = await api('GET', '/v1/pause');
    $('#pause-state').replaceChildren(paused ? 'paused' : 'running');
    $('#pause-state').className = `badge ${paused ? 'status-failed' : 'status-success'}`;
    const button = $('#pause-button');
    button.replaceChildren(paused ? 'Unpause' : 'Pause');
    button.dataset.paused = String(paused);
    button.disabled = false;
  } catch (error) {
    $('#pause-state').replaceChildren(`? (${error.message})`);
  }
}

$('#pause-button').addEventListener('click', (event) => {
  const paused = event.currentTarget.dataset.paused === 'true';
  act(paused ? 'Unpause' : 'Pause', () => api('POST', paused ? '/v1/unpause' : '/v1/pause'), refreshHeader);
});

// ---------- views ----------

function button(label, onclick, className) {
  return h('button', { type: 'button', class: className, onclick }, label);
}

/** Run now / Toggle / Delete for one job; `after` reloads the view, `afterDelete` leaves it. */
function jobActions(job, after, afterDelete = after) {
  const path = jobPath(job.name);
  return [
    button('Run now', () => act(`Run ${job.name}`, () => api('POST', `${path}/run`), after)),
    button('Toggle', () => act(`Toggle ${job.name}`, () => api('POST', `${path}/toggle`), after)),
    button(
      'Delete',
      () => {
        if (confirm(`Delete job "${job.name}" and its executions?`)) {
          act(`Delete ${job.name}`, () => api('DELETE', path), afterDelete);
        }
      },
      'danger',
    ),
  ];
}

async function jobsView(view, every) {
  const load = async () => {
    try {
      const jobs = await api('GET', '/v1/jobs?_sort=name&_order=ASC');
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
      view.replaceChildren(
        h('h1', {}, 'Jobs ', h('a', { class: 'button', href: '#/new' }, 'New job')),
        table(
          ['Name', 'Schedule', 'Timezone', 'Next', 'Status', 'Success / Error', 'Disabled', ''],
          rows,
          'No jobs yet.',
        ),
      );
    } catch (error) {
      view.replaceChildren(h('h1', {}, 'Jobs'), errorBox(error));
    }
  };
  await load();
  every(5000, load);
}

async function jobView(view, every, name) {
  const openOutputs = new Set();
  let jsonOpen = true;
  const load = async () => {
    let job;
    let executions;
    try {
      [job, executions] = await Promise.all([
        api('GET', jobPath(name)),
        api('GET', `${jobPath(name)}/executions?_order=DESC&_limit=100`),
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
              open: openOutputs.has(e.id),
              ontoggle: (ev) => (ev.target.open ? openOutputs.add(e.id) : openOutputs.delete(e.id)),
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
        h('td', {}, e.trigger),
        h('td', {}, time(e.scheduled_at)),
        h('td', {}, time(e.started_at)),
        h('td', {}, time(e.finished_at)),
        h('td', {}, e.node_name || '—'),
        h('td', { class: 'num' }, e.attempt),
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
        'details',
        { class: 'job-json', open: jsonOpen, ontoggle: (ev) => (jsonOpen = ev.target.open) },
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

async function jobFormView(view, name) {
  let initial = EXAMPLE_JOB;
  if (name) {
    try {
      initial = await api('GET', jobPath(name));
      for (const field of COMPUTED_FIELDS) delete initial[field];
    } catch (error) {
      view.replaceChildren(h('h1', {}, `Edit ${name}`), errorBox(error));
      return;
    }
  }
  const textarea = h('textarea', { rows: 18, spellcheck: 'false', 'aria-label': 'Job JSON' });
  textarea.value = JSON.stringify(initial, null, 2);
  const preview = h('div', { class: 'preview' });
  const result = h('div', { class: 'result' });
  const submit = h('button', { type: 'submit' }, name ? 'Save job' : 'Create job');

  const parse = () => JSON.parse(textarea.value);
  let previewSeq = 0;
  const updatePreview = async () => {
    const seq = ++previewSeq;
    let job;
    try {
      job = parse();
    } catch (error) {
      preview.replaceChildren(h('div', { class: 'error' }, `Invalid JSON: ${error.message}`));
      return;
    }
    if (!job || typeof job.schedule !== 'string') {
      preview.replaceChildren(h('p', { class: 'muted' }, 'Add a "schedule" to see its next fire times.'));
      return;
    }
    const query = new URLSearchParams({ schedule: job.schedule, timezone: job.timezone ?? '', count: '5' });
    try {
      const { times } = await api('GET', `/v1/schedule/preview?${query}`);
      if (seq !== previewSeq) return;
      preview.replaceChildren(
        h('h3', {}, 'Next fire times'),
        times.length
          ? h(
              'ol',
              {},
              times.map((t) => h('li', {}, time(t), ' ', h('code', { class: 'muted' }, t))),
            )
          : h('p', { class: 'muted' }, 'Never fires.'),
      );
    } catch (error) {
      if (seq === previewSeq) preview.replaceChildren(h('h3', {}, 'Next fire times'), errorBox(error));
    }
  };
  let debounce;
  textarea.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(updatePreview, 300);
  });

  const onSubmit = async (event) => {
    event.preventDefault();
    let body;
    try {
      body = parse();
    } catch (error) {
      result.replaceChildren(h('div', { class: 'error' }, `Invalid JSON: ${error.message}`));
      return;
    }
    submit.disabled = true;
    try {
      const job = name ? await api('PUT', jobPath(name), body) : await api('POST', '/v1/jobs', body);
      flash(`Saved job ${job.name}`);
      location.hash = `#/jobs/${encodeURIComponent(job.name)}`;
    } catch (error) {
      result.replaceChildren(errorBox(error));
    } finally {
      submit.disabled = false;
    }
  };

  view.replaceChildren(
    h('h1', {}, name ? `Edit ${name}` : 'New job'),
    h(
      'div',
      { class: 'form-grid' },
      h('form', { onsubmit: onSubmit }, textarea, h('div', { class: 'actions' }, submit), result),
      h('aside', {}, preview),
    ),
  );
  await updatePreview();
}

async function membersView(view, every) {
  const load = async () => {
    try {
      const members = await api('GET', '/v1/members');
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
        ),
      );
      view.replaceChildren(
        h('h1', {}, 'Members'),
        table(['Name', 'Status', 'Tags', 'Running'], rows, 'No agents have joined.'),
      );
    } catch (error) {
      view.replaceChildren(h('h1', {}, 'Members'), errorBox(error));
    }
  };
  await load();
  every(5000, load);
}

// ---------- router ----------

let timers = [];
let renderSeq = 0;

async function render() {
  for (const t of timers) clearInterval(t);
  timers = [];
  const seq = ++renderSeq;
  // Each render draws into a fresh container: a slow load of a view already left writes into a detached node.
  const view = h('div');
  $('#view').replaceChildren(view);
  const every = (ms, fn) => {
    if (seq === renderSeq) timers.push(setInterval(fn, ms));
  };
  const [route, arg] = location.hash.replace(/^#\/?/, '').split('/');
  const param = arg === undefined ? undefined : decodeURIComponent(arg);
  for (const link of document.querySelectorAll('nav a')) {
    link.classList.toggle('active', link.dataset.nav === (route || 'jobs'));
  }
  if (route === 'jobs' && param) await jobView(view, every, param);
  else if (route === 'new') await jobFormView(view);
  else if (route === 'edit' && param) await jobFormView(view, param);
  else if (route === 'members') await membersView(view, every);
  else await jobsView(view, every);
}

window.addEventListener('hashchange', render);
render();
refreshHeader();
setInterval(refreshHeader, 5000);
