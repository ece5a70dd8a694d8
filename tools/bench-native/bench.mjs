/**
 * kiln-native benchmarks, each measured side by side with its peer in this one run:
 *   fp32 GEMM 256..2048   vs numpy (OpenBLAS) and, at 256 and 512 only, the tfjs cpu backend
 *                         (at ~0.5 GFLOP/s larger sizes take minutes; nothing is extrapolated)
 *   4-layer MLP step      batch 1024, width 1024, fwd + bwd + Adam, vs PyTorch (OpenBLAS):
 *                         once with @kiln/tensor's adam() (fused on kiln-native, what a user
 *                         writes) and once with stock tf.train.adam (13 tfjs ops per weight)
 *   elementwise chain     tanh(x·1.5 + 0.25)·sigmoid(x) − x² on 4M floats, vs PyTorch
 *   reduction             row sums, column max and mean of 4096×1024, vs PyTorch
 * The machine is shared, so each case alternates peer and kiln-native rounds and reports the
 * best run of each side (the least-disturbed one); ratios are best peer / best kiln-native.
 * Prints ratios (> 1 means kiln-native is faster) and a Markdown table for native/README.md.
 * Options: --quick (fewer runs), --json <file> (writes the results), --only gemm,mlp,elementwise,reduction
 * (a subset of the cases).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { adam, initBackend, tf, writeFileAtomic } from '@kiln/tensor';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const jsonIdx = process.argv.indexOf('--json');
const jsonOut = jsonIdx > 0 ? process.argv[jsonIdx + 1] : undefined;
const onlyIdx = process.argv.indexOf('--only');
const only = onlyIdx > 0 ? new Set(process.argv[onlyIdx + 1].split(',')) : undefined;
const want = (kind) => !only || only.has(kind);
const threads = Number(process.env.KILN_NUM_THREADS) || os.availableParallelism?.() || os.cpus().length;

/** Seconds of each run after warmup; fn returns tensors whose data is read to sync. */
function timeAll(fn, { warmup = 2, runs = 5 } = {}) {
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
  return samples;
}
const best = (fn, opts) => Math.min(...timeAll(fn, opts));

