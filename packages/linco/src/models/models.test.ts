import { initBackend, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { gradientReversal } from '../gradient-reversal.js';
import { chargeVocabulary, encodeLabels, hasMultiCharge } from '../labels.js';
import { generateCases } from '../synthetic.js';
import { chargeSetsFromLogits, combineJudgeOutputs, panelOutputs, predictPanel, sampleLosses, trainPanel } from '../train.js';
import { embeddingBag } from './embedding-bag.js';
import { createModel, type ModelSpec } from './registry.js';

beforeAll(async () => {
  await initBackend({ env: { KILN_BACKEND: 'cpu' } });
});

describe('embeddingBag', () => {
  it('matches gather + unsortedSegmentSum, forward and gradient', () => {
    const table = tf.tensor2d([...Array(18).keys()].map((x) => Math.sin(x)), [6, 3]);
    const bag = { ids: Int32Array.from([0, 5, 5, 2, 1]), segments: Int32Array.from([0, 0, 1, 1, 2]), weights: Float32Array.from([0.5, 0.5, 1, 2, 1]), numSegments: 3 };
    const upstream = tf.tensor2d([1, -2, 3, 0.5, 4, -1, 2, 2, 2], [3, 3]);
    const reference = (t: tf.Tensor2D) =>
      tf.unsortedSegmentSum(tf.mul(tf.gather(t, tf.tensor1d(bag.ids, 'int32')), tf.tensor2d(bag.weights, [5, 1])), tf.tensor1d(bag.segments, 'int32'), 3);
    expect(embeddingBag(table, bag).arraySync()).toEqual(
      (reference(table).arraySync() as number[][]).map((r) => r.map((x) => expect.closeTo(x, 5))),
    );
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(embeddingBag(t as tf.Tensor2D, bag), upstream)))(table);
    const gRef = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(reference(t as tf.Tensor2D), upstream)))(table);
    expect(Array.from(g.dataSync())).toEqual(Array.from(gRef.dataSync()).map((x) => expect.closeTo(x, 5)));
    expect(() => embeddingBag(table, { ...bag, ids: Int32Array.from([0, 6, 0, 0, 0]) })).toThrow(/id 6 at position 1/);
  });
});

describe('gradientReversal', () => {
  it('is the identity forward and multiplies gradients by −λ', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const w = tf.tensor1d([0.5, -1, 2]);
    expect(Array.from(gradientReversal(x, 0.7).dataSync())).toEqual([1, 2, 3]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(gradientReversal(v, 0.7), w)))(x);
    expect(Array.from(g.dataSync())).toEqual([-0.35, 0.7, -1.4].map((v) => expect.closeTo(v, 6)));
    expect(() => gradientReversal(x, -1)).toThrow(/lambda/);
  });
});

describe('sampleLosses', () => {
  it('is ln C + ln 3 for uniform logits, plus the squared log-term error of fixed terms only', () => {
    const out = { hidden: tf.zeros([2, 1]) as tf.Tensor2D, chargeLogits: tf.zeros([2, 4]) as tf.Tensor2D, kindLogits: tf.zeros([2, 3]) as tf.Tensor2D, logTerm: tf.tensor1d([1, 1]) };
    const l = sampleLosses(out, Int32Array.from([0, 3]), Int32Array.from([0, 1]), Float32Array.from([3, 3]), 0.5);
    const base = Math.log(4) + Math.log(3);
    expect(Array.from(l.dataSync())).toEqual([base + 0.5 * 4, base].map((x) => expect.closeTo(x, 5)));
  });
});

