// Renders the validation tables of the @kiln/linco README from results.json (written by
// validate.mjs), with the commit, date, backend and design they were measured with.
// `node tables.mjs` prints them; `node tables.mjs --write` replaces the block between
// <!-- validation:begin --> and <!-- validation:end --> in packages/linco/README.md;
// `node tables.mjs --check` (the package's test) fails when that block is not what
// results.json renders to, so the README cannot drift from the artifact.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const r = JSON.parse(readFileSync(join(here, 'results.json'), 'utf8'));
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const p3 = (x) => (x < 0.001 ? '< 0.001' : x.toFixed(3));
const ci = (c) => `[${f3(c[0])}, ${f3(c[1])}]`;
const out = [];
const line = (s = '') => out.push(s);
const d = r.meta.design;
/** "measured at commit abc1234 on 2026-12-03 (kiln-native, 412 s, load 3.2 / 3.0 / 2.9)" */
const provenance = (x) =>
  x.measured ? `measured at commit \`${x.measured.commit}\` on ${x.measured.date} (\`${x.measured.backend}\` backend, ${x.measured.seconds} s, load average ${x.measured.loadavg.join(' / ')})` : 'provenance not recorded';
line(
  `Design (\`design.mjs\`): ${d.count} cases per data set, ${d.regions.length} regions (${d.regions.join(', ')}), ${d.testSize} held out, judges \`${d.model.type}\` ` +
    `trained ${d.train.epochs} epochs at learning rate ${d.train.learningRate}, ${d.bootstrap.samples} bootstrap resamples; Node ${r.meta.node}, ${r.meta.cpus} cores shared with other jobs. ` +
    'Each table says the commit it was measured at.',
);

if (r.dose) {
  line();
  line(`#### 1. Injected regional inconsistency → LInCo (4 region judges; ${d.randomSplits} placebo random splits; every panel an ensemble of ${d.replicates} replicates)`);
  line();
  line(`_${provenance(r.dose)}_`);
  line();
  line('| injected | LInCo term | random-split term [95% null interval] | split sd | excess term [95% CI] | p | inside | LInCo charge | random-split charge [null interval] |');
  line('|---:|---:|---|---:|---|---:|---|---:|---|');
  for (const x of r.dose.levels) {
    line(`| ${x.level} | ${f3(x.overall.term)} | ${f3(x.baseline.overall.term)} ${ci(x.baseline.ci.term)} | ${f3(x.baseline.splitSd.term)} | ${f3(x.excess.overall.term)} ${ci(x.excess.ci.term)} | ${p3(x.excess.p.term)} | ${x.inside ? 'yes' : 'no'} | ${f3(x.overall.charge)} | ${f3(x.baseline.overall.charge)} ${ci(x.baseline.ci.charge)} |`);
  }
  const s = r.dose.spearman;
  line();
  line(`Spearman ρ(injected, LInCo): term ${f3(s.term)}, charge ${f3(s.charge)}; ρ(injected, excess term) ${f3(s.excessTerm)}`);
}

if (r.zero) {
  line();
  line(`#### 1b. Zero injection on ${r.zero.sets.length} data sets (${d.randomSplits} placebo random splits × ${d.replicates} replicates)`);
  line();
  line(`_${provenance(r.zero)}_`);
  line();
  line('| data seed | LInCo term | random-split term [95% null interval] | split sd | random-split panels (sorted) | excess term [95% CI] | p | inside |');
  line('|---:|---:|---|---:|---|---|---:|---|');
  for (const z of r.zero.sets) {
    const panels = z.baseline.repeats.map((x) => x.term).sort((a, b) => a - b);
    line(`| ${z.seed} | ${f3(z.overall.term)} | ${f3(z.baseline.overall.term)} ${ci(z.baseline.ci.term)} | ${f3(z.baseline.splitSd.term)} | ${panels.map(f3).join(', ')} | ${f3(z.excess.overall.term)} ${ci(z.excess.ci.term)} | ${p3(z.excess.p.term)} | ${z.inside ? 'yes' : 'no'} |`);
  }
  const zs = r.zero.summary;
  line();
  line(`Excess over data sets: mean ${f3(zs.meanExcess)}, sd ${f3(zs.sdExcess)} (t = ${(zs.meanExcess / (zs.sdExcess / Math.sqrt(zs.of))).toFixed(2)}); inside the null interval on ${zs.inside} of ${zs.of}; Fisher's χ² = ${zs.fisherChi2.toFixed(2)} on ${zs.fisherDf} df`);
}

if (r.regionVsGender) {
  line();
  line('#### 2. Region vs gender (380 training cases per judge; 4 placebo splits, 1 replicate)');
  line();
  line(`_${provenance(r.regionVsGender)}_`);
  line();
  line('| injected | region judges: excess term [95% CI] | p | gender judges: excess term [95% CI] | p | region − gender [95% CI] | larger |');
  line('|---|---|---:|---|---:|---|---|');
  for (const x of r.regionVsGender.rows) {
    line(
      `| ${x.name} | ${f3(x.region.excess.overall.term)} ${ci(x.region.excess.ci.term)} | ${p3(x.region.excess.p.term)} | ${f3(x.gender.excess.overall.term)} ${ci(x.gender.excess.ci.term)} | ${p3(x.gender.excess.p.term)} | ${f3(x.difference.value)} ${ci(x.difference.ci)} | ${x.larger} |`,
    );
  }
}

