/** WGSL kernels of the MoE ops: grouped GEMM, row gather/scatter, the top-k router. */
import type { OpKernel, tf } from '@kiln/tensor';
import { inputInfo } from '../backend-data.js';
import { type GroupedAttrs, groupedOutShape } from '../moe/grouped-shape.js';
import type { RouterAttrs } from '../moe/topk-router.js';
import { dispose, runProgram, upload } from './program.js';

type Info = tf.TensorInfo;

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Empty outputs cannot be GPU buffers; tfjs keeps them host-side. */
function emptyOr(backend: unknown, shape: number[], dtype: 'float32' | 'int32', make: () => Info): Info {
  if (sizeOf(shape) > 0) return make();
  return upload(backend, shape, dtype, dtype === 'int32' ? new Int32Array(0) : new Float32Array(0));
}

/**
 * One thread per output element. The group sizes are an int32 buffer — the `sizes` input
 * (a plan on the device) or the host sizes uploaded — and a row finds its group by summing
 * them; rows past the last group are zero ('nn', 'nt') or ignored ('tn').
 */
export const groupedWgsl: OpKernel = ({ inputs, backend, attrs }) => {
  const { groupSizes, mode } = attrs as unknown as GroupedAttrs;
  const x = inputInfo(inputs, 'x')!;
  const w = inputInfo(inputs, 'w')!;
  const given = inputInfo(inputs, 'sizes');
  const G = given ? given.shape[0]! : groupSizes!.length;
  const shape = groupedOutShape(x.shape, w.shape, G, mode);
  const K = mode === 'nt' ? w.shape[1]! : x.shape[1]!;
  const N = mode === 'tn' ? w.shape[1]! : w.shape[2]!;
  return emptyOr(backend, shape, 'float32', () => {
    const sizes = given ?? upload(backend, [Math.max(G, 1)], 'int32', G ? Int32Array.from(groupSizes!) : new Int32Array(1));
    // g = the group of row r, or G when r lies past every group.
    const findGroup = `
  var g = uniforms.groups;
  var end = 0;
  for (var j = 0; j < uniforms.groups; j = j + 1) {
    end = end + SZ[j];
    if (r < end) { g = j; break; }
  }
  if (g == uniforms.groups) { result[index] = 0.0; return; }`;
    const body =
      mode === 'nn'
        ? `
  let r = index / uniforms.nn;
  let n = index % uniforms.nn;${findGroup}
  var acc = 0.0;
  for (var k = 0; k < uniforms.kk; k = k + 1) { acc = acc + X[r * uniforms.kk + k] * W[(g * uniforms.kk + k) * uniforms.nn + n]; }
  result[index] = acc;`
        : mode === 'nt'
          ? `
  let r = index / uniforms.kk;
  let k = index % uniforms.kk;${findGroup}
  var acc = 0.0;
  for (var n = 0; n < uniforms.nn; n = n + 1) { acc = acc + X[r * uniforms.nn + n] * W[(g * uniforms.kk + k) * uniforms.nn + n]; }
  result[index] = acc;`
          : `
  let g = index / (uniforms.kk * uniforms.nn);
  let k = (index / uniforms.nn) % uniforms.kk;
  let n = index % uniforms.nn;
  var start = 0;
  for (var j = 0; j < g; j = j + 1) { start = start + SZ[j]; }
  let stop = min(start + SZ[g], uniforms.rows);
  var acc = 0.0;
  for (var r = start; r < stop; r = r + 1) { acc = acc + X[r * uniforms.kk + k] * W[r * uniforms.nn + n]; }
  result[index] = acc;`;
    const out = runProgram(backend, {
      key: `grouped_${mode}`,
      inputs: [
        ['X', x],
        ['W', w],
        ['SZ', sizes],
      ],
      outShape: shape,
      threads: sizeOf(shape),
      ints: { groups: G, kk: K, nn: N, rows: x.shape[0]! },
      body,
    });
    if (!given) dispose(backend, sizes);
    return out;
  });
};

export const gatherRowsWgsl: OpKernel = ({ inputs, backend }) => {
  const x = inputInfo(inputs, 'x')!;
  const idx = inputInfo(inputs, 'indices')!;
  const H = x.shape[1]!;
  const shape = [idx.shape[0]!, H];
  return emptyOr(backend, shape, 'float32', () =>
    runProgram(backend, {
      key: 'gather_rows',
      inputs: [
        ['X', x],
        ['IDX', idx],
      ],
      outShape: shape,
      threads: sizeOf(shape),
      ints: { hh: H },
      body: `
  let r = index / uniforms.hh;
  result[index] = X[IDX[r] * uniforms.hh + index % uniforms.hh];`,
    }),
  );
};

