import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addonPath, describeNative, explainMissingAddon, loadNative, PREBUILT_LEVELS, prebuiltCandidates } from './index.js';

const loaded = loadNative();
if (!loaded.ok) throw new Error(`@kiln/native tests need the built addon: ${loaded.reason}`);
/** Runs a snippet in a fresh Node process (environment variables are read when the addon loads). */
function inChild(env: Record<string, string>, code: string): unknown {
  const script = `const a = require(${JSON.stringify(addonPath)}); ${code}`;
  const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return JSON.parse(out);
}

describe('environment overrides', () => {
  it('KILN_NUM_THREADS sizes the pool', () => {
    expect(inChild({ KILN_NUM_THREADS: '3' }, 'console.log(JSON.stringify(a.info().threads))')).toBe(3);
    if (loaded.info.blasLinked) {
      expect(inChild({ KILN_NUM_THREADS: '1' }, 'console.log(JSON.stringify(a.info().blasThreads))')).toBe(1);
    }
  });

});

describe('loader', () => {
  it('reports why when disabled, and describes a loaded addon', () => {
    expect(loadNative({ KILN_NATIVE: 'off' })).toEqual({ ok: false, reason: 'disabled by KILN_NATIVE=off' });
    expect(describeNative(loaded.info)).toMatch(/threads, \w+, GEMM/);
  });

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('offers the prebuilt binaries this CPU can run, best first', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-native-prebuilt-'));
    try {
      const prebuilds = path.join(dir, 'prebuilds', 'linux-x64');
      mkdirSync(prebuilds, { recursive: true });
      for (const level of ['v4', 'v3']) writeFileSync(path.join(prebuilds, `kiln_native.${level}.node`), '');
      const [v4, v3] = PREBUILT_LEVELS;
      const names = (flags: string[]) => prebuiltCandidates(dir, new Set(flags)).map((f) => path.basename(f));
      expect(names(v4!.flags)).toEqual(['kiln_native.v4.node', 'kiln_native.v3.node']);
      expect(names(v3!.flags)).toEqual(['kiln_native.v3.node']);
      expect(names(['sse2', 'avx'])).toEqual([]); // below x86-64-v3: build from source
      expect(names(v4!.flags.filter((f) => f !== 'avx512bw'))).toEqual(['kiln_native.v3.node']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('explains a missing addon with the recorded build failure', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-native-'));
    try {
      expect(explainMissingAddon(dir)).toMatch(/addon is not built .*kiln_native\.node is missing/);
      mkdirSync(path.join(dir, 'build'));
      writeFileSync(path.join(dir, 'build', 'kiln-build.json'), JSON.stringify({ ok: false, reason: 'node-gyp rebuild exited with 1: g++: not found' }));
      expect(explainMissingAddon(dir)).toBe('the @kiln/native build failed at install: node-gyp rebuild exited with 1: g++: not found');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a failing build never fails the install, and records why', () => {
    const pkg = path.resolve(path.dirname(addonPath), '..', '..');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-native-build-'));
    try {
      cpSync(path.join(pkg, 'scripts'), path.join(dir, 'scripts'), { recursive: true });
      cpSync(path.join(pkg, 'binding.gyp'), path.join(dir, 'binding.gyp'));
      symlinkSync(path.join(pkg, 'node_modules'), path.join(dir, 'node_modules'));
      mkdirSync(path.join(dir, 'src', 'ops'), { recursive: true });
      writeFileSync(path.join(dir, 'src', 'addon.cc'), '#error deliberately broken\n');
      // execFileSync throws on a non-zero exit: the install must exit 0.
      execFileSync(process.execPath, [path.join(dir, 'scripts', 'install.mjs')], { cwd: dir, stdio: 'pipe' });
      const status = JSON.parse(readFileSync(path.join(dir, 'build', 'kiln-build.json'), 'utf8'));
      expect(status.ok).toBe(false);
      expect(status.reason).toMatch(/node-gyp rebuild exited with/);
      expect(explainMissingAddon(dir)).toMatch(/^the @kiln\/native build failed at install: node-gyp rebuild exited/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('selects OpenBLAS SkylakeX kernels on AVX-512 machines when OPENBLAS_CORETYPE was unset', () => {
    const flags = execFileSync('cat', ['/proc/cpuinfo'], { encoding: 'utf8' });
    const avx512 = ['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => new RegExp(`\\b${f}\\b`).test(flags));
    if (!loaded.info.blasLinked || !avx512) return;
    expect(process.env.OPENBLAS_CORETYPE).toBeTruthy();
    if (process.env.OPENBLAS_CORETYPE === 'SkylakeX') expect(loaded.info.blas).toMatch(/core SkylakeX/);
  });
});