describe('multi-label charges', () => {
  it('sigmoid loss is Σ_c softplus(z) − y·z, hand-computed', () => {
    const z = [0, 2, -1];
    const out = { hidden: tf.zeros([1, 1]) as tf.Tensor2D, chargeLogits: tf.tensor2d([z]) as tf.Tensor2D, kindLogits: tf.zeros([1, 3]) as tf.Tensor2D, logTerm: tf.tensor1d([0]) };
    // Charges {1, 2}; kind 'life' (no term error).
    const l = sampleLosses(out, Int32Array.from([1]), Int32Array.from([1]), Float32Array.from([0]), 1, Float32Array.from([0, 1, 1]));
    const softplus = (x: number) => Math.log1p(Math.exp(x));
    const expected = softplus(0) + (softplus(2) - 2) + (softplus(-1) + 1) + Math.log(3);
    expect(l.dataSync()[0]).toBeCloseTo(expected, 5);
    expect(() => sampleLosses(out, Int32Array.from([1]), Int32Array.from([1]), Float32Array.from([0]), 1, Float32Array.from([0, 1]))).toThrow(/chargeSet has 2 entries/);
  });

  it('predicts the charges above probability 0.5, or the argmax when none is', () => {
    expect(chargeSetsFromLogits([1, -1, 0.5, /* case 2 */ -3, -0.2, -2], 3)).toEqual([[0, 2], [1]]);
    expect(chargeSetsFromLogits([0.2, 0.3], 2, 0.6)).toEqual([[1]]);
  });

  it('encodes every charge and learns charge sets', async () => {
    const cases = generateCases({ count: 300, seed: 9, multiChargeRate: 0.5 });
    const vocab = chargeVocabulary(cases);
    expect(hasMultiCharge(cases)).toBe(true);
    const labels = encodeLabels(cases, vocab, { multi: true });
    const v = vocab.length;
    cases.forEach((c, i) => {
      const set = vocab.filter((_, k) => labels.chargeSet![i * v + k] === 1);
      expect(set).toEqual([...c.charges].sort());
      expect(vocab[labels.charge[i]!]).toBe(c.charges[0]);
    });
    const model = createModel({ type: 'hashed-ngram', buckets: 1024, dim: 16 }, { numCharges: v, seed: 3 });
    const pool = model.prepare(cases.map((c) => c.fact));
    const rows = Int32Array.from(cases.keys());
    await trainPanel([model], pool, [{ rows, labels }], { epochs: 12, learningRate: 0.05 });
    const [pred] = await predictPanel([model], pool, rows, { multi: true });
    const exact = pred!.chargeSets!.filter((s, i) => s.map((k) => vocab[k]).join() === [...cases[i]!.charges].sort().join()).length / rows.length;
    expect(exact).toBeGreaterThan(0.6);
    // A two-charge case's predicted set can hold both charges.
    expect(pred!.chargeSets!.some((s) => s.length === 2)).toBe(true);
    model.dispose();
    await expect(trainPanel([model, model], pool, [{ rows, labels }, { rows, labels: encodeLabels(cases, vocab) }])).rejects.toThrow(/judge 1 lacks charge sets/);
  });
});

describe('ensembles of replicate models', () => {
  it('one model decides as predictPanel; several decide from their mean probabilities', async () => {
    const cases = generateCases({ count: 60, seed: 2, multiChargeRate: 0.5 });
    const vocab = chargeVocabulary(cases);
    const models = [3, 4].map((seed) => createModel({ type: 'hashed-ngram', buckets: 256, dim: 8 }, { numCharges: vocab.length, seed }));
    const pool = models[0]!.prepare(cases.map((c) => c.fact));
    const rows = Int32Array.from(cases.keys());
    for (const multi of [false, true]) {
      const outs = await panelOutputs(models, pool, rows, { multi });
      const direct = await predictPanel(models, pool, rows, { multi });
      outs.forEach((o, j) => {
        const one = combineJudgeOutputs([o], { multi });
        expect(Array.from(one.charge)).toEqual(Array.from(direct[j]!.charge));
        expect(Array.from(one.kind)).toEqual(Array.from(direct[j]!.kind));
        expect(Array.from(one.months)).toEqual(Array.from(direct[j]!.months).map((m) => expect.closeTo(m, 3)));
        if (multi) expect(one.chargeSets).toEqual(direct[j]!.chargeSets);
      });
    }
    // Hand-made outputs: 1 case, 2 charges, mean probabilities decide.
    const o = (p: number[], k: number[], t: number) => ({ chargeProb: Float32Array.from(p), kindProb: Float32Array.from(k), logTerm: Float32Array.from([t]), numCharges: 2 });
    const a = o([0.9, 0.45], [0.2, 0.7, 0.1], Math.log(13));
    const b = o([0.2, 0.65], [0.6, 0.3, 0.1], Math.log(5));
    const both = combineJudgeOutputs([a, b], { multi: true });
    // Mean charge probabilities (0.55, 0.55): both above 0.5. Mean kinds (0.4, 0.5, 0.1): life.
    expect(both.chargeSets).toEqual([[0, 1]]);
    expect(both.kind[0]).toBe(1);
    // Mean log term ln √65 → √65 − 1 months.
    expect(both.months[0]).toBeCloseTo(Math.sqrt(65) - 1, 4);
    expect(combineJudgeOutputs([a, o([0.2, 0.3], [0.6, 0.3, 0.1], 0)], { multi: true }).chargeSets).toEqual([[0]]);
    expect(() => combineJudgeOutputs([])).toThrow(/no outputs/);
    for (const m of models) m.dispose();
  });
});

