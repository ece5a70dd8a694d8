/**
 * What scripts/install.mjs (build at install) and scripts/prebuild.mjs (the prebuilt
 * binaries packed into the tarball) share: the fingerprint of everything a build depends on,
 * and running node-gyp on a package directory.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

/** Environment variables that change what a build produces (scripts/gyp-config.cjs). */
export const BUILD_SWITCHES = ['KILN_NATIVE_PORTABLE', 'KILN_NATIVE_MARCH', 'KILN_NATIVE_PREBUILD', 'CXX', 'CXXFLAGS'];

/**
 * A hash of the sources (src/ and src/ops/), binding.gyp, the build scripts and the build
 * switches in `env`, plus `extra` strings: an unchanged fingerprint means an existing build
 * is still good.
 */
export function sourceFingerprint(root, env = process.env, extra = []) {
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
  for (const key of BUILD_SWITCHES) hash.update(`${key}=${env[key] ?? ''}\0`);
  for (const s of extra) hash.update(`${s}\0`);
  return hash.digest('hex').slice(0, 16);
}

/**
 * `node-gyp rebuild` in `dir` (a package directory with binding.gyp, src/, scripts/ and a
 * node_modules that resolves node-addon-api), against the headers installed with this Node
 * (offline; node-gyp would otherwise try to download them). Returns { ok, log, error }.
 */
export function runNodeGyp(dir, env = process.env) {
  const require = createRequire(path.join(dir, 'package.json'));
  let gypBin;
  try {
    gypBin = path.join(path.dirname(require.resolve('node-gyp/package.json')), 'bin', 'node-gyp.js');
  } catch {
    return { ok: false, log: '', error: 'node-gyp is not installed' };
  }
  const args = [gypBin, 'rebuild', `--jobs=${Math.max(1, os.availableParallelism?.() ?? os.cpus().length)}`];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const result = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', env, maxBuffer: 64 << 20 });
  const log = `${result.stdout ?? ''}\n${result.stderr ?? ''}`;
  if (result.error) return { ok: false, log, error: `node-gyp could not be run: ${result.error.message}` };
  if (result.status !== 0) {
    const firstError = log.split('\n').find((l) => /error/i.test(l) && !/gyp ERR! (cwd|node -v|node-gyp -v|System|command)/.test(l));
    return { ok: false, log, error: `node-gyp rebuild exited with ${result.status}${firstError ? `: ${firstError.trim()}` : ''}` };
  }
  const addon = path.join(dir, 'build', 'Release', 'kiln_native.node');
  if (!existsSync(addon)) return { ok: false, log, error: `node-gyp succeeded but ${addon} is missing` };
  return { ok: true, log, addon };
}
