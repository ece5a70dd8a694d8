/**
 * Backend selection: the best backend this machine can run, best first, with the reason
 * each better one was passed over. Order and rationale: docs/architecture.md, "Backends".
 */
import { tf } from './tf.js';
import { registerNativeBackend } from './native-backend.js';
import { registerWebGpuBackend } from './webgpu.js';

/** One backend Kiln knows how to bring up. */
export interface BackendCandidate {
  name: string;
  /**
   * Makes the backend registered with tfjs. Resolves to a reason when it cannot be used.
   * `explicit` is true when the user asked for this backend by name, which lets a backend
   * that is usable but slow here (WebGPU on a software rasterizer) be chosen anyway.
   */
  prepare(explicit: boolean): Promise<{ ok: true; detail?: string } | { ok: false; reason: string }>;
}

export interface InitBackendOptions {
  /** Backend(s) to try before the default order; when unavailable the default order follows. */
  prefer?: string | readonly string[];
  /** Environment to read `KILN_BACKEND` from; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
}

export interface BackendChoice {
  /** The tfjs backend now active. */
  name: string;
  /** What the chosen backend said about itself (adapter, thread count, ...). */
  detail?: string;
  /** Each better backend that was passed over, in order, with why. */
  skipped: { name: string; reason: string }[];
}

/** Thrown when `KILN_BACKEND` names a backend that cannot be used here. */
export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError';
}

const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

const tensorflowCandidate: BackendCandidate = {
  name: 'tensorflow',
  async prepare() {
    const failures: string[] = [];
    for (const pkg of TFJS_NODE_PACKAGES) {
      try {
        // A variable specifier keeps bundlers and type checkers from requiring the optional peer.
        const specifier: string = pkg;
        await import(specifier);
        if (tf.findBackendFactory('tensorflow')) return { ok: true, detail: pkg };
        failures.push(`${pkg} loaded but registered no 'tensorflow' backend`);
      } catch (err) {
        const code = (err as { code?: string }).code;
        failures.push(
          code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
            ? `${pkg} is not installed`
            : `${pkg} failed to load: ${(err as Error).message.split('\n')[0]}`,
        );
      }
    }
    return { ok: false, reason: `${failures.join('; ')} (optional peers; install one to use libtensorflow)` };
  },
};

const webgpuCandidate: BackendCandidate = {
  name: 'webgpu',
  async prepare(explicit) {
    const found = await registerWebGpuBackend();
    if ('reason' in found) return { ok: false, reason: found.reason };
    const { summary } = found;
    const detail = `${summary.vendor} ${summary.architecture}${summary.description ? ` (${summary.description})` : ''}`;
    if (summary.software && !explicit) {
      return {
        ok: false,
        reason: `the only adapter is a software rasterizer (${detail}), slower than the CPU backends; ask for it with KILN_BACKEND=webgpu or prefer: 'webgpu'`,
      };
    }
    return { ok: true, detail };
  },
};

const nativeCandidate: BackendCandidate = {
  name: 'kiln-native',
  async prepare() {
    // The reason says why the addon could not load (not installed, build failed, ...).
    return registerNativeBackend();
  },
};

const cpuCandidate: BackendCandidate = {
  name: 'cpu',
  async prepare() {
    return { ok: true, detail: 'tfjs-backend-cpu (pure JavaScript)' };
  },
};

/** The default order, best first. */
export const backendCandidates: BackendCandidate[] = [tensorflowCandidate, webgpuCandidate, nativeCandidate, cpuCandidate];

/** Names of every backend `initBackend` can bring up, best first. */
export function knownBackends(): string[] {
  return backendCandidates.map((c) => c.name);
}

async function activate(candidate: BackendCandidate, explicit: boolean): Promise<{ ok: true; detail?: string } | { ok: false; reason: string }> {
  let prepared: Awaited<ReturnType<BackendCandidate['prepare']>>;
  try {
    prepared = await candidate.prepare(explicit);
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  if (!prepared.ok) return prepared;
  try {
    if (!(await tf.setBackend(candidate.name))) {
      return { ok: false, reason: `tfjs could not initialize the '${candidate.name}' backend` };
    }
    // tfjs's CPU backend greets Node users with advice to install tfjs-node; Kiln reports
    // its own backend choice instead.
    const backend = tf.backend() as { firstUse?: boolean };
    if (backend.firstUse) backend.firstUse = false;
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  return prepared;
}

function findCandidate(name: string): BackendCandidate {
  const candidate = backendCandidates.find((c) => c.name === name);
  if (!candidate) {
    throw new BackendUnavailableError(`unknown backend '${name}'; known backends: ${knownBackends().join(', ')}`);
  }
  return candidate;
}

/**
 * Picks and activates the best available backend.
 *
 * `KILN_BACKEND` (when set) is obeyed strictly: that backend or an error saying why not.
 * Otherwise the `prefer`red backends are tried first, then the default order
 * (tensorflow, webgpu, kiln-native, cpu); each one passed over is reported with its reason.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendChoice> {
  const env = options.env ?? process.env;
  const forced = env.KILN_BACKEND?.trim();
  if (forced) {
    const result = await activate(findCandidate(forced), true);
    if (!result.ok) throw new BackendUnavailableError(`KILN_BACKEND=${forced} cannot be used: ${result.reason}`);
    return { name: forced, detail: result.detail, skipped: [] };
  }
  const preferred = options.prefer === undefined ? [] : typeof options.prefer === 'string' ? [options.prefer] : [...options.prefer];
  const order = [...preferred.map(findCandidate), ...backendCandidates.filter((c) => !preferred.includes(c.name))];
  const skipped: BackendChoice['skipped'] = [];
  for (const candidate of order) {
    const result = await activate(candidate, preferred.includes(candidate.name));
    if (result.ok) return { name: candidate.name, detail: result.detail, skipped };
    skipped.push({ name: candidate.name, reason: result.reason });
  }
  // cpu never refuses, so this is reached only if tfjs itself is broken.
  throw new BackendUnavailableError(`no backend could be initialized: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

/** One line for logs: `backend kiln-native (…); skipped tensorflow: …`. */
export function describeBackendChoice(choice: BackendChoice): string {
  const head = `backend ${choice.name}${choice.detail ? ` (${choice.detail})` : ''}`;
  if (choice.skipped.length === 0) return head;
  return `${head}; skipped ${choice.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`;
}
