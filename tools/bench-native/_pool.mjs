import { loadNative } from '@kiln/native';
import { adam, initBackend, tf } from '@kiln/tensor';
const native = loadNative();
if (process.env.PLAIN) native.addon.allocF32 = (n) => new Float32Array(n);
await initBackend({ env: {} });
const batch = 1024, width = 1024, layers = 4;
const params = [];
for (let i = 0; i < layers; i++) { params.push(tf.variable(tf.randomUniform([width, width], -0.03, 0.03))); params.push(tf.variable(tf.zeros([width]))); }
const x = tf.randomUniform([batch, width]), y = tf.randomUniform([batch, width]);
const opt = process.env.STOCK ? tf.train.adam(1e-3) : adam({ learningRate: 1e-3 });
const step = () => opt.minimize(() => { let h = x; for (let i = 0; i < layers; i++) { h = tf.add(tf.matMul(h, params[2 * i]), params[2 * i + 1]); if (i < layers - 1) h = tf.relu(h); } return tf.losses.meanSquaredError(y, h); }, true).dataSync();
for (let i = 0; i < 3; i++) step();
let best = Infinity, bestWall = Infinity;
for (let r = 0; r < 8; r++) { const c0 = process.cpuUsage(); const t0 = performance.now(); step(); const d = process.cpuUsage(c0); best = Math.min(best, (d.user + d.system) / 1000); bestWall = Math.min(bestWall, performance.now() - t0); }
const x2 = tf.randomUniform([1 << 22]);
const chain = () => tf.tidy(() => { tf.sub(tf.mul(tf.tanh(tf.add(tf.mul(x2, 1.5), 0.25)), tf.sigmoid(x2)), tf.square(x2)).dataSync(); });
for (let i = 0; i < 3; i++) chain();
let bestE = Infinity; for (let r = 0; r < 10; r++) { const t0 = performance.now(); chain(); bestE = Math.min(bestE, performance.now() - t0); }
console.log(process.env.PLAIN ? 'plain' : 'pool ', process.env.STOCK ? 'stock' : 'fused', 'mlp cpu', best.toFixed(0), 'ms wall', bestWall.toFixed(0), 'ms; elementwise wall', bestE.toFixed(1), 'ms');
