/**
 * Builds the addon with node-gyp at `pnpm install`. A failed build must never fail the
 * install: Kiln then runs on the `cpu` backend, and the reason recorded here in
 * build/kiln-build.json is what `initBackend` reports for skipping `kiln-native`.
 * `--strict` (the `build:native` script) exits non-zero instead, for CI and development.
 * Environment: KILN_NATIVE_SKIP_BUILD=1 skips the build; KILN_NATIVE_BLAS=off and
 * KILN_NATIVE_PORTABLE=1 select the build variant (scripts/gyp-config.cjs).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');
const statusFile = path.join(root, 'build', 'kiln-build.json');

function record(status) {
  mkdirSync(path.dirname(statusFile), { recursive: true });
  const tmp = `${statusFile}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ ...status, at: new Date().toISOString(), node: process.version }, null, 2)}\n`);
  renameSync(tmp, statusFile);
}

function fail(reason, log = '') {
  record({ ok: false, reason });
  const tail = log.split('\n').slice(-30).join('\n');
  console.warn(`@kiln/native: the addon was not built: ${reason}${tail ? `\n${tail}` : ''}`);
  console.warn('@kiln/native: Kiln will use the pure-JavaScript cpu backend instead.');
  process.exit(strict ? 1 : 0);
}

if (process.env.KILN_NATIVE_SKIP_BUILD === '1') fail('the build was skipped (KILN_NATIVE_SKIP_BUILD=1)');

/**
 * Everything the build depends on: sources (src/ and src/ops/), binding.gyp, these scripts,
 * the variant switches, Node's version and the BLAS found. An unchanged fingerprint skips
 * the rebuild, so a repeated `pnpm install` costs nothing.
 */
function fingerprint() {
  const hash = createHash('sha256');
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.(cc|h|cu|cuh|gyp|gypi|cjs|mjs)$/.test(entry.name)) hash.update(`${path.relative(root, full)}\0`).update(readFileSync(full));
    }
  };
  walk(path.join(root, 'src'));
  walk(path.join(root, 'scripts'));
  hash.update(readFileSync(path.join(root, 'binding.gyp')));
  for (const key of ['KILN_NATIVE_BLAS', 'KILN_NATIVE_PORTABLE', 'CXX', 'CXXFLAGS']) hash.update(`${key}=${process.env[key] ?? ''}\0`);
  hash.update(process.version);
  const blas = spawnSync('pkg-config', ['--libs', '--cflags', 'openblas'], { encoding: 'utf8' });
  hash.update(`blas=${blas.status === 0 ? blas.stdout : 'none'}`);
  return hash.digest('hex').slice(0, 16);
}

const addonFile = path.join(root, 'build', 'Release', 'kiln_native.node');
const wanted = fingerprint();
if (!strict && existsSync(addonFile) && existsSync(statusFile)) {
  try {
    const previous = JSON.parse(readFileSync(statusFile, 'utf8'));
    if (previous.ok && previous.fingerprint === wanted) {
      console.log('@kiln/native: the addon is up to date');
      process.exit(0);
    }
  } catch {
    // rebuild
  }
}

const require = createRequire(import.meta.url);
let gypBin;
try {
  const gypPkg = require.resolve('node-gyp/package.json');
  gypBin = path.join(path.dirname(gypPkg), 'bin', 'node-gyp.js');
} catch {
  fail('node-gyp is not installed');
}

// Build against the headers installed with this Node (offline); node-gyp would otherwise
// try to download them.
const args = [gypBin, 'rebuild', `--jobs=${Math.max(1, os.availableParallelism?.() ?? os.cpus().length)}`];
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

// Several installs can run at once in one checkout (and node-gyp rebuild wipes build/):
// a lock directory serializes them; one older than 10 minutes is taken as stale.
const lockDir = path.join(root, '.build-lock');
const waitUntil = Date.now() + 10 * 60_000;
for (;;) {
  try {
    mkdirSync(lockDir);
    break;
  } catch {
    let age = 0;
    try {
      age = Date.now() - statSync(lockDir).mtimeMs;
    } catch {
      continue;
    }
    if (age > 10 * 60_000 || Date.now() > waitUntil) {
      rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
  }
}
process.on('exit', () => rmSync(lockDir, { recursive: true, force: true }));

const started = Date.now();
const result = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: process.env, maxBuffer: 64 << 20 });
const log = `${result.stdout ?? ''}\n${result.stderr ?? ''}`;
if (result.error) fail(`node-gyp could not be run: ${result.error.message}`, log);
if (result.status !== 0) {
  const firstError = log.split('\n').find((l) => /error/i.test(l) && !/gyp ERR! (cwd|node -v|node-gyp -v|System|command)/.test(l));
  fail(`node-gyp rebuild exited with ${result.status}${firstError ? `: ${firstError.trim()}` : ''}`, log);
}
const addon = path.join(root, 'build', 'Release', 'kiln_native.node');
if (!existsSync(addon)) fail(`node-gyp succeeded but ${addon} is missing`, log);
record({ ok: true, fingerprint: wanted, seconds: Math.round((Date.now() - started) / 100) / 10 });
console.log(`@kiln/native: built ${path.relative(root, addon)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
