// Validates LInCo on synthetic cases with injected inconsistency (see the @kiln/linco
// README, "Validation"). Prints markdown tables; writes results.json beside this file.
// Runs on whatever backend initBackend picks (KILN_BACKEND=cpu forces the pure-JS one).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCases, linco, spearman } from '@kiln/linco';
import { describeBackendChoice, initBackend, writeFileAtomic } from '@kiln/tensor';

const here = dirname(fileURLToPath(import.meta.url));
const t0 = performance.now();
const backend = await initBackend();
console.log(`backend: ${describeBackendChoice(backend)}`);

const REGIONS = ['Beijing', 'Liaoning', 'Hunan', 'Guangdong'];
const COUNT = 2400;
const common = {
  model: { type: 'hashed-ngram' },
  train: { epochs: 12, learningRate: 0.02 },
  bootstrap: { samples: 1000, confidence: 0.95 },
  seed: 1,
};
const data = (inject, extra = {}) => generateCases({ count: COUNT, seed: 11, regions: REGIONS, inject: { chargeFlip: 1.2, ...inject }, ...extra });
const f3 = (x) => x.toFixed(3);
const ci = (c) => `[${f3(c[0])}, ${f3(c[1])}]`;
const results = { backend: backend.name };

// 1. Dose-response: LInCo against the injected regional strength.
const levels = [0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8];
const dose = [];
console.log('\n### 1. Injected regional inconsistency → LInCo (judges = 4 regions)\n');
console.log('| injected | LInCo term [95% CI] | random-split term [95% CI] | excess term [95% CI] | LInCo charge | random-split charge |');
console.log('|---:|---|---|---|---:|---:|');
for (const level of levels) {
  const f = await linco(data({ region: level }), { ...common, sampling: { groupBy: 'region', testSize: 300 }, baselineRepeats: level === 0 ? 8 : 4, groupRepeats: 3 });
  dose.push({ level, overall: f.overall, ci: f.ci, baseline: { overall: f.baseline.overall, ci: f.baseline.ci, repeats: f.baseline.repeats }, excess: f.excess });
  console.log(`| ${level} | ${f3(f.overall.term)} ${ci(f.ci.term)} | ${f3(f.baseline.overall.term)} ${ci(f.baseline.ci.term)} | ${f3(f.excess.overall.term)} ${ci(f.excess.ci.term)} | ${f3(f.overall.charge)} | ${f3(f.baseline.overall.charge)} |`);
}
const rhoTerm = spearman(levels, dose.map((d) => d.overall.term));
const rhoCharge = spearman(levels, dose.map((d) => d.overall.charge));
const zero = dose[0];
const zeroInside = zero.overall.term >= zero.baseline.ci.term[0] && zero.overall.term <= zero.baseline.ci.term[1];
const zeroChargeInside = zero.overall.charge >= zero.baseline.ci.charge[0] && zero.overall.charge <= zero.baseline.ci.charge[1];
const nullTerms = zero.baseline.repeats.map((r) => r.term).sort((a, b) => a - b);
const above = nullTerms.filter((t) => t >= zero.overall.term).length;
console.log(`\nRegion judges: mean of 3 equal-size resamples. Random-split panels: 8 at 0, 4 at every other level.`);
console.log(`Spearman ρ(injected, LInCo): term ${f3(rhoTerm)}, charge ${f3(rhoCharge)}`);
console.log(`At 0, the 8 random-split panels' term LInCo: ${nullTerms.map(f3).join(', ')}; ${above} of 8 are ≥ the region judges' ${f3(zero.overall.term)}`);
console.log(`At 0: term LInCo ${f3(zero.overall.term)} ${zeroInside ? 'inside' : 'OUTSIDE'} the random-split CI ${ci(zero.baseline.ci.term)}; charge ${f3(zero.overall.charge)} ${zeroChargeInside ? 'inside' : 'OUTSIDE'} ${ci(zero.baseline.ci.charge)}; excess CI ${ci(zero.excess.ci.term)}`);
results.dose = { levels: dose, spearman: { term: rhoTerm, charge: rhoCharge }, zeroInsideBaselineCi: { term: zeroInside, charge: zeroChargeInside }, zeroNullRank: { above, of: nullTerms.length } };

