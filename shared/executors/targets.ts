/**
 * The worker's allow-list: which Lambda functions, SQS queues, EventBridge buses (and, optionally, which
 * URLs and message brokers) an agentless job may target. It comes from the stack's configuration
 * (`CRONPLANE_WORKER_ALLOW`, JSON `{"lambda":[...],"sqs":[...],"events":[...],"http":[...],"kafka":[...],
 * "nats":[...],"rabbitmq":[...],"syslog":[...],"fluent":[...]}`), so that writing a job is not the same as
 * holding the worker's role:
 * the API refuses a job whose target is not listed (400 naming the field) and the worker refuses to run
 * one (a failed run with the reason), while IAM grants the worker the same list. Unset, everything is
 * allowed (a local stack); set, a kind left out allows nothing, except `http`, `kafka`, `nats` and
 * `rabbitmq`, which left out leave those jobs unrestricted (they hold no AWS grant). Listed, they bound
 * where the worker sends what it resolves from `{{ssm:...}}` (a SASL password, a message body). `syslog`
 * and `fluent` (`host:port` entries, like brokers) bound where the processors of agentless jobs send
 * outputs from the worker (shared/processors); left out, they do not restrict them either.
 *
 * Entries are names, ARNs (or, for `sqs` and `http`, URLs) with `*` matching any run of characters.
 *   - an entry that is a plain name matches the target's name, whichever way the job writes it (a
 *     function name, `name:alias`, an ARN; a queue URL's last segment; a bus name or ARN);
 *   - an ARN entry matches the target's ARN when the job gives one (or, for SQS, when it is derived from an
 *     AWS queue URL); a target written as a plain name is matched against the entry's name part;
 *   - a URL entry (`https://…`) matches the URL as written;
 *   - a broker entry (`kafka`, `nats`, `rabbitmq`) is `host:port` (`b-*.example.kafka.eu-west-1.amazonaws.com:9096`),
 *     matched case-insensitively against every broker the job names, each with its port (the scheme's
 *     default when the job leaves it out); credentials in a URL are not part of what is matched.
 * Account and region are pinned by IAM (the worker's role lists the same entries in its own account);
 * this check is the second wall, and the one that gives the user a 400 instead of an AccessDenied run.
 */

export const BROKER_KINDS = ['kafka', 'nats', 'rabbitmq'] as const;
export type BrokerKind = (typeof BROKER_KINDS)[number];
/** Processors that send an agentless job's output over the network from the worker (shared/processors). */
export const PROCESSOR_TARGET_KINDS = ['syslog', 'fluent'] as const;
export type ProcessorTargetKind = (typeof PROCESSOR_TARGET_KINDS)[number];
export const TARGET_KINDS = [
  'lambda',
  'sqs',
  'events',
  'http',
  ...BROKER_KINDS,
  ...PROCESSOR_TARGET_KINDS,
] as const;

export interface WorkerAllowList {
  readonly lambda: readonly string[];
  readonly sqs: readonly string[];
  readonly events: readonly string[];
  /** null: HTTP jobs are not restricted by URL. */
  readonly http: readonly string[] | null;
  /** Absent or null (each): jobs of that executor are not restricted by broker. */
  readonly kafka?: readonly string[] | null;
  readonly nats?: readonly string[] | null;
  readonly rabbitmq?: readonly string[] | null;
  /** Absent or null (each): the syslog and fluent processors of agentless jobs are not restricted. */
  readonly syslog?: readonly string[] | null;
  readonly fluent?: readonly string[] | null;
}

/** `CRONPLANE_WORKER_ALLOW`: null when unset (everything allowed), else the list or what is wrong with it. */
export function parseWorkerAllowList(raw: string): WorkerAllowList | { problem: string } | null {
  if (raw.trim() === '') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { problem: 'must be a JSON object like {"lambda":["name-*"],"sqs":[],"events":["default"]}' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { problem: 'must be a JSON object like {"lambda":["name-*"],"sqs":[],"events":["default"]}' };
  }
  // The broker kinds are set only when listed: absent, like `http: null`, they restrict nothing.
  const out: Record<string, string[] | null> = { lambda: [], sqs: [], events: [], http: null };
  for (const [key, value] of Object.entries(parsed)) {
    if (!(TARGET_KINDS as readonly string[]).includes(key)) {
      return { problem: `has an unknown key "${key}" (expected ${TARGET_KINDS.join(', ')})` };
    }
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.trim() === '')) {
      return { problem: `"${key}" must be an array of non-empty strings` };
    }
    out[key] = value.map((v: string) => v.trim());
  }
  return out as unknown as WorkerAllowList;
}

/** `*` matches any run of characters; everything else literally. Whole string, case-sensitive. */
export function globMatch(pattern: string, text: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 's').test(text);
}

interface Target {
  /** The bare name (function, queue, bus). */
  readonly name: string;
  /** The ARN when the job gives it (or it can be derived), else null. */
  readonly arn: string | null;
  /** As the job wrote it (SQS: the queue URL). */
  readonly written: string;
}

function lambdaTarget(functionName: string): Target {
  const parts = functionName.split(':');
  if (functionName.startsWith('arn:')) {
    // arn:aws:lambda:region:account:function:name[:qualifier]
    return { name: parts[6] ?? '', arn: parts.slice(0, 7).join(':'), written: functionName };
  }
  // account:function:name[:qualifier] or name[:qualifier]
  const name = parts[1] === 'function' ? (parts[2] ?? '') : (parts[0] ?? '');
  return { name, arn: null, written: functionName };
}

