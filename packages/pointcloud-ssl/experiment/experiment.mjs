// The CSP experiment (issue #13): does cross-sample semantic propagation help?
//
// Per seed (the data set, the labelled subsets and every initialisation are shared by all
// rows of the seed, so rows are compared pairwise):
//   - four pre-trainings on the pre-training scenes: distill (Sonata-like) and MSC, each with
//     and without CSP (one sequence per micro-batch vs. one per scene);
//   - eight fine-tunings per label regime on the few labelled scenes, with a FIXED subset of
//     their points labelled (1 % and 10 %): scratch; no-CSP + plain; no-CSP + SPD; CSP + plain;
//     CSP + batch; CSP + SPD; MSC; MSC + CSP (both plain);
//   - the all-labels check: scratch trained on every label of every pre-training scene;
//   - per-point classifiers (logistic regression, kNN) on the same input features;
//   - linear probes and cross-scene consistency of each pre-trained encoder;
//   - the state-propagation probe on the CSP and no-CSP encoders.
// Every finished unit is written to the artifact at once (atomically), so a killed run
// resumes where it stopped; pre-trained encoders are cached as checkpoints beside it.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  buildModel,
  copyParams,
  disposeParams,
  evaluate,
  finetune,
  generateSyntheticScenes,
  linearProbe,
  loadCheckpoint,
  metricsOf,
  pointFeatureArray,
  pretrain,
  resolveConfig,
  saveCheckpoint,
} from '@kiln/pointcloud-ssl';
import { createRng, tf, writeFileAtomic } from '@kiln/tensor';
import { fitKnn, fitLogistic, labelledRows } from './classifiers.mjs';
import { stateReach } from './propagation.mjs';

export const ENCODERS = {
  'distill-noCSP': { objective: 'distill', crossScene: false },
  'distill-CSP': { objective: 'distill', crossScene: true },
  'msc-noCSP': { objective: 'msc', crossScene: false },
  'msc-CSP': { objective: 'msc', crossScene: true },
};

/** The table rows: which encoder, which fine-tuning mode, and its no-CSP counterpart. */
export const ROWS = [
  { id: 'scratch', encoder: null, mode: 'single', noCsp: null },
  { id: 'no-CSP + plain', encoder: 'distill-noCSP', mode: 'single', noCsp: null },
  { id: 'no-CSP + SPD', encoder: 'distill-noCSP', mode: 'spd', noCsp: null },
  { id: 'CSP + plain', encoder: 'distill-CSP', mode: 'single', noCsp: 'no-CSP + plain' },
  { id: 'CSP + batch', encoder: 'distill-CSP', mode: 'batch', noCsp: 'no-CSP + plain' },
  { id: 'CSP + SPD', encoder: 'distill-CSP', mode: 'spd', noCsp: 'no-CSP + SPD' },
  { id: 'MSC', encoder: 'msc-noCSP', mode: 'single', noCsp: null },
  { id: 'MSC + CSP', encoder: 'msc-CSP', mode: 'single', noCsp: 'MSC' },
];

export const SCALES = {
  // The scale; steps sized so the whole plan fits 2 hours on 2 quiet cores.
  full: { seeds: 5, points: 2048, pretrainScenes: 200, heldOutScenes: 32, labelledScenes: 8, fractions: [0.01, 0.1], pretrainSteps: 100, finetuneSteps: 60, allLabelsSteps: 300, batchScenes: 4, probeSteps: 100, classifierCap: 8000, channels: [16, 32] },
  // A few minutes: the same plan on small data.
  quick: { seeds: 2, points: 512, pretrainScenes: 16, heldOutScenes: 4, labelledScenes: 4, fractions: [0.01, 0.1], pretrainSteps: 6, finetuneSteps: 6, allLabelsSteps: 12, batchScenes: 2, probeSteps: 30, classifierCap: 4000, channels: [16, 32] },
};

export function experimentConfig(scale, seed) {
  return resolveConfig('default', {
    seed,
    data: { seed: 1000 + seed, trainScenes: scale.pretrainScenes, valScenes: scale.heldOutScenes, pointsPerScene: scale.points, workers: 0 },
    model: { channels: scale.channels },
    pretrain: { steps: scale.pretrainSteps, batchScenes: scale.batchScenes },
    finetune: { steps: scale.finetuneSteps, batchScenes: scale.batchScenes, labelFraction: 1 },
    eval: { batchScenes: scale.batchScenes, probeSteps: scale.probeSteps },
  });
}

function strip(s) {
  return { coord: s.coord, color: s.color, normal: s.normal, label: s.label, offset: s.offset };
}

