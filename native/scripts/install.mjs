/**
 * Makes the addon available at `npm install` / `pnpm install`:
 *  1. When the package carries a prebuilt binary for this platform and CPU (prebuilds/,
 *     put into the npm tarball by scripts/prebuild.mjs) and it loads here, that is it: no
 *     compiler needed.
 *  2. Otherwise node-gyp builds it from source.
 * A failed build must never fail the install: Kiln then runs on the `cpu` backend, and the
 * reason recorded here in build/kiln-build.json is what `initBackend` reports for skipping
 * `kiln-native`. `--strict` (the `build:native` script) always builds from source and exits
 * non-zero on failure, for CI and development.
 * Environment: KILN_NATIVE_SKIP_BUILD=1 skips the build; KILN_NATIVE_BUILD_FROM_SOURCE=1
 * ignores prebuilt binaries (a source build targets this very CPU: -march=native);
 * KILN_NATIVE_PORTABLE=1 builds for the compiler's baseline CPU (scripts/gyp-config.cjs).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNodeGyp, sourceFingerprint } from './build-tools.mjs';

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

/** The prebuilt binary loadNative() picks here, if any loads (checked in a child process). */
function usablePrebuilt() {
  const loader = path.join(root, 'dist', 'index.cjs');
  if (!existsSync(path.join(root, 'prebuilds')) || !existsSync(loader)) return undefined;
  const probe = `const r = require(${JSON.stringify(loader)}).loadNative();
    if (!r.ok || r.source !== 'prebuilt') { console.error(r.ok ? 'not a prebuilt: ' + r.path : r.reason); process.exit(1); }
    console.log(JSON.stringify({ path: r.path }));`;
  const result = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
  if (result.status !== 0) {
    console.log(`@kiln/native: no usable prebuilt binary (${(result.stderr || result.error?.message || '').trim().split('\n')[0]}); building from source`);
    return undefined;
  }
  return JSON.parse(result.stdout.trim().split('\n').at(-1)).path;
}

if (!strict && process.env.KILN_NATIVE_BUILD_FROM_SOURCE !== '1') {
  const prebuilt = usablePrebuilt();
  if (prebuilt) {
    record({ ok: true, prebuilt: path.relative(root, prebuilt) });
    console.log(`@kiln/native: using the prebuilt ${path.relative(root, prebuilt)}`);
    process.exit(0);
  }
}

const addonFile = path.join(root, 'build', 'Release', 'kiln_native.node');
const wanted = sourceFingerprint(root, process.env, [process.version]);
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
const built = runNodeGyp(root, process.env);
if (!built.ok) fail(built.error, built.log);
record({ ok: true, fingerprint: wanted, seconds: Math.round((Date.now() - started) / 100) / 10 });
console.log(`@kiln/native: built ${path.relative(root, built.addon)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