const loadAtStart = os.loadavg()[0];
const choice = await initBackend({ env: {} });
if (choice.name !== 'kiln-native') {
  console.error(`kiln-native is not available: ${choice.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
  process.exit(1);
}
console.log(`backend ${choice.name} (${choice.detail})`);

const runs = (n) => (quick ? Math.max(1, Math.ceil(n / 3)) : n);
const gemmSizes = [256, 512, 1024, 2048];
const gemmRuns = { 256: 10, 512: 5, 1024: 3, 2048: 2 };
const cpuSizes = [256, 512];
const mlp = { batch: 1024, width: 1024, layers: 4 };
const elemN = 1 << 22;
const red = { rows: 4096, cols: 1024 };

// ---- peers: one persistent python process answering one case per line.
const peerEnv = { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX', OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
const python = spawn('/usr/bin/python3', [path.join(here, 'peers.py'), String(threads)], { env: peerEnv, stdio: ['pipe', 'pipe', 'inherit'] });
const pythonLines = createInterface({ input: python.stdout })[Symbol.asyncIterator]();
async function nextLine() {
  const { value, done } = await pythonLines.next();
  if (done) throw new Error('the python peer exited early (is /usr/bin/python3 with numpy and torch installed?)');
  return JSON.parse(value);
}
const peerInfo = await nextLine();
async function peerSamples(request) {
  python.stdin.write(`${JSON.stringify(request)}\n`);
  return (await nextLine()).samples;
}

/** Alternates `rounds` rounds of peer runs and kiln-native runs; best of each side. */
async function sideBySide(request, nativeFn, rounds = quick ? 1 : 3) {
  const peer = [];
  const mine = [];
  for (let r = 0; r < rounds; r++) {
    peer.push(...(await peerSamples(request)));
    mine.push(...timeAll(nativeFn, { warmup: r === 0 ? 2 : 0, runs: request.runs }));
  }
  return { peer: Math.min(...peer), native: Math.min(...mine) };
}

const rows = [];
const gflops = (n, s) => (2 * n ** 3) / s / 1e9;
const rand = (shape) => tf.randomUniform(shape, -1, 1, 'float32', 1);

// ---- GEMM
for (const n of want('gemm') ? gemmSizes : []) {
  const a = rand([n, n]);
  const b = rand([n, n]);
  const t = await sideBySide({ kind: 'gemm', id: `gemm${n}`, n, runs: runs(gemmRuns[n]) }, () => tf.matMul(a, b));
  const row = { name: `GEMM ${n}²`, native: t.native, unit: `${gflops(n, t.native).toFixed(1)} GFLOP/s`, numpy: t.peer, numpyUnit: `${gflops(n, t.peer).toFixed(1)} GFLOP/s` };
  if (cpuSizes.includes(n)) {
    await initBackend({ env: { KILN_BACKEND: 'cpu' } });
    const ac = rand([n, n]);
    const bc = rand([n, n]);
    row.cpu = best(() => tf.matMul(ac, bc), { warmup: 1, runs: n <= 256 ? 3 : 2 });
    row.cpuUnit = `${gflops(n, row.cpu).toFixed(2)} GFLOP/s`;
    tf.dispose([ac, bc]);
    await initBackend({ env: { KILN_BACKEND: 'kiln-native' } });
  }
  rows.push(row);
  tf.dispose([a, b]);
}

// ---- MLP training step: the same model and data, with each optimizer.
for (const [label, makeOptimizer] of want('mlp')
  ? [
      ['adam()', () => adam({ learningRate: 1e-3 })],
      ['tf.train.adam', () => tf.train.adam(1e-3)],
    ]
  : []) {
  const { batch, width, layers } = mlp;
  const params = [];
  for (let i = 0; i < layers; i++) {
    const bound = 1 / Math.sqrt(width);
    params.push(tf.variable(tf.randomUniform([width, width], -bound, bound, 'float32', 10 + i)));
    params.push(tf.variable(tf.randomUniform([width], -bound, bound, 'float32', 20 + i)));
  }
  const x = rand([batch, width]);
  const y = rand([batch, width]);
  const opt = makeOptimizer();
  const step = () =>
    opt.minimize(() => {
      let h = x;
      for (let i = 0; i < layers; i++) {
        h = tf.add(tf.matMul(h, params[2 * i]), params[2 * i + 1]);
        if (i < layers - 1) h = tf.relu(h);
      }
      return tf.losses.meanSquaredError(y, h);
    }, true);
  const t = await sideBySide({ kind: 'mlp', id: 'mlp', ...mlp, runs: runs(4) }, step);
  rows.push({ name: `MLP step (4×${width}, batch ${batch}, ${label})`, native: t.native, torch: t.peer, unit: `${(t.native * 1000).toFixed(0)} ms`, torchUnit: `${(t.peer * 1000).toFixed(0)} ms` });
  opt.dispose();
  tf.dispose([...params, x, y]);
}

// ---- elementwise chain and reduction
if (want('elementwise')) {
  const x = rand([elemN]);
  const e = await sideBySide({ kind: 'elementwise', id: 'elem', n: elemN, runs: runs(10) }, () =>
    tf.sub(tf.mul(tf.tanh(tf.add(tf.mul(x, 1.5), 0.25)), tf.sigmoid(x)), tf.square(x)),
  );
  rows.push({ name: 'elementwise chain (7 ops, 4M floats)', native: e.native, torch: e.peer, unit: `${(e.native * 1000).toFixed(1)} ms`, torchUnit: `${(e.peer * 1000).toFixed(1)} ms` });
  tf.dispose(x);
}
if (want('reduction')) {
  const m = rand([red.rows, red.cols]);
  const r = await sideBySide({ kind: 'reduction', id: 'red', ...red, runs: runs(10) }, () => [tf.sum(m, 1), tf.max(m, 0), tf.mean(m)]);
  rows.push({ name: `reduction (sum rows, max cols, mean; ${red.rows}×${red.cols})`, native: r.native, torch: r.peer, unit: `${(r.native * 1000).toFixed(2)} ms`, torchUnit: `${(r.peer * 1000).toFixed(2)} ms` });
  tf.dispose(m);
}
python.stdin.end();

// ---- report
const ratio = (peerS, s) => (peerS === undefined ? '—' : `${(peerS / s).toFixed(2)}×`);
const cpuModel = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? os.cpus()[0]?.model ?? 'unknown CPU';
const machine = `${cpuModel}, ${os.cpus().length} logical cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, numpy ${peerInfo.numpy}, torch ${peerInfo.torch} (${peerInfo.threads} threads); 1-min load average ${loadAtStart.toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at end`;
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
