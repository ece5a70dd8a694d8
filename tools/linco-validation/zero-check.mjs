// The zero-injection check on several data sets: is the group-split LInCo indistinguishable
// from the random-split baseline when no inconsistency is injected? Also one injected level
// for power. Usage: node zero-check.mjs [splits=8] [replicates=2] [seeds=11,12,13,14] [split=permute]
import { linco } from '@kiln/linco';
import { initBackend } from '@kiln/tensor';
import { COMMON, TEST_SIZE, f3, syntheticCases } from './design.mjs';

await initBackend();
const [R = '8', S = '2', seedList = '11,12,13,14', split = 'permute', level = '0', combine = 'ensemble'] = process.argv.slice(2);
for (const seed of seedList.split(',').map(Number)) {
  const t0 = performance.now();
  const cases = syntheticCases(seed, { region: Number(level) });
  const f = await linco(cases, {
    ...COMMON,
    sampling: { groupBy: 'region', testSize: TEST_SIZE },
    baselineRepeats: Number(R),
    replicates: Number(S),
    baselineSplit: split,
    combineReplicates: combine,
  });
  const b = f.baseline;
  const inside = f.overall.term >= b.ci.term[0] && f.overall.term <= b.ci.term[1];
  const panels = b.repeats.map((r) => r.term).sort((x, y) => x - y);
  console.log(
    `seed ${seed} level ${level} ${split} S=${S} ${combine}: group ${f3(f.overall.term)} | baseline ${f3(b.overall.term)} [${f3(b.ci.term[0])}, ${f3(b.ci.term[1])}] splitSd ${b.splitSd?.term.toFixed(4)} | excess ${f3(f.excess.overall.term)} [${f3(f.excess.ci.term[0])}, ${f3(f.excess.ci.term[1])}] p ${f.excess.p?.term.toFixed(3)} | ${inside ? 'inside' : 'OUTSIDE'} | rank ${panels.filter((t) => t < f.overall.term).length}/${panels.length} | panels ${panels.map(f3).join(' ')} | charge ${f3(f.overall.charge)} vs ${f3(b.overall.charge)} | ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
}