function sqsTarget(queueUrl: string): Target {
  let url: URL;
  try {
    url = new URL(queueUrl);
  } catch {
    return { name: queueUrl, arn: null, written: queueUrl };
  }
  const segments = url.pathname.split('/').filter((s) => s !== '');
  const name = segments.at(-1) ?? '';
  const account = segments.length === 2 ? segments[0]! : '';
  const region =
    /^sqs\.([a-z0-9-]+)\.amazonaws\.com$/.exec(url.hostname)?.[1] ??
    /^([a-z0-9-]+)\.queue\.amazonaws\.com$/.exec(url.hostname)?.[1];
  const arn = region && /^\d{12}$/.test(account) ? `arn:aws:sqs:${region}:${account}:${name}` : null;
  return { name, arn, written: queueUrl };
}

function busTarget(bus: string): Target {
  if (bus.startsWith('arn:')) {
    // arn:aws:events:region:account:event-bus/name
    const resource = bus.split(':').slice(5).join(':');
    return { name: resource.replace(/^event-bus\//, ''), arn: bus, written: bus };
  }
  return { name: bus, arn: null, written: bus };
}

/** The name part of an ARN entry, for a target written as a plain name. */
function entryName(kind: 'lambda' | 'sqs' | 'events', entry: string): string {
  const parts = entry.split(':');
  if (kind === 'lambda') return parts[6] ?? '';
  if (kind === 'sqs') return parts[5] ?? '';
  return parts
    .slice(5)
    .join(':')
    .replace(/^event-bus\//, '');
}

function entryMatches(kind: 'lambda' | 'sqs' | 'events', entry: string, target: Target): boolean {
  if (entry.startsWith('arn:')) {
    return target.arn !== null
      ? globMatch(entry, target.arn)
      : globMatch(entryName(kind, entry), target.name);
  }
  if (/^https?:\/\//.test(entry)) return globMatch(entry, target.written);
  return globMatch(entry, target.name);
}

const KIND_OF: Record<string, { kind: 'lambda' | 'sqs' | 'events'; key: string } | undefined> = {
  lambda: { kind: 'lambda', key: 'function_name' },
  sqs: { kind: 'sqs', key: 'queue_url' },
  eventbridge: { kind: 'events', key: 'event_bus' },
};

/** Where the target of a job lies outside the allow-list: the `executor_config` key and the rule. */
export interface TargetRefusal {
  readonly key: string;
  readonly problem: string;
}

/**
 * Null when `allow` lets an agentless job of `executor` reach the target named in `cfg` (or when `allow`
 * is null, or the executor has no AWS target); else which key and why. The target is read as the executor
 * reads it (trimmed; an EventBridge job without `event_bus` targets `default`).
 */
export function awsTargetRefusal(
  executor: string,
  cfg: Readonly<Record<string, string>>,
  allow: WorkerAllowList | null,
): TargetRefusal | null {
  const spec = KIND_OF[executor];
  if (!allow || !spec) return null;
  const raw = (cfg[spec.key] ?? '').trim() || (spec.kind === 'events' ? 'default' : '');
  if (raw === '') return null; // "is required" is the executor's own rule
  const target =
    spec.kind === 'lambda' ? lambdaTarget(raw) : spec.kind === 'sqs' ? sqsTarget(raw) : busTarget(raw);
  const entries = allow[spec.kind];
  if (entries.some((e) => entryMatches(spec.kind, e, target))) return null;
  return {
    key: spec.key,
    problem: `'${raw}' is not in the worker's allow-list (CRONPLANE_WORKER_ALLOW ${spec.kind}: ${describe(entries)})`,
  };
}

/** Null when `allow` lets an HTTP job the worker runs call `url`; else why. */
export function httpTargetRefusal(url: string, allow: WorkerAllowList | null): string | null {
  if (!allow || allow.http === null) return null;
  if (allow.http.some((e) => globMatch(e, url))) return null;
  return `'${url}' is not in the worker's allow-list (CRONPLANE_WORKER_ALLOW http: ${describe(allow.http)})`;
}

/** A broker as a job names it: host and port (the scheme's default filled in). */
export interface BrokerAddress {
  readonly host: string;
  readonly port: number;
}

/** `host:port`, an IPv6 host in brackets. */
export function formatBroker(b: BrokerAddress): string {
  return `${b.host.includes(':') ? `[${b.host}]` : b.host}:${b.port}`;
}

/**
 * Null when `allow` lets an agentless job of a broker executor reach every one of `brokers` (or its
 * syslog or fluent processor reach its server); else why (naming the first one outside the list).
 */
export function brokerTargetRefusal(
  kind: BrokerKind | ProcessorTargetKind,
  brokers: readonly BrokerAddress[],
  allow: WorkerAllowList | null,
): string | null {
  const entries = allow?.[kind];
  if (!entries) return null;
  for (const b of brokers) {
    const target = formatBroker(b).toLowerCase();
    if (!entries.some((e) => globMatch(e.toLowerCase(), target))) {
      return `'${formatBroker(b)}' is not in the worker's allow-list (CRONPLANE_WORKER_ALLOW ${kind}: ${describe(entries)})`;
    }
  }
  return null;
}

function describe(entries: readonly string[]): string {
  return entries.length === 0 ? 'none' : entries.join(', ');
}
