/**
 * `kiln` as a hostile or unlucky user meets it: an eval server that restarts mid-run, tokens
 * missing, wrong or under the old variable name, `--resume` with nothing to resume, an
 * output directory that is a file or not writable, config keys that name built-in object
 * properties. Each ends in a clear line and the right exit code, and no metric is lost.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kiln, spawnKiln, startFakeEvalServer, tempDir, waitFor } from './test-support.js';

const TINY = ['--preset', 'tiny', '--quiet'];
const NO_TOKEN_ENV = { KILN_EVAL_TOKEN: '', KILN_TOKEN: '' };

describe('kiln → an eval server that goes away', () => {
  it('an 800-step run across a server restart delivers all 800 points, each once', async () => {
    const fake = await startFakeEvalServer({ token: 'sekret-token' });
    try {
      const out = join(tempDir(), 'r');
      const run = spawnKiln(['regress', ...TINY, '--steps', '800', '--out', out, '--server', fake.url, '--token', 'sekret-token'], NO_TOKEN_ENV);
      await waitFor(() => fake.stored.length > 0, 60_000, 'the first metrics batch');
      await fake.down(3000);
      const r = await run.done;
      expect(r.code, r.stderr).toBe(0);
      const loss = fake.stored.filter((p) => p.name === 'loss').map((p) => p.step);
      expect(loss).toEqual(Array.from({ length: 800 }, (_, i) => i + 1));
      expect(fake.stored.filter((p) => p.name === 'final/mse')).toHaveLength(1);
      expect(r.stderr).toContain('retrying in the background');
      expect(r.stderr).toContain('answers again after');
    } finally {
      fake.close();
    }
  });
});

describe('the token', () => {
  it('--server without a token is a usage error, before any training', async () => {
    const r = await kiln(['regress', ...TINY, '--steps', '3', '--out', join(tempDir(), 'r'), '--server', 'http://127.0.0.1:9'], NO_TOKEN_ENV);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("kiln: --server needs the eval server's token: --token TOKEN or KILN_EVAL_TOKEN");
  });

  it('reads KILN_EVAL_TOKEN (the server\'s variable), and KILN_TOKEN with a warning', async () => {
    const fake = await startFakeEvalServer({ token: 'env-token-0123456789' });
    try {
      const viaEnv = await kiln(['regress', ...TINY, '--steps', '3', '--out', join(tempDir(), 'r'), '--server', fake.url], { KILN_EVAL_TOKEN: 'env-token-0123456789', KILN_TOKEN: '' });
      expect(viaEnv.code, viaEnv.stderr).toBe(0);
      expect(viaEnv.stderr).not.toContain('warning');
      const old = await kiln(['regress', ...TINY, '--steps', '3', '--out', join(tempDir(), 'r'), '--server', fake.url], { KILN_EVAL_TOKEN: '', KILN_TOKEN: 'env-token-0123456789' });
      expect(old.code, old.stderr).toBe(0);
      expect(old.stderr).toContain('warning: KILN_TOKEN is read for compatibility; set KILN_EVAL_TOKEN instead');
      expect(fake.requests.every((q) => q.auth === 'Bearer env-token-0123456789')).toBe(true);
      expect(fake.stored.filter((p) => p.name === 'loss')).toHaveLength(6);
    } finally {
      fake.close();
    }
  });

  it('a token the server refuses stops the command at once with exit 2', async () => {
    const fake = await startFakeEvalServer({ token: 'right-token-0123456789' });
    try {
      const out = join(tempDir(), 'r');
      const r = await kiln(['regress', ...TINY, '--steps', '3', '--out', out, '--server', fake.url, '--token', 'wrong-token-0123456789']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`kiln: the eval server at ${fake.url} refused the token (HTTP 401)`);
    } finally {
      fake.close();
    }
  });
});

describe('usage errors instead of surprises', () => {
  it('--resume with nothing to resume is exit 2, not a fresh run', async () => {
    const regress = await kiln(['regress', ...TINY, '--steps', '3', '--out', join(tempDir(), 'empty'), '--resume']);
    expect(regress.code).toBe(2);
    expect(regress.stderr).toMatch(/--resume: nothing to resume in .*empty \(no checkpoint\.safetensors\); run without --resume to start/);
    for (const command of [['pointcloud'], ['pointcloud', 'pretrain'], ['pointcloud', 'finetune']]) {
      const out = join(tempDir(), 'empty-pc');
      const r = await kiln([...command, ...TINY, '--out', out, '--resume']);
      expect(r.code, command.join(' ')).toBe(2);
      expect(r.stderr, command.join(' ')).toContain(`--resume: nothing to resume in ${out}`);
      expect(r.stdout, command.join(' ')).not.toContain('mIoU');
    }
  });

  it('an output directory that is a file, or not writable, is named with the reason', async () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'x');
    const isFile = await kiln(['regress', ...TINY, '--steps', '3', '--out', file]);
    expect(isFile.code).toBe(2);
    expect(isFile.stderr).toContain(`--out ${file}: a file is in the way`);
    expect(isFile.stderr).not.toMatch(/\n\s+at /);
    const under = await kiln(['pointcloud', ...TINY, '--out', join(file, 'sub')]);
    expect(under.code).toBe(2);
    expect(under.stderr).toContain('a file is in the way');

    // Not writable: as root, permissions do not stop writes, so run kiln as nobody.
    const root = tempDir();
    chmodSync(root, 0o755);
    const readOnly = join(root, 'ro');
    mkdirSync(readOnly);
    chmodSync(readOnly, 0o555);
    const nobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;
    const r = await kiln(['regress', ...TINY, '--steps', '3', '--out', readOnly], { HOME: root }, nobody);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`--out ${readOnly} is not writable (EACCES: permission denied); choose another --out`);
    expect(r.stderr).not.toContain('ENOENT');
  });

  it('config file keys that name built-in object properties are unknown keys (exit 2)', async () => {
    for (const key of ['toString', '__proto__', 'constructor']) {
      const file = join(tempDir(), 'c.json');
      writeFileSync(file, `{"steps": 3, "${key}": {"x": 1}}`);
      const r = await kiln(['regress', ...TINY, '--config', file, '--out', join(tempDir(), 'r')]);
      expect(r.code, key).toBe(2);
      expect(r.stderr, key).toContain(`config key '${key}' in ${file} is not known`);
    }
  });
});
