/** WGSL kernel of the FP8 cast, bit-exact with the host code. */
import type { OpKernel } from '@kiln/tensor';
import { inputInfo } from '../backend-data.js';
import type { CastAttrs } from '../quant/fp8.js';
import { FP8_FORMATS, type MiniFloatFormat } from '../quant/minifloat.js';
import { runProgram, upload } from './program.js';

/** Rounding to a small float format: nearest-even (WGSL's round) or ⌊q + u⌋, saturating. */
const ROUND = `
fn gk_round(v : f32, mant : i32, minExp : i32, maxv : f32, u : f32, stochastic : bool) -> f32 {
  let bits = bitcast<u32>(v);
  if ((bits & 0x7fffffffu) > 0x7f800000u) { return v; }
  let a = abs(v);
  var m = 0.0;
  if (a >= maxv) {
    m = maxv;
  } else if (a > 0.0) {
    let e = max(i32((bitcast<u32>(a) >> 23u) & 0xffu) - 127, minExp);
    let step = ldexp(1.0, e - mant);
    let q = a / step;
    var r = round(q);
    if (stochastic) { r = floor(q + u); }
    m = min(r * step, maxv);
  }
  return select(m, -m, (bits >> 31u) == 1u);
}

fn gk_hash_uniform(seed : i32, index : i32) -> f32 {
  var x = bitcast<u32>(index) ^ (bitcast<u32>(seed) * 0x9e3779b9u);
  x = x ^ (x >> 16u);
  x = x * 0x7feb352du;
  x = x ^ (x >> 15u);
  x = x * 0x846ca68bu;
  x = x ^ (x >> 16u);
  return f32(x >> 8u) / 16777216.0;
}
`;

function fmtArgs(f: MiniFloatFormat): string {
  return `${f.mantissaBits}, ${f.minExponent}, ${f.max.toFixed(1)}`;
}

export const castWgsl: OpKernel = ({ inputs, backend, attrs }) => {
  const x = inputInfo(inputs, 'x')!;
  const scale = inputInfo(inputs, 'scale')!;
  const a = attrs as unknown as CastAttrs;
  const f = FP8_FORMATS[a.format];
  const size = x.shape.reduce((p, q) => p * q, 1);
  if (size === 0) return upload(backend, [...x.shape], 'float32', new Float32Array(0));
  return runProgram(backend, {
    key: `cast_fp8_${a.format}_${Boolean(a.stochastic)}`,
    inputs: [
      ['X', x],
      ['SC', scale],
    ],
    outShape: [...x.shape],
    threads: size,
    ints: { seed: a.seed ?? 0 },
    prelude: ROUND,
    body: `
  let s = SC[0];
  let u = ${a.stochastic ? 'gk_hash_uniform(uniforms.seed, index)' : '0.0'};
  result[index] = gk_round(X[index] * s, ${fmtArgs(f)}, u, ${Boolean(a.stochastic)}) / s;`,
  });
};