// 1b. Zero injection on other data sets: is the region panel's excess centred on 0?
console.log('\n### 1b. Zero injection, four data sets (region judges vs 4 random splits)\n');
console.log('| data seed | LInCo term | random-split term [95% CI] | random-split panels | excess term [95% CI] | inside CI |');
console.log('|---:|---:|---|---|---|---|');
results.zero = [];
for (const seed of [11, 12, 13, 14]) {
  const cases = generateCases({ count: COUNT, seed, regions: REGIONS, inject: { chargeFlip: 1.2, region: 0 } });
  const f = await linco(cases, { ...common, sampling: { groupBy: 'region', testSize: 300 }, baselineRepeats: 4 });
  const inside = f.overall.term >= f.baseline.ci.term[0] && f.overall.term <= f.baseline.ci.term[1];
  results.zero.push({ seed, overall: f.overall, baseline: f.baseline.overall, ci: f.baseline.ci, repeats: f.baseline.repeats, excess: f.excess, inside });
  console.log(`| ${seed} | ${f3(f.overall.term)} | ${f3(f.baseline.overall.term)} ${ci(f.baseline.ci.term)} | ${f.baseline.repeats.map((r) => f3(r.term)).join(', ')} | ${f3(f.excess.overall.term)} ${ci(f.excess.ci.term)} | ${inside ? 'yes' : 'no'} |`);
}

// 2. Region vs gender: which attribute's judges disagree, when each is injected.
console.log('\n### 2. Region vs gender (same 380 training cases per judge)\n');
console.log('| injected | region judges: excess term [95% CI] | gender judges: excess term [95% CI] | larger |');
console.log('|---|---|---|---|');
const scenarios = [
  ['region 0.4', { region: 0.4 }],
  ['gender 0.4', { gender: 0.4 }],
  ['region 0.4 + gender 0.1', { region: 0.4, gender: 0.1 }],
  ['none', {}],
];
results.regionVsGender = [];
for (const [name, inject] of scenarios) {
  const cases = data(inject);
  const row = {};
  for (const groupBy of ['region', 'gender']) {
    const f = await linco(cases, { ...common, sampling: { groupBy, testSize: 300, perJudge: 380 }, baselineRepeats: 1 });
    row[groupBy] = { overall: f.overall, excess: f.excess };
  }
  const larger = row.region.excess.overall.term > row.gender.excess.overall.term ? 'region' : 'gender';
  results.regionVsGender.push({ name, ...row, larger });
  console.log(`| ${name} | ${f3(row.region.excess.overall.term)} ${ci(row.region.excess.ci.term)} | ${f3(row.gender.excess.overall.term)} ${ci(row.gender.excess.ci.term)} | ${larger} |`);
}

// 3. Severity: inconsistency injected more strongly for light (slope > 0) or heavy charges.
console.log('\n### 3. Severity trend (region 0.4, m(s) = 1 + slope·(3 − s)/2)\n');
console.log('| slope | light: LInCo − random | medium | heavy | Spearman ρ(band, excess) |');
console.log('|---:|---:|---:|---:|---:|');
results.severity = [];
for (const slope of [0.8, 0, -0.8]) {
  const f = await linco(data({ region: 0.4, severitySlope: slope }), { ...common, sampling: { groupBy: 'region', testSize: 300 }, baselineRepeats: 1 });
  const bands = ['light', 'medium', 'heavy'];
  const ex = bands.map((b) => f.byGroup.severity[b].term - f.baseline.byGroup.severity[b].term);
  const rho = spearman([1, 2, 3], ex);
  results.severity.push({ slope, excess: Object.fromEntries(bands.map((b, i) => [b, ex[i]])), n: bands.map((b) => f.byGroup.severity[b].n), rho });
  console.log(`| ${slope} | ${f3(ex[0])} | ${f3(ex[1])} | ${f3(ex[2])} | ${f3(rho)} |`);
}

// 4. De-biasing: LInCo before and after, on the same judge plan.
console.log('\n### 4. De-biasing (region 0.5)\n');
console.log('| method | judges\' data | LInCo term before → after | LInCo charge before → after |');
console.log('|---|---|---|---|');
const biased = data({ region: 0.5 });
results.debias = [];
for (const [share, methods] of [[0, ['adversarial']], [0.25, ['reweight', 'group-dro']]]) {
  const opts = { ...common, sampling: { groupBy: 'region', testSize: 300, crossGroupShare: share }, baselineRepeats: 0 };
  const before = await linco(biased, opts);
  for (const method of methods) {
    const after = await linco(biased, { ...opts, debias: { method } });
    results.debias.push({ method, crossGroupShare: share, before: before.overall, after: after.overall });
    const where = share === 0 ? 'own region only' : `${100 - share * 100} % own region, ${share * 100} % others`;
    console.log(`| ${method} | ${where} | ${f3(before.overall.term)} → ${f3(after.overall.term)} | ${f3(before.overall.charge)} → ${f3(after.overall.charge)} |`);
  }
}

results.seconds = (performance.now() - t0) / 1000;
console.log(`\n${COUNT} cases per data set, 300 held out; hashed n-gram judges, 12 epochs; ${results.seconds.toFixed(0)} s on ${backend.name}.`);
await writeFileAtomic(join(here, 'results.json'), JSON.stringify(results, null, 2));
