#!/usr/bin/env node
// pnpm --filter @kiln/pointcloud-ssl experiment [--quick] [options]; see README "CSP experiment".
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { finetune, pretrain } from '@kiln/pointcloud-ssl';
import { describeBackendChoice, initBackend, writeFileAtomic } from '@kiln/tensor';
import { ROWS, SCALES, UsageError, estimateSeconds, experimentConfig, planUnits, runExperiment, seedData } from './experiment.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const USAGE = `usage: experiment [--quick] [--seeds N] [--pretrain-steps N] [--finetune-steps N] [--out FILE] [--fresh] [--plan-only]
  --quick            the small plan (a few minutes) instead of the full one (2 hours on 2 quiet cores)
  --seeds, --pretrain-steps, --finetune-steps, --points, --pretrain-scenes   override the plan (recorded in the artifact)
  --out FILE         artifact (default experiment/results/<full|quick>.json); an existing one is resumed
  --fresh            discard an existing artifact and its cached encoders
  --plan-only        measure a step, print the plan and its estimated time, and stop`;

function parseArgs(argv) {
  const opts = { quick: false, fresh: false, planOnly: false, overrides: {} };
  const ints = { '--seeds': 'seeds', '--pretrain-steps': 'pretrainSteps', '--finetune-steps': 'finetuneSteps', '--points': 'points', '--pretrain-scenes': 'pretrainScenes' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') continue; // pnpm passes its own separator through
    if (a === '--quick') opts.quick = true;
    else if (a === '--fresh') opts.fresh = true;
    else if (a === '--plan-only') opts.planOnly = true;
    else if (a === '--out') {
      if (!argv[i + 1]) throw new UsageError('--out needs a file name');
      opts.out = argv[++i];
    } else if (a in ints) {
      const v = argv[++i];
      if (!/^[1-9][0-9]*$/.test(v ?? '')) throw new UsageError(`${a} must be a positive integer, got ${JSON.stringify(v ?? '')}`);
      opts.overrides[ints[a]] = Number(v);
    } else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new UsageError(`unknown argument ${JSON.stringify(a)}`);
  }
  return opts;
}

/**
 * Seconds per step of each phase, measured on the plan's own data: the fastest of steps 2–3,
 * as wall time (at the current load) and as CPU time of this process (what the step costs on
 * quiet cores: wall time there is at most that, less when both threads are busy).
 */
async function measureSteps(scale) {
  const config = experimentConfig({ ...scale, pretrainSteps: 3, finetuneSteps: 3 }, 0);
  const t0 = performance.now();
  const data = seedData(scale, config, 0);
  const dataSeconds = (performance.now() - t0) / 1000;
  const cpu = {};
  const last = async (run, key) => {
    const times = [];
    const cpuTimes = [];
    let before = process.cpuUsage();
    const result = await run((i) => {
      const used = process.cpuUsage(before);
      before = process.cpuUsage();
      times.push(i.ms / 1000);
      cpuTimes.push((used.user + used.system) / 1e6);
    });
    for (const store of [result.backbone.params, result.head, result.teacher].filter(Boolean)) for (const t of store.values()) t.dispose();
    if (key) cpu[key] = Math.min(...cpuTimes.slice(1));
    return Math.min(...times.slice(1));
  };
  const split = { train: data.labelled[scale.fractions[0]], val: data.val };
  const perStep = {
    pretrain: await last((onStep) => pretrain(config, { data, onStep, overrides: { pretrain: { crossScene: true } } }), 'pretrain'),
  };
  for (const mode of ['single', 'batch', 'spd']) perStep[mode] = await last((onStep) => finetune(config, { data: split, onStep, overrides: { finetune: { mode } } }), mode);
  perStep.finetuneAll = perStep.single;
  cpu.finetuneAll = cpu.single;
  // Evaluation, probes, classifiers: about 12 s per seed at the full scale, measured; scaled by points.
  perStep.overheadPerSeed = dataSeconds + 12 * ((scale.points * (scale.heldOutScenes + scale.labelledScenes)) / (2048 * 40)) * ROWS.length * scale.fractions.length;
  cpu.overheadPerSeed = perStep.overheadPerSeed;
  return { perStep, cpu };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const name = opts.quick ? 'quick' : 'full';
  const scale = { ...SCALES[name], ...opts.overrides };
  const out = resolve(opts.out ?? join(here, 'results', `${name}.json`));
  const cacheDir = `${out}.encoders`;
  if (opts.fresh) {
    rmSync(out, { force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  }
  const choice = await initBackend();
  const log = (s) => process.stderr.write(`${s}\n`);
  log(describeBackendChoice(choice));
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
    if (execFileSync('git', ['status', '--porcelain', '--', '.', '../src'], { cwd: here, encoding: 'utf8' }).trim()) commit += '+dirty';
  } catch {}
  const { perStep, cpu } = await measureSteps(scale);
  const seconds = estimateSeconds(scale, perStep);
  const quietSeconds = estimateSeconds(scale, cpu);
  const load = loadavg();
  log(`plan '${name}': ${JSON.stringify(scale)}`);
  log(`${planUnits(scale).length} units; measured s/step: pre-train ${perStep.pretrain.toFixed(2)}, fine-tune single ${perStep.single.toFixed(2)} / batch ${perStep.batch.toFixed(2)} / spd ${perStep.spd.toFixed(2)} (load average ${load.map((x) => x.toFixed(1)).join(' ')})`);
  log(`measured CPU s/step: pre-train ${cpu.pretrain.toFixed(2)}, fine-tune single ${cpu.single.toFixed(2)} / batch ${cpu.batch.toFixed(2)} / spd ${cpu.spd.toFixed(2)}`);
  log(`estimated time: ${(seconds / 60).toFixed(0)} min at this load; ${(quietSeconds / 60).toFixed(0)} min on 2 quiet cores (from CPU time, an upper bound)`);
  if (opts.planOnly) return;
  const started = performance.now();
  const data = await runExperiment({
    scale,
    out,
    cacheDir,
    commit,
    log,
    header: { plan: name, backend: choice.name, estimate: { perStep, cpuPerStep: cpu, minutes: seconds / 60, quietMinutes: quietSeconds / 60, loadavg: load }, node: process.version },
  });
  data.loadavgAtEnd = loadavg();
  data.minutes = (performance.now() - started) / 60000;
  await writeFileAtomic(out, `${JSON.stringify(data, null, 1)}\n`);
  log(`done: ${out} (${data.minutes.toFixed(1)} min this process, load average ${data.loadavgAtEnd.map((x) => x.toFixed(1)).join(' ')})`);
}

main().catch((err) => {
  if (err instanceof UsageError) {
    process.stderr.write(`experiment: ${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  process.stderr.write(`experiment: ${err?.stack ?? err}\n`);
  process.exit(1);
});
