// The rule must fail on each kind of breach: fed a small workspace that is clean, then the same
// workspace with one deliberately wrong import or dependency at a time.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { checkBoundaries } from './boundaries.mjs';

function workspace(files) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'kiln-boundaries-'));
  const base = {
    'native/package.json': { name: '@kiln/native' },
    'native/src/index.ts': 'export const x = 1;\n',
    'packages/tensor/package.json': { name: '@kiln/tensor', dependencies: { '@kiln/native': 'workspace:^', '@tensorflow/tfjs': '4' } },
    'packages/tensor/src/index.ts': "import * as tf from '@tensorflow/tfjs';\nimport { x } from '@kiln/native';\nexport { tf, x };\n",
    'packages/gpu-kernels/package.json': { name: '@kiln/gpu-kernels', dependencies: { '@kiln/tensor': 'workspace:^' } },
    'packages/gpu-kernels/src/index.ts': "import { tf } from '@kiln/tensor';\nimport { y } from './y.js';\nexport { tf, y };\n",
    'packages/gpu-kernels/src/y.ts': 'export const y = 2;\n',
    'packages/linco/package.json': { name: '@kiln/linco', dependencies: { '@kiln/gpu-kernels': 'workspace:^', '@kiln/tensor': 'workspace:^' } },
    'packages/linco/src/index.ts': "export * from '@kiln/gpu-kernels';\n",
    'packages/moe-core/package.json': { name: '@kiln/moe-core', dependencies: { '@kiln/tensor': 'workspace:^' } },
    'packages/moe-core/src/index.ts': "export { tf } from '@kiln/tensor';\n",
    'apps/trainer/package.json': { name: '@kiln/trainer', dependencies: { '@kiln/linco': 'workspace:^' } },
    'apps/trainer/src/main.ts': "const m = await import('@kiln/linco');\nexport default m;\n",
    'tools/bench/package.json': { name: '@kiln/bench', scripts: { bench: 'node bench.mjs' }, dependencies: { '@kiln/tensor': 'workspace:^' } },
    'tools/bench/bench.mjs': "import { tf } from '@kiln/tensor';\nconsole.log(tf);\n",
  };
  for (const [rel, content] of Object.entries({ ...base, ...files })) {
    if (content === null) continue;
    const file = path.join(root, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  }
  return root;
}

function problemsOf(files) {
  const root = workspace(files);
  try {
    return checkBoundaries(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('a workspace that follows the direction passes', () => {
  assert.deepEqual(problemsOf({}), []);
});

test('a lower layer importing a higher one fails', () => {
  const problems = problemsOf({ 'packages/tensor/src/bad.ts': "import { y } from '@kiln/gpu-kernels';\nexport { y };\n" });
  assert.equal(problems.length, 1);
  assert.match(problems[0], /packages\/tensor\/src\/bad\.ts: @kiln\/tensor imports @kiln\/gpu-kernels/);
});

test('a domain package importing another domain package fails', () => {
  const problems = problemsOf({ 'packages/moe-core/src/bad.ts': "export { y } from '@kiln/linco';\n" });
  assert.equal(problems.length, 1);
  assert.match(problems[0], /@kiln\/moe-core imports @kiln\/linco/);
});

test('a dependency against the direction in package.json fails', () => {
  const problems = problemsOf({ 'packages/gpu-kernels/package.json': { name: '@kiln/gpu-kernels', dependencies: { '@kiln/tensor': 'workspace:^', '@kiln/moe-core': 'workspace:^' } } });
  assert.equal(problems.length, 1);
  assert.match(problems[0], /packages\/gpu-kernels\/package\.json: @kiln\/gpu-kernels depends on @kiln\/moe-core/);
});

test('an import of a package missing from the dependencies fails', () => {
  const problems = problemsOf({ 'packages/moe-core/src/bad.ts': "export { y } from '@kiln/gpu-kernels';\n" });
  assert.equal(problems.length, 1);
  assert.match(problems[0], /imports @kiln\/gpu-kernels, which is not in packages\/moe-core\/package\.json dependencies/);
});

test('a relative import that leaves the package fails, from a library or a tool', () => {
  const lib = problemsOf({ 'packages/linco/src/bad.ts': "export { y } from '../../gpu-kernels/src/y.js';\n" });
  assert.equal(lib.length, 1);
  assert.match(lib[0], /relative import '\.\.\/\.\.\/gpu-kernels\/src\/y\.js' leaves @kiln\/linco/);
  const tool = problemsOf({ 'tools/bench/bench.mjs': "const t = await import(path.join(here, '../../packages/tensor/dist/index.js'));\n" });
  assert.equal(tool.length, 1);
  assert.match(tool[0], /tools\/bench\/bench\.mjs: relative import/);
});

test('@tensorflow outside @kiln/tensor fails', () => {
  const problems = problemsOf({ 'packages/gpu-kernels/src/bad.ts': "import '@tensorflow/tfjs-core';\n" });
  assert.equal(problems.length, 1);
  assert.match(problems[0], /@tensorflow\/\* is imported only inside @kiln\/tensor/);
});

test('a package bench script calling into tools/ and a tool folder without package.json fail', () => {
  const script = problemsOf({ 'packages/linco/package.json': { name: '@kiln/linco', scripts: { bench: 'node ../../tools/bench/bench.mjs' }, dependencies: { '@kiln/gpu-kernels': 'workspace:^' } } });
  assert.equal(script.length, 1);
  assert.match(script[0], /script "bench" calls into tools\//);
  const loose = problemsOf({ 'tools/loose/run.mjs': "console.log('hi');\n" });
  assert.equal(loose.length, 1);
  assert.match(loose[0], /tools\/loose: scripts without a package\.json/);
});

test('the repository itself passes', () => {
  assert.deepEqual(checkBoundaries(path.resolve(import.meta.dirname, '../..')), []);
});
