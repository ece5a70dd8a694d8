#!/usr/bin/env node
// The CSP pre-training step of @kiln/pointcloud-ssl (`distill` objective, default model with
// the channels below, 4 scenes per step) side by side with its PyTorch port
// (torch_pointcloud.py: same serialized Mamba U-Net, same parameter count, same step, mamba.py-
// style pure-PyTorch parallel scan), steps alternating so both see the same load. Both run
// the step on the same prepared batches (sampling, augmentation and serialization happen
// before, on the host); then the whole `pretrain` loop (preparation included) of this
// checkout, alternating with the loop of KILN_BENCH_BASELINE (another checkout, built) when
// given. Run with `pnpm bench` (root) or `node bench.mjs`.
//
// Environment: KILN_BENCH_POINTS (points per scene, 4096), KILN_BENCH_CHANNELS ([32,64]),
// KILN_BENCH_RUNS (alternating rounds, 7), KILN_BENCH_BASELINE (a built checkout, or an
// exported tree named after its commit, to compare the loop with), KILN_BENCH_OUT (write the results as JSON there; `node table.mjs FILE`
// prints the README table), KILN_PYTHON (/usr/bin/python3), KILN_BENCH_THREADS (the PyTorch
// peer's threads, 2; for a single-threaded comparison set it to 1 and start this script with
// KILN_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRng, describeBackendChoice, initBackend } from '@kiln/tensor';
import { countParams, createPretrainModel, disposePretrainBatch, nextPretrainBatches, pretrainStep, pretrainStream, resolveConfig, syntheticSplits } from '@kiln/pointcloud-ssl';
import { writeBatches } from './batches.mjs';
import { startPeer } from './peer.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const env = process.env;
const points = Number(env.KILN_BENCH_POINTS ?? 4096);
const channels = JSON.parse(env.KILN_BENCH_CHANNELS ?? '[32,64]');
const runs = Number(env.KILN_BENCH_RUNS ?? 7);
const python = env.KILN_PYTHON ?? '/usr/bin/python3';
const threads = Number(env.KILN_BENCH_THREADS ?? 2);
if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`KILN_BENCH_THREADS must be a positive integer, got ${env.KILN_BENCH_THREADS}`);
if (!(Number.isInteger(points) && points >= 8)) throw new Error(`KILN_BENCH_POINTS must be an integer ≥ 8, got ${env.KILN_BENCH_POINTS}`);
if (!(Number.isInteger(runs) && runs >= 1)) throw new Error(`KILN_BENCH_RUNS must be a positive integer, got ${env.KILN_BENCH_RUNS}`);

const load = () => loadavg().map((v) => v.toFixed(2));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const best = (xs) => Math.min(...xs);
/** The checkout's commit, or its folder's name when it is not a git checkout (an exported tree). */
const commit = (root) => {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return basename(root);
  }
};
const summary = (ms, n) => ({ ms, bestMs: best(ms), medianMs: median(ms), bestPointsPerSec: (n / best(ms)) * 1000, medianPointsPerSec: (n / median(ms)) * 1000 });
const fmt = (s) => `best ${s.bestMs.toFixed(0)} ms (${s.bestPointsPerSec.toFixed(0)} points/s), median ${s.medianMs.toFixed(0)} ms (${s.medianPointsPerSec.toFixed(0)} points/s)`;

const choice = await initBackend();
console.log(describeBackendChoice(choice));
const loadStart = load();
console.log(`load average at start (1/5/15 min): ${loadStart.join(' ')}`);
const cfg = resolveConfig('default', { data: { pointsPerScene: points }, model: { channels } });
console.log(`config: ${cfg.pretrain.batchScenes} scenes × ${points} points, channels [${channels}], depths [${cfg.model.depths}], decoder [${cfg.model.decoderDepths}], objective ${cfg.pretrain.objective}, CSP ${cfg.pretrain.crossScene}`);

