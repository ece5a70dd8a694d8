/**
 * Throughput of @kiln/pointcloud-ssl's scene loader on Pointcept-layout scenes, side by side
 * with a numpy peer (loader_peer.py: np.load as Pointcept's DefaultDataset reads, the same
 * training transforms written with numpy as Pointcept's transform.py computes them):
 *   read            one scene's .npy files into arrays
 *   transform       the default training pipeline (CenterShift, RandomDropout, GridSample,
 *                   SphereCrop, CenterShift, RandomRotate ×3, RandomScale, RandomFlip,
 *                   RandomJitter, ChromaticAutoContrast/Translation/Jitter, NormalizeColor)
 *   read + transform   both, one scene at a time
 * and, Kiln only, a SceneStream feeding a training loop: the time per micro-batch with 0, 1
 * and 2 loader threads while the loop is idle, and while it spends C ms of CPU per step (C =
 * the inline read + transform time), which shows how much of the loading the threads hide.
 *
 * The scenes (rooms of --points points, written with numpy by the fixtures' own writer) are
 * made in a temporary folder. Writes the results, with commit, config and load average, to
 * --out (default: print only); loader-table.mjs turns that JSON into the README's table.
 * Run after building: node tools/pointcloud-data/bench-loader.mjs [--scenes 6] [--points 200000]
 *   [--grid 0.02] [--max-points 80000] [--runs 5] [--out tools/pointcloud-data/results/loader.json]
 */
import { execSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '../..');
const pkg = await import('@kiln/pointcloud-ssl');
const { createRng } = await import('@kiln/tensor');

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const scenes = Number(arg('scenes', 6));
const points = Number(arg('points', 200000));
const gridSize = Number(arg('grid', 0.02));
const maxPoints = Number(arg('max-points', 80000));
const runs = Number(arg('runs', 5));
const outFile = arg('out', '');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
async function timed(fn) {
  await fn();
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    samples.push((performance.now() - t0) / 1000);
  }
  return [median(samples), Math.min(...samples)];
}
const perScene = ([med, best]) => [med / scenes, best / scenes];

const loadStart = os.loadavg();
const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-loader-bench-'));
try {
  // The scenes, written by numpy through the fixtures' writer (Pointcept's dtypes and shapes).
  const fixtures = path.join(root, 'packages/pointcloud-ssl/src/data/fixtures');
  const make = `import sys; sys.path.insert(0, ${JSON.stringify(fixtures)}); from write_fixtures import save_pointcept_scene
import numpy as np, os
for i in range(${scenes}):
    save_pointcept_scene(os.path.join(${JSON.stringify(dir)}, 'train', 'room_%d' % i), 100 + i, ${points}, {'segment': lambda l: l.astype(np.int16).reshape(-1, 1)})`;
  const made = spawnSync('/usr/bin/python3', ['-c', make], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`writing the scenes failed: ${made.stderr}`);

  const ds = await pkg.openDataset({ type: 'pointcept', root: dir, valSplit: [] });
  const refs = ds.train;
  const pipeline = pkg.trainingPipeline({ gridSize, maxPoints });
  const sampleT = new pkg.Compose(pipeline.sample);
  const viewT = new pkg.Compose(pipeline.view);
  const rng = createRng(0);
  const loaded = [];
  for (const r of refs) loaded.push(await pkg.loadScene(r));
  const transform = (scene) => pkg.sceneFromSample(viewT.apply(sampleT.apply(pkg.sampleFromScene(scene), rng), rng));

  const kiln = {
    // One scene after another, as the peer reads them (and as a loader thread does).
    read: perScene(await timed(async () => {
      for (const r of refs) await pkg.loadScene(r);
    })),
    transform: perScene(await timed(() => loaded.map(transform))),
    'read + transform': perScene(await timed(async () => {
      for (const r of refs) transform(await pkg.loadScene(r));
    })),
  };
  const keptPoints = transform(loaded[0]).coord.length / 3;

  // A training loop fed by a SceneStream: one scene per micro-batch, `compute` ms of CPU per step.
  const spin = (ms) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  const plan = { scenes: refs, pipeline, views: 1, batchScenes: 1, microBatches: 1, seed: 1 };
  async function loop(workers, compute) {
    const steps = scenes * runs;
    const stream = new pkg.SceneStream(plan, { workers, prefetch: 2, micros: [0], endStep: steps + 1 });
    try {
      await stream.get(0, 0); // start-up (threads, first read) is not a step
      const t0 = performance.now();
      for (let s = 1; s <= steps; s++) {
        await stream.get(s, 0);
        spin(compute);
      }
      return (performance.now() - t0) / 1000 / steps;
    } finally {
      await stream.close();
    }
  }
  const compute = kiln['read + transform'][1] * 1000;
  const stream = {};
  for (const workers of [0, 1, 2]) stream[`${workers} loader threads`] = { idle: await loop(workers, 0), busy: await loop(workers, compute) };

  const env = { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX', OMP_NUM_THREADS: '2' };
  const peerRun = spawnSync('/usr/bin/python3', [path.join(here, 'loader_peer.py'), dir, String(runs), String(gridSize), String(maxPoints)], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
  const peer = peerRun.status === 0 ? JSON.parse(peerRun.stdout.trim().split('\n').pop()) : null;
  if (!peer) console.error(`numpy peer failed (${peerRun.status}): ${peerRun.stderr.slice(-800)}`);

  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { cwd: root, encoding: 'utf8' }).trim();
  } catch {}
  const result = {
    commit,
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, node: process.version, loadAverage: { start: loadStart.map((v) => +v.toFixed(2)), end: os.loadavg().map((v) => +v.toFixed(2)) } },
    config: { scenes, pointsPerScene: points, gridSize, maxPoints, runs, pointsAfterPipeline: keptPoints, simulatedStepMs: +compute.toFixed(1) },
    kiln,
    peer: peer ? { numpy: peer.numpy, ...peer.times } : null,
    stream,
  };
  if (outFile) {
    mkdirSync(path.dirname(outFile), { recursive: true });
    writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
  }
  const { renderLoaderTable } = await import(path.join(here, 'loader-table.mjs'));
  console.log(renderLoaderTable(result));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
