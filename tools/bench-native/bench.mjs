/**
 * kiln-native benchmarks, each measured side by side with its peer in this one run:
 *   fp32 GEMM 256..2048   vs numpy (OpenBLAS) and, at 256 and 512 only, the tfjs cpu backend
 *                         (at ~0.5 GFLOP/s larger sizes take minutes; nothing is extrapolated)
 *   4-layer MLP step      batch 1024, width 1024, fwd + bwd + Adam, vs PyTorch (OpenBLAS)
 *   elementwise chain     tanh(x·1.5 + 0.25)·sigmoid(x) − x² on 4M floats, vs PyTorch
 *   reduction             row sums, column max and mean of 4096×1024, vs PyTorch
 * Prints ratios (> 1 means kiln-native is faster) and a Markdown table for native/README.md.
 * Options: --quick (fewer runs), --json <file> (writes the results).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, tf, writeFileAtomic } from '@kiln/tensor';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const jsonIdx = process.argv.indexOf('--json');
const jsonOut = jsonIdx > 0 ? process.argv[jsonIdx + 1] : undefined;
const threads = Number(process.env.KILN_NUM_THREADS) || os.availableParallelism?.() || os.cpus().length;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median seconds of fn over runs after warmup; fn returns tensors whose data is read to sync. */
function time(fn, { warmup = 2, runs = 5 } = {}) {
  const once = () => {
    const t0 = performance.now();
    tf.tidy(() => {
      const out = fn();
      for (const t of Array.isArray(out) ? out : [out]) t.dataSync();
    });
    return (performance.now() - t0) / 1000;
  };
  for (let i = 0; i < warmup; i++) once();
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(once());
  return median(samples);
}

