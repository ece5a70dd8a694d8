/**
 * A bidirectional Mamba mixer over serialized points (Vision-Mamba style): a shared input
 * projection to (x, z); per direction a short causal depthwise convolution, SiLU, the
 * projection to (Δ_low-rank, B, C), Δ's up-projection and the selective scan with Δ softplus,
 * A = −exp(A_log) and the D skip; the two directions are summed, gated by SiLU(z) and
 * projected back.
 */
import { causalConv1d, siluGate, sliceColumns } from '@kiln/gpu-kernels';
import { type Rng, type Tensor, tf } from '@kiln/tensor';
import { addParam, initLinear, type ParamStore, param } from './params.js';
import { gatherRows } from './gather.js';
import { selectiveScanSequences } from './scan.js';
import type { SequenceLayout } from './structure.js';

export interface MambaConfig {
  /** Channels of the state space (N). */
  dState: number;
  /** Inner width = expand · channels. */
  expand: number;
  /** Causal convolution width. */
  dConv: number;
  /** Rank of Δ's projection; 0 = ceil(channels / 16). */
  dtRank: number;
}

export const DIRECTIONS = ['fwd', 'bwd'] as const;

function dims(channels: number, cfg: MambaConfig): { inner: number; rank: number } {
  return { inner: Math.round(cfg.expand * channels), rank: cfg.dtRank > 0 ? cfg.dtRank : Math.ceil(channels / 16) };
}

export function initBiMamba(store: ParamStore, rng: Rng, name: string, channels: number, cfg: MambaConfig): void {
  const { inner, rank } = dims(channels, cfg);
  initLinear(store, rng, `${name}.in_proj`, channels, 2 * inner, false);
  initLinear(store, rng, `${name}.out_proj`, inner, channels, false);
  for (const dir of DIRECTIONS) {
    const p = `${name}.${dir}`;
    const k = 1 / Math.sqrt(cfg.dConv);
    addParam(store, `${p}.conv.weight`, rng.uniform([cfg.dConv, inner], -k, k));
    addParam(store, `${p}.conv.bias`, tf.zeros([inner]));
    initLinear(store, rng, `${p}.x_proj`, inner, rank + 2 * cfg.dState, false);
    const r = 1 / Math.sqrt(rank);
    addParam(store, `${p}.dt_proj.weight`, rng.uniform([rank, inner], -r, r));
    // Mamba's Δ init: Δ = exp(U(log 1e-3, log 1e-1)), stored as softplus⁻¹(Δ).
    const dt = Float32Array.from(rng.uniformArray(inner, Math.log(1e-3), Math.log(1e-1)), (v) => Math.exp(v));
    addParam(store, `${p}.dt_proj.bias`, tf.tensor1d(Float32Array.from(dt, (d) => d + Math.log(-Math.expm1(-d)))));
    const aLog = new Float32Array(inner * cfg.dState);
    for (let i = 0; i < inner; i++) for (let s = 0; s < cfg.dState; s++) aLog[i * cfg.dState + s] = Math.log(s + 1);
    addParam(store, `${p}.A_log`, tf.tensor2d(aLog, [inner, cfg.dState]));
    addParam(store, `${p}.D`, tf.ones([inner]));
  }
}

/** One direction: sequence features [rows·L, inner] → scan output [rows·L, inner]. */
function direction(store: ParamStore, p: string, seq: Tensor, rowsN: number, len: number, cfg: MambaConfig, inner: number, rank: number): Tensor {
  // Causal depthwise conv along each sequence + SiLU, one fused op.
  const u = causalConv1d(tf.reshape(seq, [rowsN, len, inner]), param(store, `${p}.conv.weight`), param(store, `${p}.conv.bias`), 'silu');
  const xc = tf.reshape(u, [rowsN * len, inner]);
  // One matMul for (Δ_low-rank, B, C), split by column copies (tfjs's strided slice walks
  // elements one by one; three skinny matMuls cost more than one).
  const xdbl = tf.matMul(xc, param(store, `${p}.x_proj.weight`));
  const dtLow = sliceColumns(xdbl, 0, rank);
  const bm = sliceColumns(xdbl, rank, cfg.dState);
  const cm = sliceColumns(xdbl, rank + cfg.dState, cfg.dState);
  const delta = tf.matMul(dtLow, param(store, `${p}.dt_proj.weight`));
  // The scan reads these channels-last operands as they are (no transposes).
  const y = selectiveScanSequences({
    u,
    delta: tf.reshape(delta, [rowsN, len, inner]),
    A: tf.neg(tf.exp(param(store, `${p}.A_log`))),
    B: tf.reshape(bm, [rowsN, len, cfg.dState]),
    C: tf.reshape(cm, [rowsN, len, cfg.dState]),
    D: param(store, `${p}.D`),
    deltaBias: param(store, `${p}.dt_proj.bias`),
  });
  return tf.reshape(y, [rowsN * len, inner]);
}

/** Mixes x [n, channels] along the layout's sequences (both directions). */
export function biMamba(store: ParamStore, name: string, x: Tensor, layout: SequenceLayout, cfg: MambaConfig): Tensor {
  const [n, channels] = x.shape as [number, number];
  const { inner, rank } = dims(channels, cfg);
  // Two matMuls on the weight's column blocks: splitting the small weight is cheaper than
  // splitting the [n, 2·inner] activations.
  const w = param(store, `${name}.in_proj.weight`);
  const xs = tf.matMul(x, sliceColumns(w, 0, inner));
  const z = tf.matMul(x, sliceColumns(w, inner, inner));
  let mixed: Tensor | null = null;
  for (const dir of DIRECTIONS) {
    const slots = dir === 'fwd' ? layout.forward : layout.backward;
    const back = dir === 'fwd' ? layout.forwardSlot : layout.backwardSlot;
    // Padding slots hold index n, which gatherRows turns into zero rows.
    const seq = gatherRows(xs, slots, back);
    const y = direction(store, `${name}.${dir}`, seq, layout.rows, layout.length, cfg, inner, rank);
    const perPoint = gatherRows(y, back, slots);
    mixed = mixed ? tf.add(mixed, perPoint) : perPoint;
  }
  if (mixed!.shape[0] !== n) throw new Error(`biMamba: layout covers ${mixed!.shape[0]} points, features have ${n}`);
  return tf.matMul(siluGate(mixed!, z), param(store, `${name}.out_proj.weight`));
}
