// Validates LInCo on synthetic cases with injected inconsistency (see the @kiln/linco
// README, "Validation"). Prints markdown tables and merges them into results.json beside
// this file. Sections: dose zero groups severity debias multi (default: all), e.g.
// `node validate.mjs dose zero`. Runs on whatever backend initBackend picks
// (KILN_BACKEND=cpu forces the pure-JS one).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { linco, spearman } from '@kiln/linco';
import { describeBackendChoice, initBackend, writeFileAtomic } from '@kiln/tensor';
import { COMMON as common, COUNT, REGIONS, TEST_SIZE, f3, syntheticCases } from './design.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const resultsPath = join(here, 'results.json');
const ALL = ['dose', 'zero', 'groups', 'severity', 'debias', 'multi'];
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
const p3 = (x) => (x < 0.001 ? '< 0.001' : x.toFixed(3));
const ci = (c) => `[${f3(c[0])}, ${f3(c[1])}]`;
const inside = (v, c) => v >= c[0] && v <= c[1];
const results = existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, 'utf8')) : {};
results.backend = backend.name;
results.design = { count: COUNT, regions: REGIONS, testSize: TEST_SIZE, randomSplits: R, replicates: S, combine: 'ensemble', baselineSplit: 'permute' };
const row = (f) => ({
  overall: f.overall,
  ci: f.ci,
  baseline: { overall: f.baseline.overall, ci: f.baseline.ci, splitSd: f.baseline.splitSd, repeats: f.baseline.repeats, interval: f.baseline.interval },
  excess: f.excess,
});
const save = () => writeFileAtomic(resultsPath, JSON.stringify(results, null, 2));

if (sections.includes('dose')) {
  // 1. Dose-response: LInCo against the injected regional strength.
  const levels = [0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8];
  const dose = [];
  console.log(`\n#### 1. Injected regional inconsistency → LInCo (4 region judges; ${R} placebo random splits; every panel an ensemble of ${S} replicates)\n`);
  console.log('| injected | LInCo term | random-split term [95% null interval] | split sd | excess term [95% CI] | p | inside | LInCo charge | random-split charge |');
  console.log('|---:|---:|---|---:|---|---:|---|---:|---:|');
  for (const level of levels) {
    const f = await linco(data({ region: level }), { ...common, sampling: { groupBy: 'region', testSize: TEST_SIZE }, baselineRepeats: R, replicates: S });
    const r = { level, ...row(f), inside: inside(f.overall.term, f.baseline.ci.term) };
    dose.push(r);
    console.log(
      `| ${level} | ${f3(f.overall.term)} | ${f3(f.baseline.overall.term)} ${ci(f.baseline.ci.term)} | ${f3(f.baseline.splitSd.term)} | ${f3(f.excess.overall.term)} ${ci(f.excess.ci.term)} | ${p3(f.excess.p.term)} | ${r.inside ? 'yes' : 'no'} | ${f3(f.overall.charge)} | ${f3(f.baseline.overall.charge)} |`,
    );
  }
  const rho = {
    term: spearman(levels, dose.map((d) => d.overall.term)),
    charge: spearman(levels, dose.map((d) => d.overall.charge)),
    excessTerm: spearman(levels, dose.map((d) => d.excess.overall.term)),
  };
  console.log(`\nSpearman ρ(injected, LInCo): term ${f3(rho.term)}, charge ${f3(rho.charge)}; ρ(injected, excess term) ${f3(rho.excessTerm)}`);
  results.dose = { levels: dose, spearman: rho };
  await save();
}

