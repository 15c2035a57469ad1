/**
 * A job's `processors`, Dkron's `{"<name>": {"<key>": "<string>"}}` map: the keys each built-in takes,
 * parsed by one function per processor that both the write path (`validateProcessors`, a 400 naming
 * `processors.<name>.<key>`) and the run (shared/processors/apply.ts, before each processor runs) use, so a
 * config the processor would refuse is never stored. Pure: no I/O.
 *
 * Like Dkron's plugin configs, a processor's map is free: keys a processor does not know are ignored (and a
 * custom processor receives all of them). Booleans follow Go's strconv.ParseBool, which Dkron's processors
 * call (`1 t T TRUE true True`, `0 f F FALSE false False`); Dkron takes anything else as false with a
 * warning in its log, we refuse it at write time.
 *
 * Names: a built-in (BUILT_IN_PROCESSORS) or the lowercase name of a custom processor, an executable
 * `cronplane-processor-<name>` on the agent's PATH (shared/processors/external.ts). A name must start with a
 * letter: the map's order is the order the processors run in, and JavaScript objects put integer-like keys
 * first whatever order they came in.
 */
import { ValidationError } from '../errors.ts';
import { parseTimeout } from '../executors/common.ts';
import { isAgentless } from '../executors/registry.ts';
import {
  type BrokerAddress,
  brokerTargetRefusal,
  type ProcessorTargetKind,
  type WorkerAllowList,
} from '../executors/targets.ts';
import type { JobDefinition } from '../jobs/definition.ts';

export const BUILT_IN_PROCESSORS = ['log', 'files', 'syslog', 'fluent', 's3', 'cloudwatch'] as const;
export type BuiltInProcessor = (typeof BUILT_IN_PROCESSORS)[number];

export const PROCESSOR_NAME = /^[a-z][a-z0-9_-]*$/;
export const CUSTOM_PROCESSOR_PREFIX = 'cronplane-processor-';

/** Dkron's default is /var/log/dkron. */
export const DEFAULT_LOG_DIR = '/var/log/cronplane';
export const DEFAULT_SYSLOG_SOCKET = '/dev/log';
export const DEFAULT_SYSLOG_PORT = 514;
export const DEFAULT_SYSLOG_TAG = 'cronplane';
export const DEFAULT_FLUENT_HOST = '127.0.0.1';
export const DEFAULT_FLUENT_PORT = 24224;
export const DEFAULT_FLUENT_TAG = 'cronplane';
/** Under the stack's output bucket, beside (not in) `executions/`, where truncated outputs go whole. */
export const DEFAULT_S3_PREFIX = 'output/';
export const DEFAULT_LOG_GROUP = '/cronplane/jobs';

/** A processor that talks to a server gives up after this long unless its `timeout` says otherwise. */
export const DEFAULT_PROCESSOR_TIMEOUT_MS = 10_000;
/** A custom processor (a program the operator installed) gets longer. */
export const DEFAULT_CUSTOM_TIMEOUT_MS = 30_000;
/** The heartbeat keeps the execution alive while processors run, but they must end. */
export const MAX_PROCESSOR_TIMEOUT_MS = 5 * 60_000;

