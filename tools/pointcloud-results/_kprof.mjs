import { initBackend, tf } from '@kiln/tensor';
import { pretrain, resolveConfig } from '@kiln/pointcloud-ssl';
const choice = await initBackend();
console.log(choice.name);
const cfg = resolveConfig('default', { data: { pointsPerScene: 4096 }, model: { channels: [32, 64] }, pretrain: { steps: 3 } });
const counts = new Map();
let stepMs = [];
const prof = await tf.profile(async () => {
  await pretrain(cfg, { onStep: (i) => { stepMs.push(i.ms); } });
});
for (const k of prof.kernels) {
  const c = counts.get(k.name) ?? { n: 0, ms: 0 };
  c.n++; c.ms += k.kernelTimeMs; counts.set(k.name, c);
}
const total = [...counts.values()].reduce((a, c) => a + c.ms, 0);
console.log('steps ms', stepMs, 'kernels', prof.kernels.length, 'kernel ms', total.toFixed(0));
for (const [name, c] of [...counts].sort((a, b) => b[1].n - a[1].n).slice(0, 45)) console.log(name.padEnd(28), String(c.n).padStart(6), c.ms.toFixed(1).padStart(9), 'ms');