/** Each output element sums the rows that land on it (no atomics: float adds stay ordered). */
export const scatterRowsWgsl: OpKernel = ({ inputs, backend, attrs }) => {
  const x = inputInfo(inputs, 'x')!;
  const idx = inputInfo(inputs, 'indices')!;
  const w = inputInfo(inputs, 'weights');
  const { numRows } = attrs as unknown as { numRows: number };
  const H = x.shape[1]!;
  const shape = [numRows, H];
  const list: [string, Info][] = [
    ['X', x],
    ['IDX', idx],
  ];
  if (w) list.push(['WT', w]);
  return emptyOr(backend, shape, 'float32', () =>
    runProgram(backend, {
      key: `scatter_rows_${Boolean(w)}`,
      inputs: list,
      outShape: shape,
      threads: sizeOf(shape),
      ints: { hh: H, rows: idx.shape[0]! },
      body: `
  let t = index / uniforms.hh;
  let h = index % uniforms.hh;
  var acc = 0.0;
  for (var r = 0; r < uniforms.rows; r = r + 1) {
    if (IDX[r] == t) { acc = acc + X[r * uniforms.hh + h]${w ? ' * WT[r]' : ''}; }
  }
  result[index] = acc;`,
    }),
  );
};

/** One thread per token: scores, group limit, top-k by repeated arg-max (ties to the lower index), gates. */
function routerProgram(backend: unknown, logits: Info, bias: Info | undefined, a: RouterAttrs, output: 'probs' | 'indices'): Info {
  const [T, E] = logits.shape as [number, number];
  const k = a.topk;
  const fn = a.scoreFunction ?? 'softmax';
  const G = a.groupTopk ? a.numGroups! : 0;
  // As Megatron-Core's function: expertBias steers sigmoid/sqrtsoftplus only, usePreSoftmax softmax only.
  const useBias = bias && fn !== 'softmax' ? bias : undefined;
  const pre = Boolean(a.usePreSoftmax) && fn === 'softmax';
  const list: [string, Info][] = [['LG', logits]];
  if (useBias) list.push(['BS', useBias]);
  const score =
    fn === 'softmax' ? 'l' : fn === 'sigmoid' ? '1.0 / (1.0 + exp(-l))' : 'sqrt(select(log(1.0 + exp(l)), l, l > 20.0))';
  const shape = output === 'probs' ? [T, E] : [T, k];
  return runProgram(backend, {
    key: `router_${output}_${E}_${k}_${fn}_${pre}_${G}_${a.groupTopk ?? 0}_${Boolean(useBias)}`,
    inputs: list,
    outShape: shape,
    threads: T,
    dtype: output === 'probs' ? 'float32' : 'int32',
    floats: { scaling: a.scalingFactor ? a.scalingFactor : 1 },
    body: `
  let t = index;
  var row : array<f32, ${E}>;
  var sel : array<f32, ${E}>;
  var allowed : array<bool, ${E}>;
  var taken : array<bool, ${E}>;
  var chosen : array<i32, ${k}>;
  for (var e = 0; e < ${E}; e = e + 1) {
    let l = LG[t * ${E} + e];
    row[e] = ${score};
    allowed[e] = true;
    taken[e] = false;
  }
  ${
    pre
      ? `var mx = row[0];
  for (var e = 1; e < ${E}; e = e + 1) { mx = max(mx, row[e]); }
  var tot = 0.0;
  for (var e = 0; e < ${E}; e = e + 1) { row[e] = exp(row[e] - mx); tot = tot + row[e]; }
  for (var e = 0; e < ${E}; e = e + 1) { row[e] = row[e] / tot; }`
      : ''
  }
  for (var e = 0; e < ${E}; e = e + 1) { sel[e] = row[e]${useBias ? ' + BS[e]' : ''}; }
  ${
    G
      ? `// Group limit: a group's score is the sum of its top ${Math.floor(k / a.groupTopk!)} scores.
  var gscore : array<f32, ${G}>;
  var gtaken : array<bool, ${G}>;
  let per = ${E / G};
  for (var g = 0; g < ${G}; g = g + 1) {
    gtaken[g] = false;
    var s = 0.0;
    for (var j = 0; j < ${Math.floor(k / a.groupTopk!)}; j = j + 1) {
      var best = -1;
      for (var e = g * per; e < (g + 1) * per; e = e + 1) {
        if (!taken[e] && (best < 0 || sel[e] > sel[best])) { best = e; }
      }
      taken[best] = true;
      s = s + sel[best];
    }
    gscore[g] = s;
  }
  for (var e = 0; e < ${E}; e = e + 1) { taken[e] = false; allowed[e] = false; }
  for (var j = 0; j < ${a.groupTopk}; j = j + 1) {
    var best = -1;
    for (var g = 0; g < ${G}; g = g + 1) {
      if (!gtaken[g] && (best < 0 || gscore[g] > gscore[best])) { best = g; }
    }
    gtaken[best] = true;
    for (var e = best * per; e < (best + 1) * per; e = e + 1) { allowed[e] = true; }
  }`
      : ''
  }
  for (var j = 0; j < ${k}; j = j + 1) {
    var best = -1;
    for (var e = 0; e < ${E}; e = e + 1) {
      if (allowed[e] && !taken[e] && (best < 0 || sel[e] > sel[best])) { best = e; }
    }
    taken[best] = true;
    chosen[j] = best;
  }
  ${
    output === 'indices'
      ? `for (var j = 0; j < ${k}; j = j + 1) { result[t * ${k} + j] = chosen[j]; }`
      : `var gates : array<f32, ${k}>;
  for (var j = 0; j < ${k}; j = j + 1) { gates[j] = row[chosen[j]]; }
  ${
    fn === 'softmax' && !pre
      ? `var gm = gates[0];
  for (var j = 1; j < ${k}; j = j + 1) { gm = max(gm, gates[j]); }
  var gs = 0.0;
  for (var j = 0; j < ${k}; j = j + 1) { gates[j] = exp(gates[j] - gm); gs = gs + gates[j]; }
  for (var j = 0; j < ${k}; j = j + 1) { gates[j] = gates[j] / gs; }`
      : fn !== 'softmax' && k > 1
        ? `var gs = 1e-20;
  for (var j = 0; j < ${k}; j = j + 1) { gs = gs + gates[j]; }
  for (var j = 0; j < ${k}; j = j + 1) { gates[j] = gates[j] / gs; }`
        : ''
  }
  for (var e = 0; e < ${E}; e = e + 1) { result[t * ${E} + e] = 0.0; }
  for (var j = 0; j < ${k}; j = j + 1) { result[t * ${E} + chosen[j]] = gates[j] * uniforms.scaling; }`
  }`,
  });
}

