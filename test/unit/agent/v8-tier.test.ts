import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { lambdaNode } from '../../support/node22.ts';

const TIER_MODULE = fileURLToPath(new URL('../../../agent/v8-tier.ts', import.meta.url));

/** V8's %GetOptimizationStatus bits (src/runtime/runtime.h, OptimizationStatus). */
const TURBOFANNED = 1 << 6;

/**
 * In a fresh node process: imports agent/v8-tier.ts (which caps the tier as it loads), optionally lifts
 * the cap, then asks V8 to optimize a warm function and returns whether TurboFan compiled it.
 */
function turbofanned(node: string, o: { lift?: boolean; nodeFlags?: string[] } = {}): boolean {
  const script = `
    const tier = await import(${JSON.stringify(TIER_MODULE)});
    ${o.lift ? 'if (!tier.liftOptimizingTierCap()) throw new Error("lift changed nothing");' : ''}
    const f = new Function('x', 'return x * 2 + 1');
    const probe = new Function('f',
      '%PrepareFunctionForOptimization(f); f(1); f(2); %OptimizeFunctionOnNextCall(f); f(3); return %GetOptimizationStatus(f);');
    console.log(probe(f));`;
  const out = execFileSync(
    node,
    [
      ...(o.nodeFlags ?? []),
      '--allow-natives-syntax',
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      script,
    ],
    { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } },
  );
  return (Number(out.trim()) & TURBOFANNED) !== 0;
}

// Node 20 (our machines) and Node 22 (V8 12, where Maglev is on by default and capped as well).
describe.each([
  ['this node', async () => process.execPath],
  ['Node 22', lambdaNode],
])('agent V8 tier cap (agent/v8-tier.ts) on %s', (_, which) => {
  let node: string;
  beforeAll(async () => {
    node = await which();
  });

  it('keeps functions out of TurboFan once loaded', () => {
    expect(turbofanned(node)).toBe(false);
  });

  it('lets TurboFan optimize again once lifted', () => {
    expect(turbofanned(node, { lift: true })).toBe(true);
  });

  it('leaves a tiering flag given on the node command line alone', () => {
    expect(turbofanned(node, { nodeFlags: ['--turbofan'] })).toBe(true);
  });
});
