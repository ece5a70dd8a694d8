/**
 * Breaks bench.mjs's MLP training step (4×1024, batch 1024) into forward, forward+backward
 * and optimizer time, then lists tfjs kernel time per kernel for one minimize() call.
 * Usage: node profile-step.mjs [--fused]   (--fused: @kiln/tensor's adam(), else tf.train.adam)
 * Numbers are for finding where the time goes; the comparison with PyTorch is bench.mjs.
 */
import { adam, initBackend, tf } from '@kiln/tensor';
const choice = await initBackend({ env: {} });
console.log(choice.name, choice.detail);
const batch = 1024, width = 1024, layers = 4;
const params = [];
for (let i = 0; i < layers; i++) {
  const bound = 1 / Math.sqrt(width);
  params.push(tf.variable(tf.randomUniform([width, width], -bound, bound, 'float32', 10 + i)));
  params.push(tf.variable(tf.randomUniform([width], -bound, bound, 'float32', 20 + i)));
}
const x = tf.randomUniform([batch, width], -1, 1, 'float32', 1);
const y = tf.randomUniform([batch, width], -1, 1, 'float32', 2);
const opt = process.argv.includes('--fused') ? adam({ learningRate: 1e-3 }) : tf.train.adam(1e-3);
console.log('optimizer', opt.constructor.name);
const loss = () => {
  let h = x;
  for (let i = 0; i < layers; i++) {
    h = tf.add(tf.matMul(h, params[2 * i]), params[2 * i + 1]);
    if (i < layers - 1) h = tf.relu(h);
  }
  return tf.losses.meanSquaredError(y, h);
};
function once() {
  const t0 = performance.now();
  let t1, t2;
  tf.tidy(() => {
    const l = loss(); l.dataSync(); t1 = performance.now();
    const { value, grads } = tf.variableGrads(loss);
    value.dataSync(); t2 = performance.now();
    opt.applyGradients(grads);
  });
  const t3 = performance.now();
  return [t1 - t0, t2 - t1, t3 - t2];
}
for (let i = 0; i < 3; i++) once();
const res = [];
for (let i = 0; i < 6; i++) res.push(once());
const best = [0, 1, 2].map((j) => Math.min(...res.map((r) => r[j])));
console.log('forward %s ms, fwd+bwd %s ms, adam %s ms', ...best.map((v) => v.toFixed(1)));
// full minimize
const step = () => tf.tidy(() => { opt.minimize(loss, true).dataSync(); });
for (let i = 0; i < 2; i++) step();
const st = [];
for (let i = 0; i < 6; i++) { const t0 = performance.now(); step(); st.push(performance.now() - t0); }
console.log('minimize best %s ms, all %s', Math.min(...st).toFixed(1), st.map((v) => v.toFixed(0)).join(' '));
// kernel profile
const prof = await tf.profile(() => { step(); });
const agg = new Map();
for (const k of prof.kernels) {
  const key = k.name;
  const e = agg.get(key) ?? { n: 0, ms: 0 };
  e.n++; e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
  agg.set(key, e);
}
console.log('kernels:', prof.kernels.length, 'newBytes', prof.newBytes);
for (const [k, e] of [...agg].sort((a, b) => b[1].ms - a[1].ms)) console.log(k.padEnd(24), e.n, e.ms.toFixed(1));
