/**
 * The addon in worker threads. A worker that was the only user of the addon unloads it when
 * it exits; V8 then frees the worker's remaining arrays, and those from allocF32 call back
 * into the addon. That used to be unmapped code (SIGSEGV, exit 139, the whole process):
 * the eval server died whenever an evaluation job that had used kiln-native ended.
 * Each case runs in its own Node process so that a crash fails the test instead of vitest.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { addonPath } from './index.js';

function runWorkers(body: string, workers: number): { status: number | null; signal: string | null; output: string } {
  const parent = `
    const { Worker } = require('node:worker_threads');
    const body = ${JSON.stringify(`const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(addonPath)}); const addon = m.exports;\n${body}`)};
    (async () => {
      for (let i = 0; i < ${workers}; i++) {
        const code = await new Promise((resolve) => {
          const w = new Worker(body, { eval: true });
          w.on('error', (e) => console.log('worker error: ' + e.message));
          w.on('exit', resolve);
        });
        console.log('worker ' + i + ' exited with ' + code);
      }
      console.log('parent alive');
    })();
  `;
  const r = spawnSync(process.execPath, ['-e', parent], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, signal: r.signal, output: `${r.stdout}${r.stderr}` };
}

describe('addon in worker threads', () => {
  it('survives workers that exit while holding pooled output arrays', () => {
    const r = runWorkers('globalThis.keep = Array.from({ length: 8 }, (_, i) => addon.allocF32(1024 * (i + 1)).fill(i));', 3);
    expect(r.signal, r.output).toBeNull();
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain('worker 2 exited with 0');
    expect(r.output).toContain('parent alive');
  });

  it('survives a worker that throws after using the addon, and one that calls process.exit', () => {
    const thrown = runWorkers("addon.allocF32(4096); throw new Error('job failed');", 2);
    expect(thrown.signal, thrown.output).toBeNull();
    expect(thrown.output).toContain('worker error: job failed');
    expect(thrown.output).toContain('parent alive');
    const exited = runWorkers('globalThis.keep = addon.allocF32(4096); process.exit(3);', 1);
    expect(exited.signal, exited.output).toBeNull();
    expect(exited.output).toContain('worker 0 exited with 3');
    expect(exited.output).toContain('parent alive');
  });
});
