import { initBackend, tf } from '@kiln/tensor';
import os from 'node:os';
await initBackend({ env: {} });
const a = tf.randomNormal([16384, 32]), b = tf.randomNormal([16384, 32]);
for (const [name, f] of [['mul', () => tf.mul(a, b)], ['add', () => tf.add(a, b)], ['matmul16384x32x32', () => tf.matMul(a, tf.ones([32,32]))]]) {
  for (let r = 0; r < 3; r++) {
    const N = 200; const c0 = process.cpuUsage(); const t0 = performance.now();
    for (let i = 0; i < N; i++) f().dispose();
    const d = process.cpuUsage(c0);
    console.log(name, 'wall', ((performance.now() - t0) / N).toFixed(3), 'ms cpu', ((d.user + d.system) / 1000 / N).toFixed(3), 'ms', os.loadavg()[0]);
  }
}
