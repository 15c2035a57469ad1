/**
 * Secret references: `{{ssm:/path/name}}` inside a shell job's `env` values and inside an HTTP job's
 * `url`, header values and `body` is replaced at run time by the SSM parameter's value (GetParameter
 * WithDecryption, so SecureString works). Values are cached for 60 s per resolver. The reference may name
 * a version or label like SSM does (`{{ssm:/db/password:3}}`) or a parameter ARN.
 *
 * An unknown or unreadable parameter throws SecretResolutionError; its message names the parameter (and
 * the env key) but never a value, and the executors turn it into a failed run.
 *
 * Scope: a reference resolves only under the configured secrets path (`CRONPLANE_SECRETS_PATH`, default
 * `/cronplane/`), so that whoever may write a job cannot read every parameter the runner's role can. The
 * API refuses a job naming a parameter outside it (`secretReferenceProblem`, executor-config.ts), and the
 * lookup refuses it again before calling SSM (a job stored before the path changed, a write that bypassed
 * the API). The name must be a plain SSM name: segments of letters, digits, `_`, `.`, `-`, none of them
 * empty, `.` or `..`, so `/cronplane/../x` and `/cronplane//x` are refused, and `/cronplanex/y` is
 * outside `/cronplane/` (the path always ends with `/`). IAM grants the same path (infra).
 *
 * Resolved values must never reach an execution's output or reason: every value looked up inside a
 * `withSecretScope` run is remembered for that run (AsyncLocalStorage, so concurrent runs don't mix), and
 * the result's output and reason go through `redact` before they are returned. A run whose config holds
 * no reference gets no scope (nothing to remember; see withSecretScope).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { AwsClients } from '../aws/clients.ts';
import { errorMessage, failedResult } from './common.ts';
import type { Executor, ExecutorResult, LiveOutput, RunHooks } from './executor.ts';

export const SECRET_CACHE_TTL_MS = 60_000;
export const REDACTED = '[redacted]';
export const DEFAULT_SECRETS_PATH = '/cronplane/';

const REFERENCE_SOURCE = String.raw`\{\{\s*ssm:([^{}\s]+)\s*\}\}`;
// A fresh global RegExp per use: a shared one carries `lastIndex` from one call into the next.
const references = () => new RegExp(REFERENCE_SOURCE, 'g');

/** A parameter that does not exist or cannot be read. The message never contains a secret value. */
export class SecretResolutionError extends Error {
  constructor(
    readonly parameter: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SecretResolutionError';
  }
}

/** Looks up one parameter's (decrypted) value. */
export type ParameterLookup = (name: string) => Promise<string>;

/** The parameter names referenced in `text`, in order of first appearance, without duplicates. */
export function findSecretReferences(text: string): string[] {
  return [...new Set(Array.from(text.matchAll(references()), (m) => m[1]!))];
}

export function hasSecretReferences(text: string): boolean {
  return new RegExp(REFERENCE_SOURCE).test(text);
}

/** Replaces every `{{ssm:...}}` in `text` with the looked-up value; text without references is returned as is. */
export async function resolveSecrets(text: string, lookup: ParameterLookup): Promise<string> {
  const names = findSecretReferences(text);
  if (names.length === 0) return text;
  const values = new Map<string, string>();
  await Promise.all(names.map(async (name) => values.set(name, await lookup(name))));
  return text.replace(references(), (_match, name: string) => values.get(name)!);
}

// --- scope: the secrets path ------------------------------------------------------------------------

const SEGMENT = /^[A-Za-z0-9_.-]+$/;
const SELECTOR = /^[A-Za-z0-9_.-]+$/;

function plainSegments(path: string): boolean {
  const segments = path.split('/').slice(1);
  return segments.every((s) => SEGMENT.test(s) && s !== '.' && s !== '..');
}

/**
 * `CRONPLANE_SECRETS_PATH` as configured ('' → `/cronplane/`): an absolute SSM path, given a trailing `/`
 * if it lacks one (so `/cronplane` never admits `/cronplanex/…`). `/` alone admits every parameter.
 */
