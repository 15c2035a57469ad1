/**
 * Dkron's HTTP executor. `executor_config`:
 *   - `method` (default GET), `url` (http or https), `body` (sent as is, with any method)
 *   - `headers`: a JSON array string of `"Name: value"` (split at the first colon)
 *   - `timeout`: seconds (default 30; `0` = none) or a Go duration like `5s`; covers connecting,
 *     redirects and reading the whole response, like Go's `http.Client.Timeout`
 *   - `expectCode`: comma list of status codes that mean success (default: any 2xx)
 *   - `expectBody`: a regular expression the response body must match (a leading Go flag group like
 *     `(?i)` or `(?s)` is understood); matched against the first 4 MiB of the body
 *   - `debug`: `"true"` prefixes the output with the request and response lines and headers
 *   - `tlsNoVerifyPeer` (`"true"` skips certificate verification), `tlsCertificateFile` +
 *     `tlsCertificateKeyFile` (client certificate; the key may live in the certificate file),
 *     `tlsRootCAsFile` (PEM; replaces the default trusted CAs, as in Go)
 *
 * Redirects are followed (at most 10) as Go's client does: 301/302/303 turn into a body-less GET, 307/308
 * keep method and body, and Authorization / Cookie headers are dropped when the host changes.
 *
 * Output is the final response's body (bounded by OutputBuffer). `{{ssm:...}}` references in `url`,
 * header values and `body` are resolved at run time when a resolver is given, and redacted from output.
 *
 * In the worker, `allow` (config `workerAllow`, see targets.ts) with an `http` list restricts the URLs an
 * HTTP job may call, every redirect hop included (a redirect outside it fails the run unfollowed), so a
 * job cannot send the secrets it resolves to a host of its writer's choosing.
 */
import { readFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Execution } from '../executions/execution.ts';
import { OutputBuffer } from '../executions/output-buffer.ts';
import type { JobDefinition } from '../jobs/definition.ts';
import {
  ExecutorConfigError,
  errorMessage,
  failedResult,
  parseTimeout,
  RunControl,
  succeededResult,
} from './common.ts';
import type { Executor, ExecutorResult } from './executor.ts';
import { hasSecretReferences, withSecretScope } from './secrets.ts';
import { httpTargetRefusal, type WorkerAllowList } from './targets.ts';

export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;
export const MAX_REDIRECTS = 10;
/** How much of the body `expectBody` is matched against. */
export const EXPECT_BODY_LIMIT = 4 * 1024 * 1024;
export const USER_AGENT = 'Cronplane-http-executor/1';

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `["Name: value", ...]` → `[name, value]` pairs. Empty or absent → none. Throws ExecutorConfigError. */
export function parseHeaders(text: string | undefined): Array<[string, string]> {
  const raw = (text ?? '').trim();
  if (raw === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ExecutorConfigError('headers', 'must be a JSON array of "Name: value" strings');
  }
  if (!Array.isArray(parsed))
    throw new ExecutorConfigError('headers', 'must be a JSON array of "Name: value" strings');
  return parsed.map((entry, i): [string, string] => {
    if (typeof entry !== 'string')
      throw new ExecutorConfigError('headers', `entry ${i} must be a string "Name: value"`);
    const colon = entry.indexOf(':');
    if (colon < 0)
      throw new ExecutorConfigError('headers', `entry ${i} has no colon (expected "Name: value")`);
    const name = entry.slice(0, colon).trim();
    if (!TOKEN.test(name))
      throw new ExecutorConfigError('headers', `entry ${i}: '${name}' is not a valid header name`);
    const value = entry.slice(colon + 1).trim();
    if (/[\r\n\0]/.test(value))
      throw new ExecutorConfigError('headers', `entry ${i}: the value of ${name} contains a line break`);
    return [name, value];
  });
}

/** `"200, 201"` → `[200, 201]`; empty or absent → null (any 2xx). Throws ExecutorConfigError. */
export function parseExpectCode(text: string | undefined): number[] | null {
  const raw = (text ?? '').trim();
  if (raw === '') return null;
  return raw.split(',').map((part) => {
    const p = part.trim();
    if (!/^\d{3}$/.test(p) || Number(p) < 100 || Number(p) > 599) {
      throw new ExecutorConfigError(
        'expectCode',
        `'${p}' is not an HTTP status code (expected a comma list like 200,201)`,
      );
    }
    return Number(p);
  });
}

