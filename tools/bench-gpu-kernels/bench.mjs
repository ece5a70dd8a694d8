#!/usr/bin/env node
/**
 * @kiln/gpu-kernels benchmark, side by side in one run (wrap in `flock /tmp/kiln-bench.lock`):
 *   - selective scan forward + backward at (batch 2, dim 256, N 16, L 4096): the kiln-native
 *     chunked scan vs mamba's reference algorithm in PyTorch (peer.py) and vs this op's own
 *     reference composition (tf ops, autodiff) — the latter at a shorter L, scaled per step;
 *   - grouped GEMM (8 ragged experts, K = N = 1024) vs one torch.matmul per group;
 *   - webgpu vs kiln-native where an adapter exists (a smaller scan, lavapipe is software).
 * Prints a markdown table with ratios (speed-up = peer time / our time).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { groupedMatMul, selectiveScan, selectiveScanOp } from '@kiln/gpu-kernels';
import { createRng, initBackend, tf, timeIt } from '@kiln/tensor';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
// --grouped: only the grouped-GEMM rows (a quick re-measurement).
const groupedOnly = process.argv.includes('--grouped');
const SCAN = { batch: 2, dim: 256, N: 16, L: quick ? 512 : 4096 };
const REF_L = quick ? 64 : 256; // the tf-ops reference loop, per-step cost × L
// mamba's PyTorch loop: every step's slice backward writes a full [b, d, L, N] gradient, so
// its cost grows ~L²; at L 4096 one fwd+bwd takes tens of minutes here. It is timed at
// PEER_L and scaled linearly, which understates its time at L 4096 (a lower bound).
const PEER_L = quick ? 256 : 1024;
const GROUPED = { sizes: [700, 0, 300, 1200, 500, 900, 196, 300], K: 1024, N: 1024 };
const rows = [];

function scanInputs({ batch, dim, N, L }, seed) {
  const rng = createRng(seed);
  return {
    u: rng.normal([batch, dim, L]),
    delta: rng.normal([batch, dim, L], 0, 0.5),
    A: tf.neg(tf.tile(tf.reshape(tf.range(1, N + 1), [1, N]), [dim, 1])),
    B: rng.normal([batch, N, L]),
    C: rng.normal([batch, N, L]),
    D: rng.normal([dim]),
    z: rng.normal([batch, dim, L]),
    deltaBias: rng.normal([dim], 0, 0.1),
  };
}

/** Seconds for forward + backward of Σ out·w through `run`. */
async function scanFwdBwd(shape, run, runs) {
  const inputs = scanInputs(shape, 1);
  const w = createRng(2).normal([shape.batch, shape.dim, shape.L]);
  const keys = Object.keys(inputs);
  const step = async () => {
    const grads = tf.tidy(() =>
      tf.grads((...xs) => tf.sum(tf.mul(run(Object.fromEntries(keys.map((k, i) => [k, xs[i]]))), w)))(keys.map((k) => inputs[k])),
    );
    await Promise.all(grads.map((g) => g.data()));
    tf.dispose(grads);
  };
  const t = await timeIt(step, { warmup: 1, runs });
  tf.dispose([...Object.values(inputs), w]);
  return t.medianMs / 1000;
}

const kernel = (a) => selectiveScan({ ...a, deltaSoftplus: true });
const reference = (a) => selectiveScanOp.reference(a, { deltaSoftplus: true })[0];

function fmt(s) {
  return s >= 1 ? `${s.toFixed(2)} s` : `${(s * 1000).toFixed(1)} ms`;
}

// ---- kiln-native
const native = await initBackend({ env: { KILN_BACKEND: 'kiln-native' } }).catch((e) => ({ error: e.message }));
if (native.error) {
  console.error(`kiln-native unavailable: ${native.error}`);
  process.exit(1);
}
console.error(`backend ${native.name} (${native.detail})`);
const nativeScan = groupedOnly ? 0 : await scanFwdBwd(SCAN, kernel, 3);
const refShort = { ...SCAN, L: REF_L };
const refScan = groupedOnly ? 0 : ((await scanFwdBwd(refShort, reference, 1)) * SCAN.L) / REF_L;

