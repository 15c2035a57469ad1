import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../shared/errors.ts';
import { parseWorkerAllowList, type WorkerAllowList } from '../../../../shared/executors/targets.ts';
import { checkExecutorTrust } from '../../../../shared/jobs/executor-config.ts';
import { validateJob } from '../../../../shared/jobs/job.ts';
import {
  DEFAULT_LOG_DIR,
  parseBool,
  parseProcessor,
  validateProcessors,
} from '../../../../shared/processors/config.ts';

const shell = { executor: 'shell', tags: {} };
const agentless = { executor: 'http', tags: {} };

function fieldOf(processors: Record<string, Record<string, string>>, job = shell): string | null {
  try {
    validateProcessors({ ...job, processors });
    return null;
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    expect(error.message).toBe(`${error.field}: ${error.rule}`);
    return error.field;
  }
}

describe('processor configs', () => {
  it("parses booleans as Go's strconv.ParseBool does, and nothing else", () => {
    for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True'])
      expect(parseBool({ forward: t }, 'forward')).toBe(true);
    for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False', '']) {
      expect(parseBool({ forward: f }, 'forward')).toBe(false);
    }
    expect(parseBool({}, 'forward')).toBe(false);
    for (const bad of ['yes', 'on', 'tRUE', ' true']) {
      expect(fieldOf({ log: { forward: bad } })).toBe('processors.log.forward');
    }
  });

  it('fills in the defaults', () => {
    expect(parseProcessor('files', {})).toMatchObject({
      kind: 'files',
      forward: false,
      logDir: DEFAULT_LOG_DIR,
    });
    expect(parseProcessor('syslog', {})).toMatchObject({
      target: { transport: 'unix', path: '/dev/log' },
      facility: 9,
      tag: 'cronplane',
      timeoutMs: 10_000,
    });
    expect(parseProcessor('fluent', {})).toMatchObject({
      host: '127.0.0.1',
      port: 24224,
      tag: 'cronplane',
      requireAck: false,
    });
    expect(parseProcessor('s3', {})).toMatchObject({ bucket: null, prefix: 'output/' });
    expect(parseProcessor('cloudwatch', {})).toMatchObject({ logGroup: '/cronplane/jobs', logStream: null });
    expect(parseProcessor('archive', { anything: 'x' })).toMatchObject({
      kind: 'custom',
      name: 'archive',
      timeoutMs: 30_000,
      config: { anything: 'x' },
    });
  });

  it('reads syslog addresses', () => {
    const target = (address: string) => (parseProcessor('syslog', { address }) as { target: unknown }).target;
    expect(target('udp://10.0.0.5')).toEqual({ transport: 'udp', host: '10.0.0.5', port: 514 });
    expect(target('tcp://logs.example.com:6514')).toEqual({
      transport: 'tcp',
      host: 'logs.example.com',
      port: 6514,
    });
    expect(target('udp://[::1]:1514')).toEqual({ transport: 'udp', host: '::1', port: 1514 });
    expect(target('unix:///run/syslog.sock')).toEqual({ transport: 'unix', path: '/run/syslog.sock' });
    for (const bad of [
      '10.0.0.5:514',
      'http://x',
      'udp://',
      'tcp://h:0',
      'tcp://h:99999',
      'unix://rel',
      'udp://a/b',
    ]) {
      expect(fieldOf({ syslog: { address: bad } }), bad).toBe('processors.syslog.address');
    }
    expect(parseProcessor('syslog', { facility: 'LOCAL7' })).toMatchObject({ facility: 23 });
    expect(parseProcessor('syslog', { facility: '4' })).toMatchObject({ facility: 4 });
    expect(fieldOf({ syslog: { facility: 'local8' } })).toBe('processors.syslog.facility');
    expect(fieldOf({ syslog: { tag: 'has space' } })).toBe('processors.syslog.tag');
    expect(fieldOf({ syslog: { tag: 'x'.repeat(49) } })).toBe('processors.syslog.tag');
  });

  it('names the key of every rule', () => {
    const cases: Array<[Record<string, Record<string, string>>, string]> = [
      [{ files: { log_dir: 'relative/dir' } }, 'processors.files.log_dir'],
      [{ files: { timeout: '0' } }, 'processors.files.timeout'],
      [{ files: { timeout: '6m' } }, 'processors.files.timeout'],
      [{ fluent: { fluent_port: 'http' } }, 'processors.fluent.fluent_port'],
      [{ fluent: { fluent_host: 'a host' } }, 'processors.fluent.fluent_host'],
      [{ fluent: { fluent_tag: 'a..b' } }, 'processors.fluent.fluent_tag'],
      [{ fluent: { require_ack: 'please' } }, 'processors.fluent.require_ack'],
      [{ s3: { bucket: 'ab' } }, 'processors.s3.bucket'],
      [{ s3: { bucket: '192.168.1.1' } }, 'processors.s3.bucket'],
      [{ s3: { prefix: '/abs/' } }, 'processors.s3.prefix'],
      [{ cloudwatch: { log_group: 'has space' } }, 'processors.cloudwatch.log_group'],
      [{ cloudwatch: { log_stream: 'a*b' } }, 'processors.cloudwatch.log_stream'],
      [{ archive: { timeout: 'soon' } }, 'processors.archive.timeout'],
      [{ Archive: {} }, 'processors.Archive'],
      [{ '1st': {} }, 'processors.1st'],
    ];
    for (const [processors, field] of cases) expect(fieldOf(processors), field).toBe(field);
    expect(
      fieldOf({ files: { log_dir: '/var/log/x/' }, s3: { bucket: 'my.bucket-1', prefix: '' } }),
    ).toBeNull();
  });

  it('refuses, for a job that runs in the worker, what needs an agent', () => {
    expect(fieldOf({ files: {} }, agentless)).toBe('processors.files');
    expect(fieldOf({ syslog: {} }, agentless)).toBe('processors.syslog.address');
    expect(fieldOf({ syslog: { address: 'unix:///dev/log' } }, agentless)).toBe('processors.syslog.address');
    expect(fieldOf({ archive: {} }, agentless)).toBe('processors.archive');
    expect(
      fieldOf(
        { log: {}, syslog: { address: 'tcp://10.0.0.1' }, fluent: {}, s3: {}, cloudwatch: {} },
        agentless,
      ),
    ).toBeNull();
    // Tagged, the same http job runs on agents.
    expect(fieldOf({ files: {} }, { executor: 'http', tags: { role: 'web' } } as never)).toBeNull();
  });

  it('is part of the job validation, and keeps the order given', () => {
    const job = (processors: unknown) =>
      validateJob({
        name: 'j',
        schedule: '@manually',
        executor: 'shell',
        executor_config: { command: 'true' },
        processors,
      });
    expect(() => job({ files: { log_dir: 'x' } })).toThrow(
      'processors.files.log_dir: must be an absolute path',
    );
    // Dkron's JSON carries booleans too; they are stored as the strings Dkron's plugins read.
    const def = job({ syslog: { forward: true }, log: {}, files: { forward: 'true' } });
    expect(Object.keys(def.processors)).toEqual(['syslog', 'log', 'files']);
    expect(def.processors.syslog).toEqual({ forward: 'true' });
  });

  it("bounds the servers agentless jobs' processors send to by the worker's allow-list", () => {
    const allow = parseWorkerAllowList(
      JSON.stringify({ http: ['https://*'], syslog: ['logs.internal:514'], fluent: ['127.0.0.1:*'] }),
    ) as WorkerAllowList;
    const policy = { secretsPath: '/cronplane/', workerAllow: allow };
    const trust = (processors: Record<string, Record<string, string>>, tags: Record<string, string> = {}) => {
      try {
        checkExecutorTrust(
          { executor: 'http', executor_config: { url: 'https://api.example.com/' }, tags, processors },
          policy,
        );
        return null;
      } catch (error) {
        if (error instanceof ValidationError) return [error.field, error.rule];
        throw error;
      }
    };
    expect(
      trust({ syslog: { address: 'udp://logs.internal' }, fluent: { fluent_port: '24225' }, s3: {} }),
    ).toBeNull();
    expect(trust({ syslog: { address: 'tcp://evil.example:514' } })).toEqual([
      'processors.syslog.address',
      "'evil.example:514' is not in the worker's allow-list (CRONPLANE_WORKER_ALLOW syslog: logs.internal:514)",
    ]);
    expect(trust({ fluent: { fluent_host: '10.0.0.9' } })?.[0]).toBe('processors.fluent.fluent_host');
    // On agents the list does not apply; nor does it to kinds it leaves out.
    expect(trust({ syslog: { address: 'tcp://evil.example:514' } }, { role: 'web' })).toBeNull();
    const open = { ...allow, syslog: null };
    expect(() =>
      checkExecutorTrust(
        {
          executor: 'http',
          executor_config: { url: 'https://a/' },
          tags: {},
          processors: { syslog: { address: 'udp://anywhere' } },
        },
        { secretsPath: '/cronplane/', workerAllow: open },
      ),
    ).not.toThrow();
  });
});
