/**
 * The modules under mutation testing: those where a silent bug costs most, because its
 * output is trusted without being looked at (a checkpoint that reads back wrong, a seed that
 * no longer reproduces, a loss scaled by the wrong factor, a p-value, an auth check).
 *
 * Each entry: the workspace package it lives in, the code to mutate, and the test files that
 * are meant to catch its bugs (Stryker runs only those). `mutate` entries are files, or
 * { file, functions } to mutate only the named functions of a larger file (their line range
 * is found when the run starts, so it follows edits).
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
