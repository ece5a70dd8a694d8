/**
 * The communicator of this process: under `mpirun` (or another MPI launcher) the MPI world
 * from the optional peer `@kiln/mpi`, otherwise a group of one.
 */
import { type Communicator, LocalCommunicator } from './communicator.js';

/** The MPI launchers' per-rank variables (Open MPI, MPICH/Hydra, PMIx). */
const LAUNCH_VARIABLES = ['OMPI_COMM_WORLD_RANK', 'PMI_RANK', 'PMIX_RANK'];

export function launchedByMpi(env: Record<string, string | undefined> = process.env): boolean {
  return LAUNCH_VARIABLES.some((v) => env[v] !== undefined);
}

/**
 * The MPI world communicator when this process was started by an MPI launcher, else a
 * `LocalCommunicator`. Under a launcher, `@kiln/mpi` must be installed and built (it is an
 * optional peer); the error says so otherwise.
 */
export async function processCommunicator(env: Record<string, string | undefined> = process.env): Promise<Communicator> {
  if (!launchedByMpi(env)) return new LocalCommunicator();
  const mpi = await loadMpi();
  return mpi.initMpi();
}

interface MpiModule {
  initMpi(): Promise<Communicator>;
  finalizeMpi(): Promise<void>;
}
let mpiModule: MpiModule | undefined;

async function loadMpi(): Promise<MpiModule> {
  if (mpiModule) return mpiModule;
  let mpi: MpiModule;
  try {
    // A variable specifier keeps bundlers from requiring the optional peer.
    const specifier = '@kiln/mpi';
    mpi = (await import(specifier)) as typeof mpi;
  } catch (err) {
    throw new Error(`started by mpirun, but @kiln/mpi could not be loaded (${(err as Error).message}); install it with Open MPI present`);
  }
  mpiModule = mpi;
  return mpi;
}

/** Finalizes MPI if `processCommunicator` initialized it; call before the process exits. */
export async function finalizeProcessCommunicator(): Promise<void> {
  await mpiModule?.finalizeMpi();
}
