/**
 * The backend a package's test suite runs on. Suites run on `cpu` by default; CI runs the
 * parts that make sense on a GPU backend a second time with `KILN_TEST_BACKEND=webgpu`
 * (each package's `test:webgpu` script), so the same tests check the WebGPU kernels and
 * that no step reads the device synchronously.
 */
import { initBackend } from './backends.js';
import { probeWebGpu } from './webgpu.js';

/** The environment variable naming the backend under test. */
export const TEST_BACKEND_ENV = 'KILN_TEST_BACKEND';

/** The backend under test: `KILN_TEST_BACKEND`, or `cpu` when unset. */
export function testBackendName(env: Record<string, string | undefined> = process.env): string {
  return env[TEST_BACKEND_ENV]?.trim() || 'cpu';
}

/**
 * Activates the backend under test (call it in a suite's `beforeAll` instead of
 * `tf.setBackend('cpu')`); resolves to its name. Throws when it cannot be used: a suite
 * run on a backend that is missing is skipped by its vitest config, not here.
 */
export async function initTestBackend(env: Record<string, string | undefined> = process.env): Promise<string> {
  const name = testBackendName(env);
  await initBackend({ env: { KILN_BACKEND: name } });
  return name;
}

/**
 * For vitest configs: whether the backend under test can run on this machine. A missing
 * WebGPU adapter is not a failure — the suite is skipped and the reason printed, so the log
 * shows what did not run.
 */
export async function testBackendAvailable(env: Record<string, string | undefined> = process.env): Promise<boolean> {
  const name = testBackendName(env);
  if (name !== 'webgpu') return true;
  const found = await probeWebGpu();
  if ('reason' in found) {
    console.log(`[skip] ${TEST_BACKEND_ENV}=webgpu: the WebGPU test pass is skipped: ${found.reason}`);
    return false;
  }
  return true;
}

/**
 * For vitest configs: which test files run. On `cpu` (no `KILN_TEST_BACKEND`) every suite
 * runs (`undefined`: vitest's default); on a GPU backend only `gpuSuites`, the suites that
 * exercise ops and training steps; where that backend is missing, none, with the reason
 * printed.
 */
export async function suitesForTestBackend(gpuSuites: string[], env: Record<string, string | undefined> = process.env): Promise<string[] | undefined> {
  if (testBackendName(env) === 'cpu') return undefined;
  return (await testBackendAvailable(env)) ? gpuSuites : [];
}
