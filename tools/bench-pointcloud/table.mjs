#!/usr/bin/env node
// Prints the README table of a bench.mjs results file (KILN_BENCH_OUT):
//   node table.mjs results/2026-…json
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node table.mjs RESULTS.json');
  process.exit(2);
}
let r;
try {
  r = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`${file}: ${err.message}`);
  process.exit(2);
}
for (const field of ['date', 'commit', 'config', 'step', 'loop', 'load']) {
  if (!(field in r)) {
    console.error(`${file}: not a bench-pointcloud results file (no '${field}')`);
    process.exit(2);
  }
}
const ms = (v) => `${v.toFixed(0)} ms`;
const pts = (v) => `${(v / 1000).toFixed(1)}k`;
const x = (v) => `${v.toFixed(2)}×`;
const c = r.config;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cpu = (s) => (s.cpuMs?.length ? ms(median(s.cpuMs)) : '');
const row = (name, s, ratio = '') => [name, ms(s.bestMs), ms(s.medianMs), `${pts(s.bestPointsPerSec)} / ${pts(s.medianPointsPerSec)}`, cpu(s), ratio];
const { current, baseline } = r.loop;
const threads = (n) => `${n} thread${n === 1 ? '' : 's'}`;
const kilnThreads = Number(/(\d+) threads?/.exec(r.machine.backend)?.[1] ?? NaN);
const rows = [
  ['measurement', 'best', 'median', 'points/s (best / median)', 'CPU time per step (median, all threads)', 'ratio (best / median)'],
  ['---', '---:', '---:', '---:', '---:', '---:'],
  row(`training step, kiln (${r.machine.backend.split(' ')[1] ?? 'kiln'}, ${threads(kilnThreads)})`, r.step.kiln, r.step.ratio ? `${x(r.step.ratio.best)} / ${x(r.step.ratio.median)} PyTorch` : ''),
  ...(r.step.torch ? [row(`training step, PyTorch ${r.torch.version} (${threads(r.torch.threads)})`, r.step.torch)] : []),
  row(`\`pretrain\` loop (batch preparation included), ${current.commit}`, current, baseline ? `${x(baseline.bestMs / current.bestMs)} / ${x(baseline.medianMs / current.medianMs)} baseline` : ''),
];
if (baseline) rows.push(row(`\`pretrain\` loop, baseline ${baseline.commit}`, baseline));
console.log(
  `${r.date.slice(0, 10)}, commit ${r.commit}, ${r.machine.cpu} (${r.machine.cores} cores), load average ${r.load.start.join(' ')} at the start and ${r.load.end.join(' ')} at the end; ` +
    `${c.scenes} scenes × ${c.pointsPerScene} points (${c.stepPoints} per step), channels [${c.channels}], ${c.objective}, CSP ${c.crossScene}, ` +
    `${r.params.kiln} parameters${r.params.torch ? ' on both sides' : ''}, ${c.runs} alternating rounds.\n`,
);
for (const cells of rows) console.log(`| ${cells.join(' | ')} |`);