export function parseSecretsPath(raw: string): string | { problem: string } {
  const text = raw.trim();
  if (text === '') return DEFAULT_SECRETS_PATH;
  const path = text.endsWith('/') ? text : `${text}/`;
  if (path === '/') return path;
  if (!path.startsWith('/') || !plainSegments(path.slice(0, -1))) {
    return {
      problem: `must be an SSM path like /cronplane/ (segments of letters, digits, _ . -; no . or ..), not '${raw}'`,
    };
  }
  return path;
}

/**
 * The parameter name a reference addresses (`/a/b`, `/a/b:3`, `/a/b:label`, or the parameter's ARN), or
 * null when it is not a well-formed SSM name.
 */
export function referencedParameter(reference: string): string | null {
  let rest = reference;
  if (rest.startsWith('arn:')) {
    // arn:<partition>:ssm:<region>:<account>:parameter/<name>[:selector]
    const m = /^arn:[a-z-]+:ssm:[a-z0-9-]*:\d*:parameter(\/.*)$/.exec(rest);
    if (!m) return null;
    rest = m[1]!;
  }
  const colon = rest.indexOf(':');
  const name = colon < 0 ? rest : rest.slice(0, colon);
  const selector = colon < 0 ? null : rest.slice(colon + 1);
  if (selector !== null && !SELECTOR.test(selector)) return null;
  if (!name.startsWith('/') || !plainSegments(name)) return null;
  return name;
}

/** Why the reference may not be resolved under `secretsPath`, or null when it may. */
export function secretReferenceProblem(reference: string, secretsPath: string): string | null {
  const name = referencedParameter(reference);
  if (name === null) {
    return `{{ssm:${reference}}} is not a plain SSM parameter name (segments of letters, digits, _ . -; no . or ..)`;
  }
  if (!name.startsWith(secretsPath) || name.length === secretsPath.length) {
    return `{{ssm:${reference}}} is outside the secrets path ${secretsPath} (CRONPLANE_SECRETS_PATH)`;
  }
  return null;
}

// --- per-run tracking and redaction ---------------------------------------------------------------

const scope = new AsyncLocalStorage<Set<string>>();

/** Remembers a resolved value in the current run's scope (if any) so that it is redacted from the result. */
export function rememberSecret(value: string): void {
  if (value !== '') scope.getStore()?.add(value);
}

/**
 * Replaces every occurrence of each secret in `text` by `[redacted]`, also in its JSON-escaped and
 * URL-encoded forms (a server echoing a header or a body back in JSON, an error quoting a URL). Longer
 * secrets are replaced first so that a secret containing another one is not left half visible. Empty
 * secrets are ignored; any other value is redacted however short it is.
 */
export function redact(text: string, secrets: Iterable<string>): string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret === '') continue;
    forms.add(secret);
    forms.add(JSON.stringify(secret).slice(1, -1));
    forms.add(encodeURIComponent(secret));
  }
  if (forms.size === 0 || text === '') return text;
  const pattern = [...forms]
    .sort((a, b) => b.length - a.length)
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('|');
  return text.replace(new RegExp(pattern, 'g'), REDACTED);
}

export function redactResult(result: ExecutorResult, secrets: Iterable<string>): ExecutorResult {
  const list = [...secrets];
  if (list.length === 0) return result;
  return {
    ...result,
    output: redact(result.output, list),
    reason: result.reason === null ? null : redact(result.reason, list),
  };
}

/** Whether any string in `value` (a job's `executor_config`, at any depth) holds a secret reference. */
export function referencesSecrets(value: unknown): boolean {
  if (typeof value === 'string') return hasSecretReferences(value);
  if (value === null || typeof value !== 'object') return false;
  return Object.values(value).some(referencesSecrets);
}

/**
 * Runs one execution in its own secret scope: whatever is resolved during `run` is redacted from the
 * result, and an exception (a missing parameter, a bad config) becomes a failed result with the
 * exception's message, redacted too. Scopes nest: an inner run's secrets are also redacted by the outer.
 *
 * `config` is what the run resolves references from (the job's `executor_config`): when no string in it
 * holds one, nothing can be resolved and the run gets no scope. Entering an AsyncLocalStorage turns on
 * Node 20's promise hooks for the whole process for good, and every `await` after it costs about three
 * times as much: a busy agent whose jobs have no secrets paid that on every SDK request (a profile at
 * 6,000 executions a minute).
 */
