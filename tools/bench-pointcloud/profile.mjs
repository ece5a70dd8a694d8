#!/usr/bin/env node
// Where a `pretrain` step's time goes: every kernel registered for the active backend is
// wrapped to add up its calls, wall time and process CPU time, over the steps after the
// first. Run single-threaded for CPU times that are not spread over pool threads:
//
//   KILN_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 node profile.mjs [ROOT]
//
// ROOT: the checkout to profile (its built packages; default this one), e.g. an older commit.
// Environment: KILN_BENCH_POINTS (4096), KILN_BENCH_CHANNELS ([32,64]), KILN_PROFILE_STEPS (4),
// KILN_PROFILE_TOP (30 rows).
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '../..'));
const load = (pkg) => import(pathToFileURL(join(root, 'packages', pkg, 'dist', 'index.js')).href);
const { initBackend, describeBackendChoice, tf } = await load('tensor');
await load('gpu-kernels');
const { pretrain, resolveConfig } = await load('pointcloud-ssl');
const env = process.env;
const points = Number(env.KILN_BENCH_POINTS ?? 4096);
const channels = JSON.parse(env.KILN_BENCH_CHANNELS ?? '[32,64]');
const steps = Number(env.KILN_PROFILE_STEPS ?? 4);
const top = Number(env.KILN_PROFILE_TOP ?? 30);
if (!(Number.isInteger(steps) && steps >= 2)) throw new Error(`KILN_PROFILE_STEPS must be an integer ≥ 2, got ${env.KILN_PROFILE_STEPS}`);

const choice = await initBackend();
console.log(`${root}: ${describeBackendChoice(choice)}`);
const stats = new Map();
const backend = tf.getBackend();
for (const k of tf.getKernelsForBackend(backend)) {
  const run = k.kernelFunc;
  tf.unregisterKernel(k.kernelName, backend);
  tf.registerKernel({
    ...k,
    kernelFunc: (args) => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const out = run(args);
      const c = process.cpuUsage(c0);
      const s = stats.get(k.kernelName) ?? { calls: 0, wall: 0, cpu: 0 };
      s.calls++;
      s.wall += performance.now() - t0;
      s.cpu += (c.user + c.system) / 1000;
      stats.set(k.kernelName, s);
      return out;
    },
  });
}
const cfg = resolveConfig('default', { data: { pointsPerScene: points }, model: { channels }, pretrain: { steps } });
const wall = [];
const cpu = [];
let c0 = process.cpuUsage();
await pretrain(cfg, {
  onStep: (info) => {
    const c = process.cpuUsage(c0);
    wall.push(info.ms);
    cpu.push((c.user + c.system) / 1000);
    if (info.step === 0) stats.clear(); // the first step warms up
    c0 = process.cpuUsage();
  },
});
const timed = steps - 1;
const rows = [...stats].sort((a, b) => b[1].cpu - a[1].cpu);
const total = rows.reduce((t, [, s]) => ({ calls: t.calls + s.calls, wall: t.wall + s.wall, cpu: t.cpu + s.cpu }), { calls: 0, wall: 0, cpu: 0 });
console.log(`${4 * points} points per step, channels [${channels}]; load average ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
console.log(`step wall ms ${wall.slice(1).map((v) => v.toFixed(0)).join(' ')}; step CPU ms ${cpu.slice(1).map((v) => v.toFixed(0)).join(' ')}`);
console.log(`per step: ${(total.calls / timed).toFixed(0)} kernels, ${(total.wall / timed).toFixed(0)} ms kernel wall, ${(total.cpu / timed).toFixed(0)} ms kernel CPU`);
console.log(`${'kernel'.padEnd(40)} ${'calls'.padStart(6)} ${'wall ms'.padStart(9)} ${'CPU ms'.padStart(9)}  (per step)`);
for (const [name, s] of rows.slice(0, top)) {
  console.log(`${name.padEnd(40)} ${(s.calls / timed).toFixed(0).padStart(6)} ${(s.wall / timed).toFixed(1).padStart(9)} ${(s.cpu / timed).toFixed(1).padStart(9)}`);
}
