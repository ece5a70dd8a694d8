#!/usr/bin/env node
// Release check: pack every publishable workspace package with `pnpm pack`, lint each
// tarball with publint and attw, then install each tarball ALONE into a fresh temporary
// project and import it from both ESM and CJS. Workspace dependencies of a package are
// not on the registry yet, so npm overrides point them at their own tarballs: the package
// still gets nothing but what its package.json declares.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkNativePrebuilt } from './native-prebuilt.mjs';

const root = resolve(import.meta.dirname, '../..');
const bin = (name) => join(import.meta.dirname, 'node_modules/.bin', name);
const pnpm = ['-y', 'pnpm@12.4.2'];
const only = process.argv.slice(2);

function run(cmd, args, options = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

function workspacePackages() {
  const dirs = [];
  for (const group of ['packages', 'apps']) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) dirs.push(join(base, name));
  }
  dirs.push(join(root, 'native'), join(root, 'native', 'mpi'));
  return dirs
    .filter((dir) => existsSync(join(dir, 'package.json')))
    .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }));
}

/** The apps' commands, run from their lone installs as a user would after `npm install`. */
const APP_RUNS = {
  '@kiln/trainer': [
    ['kiln --help', ['kiln', '--help']],
    ['kiln pointcloud --preset tiny', ['kiln', 'pointcloud', '--preset', 'tiny', '--quiet']],
  ],
  '@kiln/eval-server': [['kiln-eval-server --help', ['kiln-eval-server', '--help']]],
};

function installedSize(project) {
  const kib = Number(run('du', ['-sk', join(project, 'node_modules')]).split('\t')[0]);
  return kib >= 1024 * 1024 ? `${(kib / 1024 / 1024).toFixed(1)} GiB` : `${(kib / 1024).toFixed(0)} MiB`;
}

const all = workspacePackages();
const sizes = [];
const publishable = all.filter((p) => !p.manifest.private && (only.length === 0 || only.includes(p.manifest.name)));
const work = mkdtempSync(join(tmpdir(), 'kiln-release-'));
const tarballs = new Map();
const failures = [];

console.log(`release check: ${publishable.length} publishable package(s) in ${work}`);
for (const { dir, manifest } of all.filter((p) => !p.manifest.private)) {
  const out = run('npx', [...pnpm, 'pack', '--pack-destination', work], { cwd: dir });
  const file = out.trim().split('\n').filter((l) => l.endsWith('.tgz')).at(-1);
  tarballs.set(manifest.name, file.startsWith('/') ? file : join(work, file));
}

/**
 * A consumer module for the types check. For @kiln/tensor it also uses the chained-op methods,
 * whose declarations come from a tfjs-core augmentation the bundled .d.ts must import.
 */
function consumerSource(name) {
  const base = `import * as pkg from ${JSON.stringify(name)};\nexport const names: string[] = Object.keys(pkg);\n`;
  if (name !== '@kiln/tensor') return base;
  return `${base}import { tf } from '@kiln/tensor';\nconst x: tf.Tensor = tf.ones([2, 3]);\nexport const total: tf.Scalar = x.sum();\nexport const part: tf.Tensor = x.slice([0, 1], [2, 2]).relu();\n`;
}

function internalDeps(manifest, seen = new Set()) {
  for (const field of ['dependencies', 'optionalDependencies']) {
    for (const dep of Object.keys(manifest[field] ?? {})) {
      if (!tarballs.has(dep) || seen.has(dep)) continue;
      seen.add(dep);
      const sub = all.find((p) => p.manifest.name === dep);
      if (sub) internalDeps(sub.manifest, seen);
    }
  }
  return seen;
}

for (const { manifest } of publishable) {
  const name = manifest.name;
  const tarball = tarballs.get(name);
  const step = (label, fn) => {
    try {
      fn();
      console.log(`  ok    ${label}`);
    } catch (err) {
      const detail = `${err.stdout ?? ''}${err.stderr ?? ''}` || err.message;
      console.log(`  FAIL  ${label}\n${detail.replace(/^/gm, '        ')}`);
      failures.push(`${name}: ${label}`);
    }
  };
  console.log(`\n${name}@${manifest.version}  (${tarball.split('/').at(-1)})`);
  step('publint --strict', () => run(bin('publint'), ['run', tarball, '--strict']));
  step('attw (node10, node16 CJS/ESM, bundler)', () => run(bin('attw'), [tarball, '--format', 'ascii', '--no-emoji', '--no-color']));

  const project = join(work, `install-${name.replace(/[@/]/g, '_')}`);
  mkdirSync(project, { recursive: true });
  const overrides = Object.fromEntries([...internalDeps(manifest)].map((dep) => [dep, `file:${tarballs.get(dep)}`]));
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'kiln-release-probe', version: '0.0.0', private: true, overrides }, null, 2),
  );
  step('installs alone from its tarball', () =>
    run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: project }),
  );
  const size = installedSize(project);
  sizes.push([name, size]);
  console.log(`  size  ${size} installed (node_modules, everything it pulls in)`);
  for (const [label, args] of APP_RUNS[name] ?? []) {
    let out = '';
    step(label, () => {
      out = run(join(project, 'node_modules', '.bin', args[0]), args.slice(1), { cwd: project, timeout: 600_000 });
    });
    if (out.trim()) console.log(out.trimEnd().split('\n').slice(-5).join('\n').replace(/^/gm, '        '));
  }
  if (name === '@kiln/native') checkNativePrebuilt({ tarball, work, step, run });
  const hasRoot = manifest.exports === undefined || '.' in manifest.exports || typeof manifest.exports === 'string';
  if (!hasRoot) continue;
  step('import (ESM)', () => {
    const out = run('node', ['--input-type=module', '-e', `const m = await import(${JSON.stringify(name)}); console.log(Object.keys(m).length);`], { cwd: project });
    if (Number(out.trim().split('\n').at(-1)) < 1) throw new Error(`ESM import of ${name} exported nothing`);
  });
  // consumer.cts resolves the "require" types, consumer.mts the "import" types; each is compiled
  // on its own so that one module's declarations cannot stand in for the other's.
  for (const [kind, file] of [['CJS', 'consumer.cts'], ['ESM', 'consumer.mts']]) {
    step(`types compile for a TypeScript consumer (strict, node16, ${kind})`, () => {
      writeFileSync(join(project, file), consumerSource(name));
      const config = `tsconfig.${kind}.json`;
      writeFileSync(
        join(project, config),
        JSON.stringify({
          compilerOptions: { strict: true, module: 'node16', moduleResolution: 'node16', target: 'es2022', noEmit: true, skipLibCheck: true },
          files: [file],
        }),
      );
      run(bin('tsc'), ['-p', join(project, config)]);
    });
  }
  step('require (CJS)', () => {
    const out = run('node', ['-e', `const m = require(${JSON.stringify(name)}); console.log(Object.keys(m).length);`], { cwd: project });
    if (Number(out.trim().split('\n').at(-1)) < 1) throw new Error(`CJS require of ${name} exported nothing`);
  });
}

rmSync(work, { recursive: true, force: true });
console.log(`\ninstalled size of each package alone:\n${sizes.map(([n, size]) => `  ${n.padEnd(22)} ${size}`).join('\n')}`);
if (failures.length > 0) {
  console.log(`\nrelease check failed:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
  process.exit(1);
}
console.log(`\nrelease check passed: ${publishable.length} package(s) install alone and import from ESM and CJS`);
