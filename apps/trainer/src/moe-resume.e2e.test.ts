/**
 * `kiln moe train --resume`: a run killed with SIGKILL after its first checkpoint and resumed
 * ends with the weights, Adam state and loss curve of an uninterrupted run, bit for bit.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { kiln, metricRecords, spawnKiln, tempDir, waitFor } from './test-support.js';

const COMMON = ['moe', 'train', '--preset', 'tiny', '--quiet', '--steps', '16', '--checkpoint-every', '4'];

function losses(dir: string): { step: number; loss?: number }[] {
  return metricRecords(dir).map((r) => ({ step: r.step, loss: r.loss }));
}

describe('kiln moe train --resume', () => {
  it('continues a SIGKILLed run to the weights and loss curve of an uninterrupted one', async () => {
    const straight = join(tempDir(), 'straight');
    const killed = join(tempDir(), 'killed');
    const [a, run] = [kiln([...COMMON, '--out', straight]), spawnKiln([...COMMON, '--out', killed])];
    const checkpoint = join(killed, 'model.safetensors');
    await waitFor(() => existsSync(checkpoint), 60_000, 'the first checkpoint');
    run.child.kill('SIGKILL');
    const k = await run.done;
    expect(k.signal ?? k.code).toBe(k.signal ? 'SIGKILL' : 0);
    const at = Number((await loadSafetensors(checkpoint)).metadata?.step);
    expect(at).toBeGreaterThanOrEqual(4);
    const straightRun = await a;
    expect(straightRun.code, straightRun.stderr).toBe(0);

    const resumed = await kiln([...COMMON, '--out', killed, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`resuming moe train from step ${at}`);
    expect(resumed.stdout).toMatch(/done: 16 steps/);

    const x = await loadSafetensors(join(straight, 'model.safetensors'));
    const y = await loadSafetensors(join(killed, 'model.safetensors'));
    expect(y.metadata?.step).toBe('16');
    expect(Object.keys(y.tensors).sort()).toEqual(Object.keys(x.tensors).sort());
    expect(Object.keys(x.tensors).some((n) => n.startsWith('optim/'))).toBe(true);
    for (const name of Object.keys(x.tensors)) {
      expect(Array.from(y.tensors[name]!.data as Float32Array), name).toEqual(Array.from(x.tensors[name]!.data as Float32Array));
    }
    // metrics.jsonl holds each step once, as the uninterrupted run's does
    expect(losses(killed)).toEqual(losses(straight));
  }, 90_000);
});