describe('training reduces the loss', () => {
  const cases = generateCases({ count: 160, seed: 6 });
  const vocab = chargeVocabulary(cases);
  const labels = encodeLabels(cases, vocab);
  const specs: ModelSpec[] = [
    { type: 'hashed-ngram', buckets: 512, dim: 16, head: 'linear' },
    { type: 'hashed-ngram', buckets: 512, dim: 16, head: 'mlp', hidden: 16 },
    { type: 'text-cnn', vocab: 256, embed: 8, filters: 8, widths: [2, 3], maxLength: 40 },
  ];
  for (const spec of specs) {
    it(`${spec.type}${'head' in spec ? ` (${spec.head})` : ''}`, async () => {
      const model = createModel(spec, { numCharges: vocab.length, seed: 3 });
      const pool = model.prepare(cases.map((c) => c.fact));
      const rows = Int32Array.from(cases.keys());
      const before = tf.memory().numTensors;
      const result = await trainPanel([model], pool, [{ rows, labels }], { epochs: spec.type === 'text-cnn' ? 4 : 10, learningRate: 0.03 });
      expect(tf.memory().numTensors).toBe(before); // no leaks across steps
      expect(result.losses.at(-1)!).toBeLessThan(result.losses[0]! * 0.6);
      const [pred] = await predictPanel([model], pool, rows);
      const acc = pred!.charge.filter((c, i) => c === labels.charge[i]).length / rows.length;
      expect(acc).toBeGreaterThan(0.5); // 10 charges: chance is 0.1
      model.dispose();
    });
  }

  it('rejects an unknown model type', () => {
    expect(() => createModel({ type: 'transformer-xl' }, { numCharges: 2, seed: 1 })).toThrow(/model.type: unknown model "transformer-xl"/);
  });
});

