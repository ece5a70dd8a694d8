import { initBackend, tf } from '@kiln/tensor';
import { pretrain, resolveConfig } from '@kiln/pointcloud-ssl';
import os from 'node:os';
const choice = await initBackend();
const backendName = tf.getBackend();
const stats = new Map();
let depth = 0;
for (const config of tf.getKernelsForBackend(backendName)) {
  const orig = config.kernelFunc;
  tf.unregisterKernel(config.kernelName, backendName);
  tf.registerKernel({ ...config, kernelFunc: (args) => {
    depth++;
    const t0 = performance.now();
    try { return orig(args); } finally {
      const dt = performance.now() - t0; depth--;
      const key = process.env.SHAPES ? `${config.kernelName} ${JSON.stringify(Object.values(args.inputs).map((t) => t?.shape))}` : config.kernelName;
      const s = stats.get(key) ?? { n: 0, ms: 0, nested: 0 }; s.n++; if (depth === 0) s.ms += dt; else s.nested += dt; stats.set(key, s);
    }
  } });
}
const cfg = resolveConfig('default', { data: { pointsPerScene: 4096 }, model: { channels: [32, 64] }, pretrain: { steps: 4 } });
const steps = [];
let points = 0;
await pretrain(cfg, { onStep: (i) => { steps.push(i.ms); points = i.points; if (i.step === 0) stats.clear(); } });
const total = [...stats.values()].reduce((a, s) => a + s.ms, 0);
console.log(choice.name, 'steps ms', steps.map((s) => s.toFixed(0)).join(' '), 'points', points, 'load', os.loadavg()[0].toFixed(1));
console.log('kernel time (3 steps)', total.toFixed(0), 'ms, per step', (total / 3).toFixed(0));
for (const [k, s] of [...stats].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(process.env.TOP ?? 30))) console.log(k.slice(0, 110).padEnd(110), String(s.n).padStart(6), (s.ms / 3).toFixed(1).padStart(8), 'ms/step');
