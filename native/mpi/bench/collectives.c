/* The C side of the benchmark: MPI_Allreduce and MPI_Alltoall on float buffers, timed the
 * same way as bench/collectives.mjs (median of repeated calls after warm-up). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int runs = 21;
  for (int a = 1; a < argc; a++) {
    int n = atoi(argv[a]);
    float* in = malloc(sizeof(float) * n);
    float* out = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) in[i] = (float)i;
    double times[2][64];
    for (int kind = 0; kind < 2; kind++) {
      for (int r = -3; r < runs; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (kind == 0) MPI_Allreduce(in, out, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        else MPI_Alltoall(in, n / size, MPI_FLOAT, out, n / size, MPI_FLOAT, MPI_COMM_WORLD);
        double t = MPI_Wtime() - t0;
        if (r >= 0) times[kind][r] = t;
      }
      qsort(times[kind], runs, sizeof(double), cmp);
    }
    if (rank == 0) printf("{\"n\":%d,\"allreduce\":%.9f,\"alltoall\":%.9f}\n", n, times[0][runs / 2], times[1][runs / 2]);
    free(in);
    free(out);
  }
  MPI_Finalize();
  return 0;
}