/** A regular expression from `expectBody`; a leading Go flag group (`(?i)`, `(?s)`, `(?m)`, `(?is)`) becomes JS flags. */
export function parseExpectBody(text: string | undefined): RegExp | null {
  let source = text ?? '';
  if (source === '') return null;
  let flags = '';
  const group = /^\(\?([a-zA-Z]+)\)/.exec(source);
  if (group) {
    for (const f of group[1]!) {
      if (f !== 'i' && f !== 'm' && f !== 's') {
        throw new ExecutorConfigError(
          'expectBody',
          `flag '${f}' in (?${group[1]}) is not supported (use i, m or s)`,
        );
      }
      if (!flags.includes(f)) flags += f;
    }
    source = source.slice(group[0].length);
  }
  try {
    return new RegExp(source, flags);
  } catch (error) {
    throw new ExecutorConfigError('expectBody', `is not a valid regular expression: ${errorMessage(error)}`);
  }
}

export interface HttpRequestSpec {
  method: string;
  url: URL;
  headers: Array<[string, string]>;
  body: string;
  timeoutMs: number;
  expectCodes: number[] | null;
  expectBody: RegExp | null;
  debug: boolean;
  tls: { noVerifyPeer: boolean; certificateFile: string; certificateKeyFile: string; rootCAsFile: string };
}

/** Validates `executor_config` (after secret resolution). Throws ExecutorConfigError. */
export function parseHttpConfig(cfg: Readonly<Record<string, string>>): HttpRequestSpec {
  const method = (cfg.method || 'GET').trim().toUpperCase();
  if (!TOKEN.test(method)) throw new ExecutorConfigError('method', `'${method}' is not an HTTP method`);
  const rawUrl = (cfg.url ?? '').trim();
  if (rawUrl === '') throw new ExecutorConfigError('url', 'is required');
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new ExecutorConfigError('url', `'${rawUrl}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ExecutorConfigError('url', `must be http:// or https://, not ${url.protocol}`);
  }
  const certificateFile = cfg.tlsCertificateFile ?? '';
  const certificateKeyFile = cfg.tlsCertificateKeyFile ?? '';
  if (certificateKeyFile && !certificateFile) {
    throw new ExecutorConfigError('tlsCertificateKeyFile', 'needs tlsCertificateFile too');
  }
  return {
    method,
    url,
    headers: parseHeaders(cfg.headers),
    body: cfg.body ?? '',
    timeoutMs: parseTimeout(cfg.timeout, DEFAULT_HTTP_TIMEOUT_MS),
    expectCodes: parseExpectCode(cfg.expectCode),
    expectBody: parseExpectBody(cfg.expectBody),
    debug: cfg.debug === 'true',
    tls: {
      noVerifyPeer: cfg.tlsNoVerifyPeer === 'true',
      certificateFile,
      certificateKeyFile,
      rootCAsFile: cfg.tlsRootCAsFile ?? '',
    },
  };
}

/** Stands in for a `url` whose `{{ssm:...}}` reference only the run resolves (`.invalid` never resolves in DNS). */
const URL_RESOLVED_AT_RUN_TIME = 'https://resolved-at-run-time.invalid/';

/**
 * parseHttpConfig as the API applies it when a job is written. At run time `url` and `body` are resolved
 * before parseHttpConfig sees them (header values after it, so `headers` is checked as written): a `url`
 * holding an `{{ssm:...}}` reference can only be checked then, and every other key is checked here as is.
 * `body` has no rules. The TLS files live on the host that runs the job and are read only there.
 * Throws ExecutorConfigError.
 */
export function checkHttpConfig(cfg: Readonly<Record<string, string>>): void {
  parseHttpConfig(hasSecretReferences(cfg.url ?? '') ? { ...cfg, url: URL_RESOLVED_AT_RUN_TIME } : cfg);
}

/** Why a response is not a success, or null when it is. */
export function checkResponse(
  status: number,
  body: string,
  expectCodes: readonly number[] | null,
  expectBody: RegExp | null,
): string | null {
  if (expectCodes ? !expectCodes.includes(status) : status < 200 || status > 299) {
    return `unexpected status ${status} (expected ${expectCodes ? expectCodes.join(',') : 'a 2xx status'})`;
  }
  if (expectBody && !expectBody.test(body))
    return `response body does not match expectBody /${expectBody.source}/${expectBody.flags}`;
  return null;
}

export interface HttpExecutorOptions {
  /** Resolves `{{ssm:...}}` references in url, header values and body (e.g. `createSsmResolver(clients).resolveSecrets`). */
  readonly resolveSecrets?: (text: string) => Promise<string>;
  /** The worker's allow-list: its `http` entries (when set) bound the URLs called, redirects included. */
  readonly allow?: WorkerAllowList | null;
}

interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
}

interface Hop {
  status: number;
  statusMessage: string;
  httpVersion: string;
  rawHeaders: string[];
  location: string | undefined;
}

export class HttpExecutor implements Executor {
  constructor(private readonly options: HttpExecutorOptions = {}) {}

  run(job: JobDefinition, _execution: Execution, signal: AbortSignal): Promise<ExecutorResult> {
    return withSecretScope(() => this.runInScope(job, signal), { resolvesFrom: job.executor_config });
  }

  private async runInScope(job: JobDefinition, signal: AbortSignal): Promise<ExecutorResult> {
    let cfg: Record<string, string> = { ...job.executor_config };
    const resolver = this.options.resolveSecrets;
    // Names the field in the reason: "executor_config.body: SSM parameter /x not found".
    const resolve = async (key: string, text: string): Promise<string> => {
      if (!hasSecretReferences(text)) return text;
      if (!resolver)
        throw new ExecutorConfigError(key, 'has an {{ssm:...}} reference but no SSM resolver is configured');
      try {
        return await resolver(text);
      } catch (error) {
        throw new ExecutorConfigError(key, errorMessage(error));
      }
    };
    cfg = { ...cfg, url: await resolve('url', cfg.url ?? ''), body: await resolve('body', cfg.body ?? '') };
    let spec: HttpRequestSpec;
    try {
      spec = parseHttpConfig(cfg);
    } catch (error) {
      return failedResult(errorMessage(error));
    }
    // Checked after resolution, so a URL taken from a secret is bounded too (the reason is redacted).
    const refusal = httpTargetRefusal(spec.url.href, this.options.allow ?? null);
    if (refusal) return failedResult(`executor_config.url: ${refusal}`);
    spec.headers = await Promise.all(
      spec.headers.map(async ([n, v]): Promise<[string, string]> => [n, await resolve(`headers (${n})`, v)]),
    );
    let tls: TlsMaterial;
    try {
      tls = await loadTls(spec.tls);
    } catch (error) {
      return failedResult(errorMessage(error));
    }
    const control = new RunControl(signal, spec.timeoutMs);
    const output = new OutputBuffer();
    try {
      return await this.exchange(spec, tls, control, output);
    } finally {
      control.dispose();
    }
  }

  private async exchange(
    spec: HttpRequestSpec,
    tls: TlsMaterial,
    control: RunControl,
    output: OutputBuffer,
  ): Promise<ExecutorResult> {
    let method = spec.method;
    let url = spec.url;
    let body = spec.body;
    let headers = spec.headers;
    for (let redirects = 0; ; redirects++) {
      if (spec.debug) output.write(dumpRequest(method, url, headers, body));
      const matchBody: Buffer[] = [];
      let matchSize = 0;
      let hop: Hop;
      try {
        hop = await send(
          { method, url, headers, body, tls, signal: control.signal },
          (h) => {
            const follow = isRedirect(h.status) && h.location !== undefined && redirects < MAX_REDIRECTS;
            if (spec.debug) output.write(dumpResponse(h));
            return !follow;
          },
          (chunk) => {
            output.write(chunk);
            if (spec.expectBody && matchSize < EXPECT_BODY_LIMIT) {
              const take = chunk.subarray(0, EXPECT_BODY_LIMIT - matchSize);
              matchBody.push(take);
              matchSize += take.length;
            }
          },
        );
      } catch (error) {
        const stopped = control.stoppedResult(output);
        if (stopped) return stopped;
        return failedResult(`${method} ${url.href} failed: ${errorMessage(error)}`, output);
      }
      if (isRedirect(hop.status) && hop.location !== undefined) {
        if (redirects >= MAX_REDIRECTS)
          return failedResult(`stopped after ${MAX_REDIRECTS} redirects`, output);
        let next: URL;
        try {
          next = new URL(hop.location, url);
        } catch {
          return failedResult(`redirect to an invalid location '${hop.location}'`, output);
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          return failedResult(`redirect to an unsupported scheme ${next.protocol}`, output);
        }
        const refusal = httpTargetRefusal(next.href, this.options.allow ?? null);
        if (refusal) return failedResult(`redirect not followed: ${refusal}`, output);
        if (
          hop.status === 303 ||
          ((hop.status === 301 || hop.status === 302) && method !== 'GET' && method !== 'HEAD')
        ) {
          method = method === 'HEAD' ? 'HEAD' : 'GET';
          body = '';
          headers = headers.filter(([n]) => !/^(content-type|content-length|transfer-encoding)$/i.test(n));
        }
        if (next.host !== url.host) {
          headers = headers.filter(
            ([n]) => !/^(authorization|cookie|proxy-authorization|www-authenticate)$/i.test(n),
          );
        }
        url = next;
        continue;
      }
      const problem = checkResponse(
        hop.status,
        Buffer.concat(matchBody).toString('utf8'),
        spec.expectCodes,
        spec.expectBody,
      );
      return problem ? failedResult(problem, output) : succeededResult(output);
    }
  }
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

async function loadTls(t: HttpRequestSpec['tls']): Promise<TlsMaterial> {
  const read = async (key: string, path: string) => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new ExecutorConfigError(key, `cannot read ${path}: ${errorMessage(error)}`);
    }
  };
  const material: TlsMaterial = { rejectUnauthorized: !t.noVerifyPeer };
  if (t.rootCAsFile) material.ca = await read('tlsRootCAsFile', t.rootCAsFile);
  if (t.certificateFile) {
    material.cert = await read('tlsCertificateFile', t.certificateFile);
    material.key = t.certificateKeyFile
      ? await read('tlsCertificateKeyFile', t.certificateKeyFile)
      : material.cert;
  }
  return material;
}

