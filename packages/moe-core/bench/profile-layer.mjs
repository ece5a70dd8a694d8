// Where one forward+backward of the benchmark's MoE layer spends its time, per tfjs kernel
// (tf.profile's kernelTimeMs) and per phase. Run after a build:
//   node bench/profile-layer.mjs [tokens hidden ffn experts topk]
import { createRng, describeBackendChoice, initBackend, tf } from '@kiln/tensor';
import { MoELayer, initMoEWeights, validateMoEConfig, weightList } from '../dist/index.js';

const choice = await initBackend();
console.log(describeBackendChoice(choice));
const [T, H, F, E, K] = (process.argv.length > 2 ? process.argv.slice(2) : ['8192', '512', '1024', '8', '2']).map(Number);
const config = validateMoEConfig({ numExperts: E, topk: K, hiddenSize: H, ffnHiddenSize: F });
const weights = initMoEWeights(config, createRng(0), { std: 0.02 });
const layer = new MoELayer(config, weights);
const x = tf.variable(createRng(1).normal([T, H]));
const dy = createRng(2).normal([T, H]);
const vars = [x, ...weightList(weights)];
const step = () => {
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.forward(x), dy)), vars);
  value.dataSync();
  value.dispose();
  for (const g of Object.values(grads)) g.dispose();
};
step();
const times = [];
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  step();
  times.push(performance.now() - t0);
}
console.log(`step ms: ${times.map((t) => t.toFixed(0)).join(' ')}`);
const t0 = performance.now();
tf.tidy(() => layer.forward(x).dataSync());
console.log(`forward only ms: ${(performance.now() - t0).toFixed(0)}`);
const prof = await tf.profile(step);
const agg = new Map();
let total = 0;
for (const k of prof.kernels) {
  const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : ((await k.kernelTimeMs)?.kernelMs ?? 0);
  const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
  const a = agg.get(key) ?? { n: 0, ms: 0 };
  a.n++;
  a.ms += ms;
  agg.set(key, a);
  total += ms;
}
console.log(`kernels: ${prof.kernels.length}, summed kernel ms ${total.toFixed(0)}`);
for (const [k, a] of [...agg].sort((p, q) => q[1].ms - p[1].ms).slice(0, 30)) console.log(`${a.ms.toFixed(1).padStart(8)} ms  ${String(a.n).padStart(3)}×  ${k}`);
