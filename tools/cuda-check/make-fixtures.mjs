#!/usr/bin/env node
/**
 * Writes the reference cases tools/cuda-check/check.cu compares the CUDA kernels with:
 * every op of @kiln/gpu-kernels, run through its reference composition (tf ops) on the
 * `cpu` backend — forward outputs and, for the differentiable ops, gradients — on random
 * and ragged shapes. Output: fixtures/<op>-<case>.bin (format in check.cu's header).
 *
 * Run after `pnpm --filter @kiln/gpu-kernels... build`:  node tools/cuda-check/make-fixtures.mjs
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { castFp8Op, decodeMiniFloat, E4M3, E5M2, groupedMatMulOp, planPermutation, scatterRowsOp, selectiveScanOp, topkRouterOp } from '@kiln/gpu-kernels';
import { createRng, tf } from '@kiln/tensor';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(here, 'fixtures');
mkdirSync(outDir, { recursive: true });
await tf.setBackend('cpu');

/** name → { dtype: 0 f32 | 1 i32, shape, data } */
function encode(arrays) {
  const parts = [];
  const header = Buffer.alloc(8);
  header.write('GKF1', 0, 'ascii');
  header.writeInt32LE(Object.keys(arrays).length, 4);
  parts.push(header);
  for (const [name, a] of Object.entries(arrays)) {
    const nameBuf = Buffer.from(name, 'ascii');
    const h = Buffer.alloc(12 + nameBuf.length + 4 * a.shape.length);
    let o = 0;
    h.writeInt32LE(nameBuf.length, o);
    o += 4;
    nameBuf.copy(h, o);
    o += nameBuf.length;
    h.writeInt32LE(a.dtype, o);
    o += 4;
    h.writeInt32LE(a.shape.length, o);
    o += 4;
    for (const d of a.shape) {
      h.writeInt32LE(d, o);
      o += 4;
    }
    parts.push(h);
    const typed = a.dtype === 1 ? Int32Array.from(a.data) : Float32Array.from(a.data);
    parts.push(Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength));
  }
  return Buffer.concat(parts);
}

function write(name, arrays) {
  const file = path.join(outDir, `${name}.bin`);
  writeFileSync(`${file}.tmp`, encode(arrays));
  renameSync(`${file}.tmp`, file);
  console.log(`wrote fixtures/${name}.bin`);
}

const f32 = (t) => ({ dtype: 0, shape: t.shape, data: t.dataSync() });
const i32 = (t) => ({ dtype: 1, shape: t.shape, data: t.dataSync() });
const vals = (shape, data, dtype = 0) => ({ dtype, shape, data });

// ---- selective scan: forward and gradients of Σ out·dout + Σ last·dLast
const SCAN = [
  ['full', 2, 3, 4, 9, true, true],
  ['L1', 1, 2, 3, 1, true, true],
  ['bare', 1, 4, 2, 13, false, false],
  ['long', 2, 8, 16, 200, true, true],
];
for (const [name, batch, dim, N, L, full, softplus] of SCAN) {
  const rng = createRng(batch * 1000 + L);
  const inputs = {
    u: rng.normal([batch, dim, L]),
    delta: rng.normal([batch, dim, L], 0, 0.7),
    A: tf.neg(tf.exp(rng.normal([dim, N], 0.5, 0.5))),
    B: rng.normal([batch, N, L]),
    C: rng.normal([batch, N, L]),
  };
  if (full) {
    inputs.D = rng.normal([dim]);
    inputs.z = rng.normal([batch, dim, L]);
    inputs.deltaBias = rng.normal([dim], 0, 0.3);
    inputs.initialState = rng.normal([batch, dim, N]);
  }
  const dout = rng.normal([batch, dim, L]);
  const dLast = rng.normal([batch, dim, N]);
  const keys = Object.keys(inputs);
  const attrs = { deltaSoftplus: softplus };
  const [out, last] = selectiveScanOp.reference(inputs, attrs);
  const grads = tf.grads((...xs) => {
    const named = Object.fromEntries(keys.map((k, i) => [k, xs[i]]));
    const [o, l] = selectiveScanOp.reference(named, attrs);
    return tf.add(tf.sum(tf.mul(o, dout)), tf.sum(tf.mul(l, dLast)));
  })(keys.map((k) => inputs[k]));
  const arrays = { softplus: vals([1], [softplus ? 1 : 0]) };
  for (const k of keys) arrays[k] = f32(inputs[k]);
  Object.assign(arrays, { dout: f32(dout), dLast: f32(dLast), out: f32(out), last: f32(last) });
  keys.forEach((k, i) => {
    arrays[`d_${k}`] = f32(grads[i]);
  });
  write(`scan-${name}`, arrays);
}

