import { initBackend, tf } from '@kiln/tensor';
await initBackend({ env: {} });
const a = tf.randomNormal([64, 64]), b = tf.randomNormal([64, 64]);
const t0 = performance.now();
for (let i = 0; i < 200000; i++) tf.add(a, b).dispose();
console.log((performance.now() - t0) / 200000 * 1000, 'us/op');
