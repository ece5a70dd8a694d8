/**
 * Builds the prebuilt binaries that the npm tarball carries (`prepack`), from this checkout's
 * sources, so that installing @kiln/native on linux-x64 needs no compiler:
 *   prebuilds/linux-x64/kiln_native.v4.node   -march=x86-64-v4 (AVX-512 F/BW/CD/DQ/VL)
 *   prebuilds/linux-x64/kiln_native.v3.node   -march=x86-64-v3 (AVX2, FMA)
 * src/index.ts loads the best one the CPU supports; on a CPU below x86-64-v3, or another
 * platform, the install builds from source. Both link libstdc++ statically and find OpenBLAS
 * at run time (src/blas.h), and the GEMM picks its micro-kernel by CPU feature at run time
 * in either. Node-API only, so one binary serves every Node version >= 20.
 * Each variant builds in a scratch copy of the package, leaving build/ (a development build)
 * alone. prebuilds/linux-x64/build.json records the source fingerprint: an unchanged one
 * skips the rebuild. Never committed: prebuilds/ is ignored by git.
 * Usage: node scripts/prebuild.mjs [--force]
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNodeGyp, sourceFingerprint } from './build-tools.mjs';

const VARIANTS = [
  { level: 'v4', march: 'x86-64-v4' },
  { level: 'v3', march: 'x86-64-v3' },
];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const target = `${process.platform}-${process.arch}`;
if (target !== 'linux-x64') {
  console.log(`@kiln/native prebuild: no prebuilt binaries for ${target}; installs there build from source`);
  process.exit(0);
}

const outDir = path.join(root, 'prebuilds', target);
const manifestFile = path.join(outDir, 'build.json');
const addonApi = JSON.parse(readFileSync(path.join(root, 'node_modules', 'node-addon-api', 'package.json'), 'utf8')).version;
const fingerprint = sourceFingerprint(root, {}, [`node-addon-api ${addonApi}`, ...VARIANTS.map((v) => v.march)]);
if (!process.argv.includes('--force') && existsSync(manifestFile)) {
  const previous = JSON.parse(readFileSync(manifestFile, 'utf8'));
  if (previous.fingerprint === fingerprint && VARIANTS.every((v) => existsSync(path.join(outDir, `kiln_native.${v.level}.node`)))) {
    console.log(`@kiln/native prebuild: ${path.relative(root, outDir)} is up to date`);
    process.exit(0);
  }
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const started = Date.now();
for (const variant of VARIANTS) {
  const scratch = mkdtempSync(path.join(os.tmpdir(), `kiln-native-${variant.level}-`));
  try {
    for (const entry of ['binding.gyp', 'package.json', 'src', 'scripts']) cpSync(path.join(root, entry), path.join(scratch, entry), { recursive: true });
    symlinkSync(path.join(root, 'node_modules'), path.join(scratch, 'node_modules'));
    const env = { ...process.env, KILN_NATIVE_MARCH: variant.march, KILN_NATIVE_PREBUILD: '1' };
    delete env.KILN_NATIVE_PORTABLE;
    const built = runNodeGyp(scratch, env);
    if (!built.ok) {
      console.error(`@kiln/native prebuild: ${variant.level} (-march=${variant.march}) failed: ${built.error}\n${built.log.split('\n').slice(-30).join('\n')}`);
      rmSync(outDir, { recursive: true, force: true });
      process.exit(1);
    }
    const file = path.join(outDir, `kiln_native.${variant.level}.node`);
    cpSync(built.addon, `${file}.tmp`);
    renameSync(`${file}.tmp`, file);
    console.log(`@kiln/native prebuild: ${path.relative(root, file)} (-march=${variant.march})`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
writeFileSync(
  manifestFile,
  `${JSON.stringify({ fingerprint, nodeAddonApi: addonApi, variants: VARIANTS, builtWith: process.version, seconds: Math.round((Date.now() - started) / 1000) }, null, 2)}\n`,
);
