import { describe, expect, it } from 'vitest';
import {
  awsTargetRefusal,
  globMatch,
  httpTargetRefusal,
  parseWorkerAllowList,
  type WorkerAllowList,
} from '../../../../shared/executors/targets.ts';

const list = (json: string) => {
  const parsed = parseWorkerAllowList(json);
  if (parsed === null || 'problem' in parsed) throw new Error(`not a list: ${json}`);
  return parsed;
};

describe('parseWorkerAllowList', () => {
  it('is null (everything allowed) when unset', () => {
    expect(parseWorkerAllowList('')).toBeNull();
    expect(parseWorkerAllowList('  ')).toBeNull();
  });

  it('leaves out kinds as empty (nothing allowed), except http (unrestricted)', () => {
    expect(list('{"lambda":["a-*"]}')).toEqual({ lambda: ['a-*'], sqs: [], events: [], http: null });
    expect(list('{"http":[]}').http).toEqual([]);
  });

  it.each([
    ['[]', /JSON object/],
    ['{"lambda":"a"}', /"lambda" must be an array/],
    ['{"lambda":[""]}', /"lambda" must be an array of non-empty strings/],
    ['{"s3":["b"]}', /unknown key "s3"/],
    ['{nope', /JSON object/],
  ])('refuses %s', (json, problem) => {
    expect(parseWorkerAllowList(json)).toEqual({ problem: expect.stringMatching(problem) });
  });
});

describe('globMatch', () => {
  it('matches * as any run of characters and everything else literally', () => {
    expect(globMatch('reports-*', 'reports-daily')).toBe(true);
    expect(globMatch('reports-*', 'report-daily')).toBe(false);
    expect(globMatch('a.b', 'aXb')).toBe(false);
    expect(globMatch('*', 'anything:at/all')).toBe(true);
    expect(globMatch('Name', 'name')).toBe(false);
  });
});

describe('awsTargetRefusal', () => {
  const allow: WorkerAllowList = list(
    JSON.stringify({
      lambda: ['reports-*', 'arn:aws:lambda:eu-west-1:111111111111:function:billing'],
      sqs: [
        'orders',
        'arn:aws:sqs:eu-west-1:111111111111:audit-*',
        'http://localhost:*/000000000000/local-*',
      ],
      events: ['default', 'arn:aws:events:eu-west-1:111111111111:event-bus/ops'],
    }),
  );
  const allowed = (executor: string, key: string, value: string) =>
    expect(awsTargetRefusal(executor, { [key]: value }, allow), value).toBeNull();
  const refused = (executor: string, key: string, value: string) =>
    expect(awsTargetRefusal(executor, { [key]: value }, allow), value).toEqual({
      key,
      problem: expect.stringContaining("is not in the worker's allow-list"),
    });

  it('allows everything without a list', () => {
    expect(awsTargetRefusal('lambda', { function_name: 'anything' }, null)).toBeNull();
  });

  it('lambda: by name however the job writes it, and by ARN', () => {
    allowed('lambda', 'function_name', 'reports-daily');
    allowed('lambda', 'function_name', 'reports-daily:prod');
    allowed('lambda', 'function_name', 'arn:aws:lambda:us-east-1:222222222222:function:reports-x');
    allowed('lambda', 'function_name', '111111111111:function:reports-x');
    allowed('lambda', 'function_name', 'arn:aws:lambda:eu-west-1:111111111111:function:billing:live');
    allowed('lambda', 'function_name', 'billing');
    refused('lambda', 'function_name', 'admin-reset');
    refused('lambda', 'function_name', 'arn:aws:lambda:eu-west-1:222222222222:function:billing');
    refused('lambda', 'function_name', 'xreports-daily');
  });

  it('sqs: by queue name, ARN derived from an AWS queue URL, or URL', () => {
    allowed('sqs', 'queue_url', 'https://sqs.eu-west-1.amazonaws.com/111111111111/orders');
    allowed('sqs', 'queue_url', 'https://sqs.eu-west-1.amazonaws.com/111111111111/audit-2026');
    allowed('sqs', 'queue_url', 'http://localhost:4566/000000000000/local-q');
    refused('sqs', 'queue_url', 'https://sqs.eu-west-1.amazonaws.com/222222222222/audit-2026');
    refused('sqs', 'queue_url', 'https://sqs.eu-west-1.amazonaws.com/111111111111/cronplane-launch');
  });

  it('eventbridge: by bus name or ARN; no event_bus means default', () => {
    expect(awsTargetRefusal('eventbridge', { source: 's', detail_type: 'd' }, allow)).toBeNull();
    allowed('eventbridge', 'event_bus', 'ops');
    allowed('eventbridge', 'event_bus', 'arn:aws:events:eu-west-1:111111111111:event-bus/ops');
    refused('eventbridge', 'event_bus', 'arn:aws:events:eu-west-1:222222222222:event-bus/ops');
    refused('eventbridge', 'event_bus', 'partner-bus');
  });

  it('a kind left out of the list allows nothing', () => {
    const lambdaOnly = list('{"lambda":["*"]}');
    expect(awsTargetRefusal('lambda', { function_name: 'x' }, lambdaOnly)).toBeNull();
    expect(awsTargetRefusal('sqs', { queue_url: 'https://q/1/x' }, lambdaOnly)?.problem).toMatch(/sqs: none/);
  });

  it('has nothing to say about executors without an AWS target', () => {
    expect(awsTargetRefusal('shell', { command: 'x' }, allow)).toBeNull();
    expect(awsTargetRefusal('http', { url: 'https://x' }, allow)).toBeNull();
  });
});

describe('httpTargetRefusal', () => {
  it('leaves http unrestricted unless the list has an http key', () => {
    expect(httpTargetRefusal('https://evil.example/', list('{"lambda":[]}'))).toBeNull();
    const hooks = list('{"http":["https://hooks.example.com/*"]}');
    expect(httpTargetRefusal('https://hooks.example.com/a?b=c', hooks)).toBeNull();
    expect(httpTargetRefusal('https://hooks.example.com.evil.net/', hooks)).toMatch(/allow-list/);
    expect(httpTargetRefusal('https://evil.example/', list('{"http":[]}'))).toMatch(/http: none/);
  });
});