describe('TextCNN', () => {
  const spec = { type: 'text-cnn', vocab: 64, embed: 6, filters: 4, widths: [2, 3], maxLength: 12 } as const;

  it('learns a separable toy task: the charge and term are named by one character pair', async () => {
    // Theft cases say 盗窃 somewhere among filler characters, fraud cases 诈骗; terms 6 and 24 months.
    const filler = '被告人在某地某日实施行为经查属实';
    const facts = Array.from({ length: 40 }, (_, i) => {
      const at = i % 10;
      const word = i % 2 === 0 ? '盗窃' : '诈骗';
      return filler.slice(0, at) + word + filler.slice(at);
    });
    const cases = facts.map((_, i) => ({ charges: [i % 2 === 0 ? '盗窃' : '诈骗'], term: { months: i % 2 === 0 ? 6 : 24, life: false, death: false } }));
    const vocab = chargeVocabulary(cases);
    const model = createModel(spec, { numCharges: 2, seed: 1 });
    const pool = model.prepare(facts);
    const rows = Int32Array.from(facts.keys());
    const labels = encodeLabels(cases, vocab);
    const result = await trainPanel([model], pool, [{ rows, labels }], { epochs: 30, batchSize: 8, learningRate: 0.05, seed: 2 });
    expect(result.losses.at(-1)!).toBeLessThan(result.losses[0]! / 5);
    const [pred] = await predictPanel([model], pool, rows);
    expect(Array.from(pred!.charge)).toEqual(Array.from(labels.charge));
    pred!.months.forEach((m, i) => {
      expect(Math.abs(Math.log1p(m) - Math.log1p(cases[i]!.term.months)), `case ${i}`).toBeLessThan(0.25);
    });
    model.dispose();
  });

  it('has gradients that match central finite differences (embedding, kernel, heads)', () => {
    const model = createModel(spec, { numCharges: 3, seed: 4 });
    const pool = model.prepare(['盗窃他人财物', '诈骗被害人钱款', '驾车肇事致人受伤']);
    const rows = [0, 1, 2];
    const charge = Int32Array.from([0, 1, 2]);
    const kind = Int32Array.from([0, 0, 1]);
    const logMonths = Float32Array.from([Math.log1p(6), Math.log1p(24), 0]);
    const loss = () => tf.sum(sampleLosses(model.forward(pool, rows), charge, kind, logMonths, 1)) as tf.Scalar;
    const vars = model.trainableVariables();
    const { grads } = tf.variableGrads(loss, vars);
    const eps = 1e-3;
    let checked = 0;
    for (const v of [vars[0]!, vars[1]!, vars.at(-6)!]) {
      const values = v.dataSync().slice();
      const g = grads[v.name]!.dataSync();
      // The entries with the largest gradients (a used embedding row, kernel and head weights).
      const order = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!)).slice(0, 3);
      for (const i of order) {
        const at = (delta: number) => {
          const copy = values.slice();
          copy[i] = values[i]! + delta;
          v.assign(tf.tensor(copy, v.shape));
          return tf.tidy(() => loss().dataSync()[0]!);
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        v.assign(tf.tensor(values, v.shape));
        expect(Math.abs(numeric - g[i]!), `${v.name}[${i}]: ${g[i]} vs ${numeric}`).toBeLessThan(2e-2 * Math.max(1, Math.abs(g[i]!)));
        checked++;
      }
    }
    expect(checked).toBe(9);
    model.dispose();
  });
});