export const routerWgsl: OpKernel = ({ inputs, backend, attrs }) => {
  const logits = inputInfo(inputs, 'logits')!;
  const bias = inputInfo(inputs, 'expertBias');
  const a = attrs as unknown as RouterAttrs;
  const [T, E] = logits.shape as [number, number];
  const probs = emptyOr(backend, [T, E], 'float32', () => routerProgram(backend, logits, bias, a, 'probs'));
  const indices = emptyOr(backend, [T, a.topk], 'int32', () => routerProgram(backend, logits, bias, a, 'indices'));
  return [probs, indices];
};

/** SwiGLU: one thread per output element, silu(gate)·up from the two halves of a row of h. */
export const swigluWgsl: OpKernel = ({ inputs, backend }) => {
  const h = inputInfo(inputs, 'h')!;
  const F = h.shape[1]! / 2;
  const shape = [h.shape[0]!, F];
  return emptyOr(backend, shape, 'float32', () =>
    runProgram(backend, {
      key: 'swiglu',
      inputs: [['HH', h]],
      outShape: shape,
      threads: sizeOf(shape),
      ints: { ff: F },
      body: `
  let r = index / uniforms.ff;
  let j = index % uniforms.ff;
  let g = HH[r * 2 * uniforms.ff + j];
  let u = HH[r * 2 * uniforms.ff + uniforms.ff + j];
  result[index] = g / (1.0 + exp(-g)) * u;`,
    }),
  );
};

/** SwiGLU's input cotangent: one thread per element of h (gate half or up half). */
export const swigluGradWgsl: OpKernel = ({ inputs, backend }) => {
  const h = inputInfo(inputs, 'h')!;
  const dy = inputInfo(inputs, 'dy')!;
  const F = h.shape[1]! / 2;
  const shape = [h.shape[0]!, 2 * F];
  return emptyOr(backend, shape, 'float32', () =>
    runProgram(backend, {
      key: 'swiglu_grad',
      inputs: [
        ['HH', h],
        ['DY', dy],
      ],
      outShape: shape,
      threads: sizeOf(shape),
      ints: { ff: F },
      body: `
  let r = index / (2 * uniforms.ff);
  let c = index % (2 * uniforms.ff);
  let j = c % uniforms.ff;
  let g = HH[r * 2 * uniforms.ff + j];
  let u = HH[r * 2 * uniforms.ff + uniforms.ff + j];
  let s = 1.0 / (1.0 + exp(-g));
  let d = DY[r * uniforms.ff + j];
  if (c < uniforms.ff) { result[index] = d * u * s * (1.0 + g * (1.0 - s)); } else { result[index] = d * g * s; }`,
    }),
  );
};
