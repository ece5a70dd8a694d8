#!/usr/bin/env node
// The README results table of @kiln/pointcloud-ssl: four methods on the synthetic indoor
// benchmark, several seeds, mean ± std. Usage:
//   node results.mjs [--seeds 3] [--pretrain-steps N] [--finetune-steps N] [--out results.json]
// Each seed pre-trains twice (CSP and per-scene) and fine-tunes four times; all numbers are
// single-scene test results except the gap column (batch-of-B minus single-scene mIoU).
import { writeFileAtomic, initBackend, describeBackendChoice } from '@kiln/tensor';
import {
  buildModel,
  disposeParams,
  evaluate,
  finetune,
  linearProbe,
  pretrain,
  resolveConfig,
  selectiveScanName,
  syntheticSplits,
} from '@kiln/pointcloud-ssl';
import { createRng } from '@kiln/tensor';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const seeds = Number(arg('seeds', '3'));
const overrides = {};
const preSteps = arg('pretrain-steps');
const ftSteps = arg('finetune-steps');
const out = arg('out');
const log = (s) => process.stderr.write(`${s}\n`);

const choice = await initBackend();
log(describeBackendChoice(choice));

const methods = ['scratch', 'pre-training without CSP', 'CSP without SPD', 'CSP + SPD'];
const rows = Object.fromEntries(methods.map((m) => [m, []]));
const started = performance.now();
for (let seed = 0; seed < seeds; seed++) {
  const base = resolveConfig('default', {
    seed,
    ...(preSteps ? { pretrain: { steps: Number(preSteps) } } : {}),
    ...(ftSteps ? { finetune: { steps: Number(ftSteps) } } : {}),
    ...overrides,
  });
  const data = syntheticSplits(base);
  const progress = (tag) => (i) => {
    if (i.step === i.steps - 1 || i.step % 10 === 0) log(`seed ${seed} ${tag} step ${i.step + 1}/${i.steps} loss ${i.loss.toFixed(4)} (${(i.ms / 1000).toFixed(1)} s/step)`);
  };
  const preCsp = await pretrain(base, { data, overrides: { pretrain: { crossScene: true } }, onStep: progress('pretrain CSP') });
  const preNo = await pretrain(base, { data, overrides: { pretrain: { crossScene: false } }, onStep: progress('pretrain per-scene') });
  const scratchModel = buildModel(base.model, createRng(seed).fork());
  const probe = {
    scratch: await linearProbe(base, scratchModel, data),
    'pre-training without CSP': await linearProbe(base, preNo.backbone, data),
    csp: await linearProbe(base, preCsp.backbone, data),
  };
  probe['CSP without SPD'] = probe.csp;
  probe['CSP + SPD'] = probe.csp;
  const runs = {
    scratch: { mode: 'single', pretrained: undefined },
    'pre-training without CSP': { mode: 'single', pretrained: preNo.backbone.params },
    'CSP without SPD': { mode: 'batch', pretrained: preCsp.backbone.params },
    'CSP + SPD': { mode: 'spd', pretrained: preCsp.backbone.params },
  };
  for (const m of methods) {
    const r = runs[m];
    const ft = await finetune(base, { data, pretrained: r.pretrained, overrides: { finetune: { mode: r.mode } }, onStep: progress(`finetune ${m}`) });
    const ev = await evaluate(ft.config, { backbone: ft.backbone, head: ft.head, data });
    const row = {
      seed,
      mIoU: ev.single.mIoU,
      mAcc: ev.single.mAcc,
      OA: ev.single.OA,
      probe: probe[m].metrics.mIoU,
      consistencyPretrained: probe[m].consistency.score,
      consistencyFinetuned: ev.consistency.score,
      batchMIoU: ev.batch.mIoU,
      gap: ev.gap,
      featureShift: ev.featureShift,
    };
    rows[m].push(row);
    log(`seed ${seed} ${m}: ${JSON.stringify(row)}`);
    disposeParams(ft.backbone.params);
    disposeParams(ft.head);
  }
  disposeParams(preCsp.backbone.params);
  disposeParams(preNo.backbone.params);
  disposeParams(scratchModel.params);
}
const minutes = (performance.now() - started) / 60000;

const stat = (xs) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
};
const fmt = (xs, scale = 100, digits = 1) => {
  const { mean, std } = stat(xs.map((x) => x * scale));
  return `${mean.toFixed(digits)} ± ${std.toFixed(digits)}`;
};
const cfg = resolveConfig('default', {
  ...(preSteps ? { pretrain: { steps: Number(preSteps) } } : {}),
  ...(ftSteps ? { finetune: { steps: Number(ftSteps) } } : {}),
});
const lines = [
  `| method | mIoU % | mAcc % | OA % | linear-probe mIoU % | consistency (pre-trained) | consistency (fine-tuned) | batch-of-${cfg.eval.batchScenes} − single mIoU (pts) | feature shift % |`,
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
];
for (const m of methods) {
  const r = rows[m];
  lines.push(
    `| ${m} | ${fmt(r.map((x) => x.mIoU))} | ${fmt(r.map((x) => x.mAcc))} | ${fmt(r.map((x) => x.OA))} | ${fmt(r.map((x) => x.probe))} | ${fmt(r.map((x) => x.consistencyPretrained), 1, 3)} | ${fmt(r.map((x) => x.consistencyFinetuned), 1, 3)} | ${fmt(r.map((x) => x.gap), 100, 2)} | ${fmt(r.map((x) => x.featureShift), 100, 2)} |`,
  );
}
lines.push('');
lines.push(
  `${seeds} seeds (0..${seeds - 1}), mean ± sample std; ${cfg.data.trainScenes} train / ${cfg.data.valScenes} val synthetic scenes of ${cfg.data.pointsPerScene} points (data seed ${cfg.data.seed}); pre-training ${cfg.pretrain.steps} steps × ${cfg.pretrain.batchScenes} scenes, fine-tuning ${cfg.finetune.steps} steps × ${cfg.finetune.batchScenes} scenes; backend ${choice.name}, scan ${selectiveScanName()}; ${minutes.toFixed(1)} min.`,
);
const table = lines.join('\n');
console.log(table);
if (out) await writeFileAtomic(out, JSON.stringify({ rows, table }, null, 2));
