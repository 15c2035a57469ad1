/** Starts the real local stack (emulators, provisioning from the CDK template, API, ticker, agents) for a suite. */
import { afterAll, beforeAll } from 'vitest';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../../local/stack.ts';

let counter = 0;

export async function startTestStack(options: LocalStackOptions = {}): Promise<LocalStack & { api: Api }> {
  const stack = await startLocalStack({
    port: 0,
    prefix: `t${process.pid}-${counter++}-`,
    ...options,
    log: process.env.CRONPLANE_VERBOSE === '1' ? (l) => console.error(l) : undefined,
  });
  return Object.assign(stack, { api: api(stack.url) });
}

export type TestStack = Awaited<ReturnType<typeof startTestStack>>;

/**
 * The stack of a test file: started before its first test, stopped after its last. The object it returns
 * stands for that stack (use it inside tests and hooks, once it has started).
 */
export function useTestStack(options: LocalStackOptions = {}): TestStack {
  let current: TestStack | undefined;
  beforeAll(async () => {
    current = await startTestStack(options);
  });
  afterAll(async () => {
    await current?.stop();
  });
  return new Proxy({} as TestStack, {
    get(_, key) {
      if (!current) throw new Error('the test stack has not started yet');
      const value = Reflect.get(current, key);
      return typeof value === 'function' ? value.bind(current) : value;
    },
  });
}

export interface ApiResult<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export type Api = <T = any>(method: string, path: string, body?: unknown) => Promise<ApiResult<T>>;

export function api(base: string): Api {
  return async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
  };
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** The newest execution of `job` once it has ended (neither scheduled nor running). */
export function newestFinished<T extends { status: string }>(
  api: Api,
  job: string,
  timeoutMs: number,
): Promise<T> {
  return waitFor(
    async () => {
      const res = await api<T[]>('GET', `/v1/jobs/${job}/executions`);
      const e = res.status === 200 ? res.body[0] : undefined;
      return e && e.status !== 'scheduled' && e.status !== 'running' ? e : null;
    },
    timeoutMs,
    `${job} to finish`,
  );
}
