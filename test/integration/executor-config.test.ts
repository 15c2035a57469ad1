/** An executor_config the executor would refuse at run time is refused when the job is written, and not stored. */
import { describe, expect, it } from 'vitest';
import { useTestStack } from './support/stack.ts';

const stack = useTestStack();

describe('executor_config validation', () => {
  it('answers 400 naming executor_config.url for a bad http url, and stores nothing', async () => {
    const res = await stack.api('POST', '/v1/jobs', {
      name: 'bad-url',
      schedule: '@every 1m',
      executor: 'http',
      executor_config: { url: 'not a url', method: 'GET' },
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      field: 'executor_config.url',
      rule: expect.stringMatching(/is not a URL/),
    });
    expect(res.body.error).toContain('executor_config.url');
    expect((await stack.api('GET', '/v1/jobs/bad-url')).status).toBe(404);
  });
});