interface SendOptions {
  method: string;
  url: URL;
  headers: Array<[string, string]>;
  body: string;
  tls: TlsMaterial;
  signal: AbortSignal;
}

/**
 * One request/response. `onHead` sees the status and headers and answers whether the body is the final
 * one (false for a redirect that will be followed: its body is drained, not kept); `onBody` gets the
 * final body's chunks.
 */
function send(o: SendOptions, onHead: (hop: Hop) => boolean, onBody: (chunk: Buffer) => void): Promise<Hop> {
  return new Promise<Hop>((resolve, reject) => {
    if (o.signal.aborted) {
      reject(o.signal.reason);
      return;
    }
    const headers: Record<string, string | string[]> = {};
    const find = (name: string) => Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
    for (const [n, v] of o.headers) {
      const key = find(n);
      if (key === undefined) headers[n] = v;
      else headers[key] = ([] as string[]).concat(headers[key]!, v);
    }
    if (find('user-agent') === undefined) headers['User-Agent'] = USER_AGENT;
    const payload = Buffer.from(o.body, 'utf8');
    if (
      payload.length > 0 &&
      find('content-length') === undefined &&
      find('transfer-encoding') === undefined
    ) {
      headers['Content-Length'] = String(payload.length);
    }
    const onResponse = (res: http.IncomingMessage) => {
      const hop: Hop = {
        status: res.statusCode ?? 0,
        statusMessage: res.statusMessage ?? '',
        httpVersion: res.httpVersion,
        rawHeaders: res.rawHeaders,
        location: res.headers.location,
      };
      const keep = onHead(hop);
      res.on('data', (chunk: Buffer) => {
        if (keep) onBody(chunk);
      });
      res.on('end', () => resolve(hop));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('the response was cut off')));
    };
    let req: http.ClientRequest;
    try {
      const base = { method: o.method, headers, agent: false as const };
      req =
        o.url.protocol === 'https:'
          ? https.request(
              o.url,
              {
                ...base,
                ca: o.tls.ca,
                cert: o.tls.cert,
                key: o.tls.key,
                rejectUnauthorized: o.tls.rejectUnauthorized,
              },
              onResponse,
            )
          : http.request(o.url, base, onResponse);
    } catch (error) {
      reject(error);
      return;
    }
    const onAbort = () =>
      req.destroy(o.signal.reason instanceof Error ? o.signal.reason : new Error('aborted'));
    o.signal.addEventListener('abort', onAbort, { once: true });
    req.on('close', () => o.signal.removeEventListener('abort', onAbort));
    req.on('error', reject);
    req.end(payload.length > 0 ? payload : undefined);
  });
}

function dumpRequest(method: string, url: URL, headers: Array<[string, string]>, body: string): string {
  const lines = [`> ${method} ${url.pathname}${url.search} HTTP/1.1`, `> Host: ${url.host}`];
  for (const [n, v] of headers) lines.push(`> ${n}: ${v}`);
  lines.push('>');
  return `${lines.join('\n')}\n${body === '' ? '' : `${body}\n`}`;
}

function dumpResponse(hop: Hop): string {
  const lines = [`< HTTP/${hop.httpVersion} ${hop.status} ${hop.statusMessage}`];
  for (let i = 0; i + 1 < hop.rawHeaders.length; i += 2)
    lines.push(`< ${hop.rawHeaders[i]}: ${hop.rawHeaders[i + 1]}`);
  lines.push('<');
  return `${lines.join('\n')}\n`;
}