export async function withSecretScope(
  run: (secrets: ReadonlySet<string>) => Promise<ExecutorResult>,
  config?: { readonly resolvesFrom: unknown },
): Promise<ExecutorResult> {
  const scoped = !config || referencesSecrets(config.resolvesFrom);
  const parent = scope.getStore();
  const secrets = new Set<string>();
  let result: ExecutorResult;
  try {
    result = scoped ? await scope.run(secrets, () => run(secrets)) : await run(secrets);
  } catch (error) {
    result = failedResult(errorMessage(error));
  }
  if (parent) for (const s of secrets) parent.add(s);
  return redactResult(result, secrets);
}

/**
 * Runs `work` in a secret scope of its own and answers what it resolved: work done for a run ahead of it
 * (the shell executor forks a held launch's process during its hold), whose secrets the run then
 * remembers in its own scope (`rememberSecret`).
 */
export async function resolvingSecrets<T>(
  work: () => Promise<T>,
  config: { readonly resolvesFrom: unknown },
): Promise<{ value: T; secrets: Set<string> }> {
  const secrets = new Set<string>();
  // Nothing to resolve: no scope (see withSecretScope).
  const value = referencesSecrets(config.resolvesFrom) ? await scope.run(secrets, work) : await work();
  return { value, secrets };
}

/**
 * Wraps an executor (e.g. the shell executor with an SSM `resolveEnv`) so that every run is a secret scope:
 * its result is redacted, and so is its live output (maskLive), which the run's hooks pass on. What else
 * the executor offers (`reportsStart`, `prepare`, `release`) passes through.
 */
export function withSecretRedaction(executor: Executor): Executor {
  return {
    ...(executor.reportsStart ? { reportsStart: true } : {}),
    ...(executor.prepare ? { prepare: (job, execution) => executor.prepare?.(job, execution) } : {}),
    ...(executor.release ? { release: (execution) => executor.release?.(execution) } : {}),
    run: (job, execution, signal, hooks) =>
      withSecretScope(
        (secrets) => executor.run(job, execution, signal, hooks && maskedHooks(hooks, secrets)),
        { resolvesFrom: job.executor_config },
      ),
  };
}

function maskedHooks(hooks: RunHooks, secrets: ReadonlySet<string>): RunHooks {
  const output = hooks.output;
  if (!output) return hooks;
  return {
    ...hooks,
    output: (live: LiveOutput) =>
      output.call(hooks, {
        get bytes() {
          return live.bytes;
        },
        view: (maxBytes) => {
          const v = live.view(maxBytes);
          return { text: maskLive(v.text, secrets), bytes: v.bytes };
        },
      }),
  };
}

/** A secret's fragment at least this long at a window's edge is masked (shorter ones are any text). */
const EDGE_FRAGMENT = 3;

/**
 * Masks each secret in a window of a running job's output with `*`s of the same length (so that the
 * stream's byte count still locates the window), and a fragment of one cut by the window's start, or
 * still being printed at its end. The result, when the run ends, is redacted as always (`redact`).
 */
export function maskLive(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret === '' || out === '') continue;
    const stars = '*'.repeat(Buffer.byteLength(secret));
    out = out.split(secret).join(stars);
    for (let k = Math.min(secret.length - 1, out.length); k >= EDGE_FRAGMENT; k--) {
      if (out.startsWith(secret.slice(-k))) {
        out = '*'.repeat(Buffer.byteLength(secret.slice(-k))) + out.slice(k);
        break;
      }
    }
    for (let k = Math.min(secret.length - 1, out.length); k >= EDGE_FRAGMENT; k--) {
      if (out.endsWith(secret.slice(0, k))) {
        out = out.slice(0, out.length - k) + '*'.repeat(Buffer.byteLength(secret.slice(0, k)));
        break;
      }
    }
  }
  return out;
}

