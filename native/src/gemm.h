// Single-precision matrix multiplication for the whole addon.
//
// Row-major: C[m x n] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
// lda/ldb/ldc are row strides in elements of the matrices as stored (A is m x k when
// !trans_a, k x m when trans_a). beta == 0 overwrites C (NaNs in C do not propagate).
// Multi-threaded (OpenBLAS's threads, or the pool of parallel.h); small products and calls
// from inside a parallel_for body run the built-in kernel on the calling thread only, so
// a batch of small GEMMs can be parallelized over the batch.
#pragma once

#include <cstdint>

namespace kiln {

enum class GemmPath {
  Auto,     // per shape, whichever of Builtin and Blas measured faster (gemm_choice.h)
  Blas,     // the OpenBLAS the addon was linked with
  Builtin,  // our blocked, packed GEMM with the micro-kernel of gemm_kernel()
};

// The built-in GEMM's micro-kernel; the best one the CPU supports is chosen at load.
enum class GemmKernel { Avx512 = 0, Avx2 = 1, Portable = 2 };

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// At load: Auto when OpenBLAS is linked, else Builtin; KILN_GEMM=builtin|blas overrides.
GemmPath gemm_path();
// Returns false (and changes nothing) when asked for Blas or Auto in a build without BLAS.
bool set_gemm_path(GemmPath path);
// At load: the best supported; KILN_GEMM_KERNEL=avx2|portable asks for a lesser one.
GemmKernel gemm_kernel();
// Returns false (and changes nothing) when the CPU or the compiler lacks that kernel.
bool set_gemm_kernel(GemmKernel kernel);
bool gemm_kernel_supported(GemmKernel kernel);
bool blas_available();
// "OpenBLAS 0.3.21 ... (core SkylakeX)", or "none".
const char* blas_description();
// The name of the built-in micro-kernel in use: "avx512 12x32", "avx2 6x16" or "portable 4x16".
const char* builtin_kernel_name();

// Called when the pool size changes so the BLAS library uses the same number of threads
// (and the per-shape timings, now stale, are forgotten).
void gemm_set_threads(int n);
// Threads the BLAS library uses (0 without BLAS).
int gemm_threads();

}  // namespace kiln
