import { afterAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError, describeBackendChoice, initBackend, knownBackends } from './backends.js';
import { tf } from './tf.js';
import { webGpuAvailable } from './test-support.js';

const hasWebGpu = await webGpuAvailable();

describe('initBackend', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('lists backends best first, ending with cpu', () => {
    const names = knownBackends();
    expect(names[0]).toBe('tensorflow');
    expect(names.indexOf('webgpu')).toBeLessThan(names.indexOf('cpu'));
    expect(names.at(-1)).toBe('cpu');
  });

  it('skips the optional tfjs-node peers with the reason', async () => {
    const choice = await initBackend({ env: {} });
    const tensorflow = choice.skipped.find((s) => s.name === 'tensorflow');
    expect(tensorflow?.reason).toMatch(/@tensorflow\/tfjs-node-gpu is not installed/);
    expect(tensorflow?.reason).toMatch(/@tensorflow\/tfjs-node is not installed/);
    expect(tf.getBackend()).toBe(choice.name);
    expect(describeBackendChoice(choice)).toContain(`backend ${choice.name}`);
  });

  it('passes over a software WebGPU adapter unless asked for it', async () => {
    const choice = await initBackend({ env: {} });
    const webgpu = choice.skipped.find((s) => s.name === 'webgpu');
    if (choice.name === 'webgpu') return; // a hardware adapter is the better choice
    expect(webgpu?.reason).toMatch(/software rasterizer|could not be loaded|no adapter/);
  });

  it('honours KILN_BACKEND strictly', async () => {
    const choice = await initBackend({ env: { KILN_BACKEND: 'cpu' }, prefer: 'webgpu' });
    expect(choice).toEqual({ name: 'cpu', detail: expect.any(String), skipped: [] });
    expect(tf.getBackend()).toBe('cpu');
    await expect(initBackend({ env: { KILN_BACKEND: 'nonesuch' } })).rejects.toThrow(/unknown backend 'nonesuch'; known backends: tensorflow/);
    await expect(initBackend({ env: { KILN_BACKEND: 'tensorflow' } })).rejects.toThrow(BackendUnavailableError);
    await expect(initBackend({ env: { KILN_BACKEND: 'tensorflow' } })).rejects.toThrow(/KILN_BACKEND=tensorflow cannot be used: .*not installed/);
  });

  it('falls back from an unavailable preferred backend and says why', async () => {
    const choice = await initBackend({ env: {}, prefer: 'tensorflow' });
    expect(choice.skipped[0]?.name).toBe('tensorflow');
    expect(choice.name).not.toBe('tensorflow');
  });

  it.skipIf(!hasWebGpu)('chooses webgpu when preferred and an adapter exists', async () => {
    const choice = await initBackend({ env: {}, prefer: 'webgpu' });
    expect(choice.name).toBe('webgpu');
    expect(tf.getBackend()).toBe('webgpu');
    const y = tf.matMul(tf.ones([4, 8]), tf.ones([8, 2]));
    expect(Array.from(await y.data())).toEqual(new Array(8).fill(8));
  });

  it.skipIf(!hasWebGpu)('asks the adapter for its storage-buffer limit: a program with 10 bindings runs', async () => {
    await initBackend({ env: { KILN_BACKEND: 'webgpu' } });
    const limits = (tf.backend() as unknown as { device: { limits: { maxStorageBuffersPerShaderStage: number } } }).device.limits;
    expect(limits.maxStorageBuffersPerShaderStage).toBeGreaterThan(8);
    // tfjs's AddN binds every input plus the output: 9 + 1 buffers (computed on the device).
    const xs = Array.from({ length: 9 }, (_, i) => tf.fill([1000], i + 1));
    expect(Array.from(await tf.addN(xs).data()).slice(0, 2)).toEqual([45, 45]);
  });
});
