/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The same-origin /v1 API: the local stack's, or `cronplane ui`'s signing proxy in front of the deployed one.
import { h } from './dom.ts';

export interface ApiErrorBody {
  error?: string;
  /** API Gateway's own refusals (403 on a bad signature, 429, 504) say `message`. */
  message?: string;
  field?: string;
  rule?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    super(body.error ?? body.message ?? `HTTP ${status}`);
  }
}

export interface Job {
  name: string;
  displayname?: string;
  schedule: string;
  timezone?: string;
  executor?: string;
  executor_config?: Record<string, string>;
  tags?: Record<string, string>;
  metadata?: Record<string, string>;
  concurrency?: string;
  retries?: number;
  parent_job?: string;
  on_failure_job?: string;
  disabled?: boolean;
  status?: string;
  next?: string | null;
  success_count?: number;
  error_count?: number;
  [key: string]: unknown;
}

export interface Execution {
  id: string;
  status: string;
  trigger?: string;
  scheduled_at?: string;
  started_at?: string;
  finished_at?: string;
  node_name?: string;
  attempt?: number;
  exit_code?: number | null;
  output?: string;
  output_truncated?: boolean;
  reason?: string;
}

export interface Member {
  Name: string;
  statusText: string;
  Tags?: Record<string, string>;
  capacity?: number;
  running?: number;
}

async function send(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(path, {
    method,
    headers: body === undefined ? undefined : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function read(res: Response): Promise<unknown> {
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text };
  }
  if (!res.ok) throw new ApiError(res.status, (data as ApiErrorBody | null) ?? {});
  return data;
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  return (await read(await send(method, path, body))) as T;
}

/** A list with its `X-Total-Count` (the count before paging). */
export async function apiList<T>(path: string): Promise<{ items: T[]; total: number }> {
  const res = await send('GET', path);
  const items = (await read(res)) as T[];
  return { items, total: Number(res.headers.get('X-Total-Count') ?? items.length) };
}

export const jobPath = (name: string) => `/v1/jobs/${encodeURIComponent(name)}`;

export function errorBox(error: unknown): HTMLElement {
  const body = error instanceof ApiError ? error.body : {};
  return h(
    'div',
    { class: 'error', role: 'alert' },
    h('strong', {}, error instanceof ApiError ? `${error.status}: ` : 'Error: '),
    error instanceof Error ? error.message : String(error),
    body.field || body.rule
      ? h('div', { class: 'muted small' }, [
          `field: ${body.field ?? '—'}`,
          body.rule && ` · rule: ${body.rule}`,
        ])
      : null,
  );
}
