/**
 * The addon's tests under AddressSanitizer and UndefinedBehaviorSanitizer (`pnpm test:sanitize`,
 * run by CI). Builds a second copy of the addon with -fsanitize=address,undefined in
 * .sanitize/ (the normal build in build/ is untouched), then runs the tests named below
 * with that build (KILN_NATIVE_ADDON) and the compiler's ASan runtime preloaded into Node,
 * which is not itself instrumented. Any out-of-bounds access, use after free or undefined
 * behaviour in the addon aborts the process, and the test that ran it fails.
 *
 *   node scripts/sanitize.mjs [test files...]     default: the fuzz, thread and pool tests
 *
 * Environment: CXX picks the compiler (its libasan is preloaded); KILN_FUZZ_SEEDS and
 * KILN_FUZZ_ITERATIONS are passed on to the fuzz test.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.join(root, '.sanitize');
const addon = path.join(work, 'build', 'Release', 'kiln_native.node');
const stamp = path.join(work, 'fingerprint');
const require = createRequire(import.meta.url);
const cxx = process.env.CXX || 'g++';

// -O1 keeps the build quick and the reports exact; recover=none makes UB fatal, not a warning.
// vptr is left out: V8 is built without RTTI, so the check misreads V8's own objects (the
// BackingStore's shared_ptr control block in pool.cc) as having an invalid vptr.
const SANITIZE =
  '-fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1';
const DEFAULT_TESTS = ['src/fuzz.test.ts', 'src/threads.test.ts', 'src/pool.test.ts'];

function die(message) {
  console.error(`sanitize: ${message}`);
  process.exit(1);
}

/** The sources, build files and flags the sanitized build is made from. */
function fingerprint() {
  const hash = createHash('sha256').update(`${SANITIZE}\0${cxx}\0${process.version}\0`);
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.(cc|h)$/.test(entry.name)) hash.update(`${path.relative(root, full)}\0`).update(readFileSync(full));
    }
  };
  walk(path.join(root, 'src'));
  hash.update(readFileSync(path.join(root, 'binding.gyp'))).update(readFileSync(path.join(root, 'scripts', 'gyp-config.cjs')));
  return hash.digest('hex').slice(0, 16);
}

function build() {
  const wanted = fingerprint();
  if (existsSync(addon) && existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) {
    console.log('sanitize: the sanitized addon is up to date');
    return;
  }
  rmSync(work, { recursive: true, force: true });
  mkdirSync(path.join(work, 'scripts'), { recursive: true });
  cpSync(path.join(root, 'binding.gyp'), path.join(work, 'binding.gyp'));
  cpSync(path.join(root, 'scripts', 'gyp-config.cjs'), path.join(work, 'scripts', 'gyp-config.cjs'));
  cpSync(path.join(root, 'src'), path.join(work, 'src'), { recursive: true, filter: (f) => !/\.(ts|mjs|md)$/.test(f) });
  // binding.gyp finds node-addon-api through require() from its own folder.
  symlinkSync(path.join(root, 'node_modules'), path.join(work, 'node_modules'));
  const gyp = path.join(path.dirname(require.resolve('node-gyp/package.json')), 'bin', 'node-gyp.js');
  const args = [gyp, 'rebuild', `--jobs=${Math.max(1, os.availableParallelism?.() ?? os.cpus().length)}`];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const started = Date.now();
  console.log(`sanitize: building the addon with ${SANITIZE}`);
  const env = { ...process.env, CXX: cxx, CXXFLAGS: SANITIZE, LDFLAGS: '-fsanitize=address,undefined' };
  const result = spawnSync(process.execPath, args, { cwd: work, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.status !== 0 || !existsSync(addon)) {
    console.error(`${result.stdout ?? ''}\n${result.stderr ?? ''}`.split('\n').slice(-60).join('\n'));
    die(`node-gyp rebuild exited with ${result.status}`);
  }
  writeFileSync(stamp, wanted);
  console.log(`sanitize: built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** The compiler's ASan runtime, which must be the first library loaded into Node. */
function asanRuntime() {
  let lib = '';
  try {
    lib = execFileSync(cxx, ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
  } catch (err) {
    die(`cannot ask ${cxx} for libasan.so: ${err.message}`);
  }
  if (!path.isAbsolute(lib) || !existsSync(lib)) die(`${cxx} has no libasan.so (got '${lib}'); install the compiler's sanitizer runtime`);
  return lib;
}

build();
const tests = process.argv.slice(2).length > 0 ? process.argv.slice(2) : DEFAULT_TESTS;
const vitest = path.join(path.dirname(require.resolve('vitest/package.json')), 'vitest.mjs');
const env = {
  ...process.env,
  KILN_NATIVE_ADDON: addon,
  LD_PRELOAD: asanRuntime(),
  // Node itself is not instrumented and never frees some of its memory: leaks are not ours
  // to report. Allocations past 2 GiB fail (the addon turns that into a JS Error) instead of
  // aborting, or taking minutes to map shadow memory when the fuzz asks for allocF32(2^31).
  ASAN_OPTIONS: 'detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=2048:abort_on_error=1:print_summary=1',
  UBSAN_OPTIONS: 'halt_on_error=1:abort_on_error=1:print_stacktrace=1',
};
console.log(`sanitize: vitest run ${tests.join(' ')} (LD_PRELOAD=${env.LD_PRELOAD})`);
const run = spawnSync(process.execPath, [vitest, 'run', ...tests], { cwd: root, env, stdio: 'inherit' });
process.exit(run.status ?? 1);
