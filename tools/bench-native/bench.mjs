/**
 * kiln-native against PyTorch, side by side in one run, everything through TensorFlow.js
 * (`tf.matMul`, `minimize`, ...) on the kiln-native backend:
 *   gemm         fp32 GEMM: 1024² and 2048², the transposed layouts of tfjs's matMul
 *                gradients (transposeA / transposeB), and skinny shapes the point-cloud model
 *                runs ([16384, 64] · [64, 128] and its two gradients, the same at 32 → 64)
 *   small        the fixed cost of one small op ([64, 64] add, matMul, ...), per call
 *   mlp          a 4×1024 MLP training step, batch 1024: with @kiln/tensor's adam() and with
 *                stock tf.train.adam, against torch.optim.Adam
 *   elementwise  tanh(x·1.5 + 0.25)·sigmoid(x) − x² on 4M floats
 *   reduction    row sums, column max and mean of 4096×1024
 * The peer (peers.py) runs with OPENBLAS_CORETYPE=SkylakeX and the same thread count; this
 * process keeps the machine's OPENBLAS_* settings. The machine is shared, so every case
 * alternates rounds of peer runs and kiln-native runs, and reports the best and the median
 * run of each side with the 1-minute load average. Ratio = peer time / kiln-native time
 * (above 1× kiln-native is faster).
 * Options: --quick (one round, fewer runs), --rounds N, --only gemm,small,... (a subset),
 * --json <file> (the results artifact that table.mjs turns into native/README.md's tables).
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { adam, initBackend, tf, writeFileAtomic } from '@kiln/tensor';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const option = (name) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = argv.includes('--quick');
const rounds = Number(option('rounds') ?? (quick ? 1 : 3));
const jsonOut = option('json');
const only = option('only') ? new Set(option('only').split(',')) : undefined;
const want = (group) => !only || only.has(group);
const threads = Number(process.env.KILN_NUM_THREADS) || os.availableParallelism?.() || os.cpus().length;

const loadAtStart = os.loadavg()[0];
const choice = await initBackend({ env: {} });
if (choice.name !== 'kiln-native') {
  console.error(`kiln-native is not available: ${choice.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
  process.exit(1);
}
console.log(`backend ${choice.name} (${choice.detail}); load average ${loadAtStart.toFixed(1)}`);

// ---- the peer: one persistent python process answering one case per line.
const peerEnv = { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX', OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
const python = spawn('/usr/bin/python3', [path.join(here, 'peers.py'), String(threads)], { env: peerEnv, stdio: ['pipe', 'pipe', 'inherit'] });
const pythonLines = createInterface({ input: python.stdout })[Symbol.asyncIterator]();
async function nextLine() {
  const { value, done } = await pythonLines.next();
  if (done) throw new Error('the PyTorch peer exited early (is /usr/bin/python3 with torch installed?)');
  return JSON.parse(value);
}
const peerInfo = await nextLine();
async function peerSamples(request) {
  python.stdin.write(`${JSON.stringify(request)}\n`);
  return (await nextLine()).samples;
}

/** Seconds of each of `runs` runs of fn (its returned tensors are read, then disposed). */
function nativeSamples(fn, runs, warmup) {
  const once = () => {
    const t0 = performance.now();
    tf.tidy(() => {
      const out = fn();
      for (const t of Array.isArray(out) ? out : out ? [out] : []) t.dataSync();
    });
    return (performance.now() - t0) / 1000;
  };
  for (let i = 0; i < warmup; i++) once();
  return Array.from({ length: runs }, once);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Alternates rounds of peer runs and kiln-native runs. `warmup` kiln-native runs come first:
 * for GEMM enough to finish the auto path's per-shape timing of OpenBLAS against the
 * built-in kernel (three calls each), which is not the steady state being measured.
 */
async function sideBySide(request, fn, warmup = 2) {
  const peer = [];
  const native = [];
  for (let r = 0; r < rounds; r++) {
    peer.push(...(await peerSamples(request)));
    native.push(...nativeSamples(fn, request.runs, r === 0 ? warmup : 0));
  }
  return { peer, native };
}

const rows = [];
/** Records one row; `per` converts seconds per run into the row's unit (higher is better for rates). */
function record(group, name, t, unit, per) {
  const side = (samples) => ({ best: Math.min(...samples), median: median(samples), samples });
  const row = { group, name, unit, native: side(t.native), peer: side(t.peer), load: os.loadavg()[0] };
  row.native.value = per(row.native.best);
  row.peer.value = per(row.peer.best);
  row.ratioBest = row.peer.best / row.native.best;
  row.ratioMedian = row.peer.median / row.native.median;
  rows.push(row);
  const fmt = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  console.log(
    `${name.padEnd(48)} kiln ${fmt(row.native.value)} ${unit}, PyTorch ${fmt(row.peer.value)} ${unit}: ${row.ratioBest.toFixed(2)}× best, ${row.ratioMedian.toFixed(2)}× median (load ${row.load.toFixed(1)})`,
  );
}
const rand = (shape, seed = 1) => tf.randomUniform(shape, -1, 1, 'float32', seed);

// ---- GEMM: [m, n, k, transA, transB, label]
const gemmCases = [
  [1024, 1024, 1024, false, false, '1024²'],
  [1024, 1024, 1024, false, true, '1024² · ᵀ (transposeB)'],
  [1024, 1024, 1024, true, false, 'ᵀ · 1024² (transposeA)'],
  [2048, 2048, 2048, false, false, '2048²'],
  [16384, 128, 64, false, false, '[16384, 64] · [64, 128]'],
  [16384, 64, 128, false, true, '[16384, 128] · [64, 128]ᵀ'],
  [64, 128, 16384, true, false, '[16384, 64]ᵀ · [16384, 128]'],
  [16384, 64, 32, false, false, '[16384, 32] · [32, 64]'],
  [16384, 32, 64, false, true, '[16384, 64] · [32, 64]ᵀ'],
  [32, 64, 16384, true, false, '[16384, 32]ᵀ · [16384, 64]'],
];
for (const [m, n, k, ta, tb, label] of want('gemm') ? gemmCases : []) {
  const a = rand(ta ? [k, m] : [m, k], 1);
  const b = rand(tb ? [n, k] : [k, n], 2);
  const flops = 2 * m * n * k;
  const runs = Math.max(2, Math.min(20, Math.round(2e9 / flops)));
  const t = await sideBySide(
    { kind: 'gemm', id: `gemm-${m}-${n}-${k}-${ta}-${tb}`, m, n, k, transA: ta, transB: tb, runs: quick ? Math.ceil(runs / 2) : runs },
    () => tf.matMul(a, b, ta, tb),
    8,
  );
  record('gemm', `GEMM ${label}`, t, 'GFLOP/s', (s) => flops / s / 1e9);
  tf.dispose([a, b]);
}

// ---- the fixed cost of small ops: `reps` calls per run, each result disposed.
if (want('small')) {
  const a = rand([64, 64], 3);
  const b = rand([64, 64], 4);
  const v = rand([64], 5);
  const idx = tf.tensor1d(Array.from({ length: 64 }, (_, i) => (i * 7) % 64), 'int32');
  const smallOps = {
    add: ['add [64, 64] + [64, 64]', () => tf.add(a, b)],
    mulBroadcast: ['mul [64, 64] · [64] (broadcast)', () => tf.mul(a, v)],
    matMul: ['matMul [64, 64] · [64, 64]', () => tf.matMul(a, b)],
    relu: ['relu [64, 64]', () => tf.relu(a)],
    sigmoid: ['sigmoid [64, 64]', () => tf.sigmoid(a)],
    sum: ['sum [64, 64] over axis 1', () => tf.sum(a, 1)],
    transpose: ['transpose [64, 64]', () => tf.transpose(a)],
    concat: ['concat two [64, 64] on axis 0', () => tf.concat([a, b], 0)],
    gather: ['gather 64 rows of [64, 64]', () => tf.gather(a, idx)],
  };
  const reps = 2000;
  for (const [op, [label, f]] of Object.entries(smallOps)) {
    const loop = () => {
      for (let i = 0; i < reps; i++) f().dispose();
    };
    const t = await sideBySide({ kind: 'small', id: `small-${op}`, op, reps, runs: quick ? 3 : 5 }, loop);
    record('small', label, t, 'µs/op', (s) => (s / reps) * 1e6);
  }
  tf.dispose([a, b, v, idx]);
}

// ---- MLP training step, with each optimizer.
const mlp = { batch: 1024, width: 1024, layers: 4 };
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
  const x = rand([batch, width], 6);
  const y = rand([batch, width], 7);
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
  const t = await sideBySide({ kind: 'mlp', id: 'mlp', ...mlp, runs: quick ? 2 : 4 }, step);
  record('mlp', `MLP step (4×${width}, batch ${batch}, ${label})`, t, 'ms', (s) => s * 1000);
  opt.dispose();
  tf.dispose([...params, x, y]);
}