/** A problem with one key of one processor's config. */
export class ProcessorConfigError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${key}: ${problem}`);
    this.name = 'ProcessorConfigError';
  }
}

type Cfg = Readonly<Record<string, string>>;

interface Common {
  /** `forward: "true"`: the execution keeps its output; otherwise the processor's result replaces it. */
  readonly forward: boolean;
  readonly timeoutMs: number;
}

export type SyslogTarget =
  | { readonly transport: 'udp' | 'tcp'; readonly host: string; readonly port: number }
  | { readonly transport: 'unix'; readonly path: string };

export type ProcessorConfig =
  | ({ readonly kind: 'log' } & Common)
  | ({ readonly kind: 'files'; readonly logDir: string } & Common)
  | ({
      readonly kind: 'syslog';
      /** `local`: the host's syslog socket (/dev/log) through the `logger` command. */
      readonly target: SyslogTarget;
      readonly facility: number;
      readonly tag: string;
    } & Common)
  | ({
      readonly kind: 'fluent';
      readonly host: string;
      readonly port: number;
      readonly tag: string;
      readonly requireAck: boolean;
    } & Common)
  | ({ readonly kind: 's3'; readonly bucket: string | null; readonly prefix: string } & Common)
  | ({ readonly kind: 'cloudwatch'; readonly logGroup: string; readonly logStream: string | null } & Common)
  | ({ readonly kind: 'custom'; readonly name: string; readonly config: Cfg } & Common);

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Go's strconv.ParseBool; absent or empty is `fallback`. */
export function parseBool(cfg: Cfg, key: string, fallback = false): boolean {
  const raw = cfg[key];
  if (raw === undefined || raw === '') return fallback;
  if (TRUE.has(raw)) return true;
  if (FALSE.has(raw)) return false;
  throw new ProcessorConfigError(key, `must be true or false (got "${clip(raw)}")`);
}

function clip(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function timeout(cfg: Cfg, fallbackMs: number): number {
  let ms: number;
  try {
    ms = parseTimeout(cfg.timeout, fallbackMs);
  } catch {
    throw new ProcessorConfigError('timeout', 'must be a number of seconds or a duration like 10s or 1m');
  }
  if (ms <= 0 || ms > MAX_PROCESSOR_TIMEOUT_MS) {
    throw new ProcessorConfigError(
      'timeout',
      `must be more than 0 and at most ${MAX_PROCESSOR_TIMEOUT_MS / 60_000}m`,
    );
  }
  return ms;
}

function common(cfg: Cfg, fallbackTimeoutMs = DEFAULT_PROCESSOR_TIMEOUT_MS): Common {
  return { forward: parseBool(cfg, 'forward'), timeoutMs: timeout(cfg, fallbackTimeoutMs) };
}

function port(cfg: Cfg, key: string, fallback: number): number {
  const raw = (cfg[key] ?? '').trim();
  if (raw === '') return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > 65_535) {
    throw new ProcessorConfigError(key, `must be a port number from 1 to 65535 (got "${clip(raw)}")`);
  }
  return n;
}

/** A host name or IP address (IPv6 with or without brackets); nothing that could carry a path or a port. */
function host(raw: string, key: string): string {
  const h = raw.trim().replace(/^\[(.*)\]$/, '$1');
  if (h === '' || h.length > 253 || !/^[A-Za-z0-9._:-]+$/.test(h)) {
    throw new ProcessorConfigError(key, `must be a host name or an IP address (got "${clip(raw)}")`);
  }
  return h;
}

function absolutePath(raw: string, key: string): string {
  if (!raw.startsWith('/') || raw.includes('\0')) {
    throw new ProcessorConfigError(key, `must be an absolute path (got "${clip(raw)}")`);
  }
  return raw.length > 1 ? raw.replace(/\/+$/, '') : raw;
}

/** RFC 5424's facilities (section 6.2.1) by the names syslog.conf uses. */
export const SYSLOG_FACILITIES: Readonly<Record<string, number>> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  ntp: 12,
  security: 13,
  console: 14,
  solaris_cron: 15,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

function syslogTarget(cfg: Cfg): SyslogTarget {
  const raw = (cfg.address ?? '').trim();
  if (raw === '') return { transport: 'unix', path: DEFAULT_SYSLOG_SOCKET };
  const m = /^(udp|tcp|unix):\/\/(.*)$/.exec(raw);
  const problem = 'must be udp://host[:port], tcp://host[:port] or unix:///path (empty: the local syslog)';
  if (!m) throw new ProcessorConfigError('address', `${problem} (got "${clip(raw)}")`);
  const transport = m[1] as 'udp' | 'tcp' | 'unix';
  const rest = m[2] ?? '';
  if (transport === 'unix') return { transport, path: absolutePath(rest, 'address') };
  const hp = /^(\[[^\]]*\]|[^:/]*)(?::(\d*))?$/.exec(rest);
  if (!hp) throw new ProcessorConfigError('address', `${problem} (got "${clip(raw)}")`);
  return {
    transport,
    host: host(hp[1] ?? '', 'address'),
    port: port({ address: hp[2] ?? '' }, 'address', DEFAULT_SYSLOG_PORT),
  };
}

function syslogFacility(cfg: Cfg): number {
  const raw = (cfg.facility ?? '').trim().toLowerCase();
  if (raw === '') return SYSLOG_FACILITIES.cron as number;
  if (/^\d+$/.test(raw) && Number(raw) <= 23) return Number(raw);
  const n = SYSLOG_FACILITIES[raw];
  if (n === undefined) {
    throw new ProcessorConfigError(
      'facility',
      `must be a syslog facility (${Object.keys(SYSLOG_FACILITIES).join(', ')}) or 0 to 23`,
    );
  }
  return n;
}

/** RFC 5424 APP-NAME: 1 to 48 printable US-ASCII characters. */
function syslogTag(cfg: Cfg): string {
  const raw = cfg.tag ?? '';
  if (raw === '') return DEFAULT_SYSLOG_TAG;
  if (!/^[\x21-\x7e]{1,48}$/.test(raw)) {
    throw new ProcessorConfigError(
      'tag',
      'must be 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)',
    );
  }
  return raw;
}

/** Fluentd tags: dot-separated parts of letters, digits, `_` and `-`. */
function fluentTag(cfg: Cfg): string {
  const raw = cfg.fluent_tag ?? '';
  if (raw === '') return DEFAULT_FLUENT_TAG;
  if (raw.length > 256 || !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(raw)) {
    throw new ProcessorConfigError(
      'fluent_tag',
      'must be dot-separated words of letters, digits, _ and - (e.g. app.cron)',
    );
  }
  return raw;
}

/** S3's bucket naming rules (general purpose buckets). */
function s3Bucket(cfg: Cfg): string | null {
  const raw = cfg.bucket ?? '';
  if (raw === '') return null;
  if (
    !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(raw) ||
    raw.includes('..') ||
    /^\d+\.\d+\.\d+\.\d+$/.test(raw)
  ) {
    throw new ProcessorConfigError('bucket', 'must be an S3 bucket name (3 to 63 of a-z, 0-9, . and -)');
  }
  return raw;
}

function s3Prefix(cfg: Cfg): string {
  const raw = cfg.prefix;
  if (raw === undefined) return DEFAULT_S3_PREFIX;
  if (raw.startsWith('/') || raw.length > 512 || [...raw].some((c) => c < ' ' || c === '\x7f')) {
    throw new ProcessorConfigError(
      'prefix',
      'must be a key prefix of at most 512 characters, not starting with /',
    );
  }
  return raw;
}

function logGroup(cfg: Cfg): string {
  const raw = cfg.log_group ?? '';
  if (raw === '') return DEFAULT_LOG_GROUP;
  if (!/^[.\-_/#A-Za-z0-9]{1,512}$/.test(raw) || raw.startsWith('aws/')) {
    throw new ProcessorConfigError(
      'log_group',
      'must be a log group name: 1 to 512 of A-Z, a-z, 0-9, . - _ / #',
    );
  }
  return raw;
}

function logStream(cfg: Cfg): string | null {
  const raw = cfg.log_stream ?? '';
  if (raw === '') return null;
  if (raw.length > 512 || /[:*]/.test(raw)) {
    throw new ProcessorConfigError(
      'log_stream',
      'must be a log stream name: 1 to 512 characters without : or *',
    );
  }
  return raw;
}

const PARSERS: { readonly [K in BuiltInProcessor]: (cfg: Cfg) => ProcessorConfig } = {
  log: (cfg) => ({ kind: 'log', ...common(cfg) }),
  files: (cfg) => ({
    kind: 'files',
    ...common(cfg),
    logDir: cfg.log_dir ? absolutePath(cfg.log_dir, 'log_dir') : DEFAULT_LOG_DIR,
  }),
  syslog: (cfg) => ({
    kind: 'syslog',
    ...common(cfg),
    target: syslogTarget(cfg),
    facility: syslogFacility(cfg),
    tag: syslogTag(cfg),
  }),
  fluent: (cfg) => ({
    kind: 'fluent',
    ...common(cfg),
    host: cfg.fluent_host ? host(cfg.fluent_host, 'fluent_host') : DEFAULT_FLUENT_HOST,
    port: port(cfg, 'fluent_port', DEFAULT_FLUENT_PORT),
    tag: fluentTag(cfg),
    requireAck: parseBool(cfg, 'require_ack'),
  }),
  s3: (cfg) => ({ kind: 's3', ...common(cfg), bucket: s3Bucket(cfg), prefix: s3Prefix(cfg) }),
  cloudwatch: (cfg) => ({
    kind: 'cloudwatch',
    ...common(cfg),
    logGroup: logGroup(cfg),
    logStream: logStream(cfg),
  }),
};

export function isBuiltInProcessor(name: string): name is BuiltInProcessor {
  return Object.hasOwn(PARSERS, name);
}

/** One processor's config, parsed. Throws ProcessorConfigError (key, problem) or, for a bad name, key ''. */
export function parseProcessor(name: string, cfg: Cfg): ProcessorConfig {
  if (isBuiltInProcessor(name)) return PARSERS[name](cfg);
  if (!PROCESSOR_NAME.test(name)) {
    throw new ProcessorConfigError(
      '',
      `must be a built-in processor (${BUILT_IN_PROCESSORS.join(', ')}) or the lowercase name of a custom one ` +
        `(${CUSTOM_PROCESSOR_PREFIX}<name> on the agents; a letter first, then a-z, 0-9, _ and -)`,
    );
  }
  return { kind: 'custom', name, ...common(cfg, DEFAULT_CUSTOM_TIMEOUT_MS), config: cfg };
}

/**
 * Why a processor cannot run where this job runs, or null. An agentless job (shared/executors/registry.ts)
 * runs in the worker, a Lambda function: it has no disk of the user's, no local syslog and no custom
 * processors, so `files`, `syslog` without a network address and custom processors only run on agents.
 */
export function placementProblem(
  config: ProcessorConfig,
  agentless: boolean,
): { key: string; problem: string } | null {
  if (!agentless) return null;
  const where = 'this job runs in the worker, not on an agent (give it tags to run it on agents)';
  if (config.kind === 'files') return { key: '', problem: `writes to the disk of an agent, but ${where}` };
  if (config.kind === 'syslog' && config.target.transport === 'unix') {
    return {
      key: 'address',
      problem:
        'must be a udp:// or tcp:// address: this job runs in the worker, which has no local syslog ' +
        '(give it tags to run it on agents)',
    };
  }
  if (config.kind === 'custom') return { key: '', problem: `custom processors run on agents, but ${where}` };
  return null;
}

/** The field a ValidationError names: `processors.<name>` or `processors.<name>.<key>`. */
export function processorField(name: string, key: string): string {
  const shown = name.length > 64 ? `${name.slice(0, 64)}…` : name;
  return key === '' ? `processors.${shown}` : `processors.${shown}.${key}`;
}

/**
 * Checks a job's processors when it is written: each config as its processor parses it, and that each can
 * run where the job runs. Throws ValidationError naming `processors.<name>.<key>` (or `processors.<name>`).
 */
export function validateProcessors(job: Pick<JobDefinition, 'processors' | 'executor' | 'tags'>): void {
  const agentless = isAgentless(job);
  for (const [name, cfg] of Object.entries(job.processors)) {
    let config: ProcessorConfig;
    try {
      config = parseProcessor(name, cfg);
    } catch (error) {
      if (error instanceof ProcessorConfigError) {
        throw new ValidationError(processorField(name, error.key), error.problem, { cause: error });
      }
      throw error;
    }
    const misplaced = placementProblem(config, agentless);
    if (misplaced) throw new ValidationError(processorField(name, misplaced.key), misplaced.problem);
  }
}

/** The server a processor sends to over the network (the worker's allow-list names them), and its key. */
export function networkTarget(
  config: ProcessorConfig,
): { kind: ProcessorTargetKind; key: string; address: BrokerAddress } | null {
  if (config.kind === 'syslog' && config.target.transport !== 'unix') {
    return {
      kind: 'syslog',
      key: 'address',
      address: { host: config.target.host, port: config.target.port },
    };
  }
  if (config.kind === 'fluent') {
    return { kind: 'fluent', key: 'fluent_host', address: { host: config.host, port: config.port } };
  }
  return null;
}

/** Why the worker may not send to this processor's server (CRONPLANE_WORKER_ALLOW), or null. */
export function networkTargetRefusal(
  config: ProcessorConfig,
  allow: WorkerAllowList | null,
): { key: string; problem: string } | null {
  const target = networkTarget(config);
  const problem = target ? brokerTargetRefusal(target.kind, [target.address], allow) : null;
  return target && problem ? { key: target.key, problem } : null;
}

/**
 * For an agentless job (its processors run in the worker): each syslog or fluent server must be on the
 * worker's allow-list when the list names that kind. Throws ValidationError (`processors.<name>.<key>`).
 * Configs that do not parse are left to validateProcessors.
 */
export function checkProcessorTargets(
  job: Pick<JobDefinition, 'executor' | 'tags'> & { readonly processors?: JobDefinition['processors'] },
  allow: WorkerAllowList | null,
): void {
  if (!allow || !isAgentless(job)) return;
  for (const [name, cfg] of Object.entries(job.processors ?? {})) {
    let config: ProcessorConfig;
    try {
      config = parseProcessor(name, cfg);
    } catch {
      continue;
    }
    const refused = networkTargetRefusal(config, allow);
    if (refused) throw new ValidationError(processorField(name, refused.key), refused.problem);
  }
}
