'use strict';
/**
 * Answers binding.gyp's questions about this build (gyp runs it through `<!(...)` command
 * expansion, with native/ as the working directory):
 *   march          the target-CPU flag: -march=native, -march=$KILN_NATIVE_MARCH (the
 *                  prebuilt variants, scripts/prebuild.mjs), or nothing when
 *                  KILN_NATIVE_PORTABLE=1 (the compiler's baseline)
 *   ldflags        extra link flags: a prebuilt binary (KILN_NATIVE_PREBUILD=1) links libstdc++
 *                  and libgcc statically, so that it loads on older Linux distributions, and
 *                  is stripped
 *   ops-sources    every src/ops/*.cc (the gpu-kernels engineer's op files), space-separated
 * OpenBLAS is not a build question: the addon looks for it at run time (src/blas.h).
 */
const fs = require('node:fs');
const path = require('node:path');

function marchFlag() {
  if (process.env.KILN_NATIVE_PORTABLE === '1') return '';
  const march = process.env.KILN_NATIVE_MARCH;
  if (march) {
    if (!/^[\w.-]+$/.test(march)) throw new Error(`KILN_NATIVE_MARCH=${march} is not a -march value`);
    return `-march=${march}`;
  }
  // Apple clang on arm64 has no -march=native; everything else we build on accepts it.
  if (process.platform === 'darwin' && process.arch === 'arm64') return '-mcpu=native';
  return '-march=native';
}

const what = process.argv[2];
let out = '';
switch (what) {
  case 'ldflags':
    out = process.env.KILN_NATIVE_PREBUILD === '1' && process.platform === 'linux' ? '-static-libstdc++ -static-libgcc -s' : '';
    break;
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