// ---- elementwise chain and reduction
if (want('elementwise')) {
  const n = 1 << 22;
  const x = rand([n], 8);
  const t = await sideBySide({ kind: 'elementwise', id: 'elem', n, runs: quick ? 4 : 10 }, () =>
    tf.sub(tf.mul(tf.tanh(tf.add(tf.mul(x, 1.5), 0.25)), tf.sigmoid(x)), tf.square(x)),
  );
  record('elementwise', 'elementwise chain (7 ops, 4M floats)', t, 'ms', (s) => s * 1000);
  tf.dispose(x);
}
if (want('reduction')) {
  const red = { rows: 4096, cols: 1024 };
  const m = rand([red.rows, red.cols], 9);
  const t = await sideBySide({ kind: 'reduction', id: 'red', ...red, runs: quick ? 4 : 10 }, () => [tf.sum(m, 1), tf.max(m, 0), tf.mean(m)]);
  record('reduction', `reduction (sum rows, max cols, mean; ${red.rows}×${red.cols})`, t, 'ms', (s) => s * 1000);
  tf.dispose(m);
}
python.stdin.end();

// ---- the artifact
const loadAtEnd = os.loadavg()[0];
const git = (...args) => {
  try {
    return execFileSync('git', args, { cwd: here, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
};
const cpuModel = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? os.cpus()[0]?.model ?? 'unknown CPU';
const result = {
  date: new Date().toISOString(),
  commit: git('rev-parse', '--short', 'HEAD'),
  dirty: git('status', '--porcelain', '--untracked-files=no') !== '',
  machine: { cpu: cpuModel, logicalCores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  load: { start: loadAtStart, end: loadAtEnd },
  config: {
    threads,
    rounds,
    quick,
    kilnNative: choice.detail,
    kilnOpenBlasCoretype: process.env.OPENBLAS_CORETYPE ?? null,
    peer: { torch: peerInfo.torch, threads: peerInfo.threads, OPENBLAS_CORETYPE: 'SkylakeX' },
  },
  rows,
};
console.log(`\nload average ${loadAtStart.toFixed(1)} at start, ${loadAtEnd.toFixed(1)} at end; ratio = PyTorch time / kiln-native time (above 1× kiln-native is faster)`);
if (jsonOut) {
  writeFileAtomic(jsonOut, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${jsonOut} (node table.mjs ${jsonOut} prints the README tables)`);
}
