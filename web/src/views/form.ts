/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The job form: fields for the common settings and the JSON editor for everything else, both views of one
// job object. An API 400 (`{error, field, rule}`) is shown at the field it names.
import { ApiError, api, errorBox, type Job, jobPath } from '../api.ts';
import { flash, h, time } from '../dom.ts';

const EXAMPLE_JOB: Record<string, unknown> = {
  name: 'hello',
  schedule: '@every 5s',
  executor: 'shell',
  executor_config: { command: 'echo hello' },
};
/** Returned by the API but not part of a job definition: dropped before editing. */
const COMPUTED_FIELDS =
  'status next success_count error_count missed_count last_success last_error dependent_jobs version'.split(
    ' ',
  );
const EXECUTORS = ['shell', 'http', 'lambda', 'sqs', 'eventbridge', 'kafka', 'nats', 'rabbitmq'];

type Model = Record<string, unknown>;

interface Field {
  key: string;
  el: HTMLElement;
  set: (m: Model) => void;
}

/** The field a 400 names: `executor_config.url` belongs to `executor_config`, `tags[role]` to `tags`. */
export function fieldFor(keys: string[], named: string): string | undefined {
  return keys.find((k) => named === k || named.startsWith(`${k}.`) || named.startsWith(`${k}[`));
}

function timezones(): string[] {
  try {
    return Intl.supportedValuesOf('timeZone');
  } catch {
    return [];
  }
}