const choice = await initBackend({ env: {} });
if (choice.name !== 'kiln-native') {
  console.error(`kiln-native is not available: ${choice.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
  process.exit(1);
}
console.log(`backend ${choice.name} (${choice.detail})`);

const runs = (n) => (quick ? Math.max(1, Math.ceil(n / 3)) : n);
const gemmSizes = [256, 512, 1024, 2048];
const gemmRuns = { 256: 20, 512: 10, 1024: 5, 2048: 3 };
const cpuSizes = [256, 512];
const mlp = { batch: 1024, width: 1024, layers: 4 };
const elemN = 1 << 22;
const red = { rows: 4096, cols: 1024 };

// ---- peers: one python process per case, run right before the kiln-native side, so both
// see the same machine load (this machine is shared).
const peerEnv = { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX', OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
const peerInfo = {};
function peerTime(request) {
  const py = spawnSync('/usr/bin/python3', [path.join(here, 'peers.py'), JSON.stringify([request]), String(threads)], { encoding: 'utf8', env: peerEnv });
  if (py.status !== 0) {
    console.error(`python peer failed: ${py.stderr}`);
    process.exit(1);
  }
  const out = JSON.parse(py.stdout);
  Object.assign(peerInfo, { numpy: out.numpy, torch: out.torch, threads: out.threads });
  return out[request.id];
}

const rows = [];
const gflops = (n, s) => (2 * n ** 3) / s / 1e9;
const rand = (shape) => tf.randomUniform(shape, -1, 1, 'float32', 1);

// ---- GEMM
for (const n of gemmSizes) {
  const a = rand([n, n]);
  const b = rand([n, n]);
  const numpy = peerTime({ kind: 'gemm', id: 'gemm', n, runs: runs(gemmRuns[n]) });
  const sNative = time(() => tf.matMul(a, b), { runs: runs(gemmRuns[n]) });
  const row = { name: `GEMM ${n}²`, native: sNative, unit: `${gflops(n, sNative).toFixed(1)} GFLOP/s` };
  row.numpy = numpy;
  row.numpyUnit = `${gflops(n, row.numpy).toFixed(1)} GFLOP/s`;
  if (cpuSizes.includes(n)) {
    await initBackend({ env: { KILN_BACKEND: 'cpu' } });
    const ac = rand([n, n]);
    const bc = rand([n, n]);
    row.cpu = time(() => tf.matMul(ac, bc), { warmup: 1, runs: n <= 256 ? 3 : 1 });
    row.cpuUnit = `${gflops(n, row.cpu).toFixed(2)} GFLOP/s`;
    tf.dispose([ac, bc]);
    await initBackend({ env: { KILN_BACKEND: 'kiln-native' } });
  }
  rows.push(row);
  tf.dispose([a, b]);
}

// ---- MLP training step
{
  const { batch, width, layers } = mlp;
  const params = [];
  for (let i = 0; i < layers; i++) {
    const bound = 1 / Math.sqrt(width);
    params.push(tf.variable(tf.randomUniform([width, width], -bound, bound, 'float32', 10 + i)));
    params.push(tf.variable(tf.randomUniform([width], -bound, bound, 'float32', 20 + i)));
  }
  const x = rand([batch, width]);
  const y = rand([batch, width]);
  const opt = tf.train.adam(1e-3);
  const step = () =>
    opt.minimize(() => {
      let h = x;
      for (let i = 0; i < layers; i++) {
        h = tf.add(tf.matMul(h, params[2 * i]), params[2 * i + 1]);
        if (i < layers - 1) h = tf.relu(h);
      }
      return tf.losses.meanSquaredError(y, h);
    }, true);
  const torchS = peerTime({ kind: 'mlp', id: 'mlp', ...mlp, runs: runs(5) });
  const sNative = time(step, { runs: runs(5) });
  rows.push({ name: `MLP step (4×${width}, batch ${batch}, Adam)`, native: sNative, torch: torchS, unit: `${(sNative * 1000).toFixed(0)} ms`, torchUnit: `${(torchS * 1000).toFixed(0)} ms` });
  opt.dispose();
  tf.dispose([...params, x, y]);
}

// ---- elementwise chain and reduction
{
  const x = rand([elemN]);
  const elemTorch = peerTime({ kind: 'elementwise', id: 'elem', n: elemN, runs: runs(10) });
  const s = time(() => tf.sub(tf.mul(tf.tanh(tf.add(tf.mul(x, 1.5), 0.25)), tf.sigmoid(x)), tf.square(x)), { runs: runs(10) });
  rows.push({ name: 'elementwise chain (7 ops, 4M floats)', native: s, torch: elemTorch, unit: `${(s * 1000).toFixed(1)} ms`, torchUnit: `${(elemTorch * 1000).toFixed(1)} ms` });
  tf.dispose(x);
  const m = rand([red.rows, red.cols]);
  const redTorch = peerTime({ kind: 'reduction', id: 'red', ...red, runs: runs(10) });
  const r = time(() => [tf.sum(m, 1), tf.max(m, 0), tf.mean(m)], { runs: runs(10) });
  rows.push({ name: `reduction (sum rows, max cols, mean; ${red.rows}×${red.cols})`, native: r, torch: redTorch, unit: `${(r * 1000).toFixed(2)} ms`, torchUnit: `${(redTorch * 1000).toFixed(2)} ms` });
  tf.dispose(m);
}

// ---- report
const ratio = (peerS, s) => (peerS === undefined ? '—' : `${(peerS / s).toFixed(2)}×`);
const cpuModel = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? os.cpus()[0]?.model ?? 'unknown CPU';
const machine = `${cpuModel}, ${os.cpus().length} logical cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, numpy ${peerInfo.numpy}, torch ${peerInfo.torch} (${peerInfo.threads} threads)`;
const lines = [
  `Machine: ${machine}`,
  `kiln-native: ${choice.detail}`,
  '',
  '| benchmark | kiln-native | numpy (OpenBLAS) | vs numpy | PyTorch | vs PyTorch | tfjs cpu | vs cpu |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.name} | ${r.unit} | ${r.numpyUnit ?? '—'} | ${ratio(r.numpy, r.native)} | ${r.torchUnit ?? '—'} | ${ratio(r.torch, r.native)} | ${r.cpuUnit ?? 'not run'} | ${ratio(r.cpu, r.native)} |`,
  ),
];
console.log(lines.join('\n'));
console.log('\nRatios are peer time / kiln-native time: above 1× kiln-native is faster.');
if (jsonOut) writeFileAtomic(jsonOut, `${JSON.stringify({ machine, backend: choice.detail, rows }, null, 2)}\n`);
