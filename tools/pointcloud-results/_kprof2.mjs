import { initBackend, tf } from '@kiln/tensor';
import { pretrain, resolveConfig } from '@kiln/pointcloud-ssl';
await initBackend();
const cfg = resolveConfig('default', { data: { pointsPerScene: 4096 }, model: { channels: [32, 64] }, pretrain: { steps: 2 } });
const counts = new Map();
const prof = await tf.profile(async () => { await pretrain(cfg, {}); });
for (const k of prof.kernels) {
  const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
  const c = counts.get(key) ?? { n: 0, ms: 0 };
  c.n++; c.ms += k.kernelTimeMs; counts.set(key, c);
}
for (const [name, c] of [...counts].sort((a, b) => b[1].ms - a[1].ms).slice(0, 60)) console.log(String(c.n).padStart(5), c.ms.toFixed(1).padStart(9), 'ms', name.slice(0, 150));
