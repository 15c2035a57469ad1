/**
 * Keeps V8's optimizing compilers off while the `cronplane` process starts and idles; the agent turns them
 * on when its first launch arrives (liftOptimizingTierCap, called from agent/cli.ts).
 *
 * Start-up (initialising the AWS SDK, zod and commander) is hot enough for TurboFan to optimize a few
 * functions that then never run again; from then on the compiler's pages of the node binary (~3 MB) and
 * the optimized code stay resident for the life of the process. An agent spends most of its life waiting
 * on long polls, so that is most of its idle footprint above what it needs: measured, 60 → 55.5 MB idle RSS
 * for the bundle (README, "idle footprint"). Under work the optimizing compiler does matter: with the cap
 * kept on, 1,000 launches on one second started with p50 4.4 s instead of 69 ms. So it is lifted, for good,
 * on the first message; an agent that has had work holds the compiler's memory from then on.
 *
 * Idle, the heap is also kept small (`--optimize-for-size`, lifted with the rest). An idle agent's long polls
 * and heartbeats leave a little garbage in the old generation (~0.25 MB/min), and by default V8 lets it
 * grow by at least 8 MB before the next full collection: RSS crept from 55 to 62–63 MB over 30 minutes.
 * Optimizing for size lowers that step to 2 MB (measured: 55–57 MB throughout 16 minutes).
 *
 * The flags are toggled at run time with v8.setFlagsFromString: `--turbofan` can be switched back on
 * (`--max-opt` cannot: functions created under it stay unoptimizable). Maglev, V8's mid-tier compiler, is
 * on by default from V8 12 (Node 22) and is treated the same way there.
 *
 * This module must stay the first import of agent/cli.ts: ES modules run in import order, so everything
 * after it starts under the cap. A V8 tiering flag on the node command line (`--turbofan`, `--no-opt`,
 * `--max-opt=…`, `--maglev`, `--jitless`, `--optimize-for-size`) means the operator chose: then nothing is
 * changed.
 */
import { setFlagsFromString } from 'node:v8';

const OPERATOR_CHOSE = /--(?:no-)?(?:turbofan|opt|max[-_]opt|maglev|jitless|optimize[-_]for[-_]size)\b/;
const MAGLEV_BY_DEFAULT = Number(process.versions.v8.split('.')[0]) >= 12;

let capped = false;

// Turns V8's optimizing compilers off and favours size, unless the command line set a tiering flag.
if (!process.execArgv.some((a) => OPERATOR_CHOSE.test(a))) {
  setFlagsFromString('--no-turbofan');
  if (MAGLEV_BY_DEFAULT) setFlagsFromString('--no-maglev');
  setFlagsFromString('--optimize-for-size');
  capped = true;
}

/** Turns the compilers back on and size back to V8's default; true the one time it changed something. */
export function liftOptimizingTierCap(): boolean {
  if (!capped) return false;
  setFlagsFromString('--turbofan');
  if (MAGLEV_BY_DEFAULT) setFlagsFromString('--maglev');
  setFlagsFromString('--no-optimize-for-size');
  capped = false;
  return true;
}