/** The seed's scenes: pre-training scenes, held-out scenes, and the labelled subsets. */
export function seedData(scale, config, seed) {
  const { seed: dataSeed, trainScenes, valScenes, pointsPerScene } = config.data;
  const train = generateSyntheticScenes({ seed: dataSeed, scenes: trainScenes, points: pointsPerScene }).map(strip);
  const val = generateSyntheticScenes({ seed: dataSeed, scenes: valScenes, start: trainScenes, points: pointsPerScene }).map(strip);
  const labelled = {};
  for (const f of scale.fractions) {
    // A fixed subset: the same labelled points at every step (and for every row of the seed).
    const rng = createRng(seed * 7919 + Math.round(f * 1e6));
    labelled[f] = train.slice(0, scale.labelledScenes).map((s) => ({ ...s, label: s.label.map((y) => (rng.next() < f ? y : -1)) }));
  }
  return { train, val, labelled };
}

function inputRows(config, scenes) {
  const x = [];
  const y = [];
  for (const s of scenes) {
    x.push(pointFeatureArray(s, config.features));
    y.push(s.label);
  }
  const cat = (parts, Make) => {
    const out = new Make(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  return { x: cat(x, Float32Array), y: cat(y, Int32Array) };
}

function classifierScores(config, scale, trainScenes, val) {
  const c = config.model.inChannels;
  const tr = inputRows(config, trainScenes);
  const te = inputRows(config, val);
  const rows = labelledRows(tr.x, tr.y, c, scale.classifierCap);
  const out = {};
  for (const [name, train] of [['logistic', fitLogistic], ['knn', fitKnn]]) {
    const predict = train(rows.x, rows.y, c, config.numClasses);
    out[name] = metricsOf(predict(te.x), te.y, config.numClasses).mIoU;
  }
  return out;
}

function finetuneMetrics(ev) {
  return { mIoU: ev.single.mIoU, batchMIoU: ev.batch.mIoU, gap: ev.gap, featureShift: ev.featureShift, consistency: ev.consistency.score };
}

/** Every unit of the plan, in run order: [key, kind, details]. */
export function planUnits(scale) {
  const units = [];
  for (let seed = 0; seed < scale.seeds; seed++) {
    units.push({ key: `${seed}/classifiers`, seed, kind: 'classifiers' });
    units.push({ key: `${seed}/all-labels`, seed, kind: 'all-labels' });
    for (const enc of Object.keys(ENCODERS)) units.push({ key: `${seed}/pretrain/${enc}`, seed, kind: 'pretrain', encoder: enc });
    for (const f of scale.fractions) for (const row of ROWS) units.push({ key: `${seed}/finetune/${f}/${row.id}`, seed, kind: 'finetune', fraction: f, row: row.id });
    units.push({ key: `${seed}/propagation`, seed, kind: 'propagation' });
  }
  return units;
}

/** Estimated seconds of the plan, from measured seconds per pre-training / fine-tuning step. */
export function estimateSeconds(scale, perStep) {
  const perSeed =
    Object.keys(ENCODERS).length * scale.pretrainSteps * perStep.pretrain +
    (scale.allLabelsSteps ?? scale.finetuneSteps) * perStep.finetuneAll +
    scale.finetuneSteps * (scale.fractions.length * ROWS.reduce((a, r) => a + perStep[r.mode], 0)) +
    perStep.overheadPerSeed;
  return scale.seeds * perSeed;
}

export class Artifact {
  constructor(path, header) {
    this.path = path;
    if (existsSync(path)) {
      const old = JSON.parse(readFileSync(path, 'utf8'));
      if (JSON.stringify(old.scale) !== JSON.stringify(header.scale)) {
        throw new UsageError(`${path}: written by a run with a different scale (${JSON.stringify(old.scale)}); pass --fresh or another --out`);
      }
      this.data = old;
      this.data.resumed = [...(old.resumed ?? []), header.started];
    } else {
      this.data = { ...header, units: {} };
    }
  }
  has(key) {
    return key in this.data.units;
  }
  get(key) {
    return this.data.units[key];
  }
  async put(key, value) {
    this.data.units[key] = value;
    await this.save();
  }
  async save() {
    mkdirSync(dirname(this.path), { recursive: true });
    await writeFileAtomic(this.path, `${JSON.stringify(this.data, null, 1)}\n`);
  }
}

export class UsageError extends Error {}

async function encoderFor(cacheDir, config, seed, name, data, log) {
  const path = join(cacheDir, `seed${seed}-${name}.safetensors`);
  if (existsSync(path)) {
    const backbone = buildModel(config.model, createRng(seed).fork());
    const ck = await loadCheckpoint(path);
    copyParams(backbone.params, ck.tensors);
    for (const t of ck.tensors.values()) t.dispose();
    return { backbone, history: null };
  }
  const e = ENCODERS[name];
  const t0 = performance.now();
  const pre = await pretrain(config, {
    data: { train: data.train, val: data.val },
    overrides: { pretrain: { objective: e.objective, crossScene: e.crossScene } },
    onStep: (i) => {
      if (i.step % 25 === 0 || i.step === i.steps - 1) log(`seed ${seed} pretrain ${name} step ${i.step + 1}/${i.steps} loss ${i.loss.toFixed(4)}`);
    },
  });
  mkdirSync(cacheDir, { recursive: true });
  await saveCheckpoint(path, [pre.backbone.params], config, `pretrain-${name}`);
  if (pre.teacher) disposeParams(pre.teacher);
  disposeParams(pre.head);
  return { backbone: pre.backbone, seconds: (performance.now() - t0) / 1000, losses: [pre.history[0]?.loss, pre.history.at(-1)?.loss] };
}

/** Runs (or resumes) the plan; returns the artifact's data. */
export async function runExperiment({ scale, out, cacheDir, commit, log = () => {}, header = {} }) {
  const artifact = new Artifact(out, { format: 'kiln-csp-experiment/1', commit, scale, started: new Date().toISOString(), ...header, rows: ROWS, encoders: ENCODERS });
  await artifact.save();
  const units = planUnits(scale);
  let seedState = null;
  for (const unit of units) {
    if (artifact.has(unit.key)) continue;
    if (seedState?.seed !== unit.seed) {
      if (seedState) for (const b of Object.values(seedState.encoders)) disposeParams(b.params);
      const config = experimentConfig(scale, unit.seed);
      seedState = { seed: unit.seed, config, data: seedData(scale, config, unit.seed), encoders: {} };
    }
    const { config, data, seed } = { ...seedState, seed: unit.seed };
    const t0 = performance.now();
    const getEncoder = async (name) => {
      if (!seedState.encoders[name]) seedState.encoders[name] = (await encoderFor(cacheDir, config, seed, name, data, log)).backbone;
      return seedState.encoders[name];
    };
    let value;
    if (unit.kind === 'classifiers') {
      value = { all: classifierScores(config, scale, data.train, data.val) };
      for (const f of scale.fractions) value[f] = classifierScores(config, scale, data.labelled[f], data.val);
    } else if (unit.kind === 'all-labels') {
      // The generator check: the network with every label (its own, longer schedule).
      const steps = scale.allLabelsSteps ?? scale.finetuneSteps;
      const ft = await finetune(config, { data: { train: data.train, val: data.val }, overrides: { finetune: { mode: 'single', steps } } });
      value = finetuneMetrics(await evaluate(ft.config, { backbone: ft.backbone, head: ft.head, data: { train: data.train, val: data.val } }));
      disposeParams(ft.backbone.params);
      disposeParams(ft.head);
    } else if (unit.kind === 'pretrain') {
      const path = join(cacheDir, `seed${seed}-${unit.encoder}.safetensors`);
      const had = existsSync(path);
      const enc = await encoderFor(cacheDir, config, seed, unit.encoder, data, log);
      seedState.encoders[unit.encoder] = enc.backbone;
      value = { seconds: enc.seconds ?? null, losses: enc.losses ?? null, fromCache: had, probe: {} };
      for (const f of scale.fractions) {
        const p = await linearProbe(config, enc.backbone, { train: data.labelled[f], val: data.val });
        value.probe[f] = { mIoU: p.metrics.mIoU, consistency: p.consistency.score };
      }
    } else if (unit.kind === 'finetune') {
      const row = ROWS.find((r) => r.id === unit.row);
      const split = { train: data.labelled[unit.fraction], val: data.val };
      const pretrained = row.encoder ? (await getEncoder(row.encoder)).params : undefined;
      const ft = await finetune(config, { data: split, pretrained, overrides: { finetune: { mode: row.mode } } });
      value = finetuneMetrics(await evaluate(ft.config, { backbone: ft.backbone, head: ft.head, data: split }));
      if (!row.encoder) {
        // Scratch's "linear probe": the same probe on the randomly initialised encoder.
        const init = buildModel(config.model, createRng(seed).fork());
        const p = await linearProbe(config, init, split);
        value.probe = { mIoU: p.metrics.mIoU, consistency: p.consistency.score };
        disposeParams(init.params);
      }
      disposeParams(ft.backbone.params);
      disposeParams(ft.head);
    } else if (unit.kind === 'propagation') {
      const scenes = data.val.slice(0, Math.min(4, data.val.length));
      value = {};
      for (const name of ['distill-CSP', 'distill-noCSP', 'msc-CSP']) value[name] = await stateReach(config, await getEncoder(name), scenes, seed);
    }
    value.seconds = value.seconds ?? (performance.now() - t0) / 1000;
    await artifact.put(unit.key, value);
    log(`${unit.key}: ${JSON.stringify(value).slice(0, 300)}`);
  }
  if (seedState) for (const b of Object.values(seedState.encoders)) disposeParams(b.params);
  artifact.data.finished = new Date().toISOString();
  await artifact.save();
  tf.disposeVariables?.();
  return artifact.data;
}
