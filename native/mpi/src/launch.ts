/** Whether this process was started by an MPI launcher, and as which rank. */

/** The environment variables Open MPI, MPICH/Hydra and PMIx launchers set for each rank. */
const LAUNCHERS: [rank: string, size: string][] = [
  ['OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE'],
  ['PMI_RANK', 'PMI_SIZE'],
  ['PMIX_RANK', 'PMIX_SIZE'],
];

/** `{ rank, size }` when started by `mpirun`/`mpiexec`, else undefined. */
export function mpiLaunch(env: Record<string, string | undefined> = process.env): { rank: number; size: number } | undefined {
  for (const [rankVar, sizeVar] of LAUNCHERS) {
    const rank = env[rankVar];
    if (rank === undefined) continue;
    const size = env[sizeVar];
    return { rank: Number(rank), size: size === undefined ? Number.NaN : Number(size) };
  }
  return undefined;
}

export function launchedByMpirun(env: Record<string, string | undefined> = process.env): boolean {
  return mpiLaunch(env) !== undefined;
}