// ---- grouped GEMM: forward and gradients
const GROUPED = [
  ['ragged', [3, 0, 5, 1], 4, 3],
  ['wide', [17, 0, 33, 1, 9], 40, 24],
  ['single', [7], 9, 2],
];
for (const [name, sizes, K, N] of GROUPED) {
  const rng = createRng(K * N);
  const M = sizes.reduce((a, b) => a + b, 0);
  const x = rng.normal([M, K]);
  const w = rng.normal([sizes.length, K, N]);
  const dy = rng.normal([M, N]);
  const f = (a, b) => groupedMatMulOp.reference({ x: a, w: b }, { groupSizes: sizes, mode: 'nn' });
  const [dx, dw] = tf.grads((a, b) => tf.sum(tf.mul(f(a, b), dy)))([x, w]);
  const offsets = [0];
  for (const s of sizes) offsets.push(offsets[offsets.length - 1] + s);
  write(`grouped-${name}`, { x: f32(x), w: f32(w), offsets: vals([offsets.length], offsets, 1), dy: f32(dy), out: f32(f(x, w)), dx: f32(dx), dw: f32(dw) });
}

// ---- MoE rows: gather and weighted scatter-add (drop-and-pad plan)
{
  const T = 9;
  const E = 4;
  const rng = createRng(4);
  const map = Array.from({ length: T * E }, () => (rng.next() < 0.4 ? 1 : 0));
  const plan = planPermutation(map, T, E, { capacity: 3, padToCapacity: true });
  const x = rng.normal([T, 6]);
  const idx = tf.tensor1d(plan.sortedIndices, 'int32');
  const rows = tf.gather(x, idx);
  const w = rng.uniform([plan.sortedIndices.length]);
  const back = scatterRowsOp.reference({ x: rows, indices: idx, weights: w }, { numRows: T });
  write('rows-padded', { x: f32(x), indices: i32(idx), weights: f32(w), gathered: f32(rows), scattered: f32(back) });
}

// ---- router: every score function, group limit, bias, scaling
const ROUTER = [
  ['softmax', { topk: 2 }, 8, false],
  ['presoftmax', { topk: 3, usePreSoftmax: true, scalingFactor: 2 }, 7, false],
  ['sigmoid-group', { topk: 4, scoreFunction: 'sigmoid', numGroups: 4, groupTopk: 2, scalingFactor: 2.5 }, 16, true],
  ['sqrtsoftplus', { topk: 3, scoreFunction: 'sqrtsoftplus' }, 6, true],
  ['sigmoid-top1', { topk: 1, scoreFunction: 'sigmoid' }, 5, false],
];
for (const [name, opts, E, bias] of ROUTER) {
  const rng = createRng(E * 3);
  const logits = rng.normal([37, E], 0, 2);
  const inputs = { logits };
  if (bias) inputs.expertBias = rng.normal([E], 0, 0.2);
  const [probs, indices] = topkRouterOp.reference(inputs, opts);
  const fn = ['softmax', 'sigmoid', 'sqrtsoftplus'].indexOf(opts.scoreFunction ?? 'softmax');
  const attrs = [opts.topk, fn, opts.usePreSoftmax ? 1 : 0, opts.numGroups ?? 0, opts.groupTopk ?? 0, opts.scalingFactor ?? 0];
  const arrays = { logits: f32(logits), attrs: vals([attrs.length], attrs), probs: f32(probs), indices: i32(indices) };
  if (bias) arrays.bias = f32(inputs.expertBias);
  write(`router-${name}`, arrays);
}

// ---- FP8: every code, every midpoint, saturation, scaled random, stochastic
for (const [format, f, code] of [
  ['e4m3', E4M3, 0],
  ['e5m2', E5M2, 1],
]) {
  const grid = [];
  for (let c = 0; c < 256; c++) {
    const v = decodeMiniFloat(c, f);
    if (Number.isFinite(v)) grid.push(v);
  }
  const sorted = [...new Set(grid)].sort((a, b) => a - b);
  for (let i = 0; i + 1 < sorted.length; i++) grid.push((sorted[i] + sorted[i + 1]) / 2);
  grid.push(f.max * 2, -f.max * 2, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY);
  const x = tf.tensor(grid);
  const r = createRng(code + 1).normal([1000], 0, 3);
  const one = tf.tensor([1]);
  const s = tf.tensor([37.5]);
  write(`fp8-${format}`, {
    format: vals([1], [code]),
    grid: f32(x),
    grid_out: f32(castFp8Op.reference({ x, scale: one }, { format })),
    rand: f32(r),
    rand_out: f32(castFp8Op.reference({ x: r, scale: s }, { format })),
    rand_sr: f32(castFp8Op.reference({ x: r, scale: s }, { format, stochastic: true, seed: 3 })),
  });
}

