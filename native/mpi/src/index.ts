/**
 * @kiln/mpi — Open MPI for Kiln: non-blocking collectives on Float32Array/Int32Array that
 * resolve promises without blocking Node's event loop, sub-communicators from rank lists,
 * and a communicator shaped like @kiln/moe-core's `Communicator`.
 */
import { loadMpiBinding } from './binding.js';
import { type OnCollectiveError, MpiCommunicator } from './communicator.js';
import { launchedByMpirun } from './launch.js';

export { loadMpiBinding } from './binding.js';
export type { MpiBinding } from './binding.js';
export { MpiCommunicator } from './communicator.js';
export type { OnCollectiveError, ReduceOp } from './communicator.js';
export { launchedByMpirun, mpiLaunch } from './launch.js';

export interface InitMpiOptions {
  /** A collective that has not completed after this long fails (default 60 s, or KILN_MPI_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Exchange a fingerprint before each collective to name mismatches (default true). */
  checkCollectives?: boolean;
  /** On a failed collective: `abort` ends every rank (default under mpirun), `throw` rejects. */
  onError?: OnCollectiveError;
}

let world: Promise<MpiCommunicator> | undefined;

/** Initializes MPI once per process and returns the world communicator. */
export function initMpi(options: InitMpiOptions = {}): Promise<MpiCommunicator> {
  world ??= (async () => {
    const loaded = loadMpiBinding();
    if (!loaded.ok) throw new Error(`@kiln/mpi: ${loaded.reason}`);
    const envTimeout = Number(process.env.KILN_MPI_TIMEOUT_MS);
    const timeoutMs = options.timeoutMs ?? (Number.isFinite(envTimeout) && envTimeout > 0 ? envTimeout : 60_000);
    const info = await loaded.binding.init({ timeoutMs, checkCollectives: options.checkCollectives ?? true });
    const onError = options.onError ?? (launchedByMpirun() ? 'abort' : 'throw');
    return new MpiCommunicator(loaded.binding, info.comm, info.rank, info.size, onError);
  })();
  return world;
}

/** Finalizes MPI (after every collective has settled); the process may then exit. */
export async function finalizeMpi(): Promise<void> {
  if (!world) return;
  await world;
  const loaded = loadMpiBinding();
  if (loaded.ok) await loaded.binding.finalize();
}