if (sections.includes('zero')) {
  // 1b. Zero injection on several data sets: is the region panel indistinguishable from the placebo splits?
  const seeds = [11, 12, 13, 14, 15, 16];
  console.log(`\n#### 1b. Zero injection on ${seeds.length} data sets (${R} placebo random splits × ${S} replicates)\n`);
  console.log('| data seed | LInCo term | random-split term [95% null interval] | split sd | random-split panels (sorted) | excess term [95% CI] | p | inside |');
  console.log('|---:|---:|---|---:|---|---|---:|---|');
  results.zero = [];
  for (const seed of seeds) {
    const cached = seed === 11 && results.dose?.levels?.[0]?.level === 0 && sections.includes('dose') ? results.dose.levels[0] : undefined;
    let r = cached;
    if (!r) {
      const cases = syntheticCases(seed, { region: 0 });
      const f = await linco(cases, { ...common, sampling: { groupBy: 'region', testSize: TEST_SIZE }, baselineRepeats: R, replicates: S });
      r = { ...row(f), inside: inside(f.overall.term, f.baseline.ci.term) };
    }
    results.zero.push({ seed, ...r });
    const panels = r.baseline.repeats.map((x) => x.term).sort((a, b) => a - b);
    console.log(
      `| ${seed} | ${f3(r.overall.term)} | ${f3(r.baseline.overall.term)} ${ci(r.baseline.ci.term)} | ${f3(r.baseline.splitSd.term)} | ${panels.map(f3).join(', ')} | ${f3(r.excess.overall.term)} ${ci(r.excess.ci.term)} | ${p3(r.excess.p.term)} | ${r.inside ? 'yes' : 'no'} |`,
    );
  }
  const ex = results.zero.map((z) => z.excess.overall.term);
  const m = ex.reduce((a, b) => a + b, 0) / ex.length;
  const sd = Math.sqrt(ex.reduce((a, b) => a + (b - m) ** 2, 0) / (ex.length - 1));
  const fisher = -2 * results.zero.reduce((a, z) => a + Math.log(z.excess.p.term), 0);
  results.zeroSummary = { meanExcess: m, sdExcess: sd, inside: results.zero.filter((z) => z.inside).length, of: ex.length, fisherChi2: fisher, fisherDf: 2 * ex.length };
  console.log(`\nExcess over data sets: mean ${f3(m)}, sd ${f3(sd)} (t = ${(m / (sd / Math.sqrt(ex.length))).toFixed(2)}); inside the null interval on ${results.zeroSummary.inside} of ${ex.length}; Fisher's χ² = ${fisher.toFixed(2)} on ${2 * ex.length} df`);
  await save();
}

if (sections.includes('groups')) {
  // 2. Region vs gender: which attribute's judges disagree, when each is injected.
  console.log('\n#### 2. Region vs gender (380 training cases per judge; 4 placebo splits, 1 replicate)\n');
  console.log('| injected | region judges: excess term [95% CI] | p | gender judges: excess term [95% CI] | p | larger |');
  console.log('|---|---|---:|---|---:|---|');
  const scenarios = [
    ['region 0.4', { region: 0.4 }],
    ['gender 0.4', { gender: 0.4 }],
    ['region 0.4 + gender 0.1', { region: 0.4, gender: 0.1 }],
    ['none', {}],
  ];
  results.regionVsGender = [];
  for (const [name, inject] of scenarios) {
    const cases = data(inject);
    const out = {};
    for (const groupBy of ['region', 'gender']) {
      const f = await linco(cases, { ...common, sampling: { groupBy, testSize: TEST_SIZE, perJudge: 380 }, baselineRepeats: 4 });
      out[groupBy] = { overall: f.overall, excess: f.excess, baseline: { overall: f.baseline.overall, ci: f.baseline.ci } };
    }
    const larger = out.region.excess.overall.term > out.gender.excess.overall.term ? 'region' : 'gender';
    results.regionVsGender.push({ name, ...out, larger });
    console.log(
      `| ${name} | ${f3(out.region.excess.overall.term)} ${ci(out.region.excess.ci.term)} | ${p3(out.region.excess.p.term)} | ${f3(out.gender.excess.overall.term)} ${ci(out.gender.excess.ci.term)} | ${p3(out.gender.excess.p.term)} | ${larger} |`,
    );
  }
  await save();
}

