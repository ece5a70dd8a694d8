/**
 * The modules under mutation testing: those where a silent bug costs most, because its
 * output is trusted without being looked at (a checkpoint that reads back wrong, a seed that
 * no longer reproduces, a loss scaled by the wrong factor, a p-value, an auth check).
 *
 * Each entry: the workspace package it lives in, the code to mutate, and the test files that
 * are meant to catch its bugs (Stryker runs only those). `mutate` entries are files, or
 * { file, functions } to mutate only the named functions of a larger file (their line range
 * is found when the run starts, so it follows edits). `equivalent` lists surviving mutants
 * judged unable to change behaviour, by file:line and replacement, with the reason; the
 * report shows the reason next to each (they still count against the score, and an entry
 * stops matching when its line moves, so a stale judgement cannot hide a new survivor).
 */
export const MODULES = [
  {
    name: 'safetensors',
    package: 'packages/tensor',
    why: 'checkpoints and their float16/bfloat16 codecs: a wrong byte reads back as a plausible weight',
    mutate: ['src/safetensors.ts', 'src/half.ts'],
    tests: ['src/safetensors.test.ts', 'src/safetensors-integers.test.ts'],
  },
  {
    name: 'rng',
    package: 'packages/tensor',
    why: 'seeded runs and resumed generator states must reproduce exactly',
    mutate: ['src/rng.ts'],
    tests: ['src/rng.test.ts', 'src/rng-pinned.test.ts'],
    equivalent: [
      { at: 'src/rng.ts:139', replacement: 'i <= n', why: 'writing out[n] of an Int32Array of length n is ignored' },
    ],
  },
  {
    name: 'serialization',
    package: 'packages/pointcloud-ssl',
    why: 'space-filling-curve orders feed every point-cloud model; a wrong bit reorders points silently',
    mutate: ['src/serialization/encode.ts', 'src/serialization/serialize.ts', 'src/serialization/sort.ts'],
    tests: ['src/serialization/encode.test.ts', 'src/serialization/serialize.test.ts'],
  },
  {
    name: 'grid-sample',
    package: 'packages/pointcloud-ssl',
    why: 'voxel downsampling: merged cells lose points without any error',
    mutate: ['src/data/grid-sample.ts'],
    tests: ['src/data/grid-sample.test.ts', 'src/data/grid-sample-cells.test.ts'],
    equivalent: [
      { at: 'src/data/grid-sample.ts:61', replacement: 's <= offset.length', why: 'a loop bound one past the end: the extra pass only reads past a typed array (undefined) and its writes fall outside it, which JavaScript ignores' },
      { at: 'src/data/grid-sample.ts:73', replacement: 'x <= mx', why: 'on a tie the minimum is unchanged' },
      { at: 'src/data/grid-sample.ts:74', replacement: 'y <= my', why: 'on a tie the minimum is unchanged' },
      { at: 'src/data/grid-sample.ts:75', replacement: 'z <= mz', why: 'on a tie the minimum is unchanged' },
      { at: 'src/data/grid-sample.ts:84', replacement: 'g[3 * p]! + 1 >= sx', why: 'on a tie the same value is assigned' },
      { at: 'src/data/grid-sample.ts:85', replacement: 'g[3 * p + 1]! + 1 >= sy', why: 'on a tie the same value is assigned' },
      { at: 'src/data/grid-sample.ts:86', replacement: 'g[3 * p + 2]! + 1 >= sz', why: 'on a tie the same value is assigned' },
      { at: 'src/data/grid-sample.ts:93', replacement: 'p <= end', why: "the extra key is the next scene's first point's, recomputed by that scene before use" },
      { at: 'src/data/grid-sample.ts:118', replacement: 'c <= cells', why: 'a loop bound one past the end: the extra pass only reads past a typed array (undefined) and its writes fall outside it, which JavaScript ignores' },
      { at: 'src/data/grid-sample.ts:121', replacement: 'count >= maxCount', why: 'on a tie the maximum is unchanged' },
      { at: 'src/data/grid-sample.ts:133', replacement: 's <= offset.length', why: 'a loop bound one past the end: the extra pass only reads past a typed array (undefined) and its writes fall outside it, which JavaScript ignores' },
      { at: 'src/data/grid-sample.ts:151', replacement: 's <= sizes.length', why: 'a loop bound one past the end: the extra pass only reads past a typed array (undefined) and its writes fall outside it, which JavaScript ignores' },
      { at: 'src/data/grid-sample.ts:164', replacement: 'p <= inverse.length', why: 'a loop bound one past the end: the extra pass only reads past a typed array (undefined) and its writes fall outside it, which JavaScript ignores' },
      { at: 'src/data/grid-sample.ts:166', replacement: 'k <= width', why: "the extra write lands on the next point's first value, which the next pass overwrites (or past the end)" },
    ],
  },
  {
    name: 'moe-router',
    package: 'packages/moe-core',
    why: 'top-k routing, score functions and expert bias decide where every token goes',
    mutate: ['src/router/routing.ts', 'src/router/select.ts', 'src/router/expert-bias.ts', 'src/router/sinkhorn.ts'],
    tests: [
      'src/router/routing.test.ts',
      'src/router/router.test.ts',
      'src/router/edge.test.ts',
      'src/router/sinkhorn.test.ts',
    ],
  },
  {
    name: 'moe-losses',
    package: 'packages/moe-core',
    why: 'auxiliary losses are added to the training loss; a wrong factor trains a different model',
    mutate: ['src/losses/load-balancing.ts', 'src/losses/z-loss.ts', 'src/losses/auto-scaler.ts'],
    tests: ['src/losses/losses.test.ts', 'src/losses/sequence-aux-parallel.test.ts', 'src/losses/losses-edges.test.ts'],
    equivalent: [
      { at: 'src/losses/load-balancing.ts:49', replacement: '+1', why: 'the mask is 1-D, so axis +1 and axis -1 of expandDims are the same axis' },
      { at: 'src/losses/load-balancing.ts:115', replacement: 'i <= this.numExperts', why: 'a loop bound one past the end: the extra pass only reads past a typed array (undefined) and its writes fall outside it, which JavaScript ignores' },
      { at: 'src/losses/load-balancing.ts:124', replacement: 'i <= this.numExperts', why: 'a loop bound one past the end: the extra pass only reads past a typed array (undefined) and its writes fall outside it, which JavaScript ignores' },
      { at: 'src/losses/z-loss.ts:12', replacement: 'true', why: 'tfjs logSumExp upcasts int32 logits to float32 itself (exp gives float32, add upcasts), so skipping the cast gives the same values' },
      { at: 'src/losses/z-loss.ts:12', replacement: 'false', why: 'casting float32 logits to float32 is a copy' },
      { at: 'src/losses/z-loss.ts:12', replacement: "logits.dtype !== 'float32'", why: 'the two cases above together' },
      { at: 'src/losses/z-loss.ts:13', replacement: '+1', why: 'logits are 2-D, so axis +1 and axis -1 are the same axis' },
    ],
  },
  {
    name: 'moe-capacity',
    package: 'packages/moe-core',
    why: 'capacity decides which tokens are dropped',
    mutate: ['src/capacity/capacity.ts'],
    tests: ['src/capacity/capacity.test.ts'],
  },
  {
    name: 'linco-stats',
    package: 'packages/linco',
    why: 'bootstrap intervals and p-values are reported as findings',
    mutate: ['src/stats.ts'],
    tests: ['src/stats.test.ts', 'src/stats-reference.test.ts'],
  },
  {
    name: 'linco-metric',
    package: 'packages/linco',
    why: 'the coefficient itself',
    mutate: ['src/metric.ts'],
    tests: ['src/metric.test.ts'],
  },
  {
    name: 'eval-server-auth-schemas',
    package: 'apps/eval-server',
    why: 'who may write, and what may be stored',
    mutate: ['src/schemas.ts', { file: 'src/server.ts', functions: ['tokenMatches'] }],
    tests: ['src/auth-schemas.test.ts'],
  },
  {
    name: 'trainer-resume',
    package: 'apps/trainer',
    why: 'a resumed run must continue the interrupted one exactly',
    mutate: ['src/harness/checkpoint.ts', 'src/harness/optimizer-state.ts'],
    tests: ['src/harness/checkpoint.test.ts'],
  },
];
