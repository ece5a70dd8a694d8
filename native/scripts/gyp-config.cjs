'use strict';
/**
 * Answers binding.gyp's questions about this machine (gyp runs it through `<!(...)`
 * command expansion, with native/ as the working directory):
 *   blas           1 when OpenBLAS is found through pkg-config and not disabled, else 0
 *   blas-cflags    its -I flags        blas-libs   its -L/-l flags plus an rpath
 *   march          the host-SIMD flag, or nothing for the portable build
 *   ops-sources    every src/ops/*.cc (the gpu-kernels engineer's op files), space-separated
 * Environment: KILN_NATIVE_BLAS=off builds without BLAS (the built-in GEMM only);
 * KILN_NATIVE_PORTABLE=1 builds without -march=native (the portable SIMD-free path).
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function pkgConfig(args) {
  try {
    return execFileSync('pkg-config', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function blasWanted() {
  const setting = (process.env.KILN_NATIVE_BLAS ?? '').toLowerCase();
  if (setting === 'off' || setting === '0' || setting === 'false') return false;
  return pkgConfig(['--exists', 'openblas']) !== null;
}

function marchFlag() {
  if (process.env.KILN_NATIVE_PORTABLE === '1') return '';
  // Apple clang on arm64 has no -march=native; everything else we build on accepts it.
  if (process.platform === 'darwin' && process.arch === 'arm64') return '-mcpu=native';
  return '-march=native';
}

const what = process.argv[2];
let out = '';
switch (what) {
  case 'blas':
    out = blasWanted() ? '1' : '0';
    break;
  case 'blas-cflags':
    out = blasWanted() ? (pkgConfig(['--cflags', 'openblas']) ?? '') : '';
    break;
  case 'blas-libs': {
    if (!blasWanted()) break;
    const libs = pkgConfig(['--libs', 'openblas']) ?? '';
    // The -L dir is not on the loader path (Debian keeps it per threading flavour).
    const rpaths = libs
      .split(/\s+/)
      .filter((f) => f.startsWith('-L'))
      .map((f) => `-Wl,-rpath,${f.slice(2)}`);
    out = [libs, ...rpaths].join(' ');
    break;
  }
  case 'march':
    out = marchFlag();
    break;
  case 'ops-sources': {
    const dir = path.join(__dirname, '..', 'src', 'ops');
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cc')).sort() : [];
    out = files.map((f) => `src/ops/${f}`).join(' ');
    break;
  }
  default:
    process.stderr.write(`gyp-config.cjs: unknown question '${what}'\n`);
    process.exit(1);
}
process.stdout.write(out);
