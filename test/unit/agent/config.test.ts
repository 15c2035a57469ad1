import { describe, expect, it } from 'vitest';
import { defaultApiUrl, localStackFile, resolveAgentConfig } from '../../../agent/config.ts';
import {
  AGENT_GRACE_MS,
  AGENT_HEARTBEAT_MS,
  EXECUTION_HEARTBEAT_MS,
  LOST_AFTER_MS,
} from '../../../shared/timing.ts';

const NO_STACK = '/nonexistent/local.json';

describe('agent configuration', () => {
  it('takes its timing defaults from shared/timing.ts', () => {
    const cfg = resolveAgentConfig({}, { CRONPLANE_JOBS_TABLE: 'j' }, NO_STACK);
    expect(cfg.timing).toMatchObject({
      heartbeatIntervalMs: AGENT_HEARTBEAT_MS,
      executionHeartbeatMs: EXECUTION_HEARTBEAT_MS,
      lostAfterMs: LOST_AFTER_MS,
    });
    expect(cfg.graceMs).toBe(AGENT_GRACE_MS);
  });

  it('reads the timing knobs and the grace period from the environment; empty means unset', () => {
    const cfg = resolveAgentConfig(
      {},
      {
        CRONPLANE_AGENT_LOST_AFTER_MS: '4000',
        CRONPLANE_AGENT_POLL_WAIT_S: '1',
        CRONPLANE_AGENT_HEARTBEAT_MS: '',
        CRONPLANE_AGENT_GRACE_MS: '0',
      },
      NO_STACK,
    );
    expect(cfg.timing).toMatchObject({
      lostAfterMs: 4000,
      pollWaitSeconds: 1,
      heartbeatIntervalMs: AGENT_HEARTBEAT_MS,
    });
    expect(cfg.graceMs).toBe(0);
  });

  it('names the variable and the rule of an invalid value', () => {
    expect(() => resolveAgentConfig({}, { CRONPLANE_AGENT_LOST_AFTER_MS: '1.5' }, NO_STACK)).toThrow(
      'CRONPLANE_AGENT_LOST_AFTER_MS: must be a positive integer',
    );
    expect(() => resolveAgentConfig({}, { CRONPLANE_AGENT_GRACE_MS: '-1' }, NO_STACK)).toThrow(
      'CRONPLANE_AGENT_GRACE_MS: must be a non-negative integer',
    );
  });

  it('takes flags over environment over file, and the CLI its API from CRONPLANE_API', () => {
    const cfg = resolveAgentConfig(
      { name: 'flag', tag: ['role=web'] },
      {
        CRONPLANE_AGENT_NAME: 'env',
        CRONPLANE_AGENT_TAGS: 'role=db,dc=eu',
        CRONPLANE_AGENT_CONCURRENCY: '2',
      },
      NO_STACK,
    );
    expect(cfg).toMatchObject({ agentId: 'flag', tags: { role: 'web', dc: 'eu' }, concurrency: 2 });
    expect(defaultApiUrl({})).toBe('http://127.0.0.1:8080');
    expect(defaultApiUrl({ CRONPLANE_API: 'https://x' })).toBe('https://x');
  });

  it('finds the local stack file in the checkout unless CRONPLANE_LOCAL_STACK_FILE moves it', () => {
    expect(localStackFile({})).toMatch(/\.cronplane\/local\.json$/);
    expect(localStackFile({ CRONPLANE_LOCAL_STACK_FILE: '/tmp/x.json' })).toBe('/tmp/x.json');
  });
});
