/** Loading the compiled addon, with the reason when it is not there. */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Typed = Float32Array | Int32Array;

/** The addon's functions (see src/mpi_binding.cc). Handles are small integers; 0 is MPI_COMM_WORLD. */
export interface MpiBinding {
  init(options: { timeoutMs?: number; checkCollectives?: boolean }): Promise<{ comm: number; rank: number; size: number; processor: string; threadLevel: number }>;
  allreduce<T extends Typed>(comm: number, data: T, op: 'sum' | 'max' | 'min'): Promise<T>;
  allgatherv<T extends Typed>(comm: number, data: T): Promise<{ data: T; counts: Int32Array }>;
  alltoallv<T extends Typed>(comm: number, data: T, sendCounts: Int32Array): Promise<{ data: T; counts: Int32Array }>;
  broadcast<T extends Typed>(comm: number, data: T, root: number): Promise<T>;
  barrier(comm: number): Promise<void>;
  split(parent: number, members: Int32Array, groupSizes: Int32Array): Promise<{ comm: number; rank: number; size: number }>;
  finalize(): Promise<void>;
  abort(code: number, message?: string): never;
  mpiVersion: string;
  library: string;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

let loaded: { ok: true; binding: MpiBinding } | { ok: false; reason: string } | undefined;

/** The addon, or why it is unavailable (not built because Open MPI was missing, or failed to load). */
export function loadMpiBinding(): { ok: true; binding: MpiBinding } | { ok: false; reason: string } {
  if (loaded) return loaded;
  const file = join(packageRoot, 'build', 'Release', 'kiln_mpi.node');
  if (!existsSync(file)) {
    let reason = 'the MPI addon was not built';
    try {
      const report = JSON.parse(readFileSync(join(packageRoot, 'build', 'kiln-mpi-build.json'), 'utf8'));
      if (report.reason) reason += `: ${report.reason}`;
    } catch {
      reason += ' (no build report; reinstall @kiln/mpi with Open MPI installed)';
    }
    loaded = { ok: false, reason };
    return loaded;
  }
  try {
    const require = createRequire(import.meta.url);
    loaded = { ok: true, binding: require(file) as MpiBinding };
  } catch (err) {
    loaded = { ok: false, reason: `the MPI addon failed to load: ${(err as Error).message}` };
  }
  return loaded;
}