if (r.severity) {
  line();
  line("#### 3. Severity trend (region 0.4, the generator's severity m(s) = 1 + slope·(3 − s)/2; 4 placebo splits)");
  line();
  line(`_${provenance(r.severity)}_`);
  line();
  line('| slope | light: LInCo − random | medium | heavy | Spearman ρ(band, excess) |');
  line('|---:|---:|---:|---:|---:|');
  for (const x of r.severity.rows) line(`| ${x.slope} | ${f3(x.excess.light)} | ${f3(x.excess.medium)} | ${f3(x.excess.heavy)} | ${f3(x.rho)} |`);
}

/** Section 4 (4b): one de-biasing table, from `results.debias` or `results.debiasPlain`. */
function debiasTable(b, number) {
  const cue = b.groupCuesInText ? 'region named in the fact' : 'region not in the fact';
  line();
  line(`#### ${number}. De-biasing judged against the null interval (region ${b.injected.region}, ${cue}, judges with ${b.crossGroupShare * 100} % other regions' cases; ${b.seeds} seeds × ${b.randomSplits} placebo splits; mean over seeds [95% t interval over seeds])`);
  line();
  line(`_${provenance(b)}_`);
  line();
  line('| method | encoder | LInCo term before → after | excess term before | excess term after | change of the excess | inside the null interval after |');
  line('|---|---|---|---|---|---|---|');
  for (const x of b.rows) {
    const name = x.label ?? x.method;
    line(
      `| ${name} | ${x.encoder} | ${f3(x.before.linco.term.value)} → ${f3(x.after.linco.term.value)} | ${f3(x.before.excess.term.value)} ${ci(x.before.excess.term.ci)} | ${f3(x.after.excess.term.value)} ${ci(x.after.excess.term.ci)} | ${f3(x.change.excess.term.value)} ${ci(x.change.excess.term.ci)}, p ${p3(x.change.excess.term.p)} | ${x.insideNull.after} of ${b.seeds} |`,
    );
  }
  line();
  line(`A fresh linear probe reading the region from the shared encoder (cross-entropy; ln ${d.regions.length} = ${f3(b.chance)} is chance): no adversary ${f3(b.probe.none)}, gradient reversal ${f3(b.probe.reverse)}, confusion ${f3(b.probe.confusion)}.`);
}

if (r.debias) debiasTable(r.debias, '4');
if (r.debiasPlain) debiasTable(r.debiasPlain, '4b');

if (r.multi) {
  line();
  line('#### 5. Multi-charge cases (30 % with two charges; charge sets, Jaccard disagreement; 4 placebo splits)');
  line();
  line(`_${provenance(r.multi)}_`);
  line();
  line('| injected | two-charge cases | LInCo term | excess term [95% CI] | LInCo charge (Jaccard) | random-split charge | excess charge [95% CI] | charge mode |');
  line('|---:|---:|---:|---|---:|---:|---|---:|');
  for (const x of r.multi.levels) {
    line(`| ${x.level} | ${(x.share * 100).toFixed(0)} % | ${f3(x.overall.term)} | ${f3(x.excess.overall.term)} ${ci(x.excess.ci.term)} | ${f3(x.overall.charge)} | ${f3(x.baseline.overall.charge)} | ${f3(x.excess.overall.charge)} ${ci(x.excess.ci.charge)} | ${x.charges} |`);
  }
  line();
  line(`Spearman ρ(injected, LInCo): term ${f3(r.multi.spearman.term)}, charge ${f3(r.multi.spearman.charge)}`);
}

const text = out.join('\n');
const readme = join(here, '../../packages/linco/README.md');
const begin = '<!-- validation:begin (generated by tools/linco-validation/tables.mjs from results.json) -->';
const end = '<!-- validation:end -->';
/** The README split around its generated block. */
function readmeParts() {
  const src = readFileSync(readme, 'utf8');
  const a = src.indexOf(begin);
  const z = src.indexOf(end);
  if (a < 0 || z < a) throw new Error(`${readme}: no ${begin} … ${end} block`);
  return { before: src.slice(0, a + begin.length), block: src.slice(a + begin.length, z), after: src.slice(z) };
}
const block = `\n\n${text}\n\n`;
if (process.argv.includes('--write')) {
  const { before, after } = readmeParts();
  writeFileSync(readme, `${before}${block}${after}`);
  console.log(`wrote the tables into ${readme}`);
} else if (process.argv.includes('--check')) {
  if (readmeParts().block !== block) {
    console.error(`${readme}: the validation tables differ from what results.json renders; run \`node tables.mjs --write\``);
    process.exit(1);
  }
  console.log('the README tables are those of results.json');
} else {
  console.log(text);
}