describe('a panel with a shared encoder', () => {
  const cases = generateCases({ count: 160, seed: 4, regions: ['Beijing', 'Hunan'], inject: { region: 0.6 }, groupCuesInText: true });
  const vocab = chargeVocabulary(cases);
  const groupOf = cases.map((c) => (c.groups['region'] === 'Beijing' ? 0 : 1));
  const rows = [0, 1].map((g) => cases.flatMap((_, i) => (groupOf[i] === g ? [i] : [])));
  const data = rows.map((r) => ({ rows: Int32Array.from(r), labels: encodeLabels(r.map((i) => cases[i]!), vocab), groups: Int32Array.from(r.map((i) => groupOf[i]!)), numGroups: 2 }));
  const panel = () => [0, 1].map(() => createModel({ type: 'hashed-ngram', buckets: 512, dim: 16 }, { numCharges: vocab.length, seed: 5 }));

  it('trains one encoder through every judge and predicts through it', async () => {
    const models = panel();
    const pool = models[0]!.prepare(cases.map((c) => c.fact));
    const unused = models[1]!.encoderVariables()[0]!.dataSync().slice();
    const used = models[0]!.encoderVariables()[0]!.dataSync().slice();
    await trainPanel(models, pool, data, { epochs: 2, learningRate: 0.05, sharedEncoder: true });
    // Judge 1's own encoder is never read, so never trained; judge 0's (the shared one) is.
    expect(Array.from(models[1]!.encoderVariables()[0]!.dataSync())).toEqual(Array.from(unused));
    expect(Array.from(models[0]!.encoderVariables()[0]!.dataSync())).not.toEqual(Array.from(used));
    const shared = await panelOutputs(models, pool, Int32Array.from([0, 1, 2]), { sharedEncoder: true });
    const hidden = tf.tidy(() => models[0]!.encode(pool, [0, 1, 2]));
    const expected = tf.tidy(() => models[1]!.decode(hidden).logTerm.dataSync());
    expect(Array.from(shared[1]!.logTerm)).toEqual(Array.from(expected).map((x) => expect.closeTo(x, 5)));
    hidden.dispose();
    for (const m of models) m.dispose();
  });

  it('passes the group classifier\'s gradient to the shared encoder only through the reversal', async () => {
    const encoderAfter = async (debias?: { method: 'adversarial'; adversaryWeight: number; adversarySchedule: 'constant' }) => {
      const models = panel();
      const pool = models[0]!.prepare(cases.map((c) => c.fact));
      await trainPanel(models, pool, data, { epochs: 2, learningRate: 0.05, sharedEncoder: true, seed: 3, ...(debias ? { debias } : {}) });
      const weights = Array.from(models[0]!.encoderVariables()[0]!.dataSync());
      for (const m of models) m.dispose();
      return weights;
    };
    const plain = await encoderAfter();
    // λ = 0: the classifier trains (its own steps too) but the encoder sees none of it.
    expect(await encoderAfter({ method: 'adversarial', adversaryWeight: 0, adversarySchedule: 'constant' })).toEqual(plain);
    const pushed = await encoderAfter({ method: 'adversarial', adversaryWeight: 1, adversarySchedule: 'constant' });
    expect(pushed.some((w, i) => Math.abs(w - plain[i]!) > 1e-4)).toBe(true);
    const models = panel();
    await expect(trainPanel(models, models[0]!.prepare(['x']), data, { debias: { method: 'adversarial' } })).rejects.toThrow(/needs sharedEncoder/);
    for (const m of models) m.dispose();
  });

  it('confusion makes the shared representation less telling of the group: a fresh probe decodes it worse', async () => {
    // Two groups whose facts differ only in the procuratorate's region; labels ignore it.
    const acts = ['盗窃财物', '诈骗钱款', '驾车肇事', '殴打他人'];
    const toy = Array.from({ length: 96 }, (_, i) => ({
      fact: `${i % 2 === 0 ? '北京' : '湖南'}某区人民检察院指控被告人${acts[Math.floor(i / 2) % 4]}`,
      charges: [acts[Math.floor(i / 2) % 4]!],
      term: { months: 3 + 6 * (Math.floor(i / 2) % 4), life: false, death: false },
      g: i % 2,
    }));
    const toyVocab = chargeVocabulary(toy);
    const toyData = [0, 1].map((g) => {
      const r = toy.flatMap((c, i) => (c.g === g ? [i] : []));
      return { rows: Int32Array.from(r), labels: encodeLabels(r.map((i) => toy[i]!), toyVocab), groups: Int32Array.from(r.map((i) => toy[i]!.g)), numGroups: 2 };
    });
    const probeLoss = async (weight: number) => {
      const models = [0, 1].map(() => createModel({ type: 'hashed-ngram', buckets: 256, dim: 8 }, { numCharges: toyVocab.length, seed: 5 }));
      const pool = models[0]!.prepare(toy.map((c) => c.fact));
      await trainPanel(models, pool, toyData, { epochs: 12, batchSize: 16, learningRate: 0.05, sharedEncoder: true, seed: 2, debias: { method: 'adversarial', adversaryWeight: weight, adversaryObjective: 'confusion' } });
      const h = tf.tidy(() => models[0]!.encode(pool, toy.map((_, i) => i)));
      const y = tf.oneHot(tf.tensor1d(toy.map((c) => c.g), 'int32'), 2);
      const w = tf.variable(tf.zeros([8, 2]));
      const b = tf.variable(tf.zeros([2]));
      const opt = tf.train.adam(0.1);
      for (let s = 0; s < 300; s++) opt.minimize(() => tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(h, w), b)) as tf.Scalar);
      const loss = tf.tidy(() => tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(h, w), b)).dataSync()[0]!);
      for (const t of [h, y, w, b]) t.dispose();
      opt.dispose();
      for (const m of models) m.dispose();
      return loss;
    };
    const blind = await probeLoss(1);
    const free = await probeLoss(0);
    // ln 2 = 0.693 is chance for two groups.
    expect(free).toBeLessThan(0.45);
    expect(blind).toBeGreaterThan(free + 0.1);
  });
});
