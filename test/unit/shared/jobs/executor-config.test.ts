import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../../shared/errors.ts';
import { checkExecutorTrust, validateExecutorConfig } from '../../../../shared/jobs/executor-config.ts';
import { validateJob } from '../../../../shared/jobs/job.ts';

type Config = Record<string, string>;

/** The ValidationError validateExecutorConfig throws, or null when it accepts the config. */
function problem(executor: string, cfg: Config): ValidationError | null {
  try {
    validateExecutorConfig(executor, cfg);
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
}

const accepts = (executor: string, cfgs: Config[]) =>
  it.each(cfgs)(`accepts ${executor} %j`, (cfg) => expect(problem(executor, cfg)).toBeNull());

const rejects = (executor: string, cases: Array<[Config, string, RegExp]>) =>
  it.each(cases)(`rejects ${executor} %j: %s`, (cfg, field, rule) => {
    const error = problem(executor, cfg);
    expect(error?.field).toBe(field);
    expect(error?.rule).toMatch(rule);
  });

describe('shell', () => {
  accepts('shell', [
    { command: 'echo hello' },
    { command: `echo "a b" 'c $d'`, env: 'A=1,B=x=y', cwd: '/tmp', timeout: '10m', payload: 'aGk=' },
    { command: 'echo $X | tr a b; exit 3', shell: 'true', timeout: '30' },
    // Run-time secret references in env values; unknown keys (Dkron's mem_limit, su) are ignored.
    { command: 'true', env: 'TOKEN={{ssm:/app/token}},OTHER={{ ssm:/x:3 }}', mem_limit: '1g', su: 'nobody' },
    { command: 'true', timeout: '0' },
  ]);
  rejects('shell', [
    [{}, 'executor_config.command', /is required for the shell executor/],
    [{ command: '   ' }, 'executor_config.command', /is required/],
    [{ command: '', shell: 'true' }, 'executor_config.command', /is required/],
    [{ command: 'echo "open' }, 'executor_config.command', /unterminated " quote/],
    [{ command: "echo 'open" }, 'executor_config.command', /unterminated ' quote/],
    [{ command: 'true', timeout: 'soon' }, 'executor_config.timeout', /neither a number of seconds nor/],
    [{ command: 'true', timeout: '-5s' }, 'executor_config.timeout', /negative/],
  ]);
});

describe('http', () => {
  accepts('http', [
    { url: 'https://example.com/hook' },
    {
      method: 'post',
      url: 'http://127.0.0.1:8080/x?y=1',
      headers: '["Content-Type: application/json", "X-Empty:"]',
      body: '{"a":1}',
      timeout: '5s',
      expectCode: '200, 201,204',
      expectBody: '(?i)"ok":\\s*true',
      debug: 'true',
      tlsNoVerifyPeer: 'true',
      tlsCertificateFile: '/etc/ssl/client.pem',
      tlsCertificateKeyFile: '/etc/ssl/client.key',
      tlsRootCAsFile: '/etc/ssl/ca.pem',
    },
    { url: 'https://example.com', timeout: '1.5', headers: '', expectCode: '', expectBody: '' },
    { url: 'https://example.com', headers: '[]', unknown_key: 'ignored' },
    // `{{ssm:...}}` is resolved at run time in url, header values and body.
    { url: '{{ssm:/app/webhook-url}}' },
    { url: 'https://{{ssm:/app/host}}:{{ssm:/app/port}}/x' },
    { url: 'https://example.com/?token={{ssm:/app/token}}' },
    { url: 'https://example.com', headers: '["Authorization: Bearer {{ssm:/app/token}}"]' },
    { url: 'https://example.com', body: 'password={{ssm:/db/password:3}}' },
  ]);
  rejects('http', [
    [{}, 'executor_config.url', /is required/],
    [{ url: 'not a url' }, 'executor_config.url', /is not a URL/],
    [{ url: 'example.com/hook' }, 'executor_config.url', /is not a URL/],
    [{ url: 'ftp://example.com/file' }, 'executor_config.url', /must be http:\/\/ or https:\/\//],
    [{ url: 'https://example.com', method: 'GE T' }, 'executor_config.method', /is not an HTTP method/],
    [{ url: 'https://x', headers: 'Authorization: x' }, 'executor_config.headers', /JSON array/],
    [{ url: 'https://x', headers: '{"A": "b"}' }, 'executor_config.headers', /JSON array/],
    [{ url: 'https://x', headers: '[1]' }, 'executor_config.headers', /entry 0 must be a string/],
    [{ url: 'https://x', headers: '["NoColon"]' }, 'executor_config.headers', /has no colon/],
    [{ url: 'https://x', headers: '["Bad Name: v"]' }, 'executor_config.headers', /not a valid header name/],
    [{ url: 'https://x', expectCode: 'abc' }, 'executor_config.expectCode', /not an HTTP status code/],
    [{ url: 'https://x', expectCode: '200,99' }, 'executor_config.expectCode', /'99'/],
    [{ url: 'https://x', expectBody: '(unclosed' }, 'executor_config.expectBody', /regular expression/],
    [{ url: 'https://x', expectBody: '(?U)a+' }, 'executor_config.expectBody', /flag 'U'/],
    [{ url: 'https://x', timeout: '30 seconds' }, 'executor_config.timeout', /neither a number/],
    [
      { url: 'https://x', tlsCertificateKeyFile: '/k.pem' },
      'executor_config.tlsCertificateKeyFile',
      /needs tlsCertificateFile/,
    ],
    // A reference in the url does not excuse the other keys.
    [{ url: '{{ssm:/app/url}}', expectCode: 'abc' }, 'executor_config.expectCode', /not an HTTP status/],
    // Header values are resolved after the header list is parsed, so the list itself must be valid.
    [{ url: 'https://x', headers: '{{ssm:/app/headers}}' }, 'executor_config.headers', /JSON array/],
  ]);
});

describe('lambda', () => {
  accepts('lambda', [
    { function_name: 'report' },
    {
      function_name: 'arn:aws:lambda:eu-west-1:123456789012:function:report',
      payload: '{"x":1}',
      invocation_type: 'Event',
      qualifier: 'live',
      timeout: '1m',
    },
    { function_name: 'report', invocation_type: 'RequestResponse', extra: 'ignored' },
  ]);
  rejects('lambda', [
    [{}, 'executor_config.function_name', /is required for the lambda executor/],
    [{ function_name: '  ' }, 'executor_config.function_name', /is required/],
    [
      { function_name: 'f', invocation_type: 'DryRun' },
      'executor_config.invocation_type',
      /must be one of RequestResponse, Event/,
    ],
    [{ function_name: 'f', timeout: 'soon' }, 'executor_config.timeout', /neither a number/],
  ]);
});

describe('sqs', () => {
  const queue = 'https://sqs.eu-west-1.amazonaws.com/123456789012/jobs';
  accepts('sqs', [
    { queue_url: queue, message: 'hello' },
    { queue_url: queue, message: 'hello', delay_seconds: '0' },
    { queue_url: queue, message: 'hello', delay_seconds: '900', timeout: '5s' },
    { queue_url: `${queue}.fifo`, message: 'x', message_group_id: 'g', message_deduplication_id: 'd' },
  ]);
  rejects('sqs', [
    [{ message: 'x' }, 'executor_config.queue_url', /is required for the sqs executor/],
    [{ queue_url: queue }, 'executor_config.message', /is required/],
    [{ queue_url: `${queue}.fifo`, message: 'x' }, 'executor_config.message_group_id', /FIFO queue/],
    [{ queue_url: queue, message: 'x', delay_seconds: '5000' }, 'executor_config.delay_seconds', /0 to 900/],
    [{ queue_url: queue, message: 'x', delay_seconds: '-1' }, 'executor_config.delay_seconds', /0 to 900/],
    [{ queue_url: queue, message: 'x', delay_seconds: '1.5' }, 'executor_config.delay_seconds', /whole/],
    [{ queue_url: queue, message: 'x', timeout: 'soon' }, 'executor_config.timeout', /neither a number/],
  ]);
});

describe('eventbridge', () => {
  accepts('eventbridge', [
    { source: 'app', detail_type: 'Tick' },
    { event_bus: 'ops', source: 'app', detail_type: 'Tick', detail: '{"a":[1,2]}', timeout: '10' },
    { source: 'app', detail_type: 'Tick', detail: '  ' },
  ]);
  rejects('eventbridge', [
    [{ detail_type: 't' }, 'executor_config.source', /is required for the eventbridge executor/],
    [{ source: 's' }, 'executor_config.detail_type', /is required/],
    [{ source: 's', detail_type: 't', detail: '[1]' }, 'executor_config.detail', /must be a JSON object/],
    [{ source: 's', detail_type: 't', detail: '{oops' }, 'executor_config.detail', /must be a JSON object/],
    [{ source: 's', detail_type: 't', detail: 'null' }, 'executor_config.detail', /must be a JSON object/],
  ]);
});

describe('custom (external) executors', () => {
  it('accepts any config: only the executable on the agent knows its keys', () => {
    expect(problem('my-notifier', {})).toBeNull();
    expect(problem('my-notifier', { url: 'not a url', delay_seconds: '5000' })).toBeNull();
    // Not a built-in because it is an Object.prototype key.
    expect(problem('constructor', {})).toBeNull();
  });
});

describe('validateJob', () => {
  const base = { name: 'j', schedule: '@manually' };

  it.each([
    [{ executor: 'http', executor_config: { url: 'nope' } }, 'executor_config.url'],
    [{ executor: 'http', executor_config: { url: 'https://x', headers: 'X: y' } }, 'executor_config.headers'],
    [{ executor: 'lambda', executor_config: {} }, 'executor_config.function_name'],
    [
      { executor: 'sqs', executor_config: { queue_url: 'q', message: 'm', delay_seconds: 5000 } },
      'executor_config.delay_seconds',
    ],
    [{ executor: 'eventbridge', executor_config: { source: 's' } }, 'executor_config.detail_type'],
    [{ executor_config: { command: 'echo "open' } }, 'executor_config.command'],
  ])('rejects %j naming the key', (job, field) => {
    expect(() => validateJob({ ...base, ...job })).toThrowError(expect.objectContaining({ field }));
  });

  it('keeps the config as written (templates unresolved, unknown keys kept)', () => {
    const cfg = { url: '{{ssm:/hook}}', headers: '["A: {{ssm:/a}}"]', custom: 'x' };
    expect(validateJob({ ...base, executor: 'http', executor_config: cfg }).executor_config).toEqual(cfg);
  });

  it('leaves custom executors to the agent', () => {
    expect(validateJob({ ...base, executor: 'pager', executor_config: { anything: 'goes' } }).executor).toBe(
      'pager',
    );
  });
});

describe('checkExecutorTrust (the stack settings: secrets path, worker allow-list)', () => {
  const policy = {
    secretsPath: '/cronplane/',
    workerAllow: {
      lambda: ['reports-*'],
      sqs: [],
      events: ['default'],
      http: ['https://hooks.example.com/*'],
    },
  };
  const refusal = (def: { executor: string; executor_config: Config; tags?: Record<string, string> }) => {
    try {
      checkExecutorTrust({ tags: {}, ...def }, policy);
      return null;
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      return { field: (error as ValidationError).field, rule: (error as ValidationError).rule };
    }
  };

  it('refuses a secret outside the path in any key, naming the key', () => {
    expect(refusal({ executor: 'shell', executor_config: { command: 'echo {{ssm:/prod/db}}' } })).toEqual({
      field: 'executor_config.command',
      rule: '{{ssm:/prod/db}} is outside the secrets path /cronplane/ (CRONPLANE_SECRETS_PATH)',
    });
    expect(
      refusal({
        executor: 'shell',
        executor_config: { command: 'x', env: 'A={{ssm:/cronplane/../prod/db}}' },
      }),
    ).toEqual({
      field: 'executor_config.env',
      rule: expect.stringMatching(/not a plain SSM parameter name/),
    });
    expect(
      refusal({
        executor: 'http',
        tags: { role: 'web' },
        executor_config: { url: 'https://x', headers: '["A: {{ssm:/cronplanex/t}}"]' },
      })?.field,
    ).toBe('executor_config.headers');
    expect(refusal({ executor: 'custom', executor_config: { token: '{{ssm:/other}}' } })?.field).toBe(
      'executor_config.token',
    );
  });

  it('accepts secrets under the path', () => {
    expect(
      refusal({ executor: 'shell', executor_config: { command: 'x', env: 'A={{ssm:/cronplane/db:2}}' } }),
    ).toBeNull();
  });

  it('refuses an agentless target outside the allow-list, naming the key', () => {
    expect(refusal({ executor: 'lambda', executor_config: { function_name: 'admin' } })).toEqual({
      field: 'executor_config.function_name',
      rule: expect.stringMatching(
        /'admin' is not in the worker's allow-list \(CRONPLANE_WORKER_ALLOW lambda/,
      ),
    });
    expect(refusal({ executor: 'lambda', executor_config: { function_name: 'reports-x' } })).toBeNull();
    expect(
      refusal({ executor: 'sqs', executor_config: { queue_url: 'https://q/1/x', message: 'm' } })?.field,
    ).toBe('executor_config.queue_url');
    expect(
      refusal({ executor: 'eventbridge', executor_config: { source: 's', detail_type: 'd' } }),
    ).toBeNull();
  });

  it('bounds the URLs of untagged http jobs (the worker runs them), not of tagged ones (agents do)', () => {
    expect(refusal({ executor: 'http', executor_config: { url: 'https://evil.example/' } })).toEqual({
      field: 'executor_config.url',
      rule: expect.stringMatching(/not in the worker's allow-list \(CRONPLANE_WORKER_ALLOW http/),
    });
    expect(refusal({ executor: 'http', executor_config: { url: 'https://hooks.example.com/a' } })).toBeNull();
    expect(
      refusal({ executor: 'http', tags: { dc: 'x' }, executor_config: { url: 'https://evil.example/' } }),
    ).toBeNull();
  });

  it('allows every target without a list', () => {
    expect(
      checkExecutorTrust(
        { executor: 'lambda', tags: {}, executor_config: { function_name: 'anything' } },
        { secretsPath: '/cronplane/', workerAllow: null },
      ),
    ).toBeUndefined();
  });
});
