/**
 * Heads on top of the backbone's per-point features: the SSL projector with prototypes (and a
 * BYOL-style predictor for the cosine objective), and the linear segmentation head.
 */
import { type Rng, type Tensor, tf } from '@kiln/tensor';
import { addParam, initLinear, l2Normalize, linear, type ParamStore, param, silu } from '../model/params.js';

export function initSslHead(rng: Rng, channels: number, projectionDim: number, prototypes: number): ParamStore {
  const s: ParamStore = new Map();
  initLinear(s, rng, 'ssl.proj1', channels, channels);
  initLinear(s, rng, 'ssl.proj2', channels, projectionDim);
  addParam(s, 'ssl.prototypes', rng.normal([projectionDim, prototypes], 0, 1));
  initLinear(s, rng, 'ssl.pred1', projectionDim, projectionDim);
  initLinear(s, rng, 'ssl.pred2', projectionDim, projectionDim);
  return s;
}

/** L2-normalised projection [n, projectionDim]. */
export function project(head: ParamStore, x: Tensor): Tensor {
  return l2Normalize(linear(head, 'ssl.proj2', silu(linear(head, 'ssl.proj1', x))));
}

/** The BYOL predictor on a projection. */
export function predict(head: ParamStore, z: Tensor): Tensor {
  return linear(head, 'ssl.pred2', silu(linear(head, 'ssl.pred1', z)));
}

/** Cosine scores against the normalised prototypes [n, prototypes]. */
export function prototypeScores(head: ParamStore, z: Tensor): Tensor {
  const w = l2Normalize(tf.transpose(param(head, 'ssl.prototypes')));
  return tf.matMul(z, w, false, true);
}

export function initSegHead(rng: Rng, channels: number, classes: number): ParamStore {
  const s: ParamStore = new Map();
  initLinear(s, rng, 'seg', channels, classes);
  return s;
}

export function segLogits(head: ParamStore, x: Tensor): Tensor {
  return linear(head, 'seg', x);
}
