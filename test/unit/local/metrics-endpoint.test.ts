/** GET /metrics of the local HTTP server: Prometheus text, unsigned even when the API takes only SigV4. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer } from '../../../local/http-server.ts';
import { METRICS } from '../../../shared/metrics/metrics.ts';
import { PrometheusRegistry } from '../../../shared/metrics/prometheus.ts';

const metrics = new PrometheusRegistry(Object.values(METRICS));
let server: Awaited<ReturnType<typeof startHttpServer>>;

beforeAll(async () => {
  server = await startHttpServer({
    port: 0,
    metrics,
    iamAuth: { keys: { AKIDLOCAL: 'secret' }, region: 'eu-west-1' },
    handler: async () => ({ statusCode: 200, body: '[]' }),
  });
});
afterAll(() => server?.close());

describe('GET /metrics', () => {
  it('answers a scraper without a signature, while the API still refuses one', async () => {
    metrics.add(METRICS.executions, 1, { status: 'succeeded' });
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await res.text()).toContain('cronplane_executions_total{status="succeeded"} 1\n');
    expect((await fetch(`${server.url}/v1/jobs`)).status).toBe(403);
    // Only GET (and HEAD) is the metrics; anything else goes where it went before.
    expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(403);
  });
});