export async function jobFormView(view: HTMLElement, name?: string): Promise<void> {
  let model: Model = { ...EXAMPLE_JOB };
  if (name) {
    try {
      model = await api<Model>('GET', jobPath(name));
      for (const field of COMPUTED_FIELDS) delete model[field];
    } catch (error) {
      view.replaceChildren(h('h1', {}, `Edit ${name}`), errorBox(error));
      return;
    }
  }
  let jobNames: string[] = [];
  try {
    jobNames = (await api<Job[]>('GET', '/v1/jobs?_sort=name')).map((j) => j.name);
  } catch {
    // The pickers work as plain text fields without the list.
  }

  const textarea = h('textarea', { rows: 14, spellcheck: 'false', 'aria-label': 'Job JSON' });
  const preview = h('div', { class: 'preview' });
  const result = h('div', { class: 'result' });
  const submit = h('button', { type: 'submit' }, name ? 'Save job' : 'Create job');
  const fields: Field[] = [];

  const syncJson = () => {
    textarea.value = JSON.stringify(model, null, 2);
  };
  const changed = (key: string, value: unknown) => {
    if (value === undefined) delete model[key];
    else model[key] = value;
    syncJson();
    clearErrors();
    if (key === 'schedule' || key === 'timezone') schedulePreview();
  };

  const wrap = (key: string, label: string, control: HTMLElement, hint?: string) =>
    h(
      'div',
      { class: 'field', 'data-field': key },
      h('label', { for: `f-${key}` }, label),
      control,
      hint ? h('div', { class: 'muted small' }, hint) : null,
      h('div', { class: 'field-error', role: 'alert', hidden: true }),
    );

  const text = (
    key: string,
    label: string,
    opts: { list?: string; placeholder?: string; hint?: string } = {},
  ) => {
    const input = h('input', {
      id: `f-${key}`,
      name: key,
      type: 'text',
      list: opts.list,
      placeholder: opts.placeholder,
    });
    input.addEventListener('input', () =>
      changed(key, input.value === '' && key !== 'schedule' ? undefined : input.value),
    );
    fields.push({
      key,
      el: wrap(key, label, input, opts.hint),
      set: (m) => (input.value = String(m[key] ?? '')),
    });
  };
  const number = (key: string, label: string) => {
    const input = h('input', { id: `f-${key}`, name: key, type: 'number', min: 0, step: 1 });
    input.addEventListener('input', () => changed(key, input.value === '' ? undefined : Number(input.value)));
    fields.push({
      key,
      el: wrap(key, label, input),
      set: (m) => (input.value = m[key] === undefined ? '' : String(m[key])),
    });
  };
  const select = (key: string, label: string, options: Array<[string, string]>) => {
    const el = h(
      'select',
      { id: `f-${key}`, name: key },
      options.map(([v, l]) => h('option', { value: v }, l)),
    );
    el.addEventListener('change', () => changed(key, el.value === '' ? undefined : el.value));
    fields.push({
      key,
      el: wrap(key, label, el),
      set: (m) => {
        const v = String(m[key] ?? '');
        if (![...el.options].some((o) => o.value === v)) el.append(h('option', { value: v }, v));
        el.value = v;
      },
    });
  };
  const checkbox = (key: string, label: string) => {
    const input = h('input', { id: `f-${key}`, name: key, type: 'checkbox' });
    input.addEventListener('change', () => changed(key, input.checked));
    fields.push({ key, el: wrap(key, label, input), set: (m) => (input.checked = m[key] === true) });
  };
  /** Key/value rows for a string map (executor_config, tags). */
  const pairs = (key: string, label: string) => {
    const rows = h('div', { class: 'kv-rows', id: `f-${key}` });
    const read = () => {
      const out: Record<string, string> = {};
      for (const row of rows.querySelectorAll<HTMLElement>('.kv')) {
        const [k, v] = row.querySelectorAll('input');
        if (k?.value) out[k.value] = v?.value ?? '';
      }
      changed(key, Object.keys(out).length ? out : undefined);
    };
    const addRow = (k = '', v = '') => {
      const row = h(
        'div',
        { class: 'kv' },
        h('input', {
          type: 'text',
          value: k,
          placeholder: 'key',
          'aria-label': `${label} key`,
          oninput: read,
        }),
        h('input', {
          type: 'text',
          value: v,
          placeholder: 'value',
          'aria-label': `${label} value`,
          oninput: read,
        }),
        h(
          'button',
          {
            type: 'button',
            class: 'small',
            'aria-label': `Remove ${label} row`,
            onclick: () => {
              row.remove();
              read();
            },
          },
          '×',
        ),
      );
      rows.append(row);
    };
    const control = h(
      'div',
      {},
      rows,
      h(
        'button',
        { type: 'button', class: 'small', onclick: () => addRow() },
        `Add ${label.toLowerCase()} row`,
      ),
    );
    fields.push({
      key,
      el: wrap(key, label, control),
      set: (m) => {
        rows.replaceChildren();
        const map = m[key];
        if (map && typeof map === 'object') for (const [k, v] of Object.entries(map)) addRow(k, String(v));
        if (!rows.children.length) addRow();
      },
    });
  };

  text('name', 'Name', { hint: 'lowercase letters, digits, _ and -' });
  text('displayname', 'Display name');
  text('schedule', 'Schedule', { placeholder: '@every 1m, 0 30 2 * * *, @daily…' });
  select('timezone', 'Time zone', [
    ['', 'UTC (default)'],
    ...timezones().map((z): [string, string] => [z, z]),
  ]);
  text('executor', 'Executor', { list: 'executors' });
  pairs('executor_config', 'Executor config');
  pairs('tags', 'Tags');
  select('concurrency', 'Concurrency', [
    ['', 'allow (default)'],
    ['allow', 'allow'],
    ['forbid', 'forbid'],
    ['replace', 'replace'],
  ]);
  number('retries', 'Retries');
  text('parent_job', 'Parent job', { list: 'job-names' });
  text('on_failure_job', 'On-failure job', { list: 'job-names' });
  checkbox('disabled', 'Disabled');
  if (name) {
    // PUT /v1/jobs/{name} saves that job: the name is its key, not something an edit can change.
    const input = fields[0]!.el.querySelector('input')!;
    input.readOnly = true;
    input.title = 'A job is renamed by creating it anew under the new name.';
  }

  const fillFields = () => {
    for (const f of fields) f.set(model);
  };
  const clearErrors = () => {
    for (const el of view.querySelectorAll<HTMLElement>('.field-error')) {
      el.hidden = true;
      el.replaceChildren();
    }
    for (const el of view.querySelectorAll('.field.invalid')) el.classList.remove('invalid');
    for (const el of view.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  };
  const showFieldError = (error: ApiError) => {
    const key =
      error.body.field &&
      fieldFor(
        fields.map((f) => f.key),
        error.body.field,
      );
    const field = fields.find((f) => f.key === key);
    if (!field) return;
    field.el.classList.add('invalid');
    const box = field.el.querySelector<HTMLElement>('.field-error')!;
    // The rule alone: the field it breaks is the one it is shown at.
    box.replaceChildren(error.body.rule ?? error.message);
    box.hidden = false;
    const control = field.el.querySelector<HTMLElement>('input, select');
    control?.setAttribute('aria-invalid', 'true');
    control?.focus();
  };

  let previewSeq = 0;
  const updatePreview = async () => {
    const seq = ++previewSeq;
    if (typeof model.schedule !== 'string' || model.schedule === '') {
      preview.replaceChildren(h('p', { class: 'muted' }, 'Add a schedule to see its next fire times.'));
      return;
    }
    const query = new URLSearchParams({
      schedule: model.schedule,
      timezone: typeof model.timezone === 'string' ? model.timezone : '',
      count: '5',
    });
    if (typeof model.name === 'string' && model.name) query.set('job', model.name);
    try {
      const { times } = await api<{ times: string[] }>('GET', `/v1/schedule/preview?${query}`);
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
  let debounce: ReturnType<typeof setTimeout> | undefined;
  const schedulePreview = () => {
    clearTimeout(debounce);
    debounce = setTimeout(updatePreview, 300);
  };
  const jsonError = h('div', { class: 'json-error' });
  textarea.addEventListener('input', () => {
    try {
      const parsed = JSON.parse(textarea.value) as unknown;
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
        throw new Error('must be a JSON object');
      model = parsed as Model;
      jsonError.replaceChildren();
      fillFields();
      clearErrors();
      schedulePreview();
    } catch (error) {
      jsonError.replaceChildren(h('div', { class: 'error' }, `Invalid JSON: ${(error as Error).message}`));
    }
  });

  const onSubmit = async (event: Event) => {
    event.preventDefault();
    if (jsonError.childElementCount) {
      result.replaceChildren(errorBox(new Error('fix the JSON first')));
      return;
    }
    submit.disabled = true;
    clearErrors();
    try {
      const job = name
        ? await api<Job>('PUT', jobPath(name), model)
        : await api<Job>('POST', '/v1/jobs', model);
      flash(`Saved job ${job.name}`);
      location.hash = `#/jobs/${encodeURIComponent(job.name)}`;
    } catch (error) {
      result.replaceChildren(errorBox(error));
      if (error instanceof ApiError) showFieldError(error);
    } finally {
      submit.disabled = false;
    }
  };

  view.replaceChildren(
    h('h1', {}, name ? `Edit ${name}` : 'New job'),
    h(
      'div',
      { class: 'form-grid' },
      h(
        'form',
        { onsubmit: onSubmit, novalidate: true },
        h(
          'div',
          { class: 'fields' },
          fields.map((f) => f.el),
        ),
        h(
          'datalist',
          { id: 'executors' },
          EXECUTORS.map((e) => h('option', { value: e })),
        ),
        h(
          'datalist',
          { id: 'job-names' },
          jobNames.map((n) => h('option', { value: n })),
        ),
        h(
          'details',
          { class: 'json-editor', open: true },
          h('summary', {}, 'Job JSON (every setting, including those without a field)'),
          textarea,
          jsonError,
        ),
        h('div', { class: 'actions' }, submit),
        result,
      ),
      h('aside', {}, preview),
    ),
  );
  fillFields();
  syncJson();
  await updatePreview();
}
