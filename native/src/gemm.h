// Single-precision matrix multiplication for the whole addon.
//
// Row-major: C[m x n] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
// lda/ldb/ldc are row strides in elements of the matrices as stored (A is m x k when
// !trans_a, k x m when trans_a). beta == 0 overwrites C (NaNs in C do not propagate).
// Multi-threaded (OpenBLAS's threads, or the pool of parallel.h); called from inside a
// parallel_for body it runs the built-in kernel on the calling thread only, so a batch of
// small GEMMs can be parallelized over the batch.
#pragma once

#include <cstdint>

namespace kiln {

enum class GemmPath {
  Blas,      // the system BLAS the addon was linked with (OpenBLAS)
  Builtin,   // our blocked, packed GEMM with the best SIMD micro-kernel compiled in
  Portable,  // the same blocking with the plain C++ micro-kernel (no intrinsics)
};

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Which path sgemm takes. At load the addon picks Blas when linked, unless the environment
// says KILN_GEMM=builtin (or portable).
GemmPath gemm_path();
// Returns false (and changes nothing) when asked for Blas in a build without BLAS.
bool set_gemm_path(GemmPath path);
bool blas_available();
// "OpenBLAS 0.3.21 ... (core SkylakeX)", or "none".
const char* blas_description();
// The name of the built-in micro-kernel: "avx512 12x32", "avx2 6x16" or "portable 4x16".
const char* builtin_kernel_name();

// Called when the pool size changes so the BLAS library uses the same number of threads.
void gemm_set_threads(int n);
// Threads the BLAS library uses (0 without BLAS).
int gemm_threads();

}  // namespace kiln