// 1. the training step on prepared batches, kiln and PyTorch alternating
const rng = createRng(cfg.seed);
const data = syntheticSplits(cfg);
const model = createPretrainModel(cfg, rng);
const stream = pretrainStream(cfg, { scenes: data.train });
const batches = [];
const prepMs = [];
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  batches.push(...(await nextPretrainBatches(cfg, stream, i)));
  prepMs.push(performance.now() - t0);
}
await stream.close();
const stepPoints = batches[0].points;
const kilnParams = countParams(model.backbone.params) + countParams(model.head);
const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-pointcloud-'));
let torch = null;
try {
  const file = join(dir, 'batches.safetensors');
  writeBatches(file, batches, cfg);
  torch = await startPeer(python, [join(here, 'torch_pointcloud.py'), file, 'serve'], { OPENBLAS_CORETYPE: 'SkylakeX', KILN_BENCH_THREADS: String(threads) });
} catch (err) {
  console.log(`PyTorch peer unavailable (${python}: ${err.message.split('\n')[0]}); timing kiln alone`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (torch) {
  console.log(`parameters: kiln ${kilnParams}, torch ${torch.hello.params} (torch ${torch.hello.torch}, ${torch.hello.threads} threads)`);
  if (torch.hello.params !== kilnParams) throw new Error(`the PyTorch port has ${torch.hello.params} parameters, the kiln model ${kilnParams}`);
} else console.log(`parameters: kiln ${kilnParams}`);

let stepIndex = 0;
const kilnCpuMs = [];
const kilnStep = async () => {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await pretrainStep(model, batches[stepIndex % batches.length], stepIndex);
  const c = process.cpuUsage(c0);
  stepIndex++;
  kilnCpuMs.push((c.user + c.system) / 1000);
  return performance.now() - t0;
};
await kilnStep(); // warm-up (the peer warmed up before answering)
await kilnStep();
kilnCpuMs.length = 0;
const kilnMs = [];
const torchMs = [];
const torchCpuMs = [];
const torchStep = async () => {
  if (!torch) return;
  const answer = await torch.step();
  torchMs.push(answer.ms);
  torchCpuMs.push(answer.cpuMs);
};
for (let r = 0; r < runs; r++) {
  if (r % 2 === 0) {
    kilnMs.push(await kilnStep());
    await torchStep();
  } else {
    await torchStep();
    kilnMs.push(await kilnStep());
  }
}
await torch?.close();
batches.forEach(disposePretrainBatch);
const kiln = summary(kilnMs, stepPoints);
const peer = torch ? summary(torchMs, stepPoints) : null;
const rounds = peer ? kilnMs.map((k, i) => torchMs[i] / k) : [];
console.log(`training step (${stepPoints} points, prepared batches), ${runs} ${peer ? 'alternating ' : ''}rounds:`);
console.log(`  kiln (${choice.name})   ${fmt(kiln)}; CPU time median ${median(kilnCpuMs).toFixed(0)} ms (all threads)`);
if (peer) {
  console.log(`  torch ${torch.hello.torch}  ${fmt(peer)}; CPU time median ${median(torchCpuMs).toFixed(0)} ms (all threads)`);
  console.log(
    `  speed ratio kiln/torch: best ${(peer.bestMs / kiln.bestMs).toFixed(2)}×, median ${(peer.medianMs / kiln.medianMs).toFixed(2)}× (> 1 = kiln faster; per round ${rounds.map((v) => v.toFixed(2)).join(' ')})`,
  );
}
console.log(`  batch preparation on the host (kiln, outside the step above): median ${median(prepMs).toFixed(0)} ms`);

// 2. the whole pretrain loop (batch preparation included), this checkout vs a baseline
const loopServer = join(here, 'loop-server.mjs');
const loops = { current: { root: repo, commit: commit(repo) } };
if (env.KILN_BENCH_BASELINE) loops.baseline = { root: resolve(env.KILN_BENCH_BASELINE), commit: commit(resolve(env.KILN_BENCH_BASELINE)) };
const servers = {};
for (const [name, l] of Object.entries(loops)) servers[name] = await startPeer(process.execPath, [loopServer, l.root, String(points), JSON.stringify(channels)]);
const loopMs = Object.fromEntries(Object.keys(loops).map((k) => [k, []]));
const loopCpuMs = Object.fromEntries(Object.keys(loops).map((k) => [k, []]));
const order = Object.keys(loops);
for (let r = 0; r < runs; r++) {
  for (const name of r % 2 === 0 ? order : [...order].reverse()) {
    const answer = await servers[name].step();
    loopMs[name].push(answer.ms);
    loopCpuMs[name].push(answer.cpuMs);
  }
}
for (const s of Object.values(servers)) await s.close();
console.log(`pretrain loop (preparation included), ${runs} rounds:`);
for (const [name, l] of Object.entries(loops)) {
  l.result = { ...summary(loopMs[name], stepPoints), cpuMs: loopCpuMs[name] };
  console.log(`  ${name.padEnd(8)} ${l.commit}  ${fmt(l.result)}; CPU time median ${median(loopCpuMs[name]).toFixed(0)} ms`);
}
if (loops.baseline) {
  const b = loops.baseline.result;
  const c = loops.current.result;
  console.log(`  speed-up over the baseline: best ${(b.bestMs / c.bestMs).toFixed(2)}×, median ${(b.medianMs / c.medianMs).toFixed(2)}×`);
}
const loadEnd = load();
console.log(`load average at end (1/5/15 min): ${loadEnd.join(' ')}`);

if (env.KILN_BENCH_OUT) {
  const out = {
    date: new Date().toISOString(),
    commit: loops.current.commit,
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, backend: describeBackendChoice(choice) },
    load: { start: loadStart.map(Number), end: loadEnd.map(Number) },
    config: { pointsPerScene: points, scenes: cfg.pretrain.batchScenes, stepPoints, channels, model: cfg.model, objective: cfg.pretrain.objective, crossScene: cfg.pretrain.crossScene, runs },
    params: { kiln: kilnParams, torch: torch?.hello.params ?? null },
    torch: torch ? { version: torch.hello.torch, threads: torch.hello.threads } : null,
    step: {
      kiln: { ...kiln, cpuMs: kilnCpuMs },
      torch: peer ? { ...peer, cpuMs: torchCpuMs } : null,
      ratio: peer ? { best: peer.bestMs / kiln.bestMs, median: peer.medianMs / kiln.medianMs, rounds } : null,
    },
    prepMs,
    loop: Object.fromEntries(Object.entries(loops).map(([k, l]) => [k, { commit: l.commit, ...l.result }])),
  };
  writeFileSync(env.KILN_BENCH_OUT, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`results written to ${env.KILN_BENCH_OUT}`);
}
