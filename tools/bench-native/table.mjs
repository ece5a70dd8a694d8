/**
 * Turns a results artifact of bench.mjs (--json) into the Markdown that native/README.md
 * shows: a line saying when, where and how it was measured, then one table per group.
 * Usage: node table.mjs results/<file>.json [--readme ../../native/README.md]
 * With --readme it replaces the text between `<!-- bench-native:start -->` and
 * `<!-- bench-native:end -->` in that file; otherwise it prints the Markdown.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const [file, flag, readme] = process.argv.slice(2);
if (!file || (flag !== undefined && (flag !== '--readme' || !readme))) {
  console.error('usage: node table.mjs <results.json> [--readme <README.md>]');
  process.exit(2);
}
let result;
try {
  result = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`table.mjs: cannot read ${file}: ${err.message}`);
  process.exit(2);
}
if (!Array.isArray(result.rows) || !result.config) {
  console.error(`table.mjs: ${file} is not a bench.mjs results file (no rows/config)`);
  process.exit(2);
}

const titles = {
  gemm: 'GEMM (fp32, `tf.matMul`; GFLOP/s, higher is better)',
  small: 'Fixed cost of one small op (µs per call, lower is better)',
  mlp: 'Training step (ms, lower is better)',
  elementwise: 'Elementwise (ms, lower is better)',
  reduction: 'Reduction (ms, lower is better)',
};
const fmt = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const { config, machine, load } = result;
const lines = [
  `Measured ${result.date.slice(0, 16).replace('T', ' ')} UTC at commit ${result.commit}${result.dirty ? ' (with uncommitted changes)' : ''} with ` +
    `\`node tools/bench-native/bench.mjs\` (${config.rounds} alternating round${config.rounds === 1 ? '' : 's'} per case): ` +
    `${machine.cpu}, ${machine.logicalCores} logical cores, ${machine.memoryGiB} GiB, Node ${machine.node}; ` +
    `1-minute load average ${load.start.toFixed(1)} at start, ${load.end.toFixed(1)} at end. ` +
    `kiln-native: ${config.kilnNative}${config.kilnOpenBlasCoretype ? ` (OPENBLAS_CORETYPE=${config.kilnOpenBlasCoretype})` : ''}; ` +
    `PyTorch ${config.peer.torch}, ${config.peer.threads} threads, OPENBLAS_CORETYPE=${config.peer.OPENBLAS_CORETYPE}. ` +
    'Ratios are PyTorch time / kiln-native time (above 1× kiln-native is faster), of the best runs and of the medians.',
];
for (const group of Object.keys(titles)) {
  const rows = result.rows.filter((r) => r.group === group);
  if (rows.length === 0) continue;
  lines.push('', `**${titles[group]}**`, '', '| case | kiln-native | PyTorch | ratio (best) | ratio (median) | load |', '| --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    lines.push(`| ${r.name} | ${fmt(r.native.value)} | ${fmt(r.peer.value)} | ${r.ratioBest.toFixed(2)}× | ${r.ratioMedian.toFixed(2)}× | ${r.load.toFixed(1)} |`);
  }
}
const markdown = lines.join('\n');

if (!readme) {
  console.log(markdown);
} else {
  const start = '<!-- bench-native:start -->';
  const end = '<!-- bench-native:end -->';
  const text = readFileSync(readme, 'utf8');
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) {
    console.error(`table.mjs: ${readme} has no ${start} ... ${end} block`);
    process.exit(2);
  }
  writeFileSync(readme, `${text.slice(0, i + start.length)}\n${markdown}\n${text.slice(j)}`);
  console.log(`updated ${readme} from ${file}`);
}