const gRng = createRng(3);
const M = GROUPED.sizes.reduce((a, b) => a + b, 0);
const gx = gRng.normal([M, GROUPED.K]);
const gw = gRng.normal([GROUPED.sizes.length, GROUPED.K, GROUPED.N]);
const gdy = gRng.normal([M, GROUPED.N]);
const groupedFwd =
  (
    await timeIt(
      async () => {
        const y = groupedMatMul(gx, gw, GROUPED.sizes);
        await y.data();
        y.dispose();
      },
      { warmup: 1, runs: groupedOnly ? 11 : 5 },
    )
  ).medianMs / 1000;
const groupedFwdBwd =
  (
    await timeIt(
      async () => {
        const gs = tf.grads((a, b) => tf.sum(tf.mul(groupedMatMul(a, b, GROUPED.sizes), gdy)))([gx, gw]);
        await Promise.all(gs.map((g) => g.data()));
        tf.dispose(gs);
      },
      { warmup: 1, runs: groupedOnly ? 11 : 5 },
    )
  ).medianMs / 1000;

// ---- PyTorch peers, same run
const peerCfg = { scan: groupedOnly ? null : { ...SCAN, L: PEER_L, runs: 1 }, grouped: { ...GROUPED, runs: groupedOnly ? 11 : 5 } };
const peer = spawnSync('/usr/bin/python3', [path.join(here, 'peer.py'), JSON.stringify(peerCfg)], {
  encoding: 'utf8',
  env: { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX' },
});
if (peer.status !== 0) {
  console.error(peer.stderr);
  process.exit(1);
}
const torch = JSON.parse(peer.stdout.trim().split('\n').pop());

const scanLabel = `selective scan fwd+bwd (b ${SCAN.batch}, d ${SCAN.dim}, N ${SCAN.N}, L ${SCAN.L})`;
const torchScan = groupedOnly ? 0 : (torch.scan_fwd_bwd_s * SCAN.L) / PEER_L;
if (!groupedOnly) {
  rows.push([`${scanLabel}: kiln-native chunked scan`, fmt(nativeScan), '1.0×']);
  rows.push([`${scanLabel}: mamba reference loop, PyTorch ${torch.torch} (2 threads; L ${PEER_L} × ${SCAN.L / PEER_L}, a lower bound)`, `≥ ${fmt(torchScan)}`, `≥ ${(torchScan / nativeScan).toFixed(1)}× slower`]);
  rows.push([`${scanLabel}: op reference (tf ops + autodiff on kiln-native; L ${REF_L} × ${SCAN.L / REF_L})`, fmt(refScan), `${(refScan / nativeScan).toFixed(1)}× slower`]);
}
const gLabel = `grouped GEMM (${GROUPED.sizes.length} experts, ${M} rows incl. an empty group, K ${GROUPED.K}, N ${GROUPED.N})`;
rows.push([`${gLabel} forward: kiln-native`, fmt(groupedFwd), `${(torch.grouped_fwd_s / groupedFwd).toFixed(2)}× PyTorch`]);
rows.push([`${gLabel} forward: PyTorch per-group loop`, fmt(torch.grouped_fwd_s), '']);
rows.push([`${gLabel} fwd+bwd: kiln-native`, fmt(groupedFwdBwd), `${(torch.grouped_fwd_bwd_s / groupedFwdBwd).toFixed(2)}× PyTorch`]);
rows.push([`${gLabel} fwd+bwd: PyTorch per-group loop`, fmt(torch.grouped_fwd_bwd_s), '']);

// ---- webgpu vs kiln-native, on a smaller scan (lavapipe is a software rasterizer)
const small = { batch: 1, dim: 64, N: 16, L: 512 };
const nativeSmall = groupedOnly ? 0 : await scanFwdBwd(small, kernel, 3);
const gpu = groupedOnly ? { error: 'not measured (--grouped)' } : await initBackend({ env: { KILN_BACKEND: 'webgpu' } }).catch((e) => ({ error: e.message }));
if (groupedOnly) {
  // grouped rows only
} else if (gpu.error) rows.push(['webgpu', `skipped: ${gpu.error}`, '']);
else {
  const gpuSmall = await scanFwdBwd(small, kernel, 3);
  const label = `selective scan fwd+bwd (b 1, d 64, N 16, L 512)`;
  rows.push([`${label}: kiln-native`, fmt(nativeSmall), '1.0×']);
  rows.push([`${label}: webgpu WGSL kernels on ${gpu.detail}`, fmt(gpuSmall), `${(gpuSmall / nativeSmall).toFixed(1)}× kiln-native's time`]);
}

console.log('| measurement | time | ratio |');
console.log('| --- | ---: | --- |');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