if (sections.includes('severity')) {
  // 3. Severity: inconsistency injected more strongly for light (slope > 0) or heavy charges.
  console.log('\n#### 3. Severity trend (region 0.4, m(s) = 1 + slope·(3 − s)/2; 4 placebo splits)\n');
  console.log('| slope | light: LInCo − random | medium | heavy | Spearman ρ(band, excess) |');
  console.log('|---:|---:|---:|---:|---:|');
  results.severity = [];
  for (const slope of [0.8, 0, -0.8]) {
    const f = await linco(data({ region: 0.4, severitySlope: slope }), { ...common, sampling: { groupBy: 'region', testSize: TEST_SIZE }, baselineRepeats: 4 });
    const bands = ['light', 'medium', 'heavy'];
    const ex = bands.map((b) => f.byGroup.severity[b].term - f.baseline.byGroup.severity[b].term);
    const rho = spearman([1, 2, 3], ex);
    results.severity.push({ slope, excess: Object.fromEntries(bands.map((b, i) => [b, ex[i]])), n: bands.map((b) => f.byGroup.severity[b].n), rho });
    console.log(`| ${slope} | ${f3(ex[0])} | ${f3(ex[1])} | ${f3(ex[2])} | ${f3(rho)} |`);
  }
  await save();
}

if (sections.includes('debias')) {
  // 4. De-biasing: LInCo before and after, on the same judge plan.
  console.log('\n#### 4. De-biasing (region 0.5)\n');
  console.log("| method | judges' data | LInCo term before → after | LInCo charge before → after |");
  console.log('|---|---|---|---|');
  const biased = data({ region: 0.5 });
  results.debias = [];
  for (const [share, methods] of [
    [0, ['adversarial']],
    [0.25, ['reweight', 'group-dro']],
  ]) {
    const opts = { ...common, sampling: { groupBy: 'region', testSize: TEST_SIZE, crossGroupShare: share }, baselineRepeats: 0 };
    const before = await linco(biased, opts);
    for (const method of methods) {
      const after = await linco(biased, { ...opts, debias: { method } });
      results.debias.push({ method, crossGroupShare: share, before: before.overall, after: after.overall });
      const where = share === 0 ? 'own region only' : `${100 - share * 100} % own region, ${share * 100} % others`;
      console.log(`| ${method} | ${where} | ${f3(before.overall.term)} → ${f3(after.overall.term)} | ${f3(before.overall.charge)} → ${f3(after.overall.charge)} |`);
    }
  }
  await save();
}

if (sections.includes('multi')) {
  // 5. Multi-charge cases: per-charge sigmoid judges, Jaccard charge disagreement.
  console.log('\n#### 5. Multi-charge cases (30 % with two charges; charge sets, Jaccard disagreement; 4 placebo splits)\n');
  console.log('| injected | two-charge cases | LInCo term | excess term [95% CI] | LInCo charge (Jaccard) | random-split charge | excess charge [95% CI] | charge mode |');
  console.log('|---:|---:|---:|---|---:|---:|---|---:|');
  const levels = [0, 0.2, 0.4, 0.6, 0.8];
  results.multi = { levels: [] };
  for (const level of levels) {
    const cases = data({ region: level }, { multiChargeRate: 0.3 });
    const f = await linco(cases, { ...common, sampling: { groupBy: 'region', testSize: TEST_SIZE }, baselineRepeats: 4 });
    const share = cases.filter((c) => c.charges.length > 1).length / cases.length;
    results.multi.levels.push({ level, share, charges: f.info.charges, ...row(f) });
    console.log(
      `| ${level} | ${(share * 100).toFixed(0)} % | ${f3(f.overall.term)} | ${f3(f.excess.overall.term)} ${ci(f.excess.ci.term)} | ${f3(f.overall.charge)} | ${f3(f.baseline.overall.charge)} | ${f3(f.excess.overall.charge)} ${ci(f.excess.ci.charge)} | ${f.info.charges} |`,
    );
  }
  results.multi.spearman = {
    term: spearman(levels, results.multi.levels.map((d) => d.overall.term)),
    charge: spearman(levels, results.multi.levels.map((d) => d.overall.charge)),
  };
  console.log(`\nSpearman ρ(injected, LInCo): term ${f3(results.multi.spearman.term)}, charge ${f3(results.multi.spearman.charge)}`);
  await save();
}

results.seconds = { ...(results.seconds ?? {}), [sections.join('+')]: (performance.now() - t0) / 1000 };
console.log(`\n${COUNT} cases per data set, 300 held out; hashed n-gram judges, 12 epochs; ${((performance.now() - t0) / 1000).toFixed(0)} s on ${backend.name}.`);
await save();
