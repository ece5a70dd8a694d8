// Validates LInCo on synthetic cases with injected inconsistency (see the @kiln/linco README,
// "Validation") and writes the measurements to results.json beside this file, with the
// commit, the design and the machine; `node tables.mjs --write` renders the README's tables
// from that file. Sections: dose zero groups severity debias debias-plain multi (default: all), e.g.
// `node validate.mjs dose zero` (other sections' results are kept). Runs on whatever
// backend initBackend picks (KILN_BACKEND=cpu forces the pure-JS one).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chargeVocabulary, compareDebiasing, createModel, differenceOfEstimates, encodeLabels, linco, spearman, trainPanel } from '@kiln/linco';
import { adam, describeBackendChoice, initBackend, tf, writeFileAtomic } from '@kiln/tensor';
import { COMMON as common, COUNT, REGIONS, TEST_SIZE, syntheticCases } from './design.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const resultsPath = join(here, 'results.json');
const ALL = ['dose', 'zero', 'groups', 'severity', 'debias', 'debias-plain', 'multi'];
const sections = process.argv.length > 2 ? process.argv.slice(2) : ALL;
for (const s of sections) if (!ALL.includes(s)) throw new Error(`unknown section "${s}" (have: ${ALL.join(', ')})`);
const t0 = performance.now();
const backend = await initBackend();
console.log(`backend: ${describeBackendChoice(backend)}`);

