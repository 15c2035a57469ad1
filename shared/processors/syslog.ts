/**
 * `syslog`: the output as RFC 5424 messages, to the host's syslog (default: the /dev/log socket, through
 * the `logger` command of util-linux, since Node.js cannot write Unix datagram sockets) or to a server at
 * `address`: `udp://host[:514]` (one datagram per message) or `tcp://host[:514]` (RFC 6587 octet-counted
 * frames on one connection), `unix:///path` for another local socket.
 *
 *   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [execution@32473 job="…" id="…" …] BOM output
 *
 * PRI is `facility` (default `cron`, Dkron's) × 8 + severity: `info` for a succeeded execution, `err`
 * otherwise (Dkron always logs `info`). TIMESTAMP is the execution's finish, HOSTNAME the node that ran
 * it, APP-NAME `tag` (default `cronplane`), PROCID the reporting process, MSGID `execution`. The
 * structured data carries the ids and the status (32473 is the enterprise number RFC 5612 reserves for
 * examples: no vendor registry applies). Outputs longer than MAX_OUTPUT_BYTES go in several messages,
 * each marked `part="n/m"` (rsyslog's default message limit is 8 KiB); the local path through `logger`
 * writes one message per output line instead, as the syslog daemon would show them anyway.
 *
 * UDP has no answer: a message lost on the way is not an error we can see. TCP and the local socket report
 * a server that is not there. Result: `Output in syslog` (Dkron's).
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { connect, isIP } from 'node:net';
import { hostname } from 'node:os';
import type { Execution } from '../executions/execution.ts';
import type { ProcessorConfig } from './config.ts';
import { type Processor, type ProcessorRun, splitUtf8 } from './processor.ts';

type SyslogConfig = Extract<ProcessorConfig, { kind: 'syslog' }>;

export const SYSLOG_RESULT = 'Output in syslog';
export const SD_ID = 'execution@32473';
export const MAX_OUTPUT_BYTES = 7 * 1024;
const SEVERITY_ERR = 3;
const SEVERITY_INFO = 6;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

export function severityOf(e: Pick<Execution, 'status'>): number {
  return e.status === 'succeeded' ? SEVERITY_INFO : SEVERITY_ERR;
}

/** RFC 5424 PARAM-VALUE escaping: `"`, `\` and `]`. */
function sdValue(v: string): string {
  return v.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** HOSTNAME: printable US-ASCII, at most 255, else `-`. */
function headerHost(name: string): string {
  const h = name.replace(/[^\x21-\x7e]/g, '_').slice(0, 255);
  return h === '' ? '-' : h;
}

/** The structured data's parameters (without `part`). */
export function sdParams(e: Execution): Array<[string, string]> {
  return [
    ['job', e.jobName],
    ['id', e.executionId],
    ['group', e.group],
    ['attempt', String(e.attempt)],
    ['status', e.status],
    ...(e.exitCode !== null ? ([['exit_code', String(e.exitCode)]] as Array<[string, string]>) : []),
  ];
}

/** The RFC 5424 messages of one execution (several when its output is long). */
export function syslogMessages(e: Execution, config: SyslogConfig, procId: number | string): Buffer[] {
  const pri = config.facility * 8 + severityOf(e);
  const time = new Date(e.finishedAt ?? Date.now()).toISOString();
  const header = `<${pri}>1 ${time} ${headerHost(e.nodeName || hostname())} ${config.tag} ${procId} execution`;
  const params = sdParams(e)
    .map(([k, v]) => ` ${k}="${sdValue(v)}"`)
    .join('');
  const parts = e.output === '' ? [''] : splitUtf8(e.output, MAX_OUTPUT_BYTES);
  return parts.map((part, i) => {
    const sd = `[${SD_ID}${params}${parts.length > 1 ? ` part="${i + 1}/${parts.length}"` : ''}]`;
    const head = Buffer.from(`${header} ${sd}`, 'utf8');
    return part === '' ? head : Buffer.concat([head, Buffer.from(' '), BOM, Buffer.from(part, 'utf8')]);
  });
}

export class SyslogProcessor implements Processor<SyslogConfig> {
  async process(run: ProcessorRun, config: SyslogConfig): Promise<string> {
    const target = config.target;
    if (target.transport === 'unix') await viaLogger(run, config, target.path);
    else {
      const messages = syslogMessages(run.execution, config, process.pid);
      if (target.transport === 'udp') await sendUdp(target.host, target.port, messages, run.signal);
      else await sendTcp(target.host, target.port, messages, run.signal);
    }
    return SYSLOG_RESULT;
  }
}

async function sendUdp(host: string, port: number, messages: Buffer[], signal: AbortSignal): Promise<void> {
  const address = isIP(host) ? host : (await lookup(host)).address;
  const socket = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
  const onAbort = () => socket.close();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (const m of messages) {
      await new Promise<void>((resolve, reject) =>
        socket.send(m, port, address, (error) => (error ? reject(error) : resolve())),
      );
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    try {
      socket.close();
    } catch {
      // closed by the abort
    }
  }
}

/** RFC 6587 octet counting: `<length> <message>` per message, on one connection. */
function sendTcp(host: string, port: number, messages: Buffer[], signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const socket = connect({ host, port, signal });
    socket.on('error', reject); // also after the end: a reset must not go unhandled
    socket.once('connect', () => {
      for (const m of messages) socket.write(Buffer.concat([Buffer.from(`${m.length} `), m]));
      // Resolved once everything is handed to the kernel; the server closes its side when it has read.
      socket.end(() => resolve());
    });
  });
}

/** Facilities by the names `logger` knows (it takes no numbers): all but 12 to 15. */
const LOGGER_FACILITIES = [
  'kern',
  'user',
  'mail',
  'daemon',
  'auth',
  'syslog',
  'lpr',
  'news',
  'uucp',
  'cron',
  'authpriv',
  'ftp',
];

function loggerFacility(facility: number): string {
  const name = facility >= 16 ? `local${facility - 16}` : LOGGER_FACILITIES[facility];
  if (!name)
    throw new Error(`facility ${facility} cannot be written to the local syslog (logger has no name for it)`);
  return name;
}

/** The host's syslog socket through `logger` (util-linux): one message per output line. */
function viaLogger(run: ProcessorRun, config: SyslogConfig, socketPath: string): Promise<void> {
  const e = run.execution;
  const args = [
    '--socket',
    socketPath,
    '--socket-errors=on',
    '--rfc5424=notq',
    '--priority',
    `${loggerFacility(config.facility)}.${severityOf(e) === SEVERITY_INFO ? 'info' : 'err'}`,
    '--tag',
    config.tag,
    `--id=${process.pid}`,
    '--msgid',
    'execution',
    '--size',
    '65536',
    '--sd-id',
    SD_ID,
    ...sdParams(e).flatMap(([k, v]) => ['--sd-param', `${k}="${sdValue(v)}"`]),
  ];
  return new Promise<void>((resolve, reject) => {
    const child = spawn('logger', args, { stdio: ['pipe', 'ignore', 'pipe'], signal: run.signal });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-2_000);
    });
    child.on('error', (error) =>
      reject(
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? new Error(
              'the local syslog needs the logger command (util-linux); or give an address (udp://, tcp://)',
            )
          : error,
      ),
    );
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`logger exited with code ${code}${stderr.trim() ? `: ${stderr.trim()}` : ''}`)),
    );
    child.stdin?.on('error', () => {});
    child.stdin?.end(e.output === '' || e.output.endsWith('\n') ? e.output || '\n' : `${e.output}\n`);
  });
}
