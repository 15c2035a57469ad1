import { describe, expect, it } from 'vitest';
import { FINAL_STATUSES, METRICS, NAMESPACE, SERVICES } from '../../../shared/metrics/metrics.ts';
import { Resolver, STACK, synthTemplate } from './synthesized.ts';

const template = synthTemplate();
const resolver = new Resolver(template);

type MetricRow = (string | Record<string, unknown>)[];
interface Widget {
  type: string;
  properties: { title?: string; metrics?: MetricRow[] };
}

function dashboard(): { name: string; widgets: Widget[] } {
  const ids = resolver.idsOf('AWS::CloudWatch::Dashboard');
  expect(ids).toHaveLength(1);
  const props = template.Resources[ids[0]!].Properties;
  return {
    name: resolver.resolve(props.DashboardName) as string,
    widgets: JSON.parse(resolver.resolve(props.DashboardBody) as string).widgets,
  };
}

function widget(title: string): MetricRow[] {
  const found = dashboard().widgets.find((w) => w.properties.title === title);
  if (!found) throw new Error(`no widget "${title}"`);
  return found.properties.metrics ?? [];
}

/** A row as [namespace, name, dimensions..., options]; the repeated-value shorthand ("...") is not used by CDK. */
function row(r: MetricRow) {
  const options = typeof r.at(-1) === 'object' ? (r.at(-1) as Record<string, unknown>) : {};
  const names = r.filter((x): x is string => typeof x === 'string');
  const [namespace, metric, ...dims] = names;
  const dimensions: Record<string, string> = {};
  for (let i = 0; i + 1 < dims.length; i += 2) dimensions[dims[i]!] = dims[i + 1]!;
  return {
    namespace,
    metric,
    dimensions,
    stat: options.stat,
    label: options.label,
    expression: options.expression,
  };
}

describe('the dashboard', () => {
  it('is one dashboard named after the stack', () => {
    expect(dashboard().name).toBe(`${STACK}-cronplane`);
  });

  it('graphs launches, jobs planned and ticks, from the tick function of this stack', () => {
    const rows = widget('Launches and jobs planned (per minute)').map(row);
    expect(rows.map((r) => [r.namespace, r.metric, r.stat])).toEqual([
      [NAMESPACE, METRICS.launches.name, 'Sum'],
      [NAMESPACE, METRICS.jobsPlanned.name, 'Sum'],
      ['AWS/Lambda', 'Invocations', 'Sum'],
    ]);
    for (const r of rows.slice(0, 2)) expect(r.dimensions).toEqual({ service: SERVICES.tick, stack: STACK });
    expect(Object.keys(rows[2]!.dimensions)).toEqual(['FunctionName']);
  });

  it('graphs launch lateness p50 and p99 and the tick duration', () => {
    expect(widget('Launch lateness (start − fire time)').map(row)).toEqual([
      expect.objectContaining({
        metric: 'LaunchLateness',
        stat: 'p50',
        dimensions: { service: SERVICES.events, stack: STACK },
      }),
      expect.objectContaining({ metric: 'LaunchLateness', stat: 'p99' }),
    ]);
    expect(
      widget('Tick duration').map((r) => [row(r).namespace, row(r).metric, row(r).stat ?? 'Average']),
    ).toEqual([
      ['AWS/Lambda', 'Duration', 'Average'],
      ['AWS/Lambda', 'Duration', 'Maximum'],
    ]);
  });

  it('graphs executions by every final status, lost ones and retries', () => {
    const rows = widget('Executions by final status').map(row);
    expect(rows.map((r) => r.dimensions)).toEqual(
      FINAL_STATUSES.map((status) => ({ service: SERVICES.events, stack: STACK, status })),
    );
    expect(new Set(rows.map((r) => r.metric))).toEqual(new Set([METRICS.executions.name]));
    expect(widget('Lost executions and retries').map(row)).toEqual([
      expect.objectContaining({
        metric: 'Executions',
        dimensions: expect.objectContaining({ status: 'lost' }),
      }),
      expect.objectContaining({ metric: 'Retries', stat: 'Sum' }),
    ]);
  });

  it("graphs the age of the dispatch queues (tag-set ones found by a search), the DLQ depth and the functions' errors", () => {
    const queues = resolver.idsOf('AWS::SQS::Queue');
    const age = widget('Queue age (oldest launch waiting)').map(row);
    const named = age.filter((r) => r.metric === 'ApproximateAgeOfOldestMessage');
    expect(named.map((r) => r.label)).toEqual(['default queue', 'worker queue']);
    for (const r of named) expect(queues).toContain(r.dimensions.QueueName);
    expect(age.find((r) => r.expression)?.expression).toBe(
      `SEARCH('{AWS/SQS,QueueName} MetricName="ApproximateAgeOfOldestMessage" "${STACK}-tags-"', 'Maximum', 60)`,
    );
    expect(widget('Dead-letter queue depth').map((r) => row(r).metric)).toEqual([
      'ApproximateNumberOfMessagesVisible',
    ]);
    const errors = widget('Lambda errors').map(row);
    expect(errors.map((r) => [r.namespace, r.metric, r.label])).toEqual(
      ['tick', 'events', 'worker', 'api'].map((label) => ['AWS/Lambda', 'Errors', label]),
    );
    const functions = resolver.idsOf('AWS::Lambda::Function');
    for (const r of errors) expect(functions).toContain(r.dimensions.FunctionName);
  });

  it('asks for the stack dimension the functions put on their metrics', () => {
    let checked = 0;
    for (const id of resolver.idsOf('AWS::Lambda::Function', (_, r) =>
      String(r.Properties?.Handler ?? '').startsWith('index.'),
    )) {
      const env = resolver.resolve(template.Resources[id].Properties.Environment?.Variables ?? {}) as Record<
        string,
        string
      >;
      if (!('CRONPLANE_JOBS_TABLE' in env)) continue;
      expect(env.CRONPLANE_STACK).toBe(STACK);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(4);
  });
});