// The main design: 8 placebo random splits, every panel (group and random) an ensemble of
// 2 replicates (resample + training seed).
const R = 8;
const S = 2;
const data = (inject, extra = {}) => syntheticCases(11, inject, extra);
const results = existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, 'utf8')) : {};
// Earlier versions kept these at the top level; they now live in `meta`.
for (const old of ['backend', 'design', 'seconds']) delete results[old];
const commit = (() => {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
})();
results.meta = {
  node: process.version,
  cpus: cpus().length,
  design: { count: COUNT, regions: REGIONS, testSize: TEST_SIZE, randomSplits: R, replicates: S, combine: 'ensemble', baselineSplit: 'permute', ...common },
};
const row = (f) => ({
  overall: f.overall,
  ci: f.ci,
  baseline: { overall: f.baseline.overall, ci: f.baseline.ci, splitSd: f.baseline.splitSd, repeats: f.baseline.repeats, interval: f.baseline.interval },
  excess: f.excess,
});
const inside = (v, c) => v >= c[0] && v <= c[1];
const save = () => writeFileAtomic(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
/** Where and when a section was measured: sections can be re-run alone, so each keeps its own. */
const done = (name, t) => {
  const seconds = Math.round((performance.now() - t) / 1000);
  results[name].measured = { commit, date: new Date().toISOString().slice(0, 10), backend: backend.name, seconds, loadavg: loadavg().map((x) => Number(x.toFixed(1))) };
  console.log(`${name}: ${seconds} s (load ${results[name].measured.loadavg.join(' ')})`);
};

if (sections.includes('dose')) {
  // 1. Dose-response: LInCo against the injected regional strength.
  const t = performance.now();
  const levels = [0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8];
  const dose = [];
  for (const level of levels) {
    const f = await linco(data({ region: level }), { ...common, sampling: { groupBy: 'region', testSize: TEST_SIZE }, baselineRepeats: R, replicates: S });
    dose.push({ level, ...row(f), inside: inside(f.overall.term, f.baseline.ci.term) });
  }
  const rho = {
    term: spearman(levels, dose.map((d) => d.overall.term)),
    charge: spearman(levels, dose.map((d) => d.overall.charge)),
    excessTerm: spearman(levels, dose.map((d) => d.excess.overall.term)),
  };
  results.dose = { levels: dose, spearman: rho };
  done('dose', t);
  await save();
}

if (sections.includes('zero')) {
  // 1b. Zero injection on several data sets: is the region panel indistinguishable from the placebo splits?
  const t = performance.now();
  const seeds = [11, 12, 13, 14, 15, 16];
  const sets = [];
  for (const seed of seeds) {
    const cached = seed === 11 && sections.includes('dose') ? results.dose.levels[0] : undefined;
    let r = cached;
    if (!r) {
      const f = await linco(syntheticCases(seed, { region: 0 }), { ...common, sampling: { groupBy: 'region', testSize: TEST_SIZE }, baselineRepeats: R, replicates: S });
      r = { ...row(f), inside: inside(f.overall.term, f.baseline.ci.term) };
    }
    sets.push({ seed, ...r });
  }
  const ex = sets.map((z) => z.excess.overall.term);
  const m = ex.reduce((a, b) => a + b, 0) / ex.length;
  const sd = Math.sqrt(ex.reduce((a, b) => a + (b - m) ** 2, 0) / (ex.length - 1));
  const fisher = -2 * sets.reduce((a, z) => a + Math.log(z.excess.p.term), 0);
  results.zero = { sets, summary: { meanExcess: m, sdExcess: sd, inside: sets.filter((z) => z.inside).length, of: ex.length, fisherChi2: fisher, fisherDf: 2 * ex.length } };
  delete results.zeroSummary;
  done('zero', t);
  await save();
}

if (sections.includes('groups')) {
  // 2. Region vs gender: which attribute's judges disagree, when each is injected.
  const t = performance.now();
  const scenarios = [
    ['region 0.4', { region: 0.4 }],
    ['gender 0.4', { gender: 0.4 }],
    ['region 0.4 + gender 0.1', { region: 0.4, gender: 0.1 }],
    ['none', {}],
  ];
  results.regionVsGender = { rows: [] };
  for (const [name, inject] of scenarios) {
    const cases = data(inject);
    const out = {};
    for (const groupBy of ['region', 'gender']) {
      const f = await linco(cases, { ...common, sampling: { groupBy, testSize: TEST_SIZE, perJudge: 380 }, baselineRepeats: 4 });
      out[groupBy] = { overall: f.overall, excess: f.excess, baseline: { overall: f.baseline.overall, ci: f.baseline.ci } };
    }
    // As `kiln linco analyze` decides: region − gender excess with a Welch t interval.
    const est = (g) => ({ value: g.excess.overall.term, sd: g.excess.sd.term, df: g.excess.df });
    const difference = differenceOfEstimates(est(out.region), est(out.gender));
    const larger = difference.ci[0] > 0 ? 'region' : difference.ci[1] < 0 ? 'gender' : 'neither';
    results.regionVsGender.rows.push({ name, ...out, difference, larger });
  }
  done('regionVsGender', t);
  await save();
}

if (sections.includes('severity')) {
  // 3. Severity: inconsistency injected more strongly for light (slope > 0) or heavy charges.
  const t = performance.now();
  results.severity = { rows: [] };
  for (const slope of [0.8, 0, -0.8]) {
    const f = await linco(data({ region: 0.4, severitySlope: slope }), { ...common, sampling: { groupBy: 'region', testSize: TEST_SIZE }, baselineRepeats: 4 });
    const bands = ['light', 'medium', 'heavy'];
    const ex = bands.map((b) => f.byGroup.severity[b].term - f.baseline.byGroup.severity[b].term);
    results.severity.rows.push({ slope, excess: Object.fromEntries(bands.map((b, i) => [b, ex[i]])), n: bands.map((b) => f.byGroup.severity[b].n), rho: spearman([1, 2, 3], ex) });
  }
  done('severity', t);
  await save();
}

/**
 * How well a fresh linear probe reads the region from a shared encoder trained with
 * `debias` (cross-entropy of the probe after 300 full-batch Adam steps; ln 4 = 1.386 is
 * chance for four regions): whether the adversary removed the group from the representation.
 */
async function probeLoss(cases, debias) {
  const vocab = chargeVocabulary(cases);
  const regionOf = cases.map((c) => REGIONS.indexOf(c.groups.region));
  const models = REGIONS.map(() => createModel(common.model, { numCharges: vocab.length, seed: 7 }));
  const pool = models[0].prepare(cases.map((c) => c.fact));
  const judges = REGIONS.map((_, g) => {
    const rows = cases.flatMap((_, i) => (regionOf[i] === g ? [i] : [])).slice(0, 380);
    return { rows: Int32Array.from(rows), labels: encodeLabels(rows.map((i) => cases[i]), vocab), groups: Int32Array.from(rows.map((i) => regionOf[i])), numGroups: REGIONS.length };
  });
  await trainPanel(models, pool, judges, { ...common.train, sharedEncoder: true, seed: 5, ...(debias ? { debias } : {}) });
  const h = tf.tidy(() => models[0].encode(pool, cases.map((_, i) => i)));
  const y = tf.oneHot(tf.tensor1d(regionOf, 'int32'), REGIONS.length);
  const w = tf.variable(tf.zeros([h.shape[1], REGIONS.length]));
  const b = tf.variable(tf.zeros([REGIONS.length]));
  const opt = adam({ learningRate: 0.1 });
  for (let s = 0; s < 300; s++) opt.minimize(() => tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(h, w), b)));
  const loss = tf.tidy(() => tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(h, w), b)).dataSync()[0]);
  for (const t of [h, y, w, b]) t.dispose();
  opt.dispose();
  for (const m of models) m.dispose();
  return loss;
}