// --- SSM ------------------------------------------------------------------------------------------

export interface SsmResolverOptions {
  readonly ttlMs?: number;
  readonly now?: () => number;
  /** Only parameters under this path resolve (config `secretsPath`); default `/cronplane/`. */
  readonly secretsPath?: string;
}

/** Resolves `{{ssm:...}}` in env values; also resolves single strings and can drop its cache. */
export interface SsmResolver {
  (env: Record<string, string>): Promise<Record<string, string>>;
  resolveSecrets(text: string): Promise<string>;
  readonly lookup: ParameterLookup;
  clearCache(): void;
}

/** A cached (60 s), de-duplicating lookup of SSM parameters with decryption. */
export function createSsmLookup(
  clients: AwsClients,
  options: SsmResolverOptions = {},
): ParameterLookup & { clear(): void } {
  const ttl = options.ttlMs ?? SECRET_CACHE_TTL_MS;
  const now = options.now ?? Date.now;
  const secretsPath = options.secretsPath ?? DEFAULT_SECRETS_PATH;
  const cache = new Map<string, { value: string; expiresAt: number }>();
  const inFlight = new Map<string, Promise<string>>();

  const fetchValue = async (name: string): Promise<string> => {
    let value: string | undefined;
    try {
      // Imported here, not at the top: most agents never resolve a secret (see aws/clients.ts).
      const { GetParameterCommand } = await import('@aws-sdk/client-ssm');
      const res = await clients.ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      value = res.Parameter?.Value;
    } catch (error) {
      const kind = (error as { name?: string }).name;
      if (kind === 'ParameterNotFound' || kind === 'ParameterVersionNotFound') {
        throw new SecretResolutionError(name, `SSM parameter ${name} not found`, { cause: error });
      }
      throw new SecretResolutionError(
        name,
        `cannot read SSM parameter ${name}: ${kind ?? 'Error'}: ${errorMessage(error)}`,
        {
          cause: error,
        },
      );
    }
    if (value === undefined) throw new SecretResolutionError(name, `SSM parameter ${name} has no value`);
    cache.set(name, { value, expiresAt: now() + ttl });
    return value;
  };

  const lookup = async (name: string): Promise<string> => {
    // Refused before any call: the API refuses such a job already, this is the second wall.
    const problem = secretReferenceProblem(name, secretsPath);
    if (problem !== null) throw new SecretResolutionError(name, problem);
    const hit = cache.get(name);
    let value: string;
    if (hit && hit.expiresAt > now()) {
      value = hit.value;
    } else {
      let pending = inFlight.get(name);
      if (!pending) {
        pending = fetchValue(name).finally(() => inFlight.delete(name));
        inFlight.set(name, pending);
      }
      value = await pending;
    }
    rememberSecret(value);
    return value;
  };
  return Object.assign(lookup, {
    clear: () => {
      cache.clear();
    },
  });
}

/** `(env) => env` with every `{{ssm:...}}` resolved; also `resolveSecrets(text)` for single strings. */
export function createSsmResolver(clients: AwsClients, options: SsmResolverOptions = {}): SsmResolver {
  const lookup = createSsmLookup(clients, options);
  const resolveEnv = async (env: Record<string, string>): Promise<Record<string, string>> => {
    const out: Record<string, string> = {};
    await Promise.all(
      Object.entries(env).map(async ([key, value]) => {
        try {
          out[key] = await resolveSecrets(value, lookup);
        } catch (error) {
          if (error instanceof SecretResolutionError) {
            throw new SecretResolutionError(error.parameter, `env ${key}: ${error.message}`, {
              cause: error,
            });
          }
          throw error;
        }
      }),
    );
    // Keep the caller's key order.
    return Object.fromEntries(Object.keys(env).map((k) => [k, out[k]!]));
  };
  return Object.assign(resolveEnv, {
    resolveSecrets: (text: string) => resolveSecrets(text, lookup),
    lookup: lookup as ParameterLookup,
    clearCache: () => lookup.clear(),
  });
}
