// Release check for @kiln/native's prebuilt binary: the tarball carries
// prebuilds/linux-x64/*.node, and it installs and loads where no C++ compiler is on PATH
// (a PATH holding only node, npm, npx and sh, which npm runs install scripts with),
// answering a small GEMM correctly.
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

const COMPILERS = ['c++', 'g++', 'gcc', 'cc', 'clang', 'clang++', 'make'];

/** A directory with just node, npm, npx and sh (no compiler, no make, no python). */
function compilerFreeBin(work) {
  const bin = join(work, 'no-compiler-bin');
  mkdirSync(bin, { recursive: true });
  const nodeDir = dirname(process.execPath);
  for (const tool of ['node', 'npm', 'npx', 'sh']) {
    const found = [nodeDir, ...(process.env.PATH ?? '').split(delimiter), '/bin'].map((d) => join(d, tool)).find((f) => existsSync(f));
    if (!found) throw new Error(`cannot find ${tool} to put on the compiler-free PATH`);
    if (!existsSync(join(bin, tool))) symlinkSync(found, join(bin, tool));
  }
  const present = COMPILERS.filter((c) => existsSync(join(bin, c)));
  if (present.length > 0) throw new Error(`${bin} unexpectedly has ${present.join(', ')}`);
  return bin;
}

/**
 * Runs the checks as `step(label, fn)` calls (check.mjs prints and counts them). `run` is
 * check.mjs's execFileSync wrapper. Skipped, and said so, off linux-x64.
 */
export function checkNativePrebuilt({ tarball, work, step, run }) {
  if (`${process.platform}-${process.arch}` !== 'linux-x64') {
    console.log(`  skip  prebuilt binary (only linux-x64 ships one; this is ${process.platform}-${process.arch})`);
    return;
  }
  step('tarball carries prebuilt linux-x64 binaries', () => {
    const listing = run('tar', ['-tzf', tarball]);
    const binaries = listing.split('\n').filter((f) => /^package\/prebuilds\/linux-x64\/kiln_native\.\w+\.node$/.test(f));
    if (binaries.length === 0) throw new Error('no package/prebuilds/linux-x64/kiln_native.*.node in the tarball');
    console.log(`        ${binaries.map((f) => f.replace('package/', '')).join(', ')}`);
  });
  const project = join(work, 'install-native-no-compiler');
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'kiln-native-probe', version: '0.0.0', private: true }, null, 2));
  let env;
  step('no C++ compiler on the install PATH', () => {
    const bin = compilerFreeBin(work);
    env = { HOME: process.env.HOME ?? work, PATH: bin, npm_config_cache: join(work, 'npm-cache') };
    const found = run('node', ['-e', `const fs = require('fs'), p = require('path'); console.log(JSON.stringify(${JSON.stringify(COMPILERS)}.filter((c) => process.env.PATH.split(p.delimiter).some((d) => fs.existsSync(p.join(d, c))))))`], {
      env,
    });
    const onPath = JSON.parse(found.trim());
    if (onPath.length > 0) throw new Error(`found ${onPath.join(', ')} on PATH ${bin}`);
  });
  if (!env) return;
  step('installs from its tarball with no compiler (uses the prebuilt binary)', () => {
    run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--foreground-scripts', tarball], { cwd: project, env });
    const record = join(project, 'node_modules', '@kiln', 'native', 'build', 'kiln-build.json');
    const status = JSON.parse(run('node', ['-e', `process.stdout.write(require('fs').readFileSync(${JSON.stringify(record)}, 'utf8'))`], { env }));
    if (!status.ok || !status.prebuilt) throw new Error(`the install did not use a prebuilt binary: ${JSON.stringify(status)}`);
    console.log(`        install record: ${status.prebuilt}`);
  });
  step('loads the prebuilt binary and multiplies correctly', () => {
    const probe = `const n = require('@kiln/native');
      const r = n.loadNative();
      if (!r.ok) throw new Error(r.reason);
      const out = new Float32Array(4);
      r.addon.matmul(Float32Array.of(1, 2, 3, 4, 5, 6), Float32Array.of(1, 0, 0, 1, 1, 1), out, 1, 1, 2, 2, 3, false, false);
      if (out.join() !== '4,5,10,11') throw new Error('matmul gave ' + out.join());
      console.log(JSON.stringify({ source: r.source, path: require('path').relative(process.cwd(), r.path), describe: n.describeNative(r.info) }));`;
    const result = JSON.parse(run('node', ['-e', probe], { cwd: project, env }).trim().split('\n').at(-1));
    if (result.source !== 'prebuilt') throw new Error(`loaded ${result.path} (${result.source}), not the prebuilt binary`);
    console.log(`        loaded ${result.path}: ${result.describe}`);
  });
  const installed = join(project, 'node_modules', '@kiln', 'native', 'build', 'Release');
  if (existsSync(installed) && readdirSync(installed).some((f) => f.endsWith('.node'))) {
    step('no source build happened', () => {
      throw new Error(`${installed} holds a compiled addon`);
    });
  }
}