/**
 * 4. De-biasing, judged against the null interval over 3 seeds; judges see 25 % of other
 * regions' cases (reweighting and Group DRO need them). Run twice: with the region written in
 * the fact (the procuratorate, as in CAIL: a judge can read every case's region and learn
 * each region's tendency from its share of other regions' cases), and without it (a judge
 * can only carry its own region's tendency).
 */
async function debiasSection(key, groupCuesInText) {
  const t = performance.now();
  const cases = data({ region: 0.5 }, { groupCuesInText });
  const base = { ...common, sampling: { groupBy: 'region', testSize: TEST_SIZE, crossGroupShare: 0.25 }, baselineRepeats: 4 };
  const { rows } = await compareDebiasing(cases, base, {
    seeds: 3,
    methods: [
      { method: 'adversarial', label: 'adversarial (reversal)', settings: { adversaryObjective: 'reverse' } },
      { method: 'adversarial', label: 'adversarial (confusion)', settings: { adversaryObjective: 'confusion' } },
      'reweight',
      'group-dro',
    ],
  });
  const probe = {
    none: await probeLoss(cases),
    reverse: await probeLoss(cases, { method: 'adversarial', adversaryObjective: 'reverse' }),
    confusion: await probeLoss(cases, { method: 'adversarial', adversaryObjective: 'confusion' }),
  };
  results[key] = { injected: { region: 0.5 }, groupCuesInText, crossGroupShare: 0.25, seeds: 3, randomSplits: 4, rows, probe, chance: Math.log(REGIONS.length) };
  done(key, t);
  await save();
}

if (sections.includes('debias')) await debiasSection('debias', true);
if (sections.includes('debias-plain')) await debiasSection('debiasPlain', false);

if (sections.includes('multi')) {
  // 5. Multi-charge cases: per-charge sigmoid judges, Jaccard charge disagreement.
  const t = performance.now();
  const levels = [0, 0.2, 0.4, 0.6, 0.8];
  results.multi = { levels: [] };
  for (const level of levels) {
    const cases = data({ region: level }, { multiChargeRate: 0.3 });
    const f = await linco(cases, { ...common, sampling: { groupBy: 'region', testSize: TEST_SIZE }, baselineRepeats: 4 });
    const share = cases.filter((c) => c.charges.length > 1).length / cases.length;
    results.multi.levels.push({ level, share, charges: f.info.charges, ...row(f) });
  }
  results.multi.spearman = {
    term: spearman(levels, results.multi.levels.map((d) => d.overall.term)),
    charge: spearman(levels, results.multi.levels.map((d) => d.overall.charge)),
  };
  done('multi', t);
  await save();
}

await save();
console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s on ${backend.name}; node tables.mjs renders the tables`);
