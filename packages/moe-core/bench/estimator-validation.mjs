// The performance model against Megatron-Core's published MoE throughputs: writes
// bench/results/estimator-validation.json (commit, efficiencies, every run's layout, published
// and estimated TFLOPS/GPU and the step-time breakdown) and prints the README's table from it.
// Run after `pnpm --filter @kiln/moe-core build`:  node bench/estimator-validation.mjs
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '@kiln/tensor';
import { DEFAULT_EFFICIENCY, LATER_PUBLISHED_RUNS, PUBLISHED_RUNS, estimatePerformance, validateAgainstPublished } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'results', 'estimator-validation.json');
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
} catch {}

const describe = (list) => {
  const rows = validateAgainstPublished(DEFAULT_EFFICIENCY, list);
  return list.map((p, i) => ({
  ...rows[i],
  gpu: p.gpuName,
  model: p.run.spec.name,
  layout: p.run.layout,
  microBatchSize: p.run.microBatchSize,
  globalBatchSize: p.run.globalBatchSize,
  seqLength: p.run.seqLength,
  precision: p.run.precision,
  recompute: p.run.recompute ?? [],
  source: p.source,
  breakdown: estimatePerformance(p.run).breakdown,
  }));
};
const runs = describe(PUBLISHED_RUNS);
const later = describe(LATER_PUBLISHED_RUNS);
mkdirSync(dirname(out), { recursive: true });
await writeFileAtomic(out, `${JSON.stringify({ commit, date: new Date().toISOString().slice(0, 10), efficiency: DEFAULT_EFFICIENCY, runs, later }, null, 2)}\n`);

const pct = (v) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)} %`;
const table = (list) => {
console.log(`| run | layout | published TFLOPS/GPU | estimated | error | est. step | est. MFU (FP8 peak) |`);
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of list) {
  const l = r.layout;
  const layout = `tp ${l.tp} · pp ${l.pp}${l.vp ? ` · vp ${l.vp}` : ''} · ep ${l.ep} · dp ${l.dp}, mbs ${r.microBatchSize}, gbs ${r.globalBatchSize}`;
  console.log(`| ${r.label} | ${layout} | ${r.publishedTflops} | ${r.estimatedTflops.toFixed(0)} | ${pct(r.error)} | ${r.stepSeconds.toFixed(2)} s | ${(100 * r.mfu).toFixed(1)} % |`);
}
};
table(runs);
console.log('\nLater measurements (Megatron-Bridge 26.08, newer software; context, not a target):\n');
table(later);
console.log(`\n(commit ${commit}; written to bench/results/estimator-validation.json)`);
