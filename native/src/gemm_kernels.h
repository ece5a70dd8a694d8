// The built-in GEMM's micro-kernels (internal to gemm.cc and the gemm_<isa>.cc files).
//
// A micro-kernel computes one MR x NR tile of C from a panel of A and a panel of B:
// C[rows x cols] (= or +=) A_panel[rows x kc] * B_panel[kc x NR].
//  - B panel: K step p's NR floats at b + p * b_step: packed (b_step = NR, zero-padded past
//    `cols`), or read in place from a row-major B (b_step = ldb, full panels only).
//  - A panel, one of two layouts, both cheap to pack from either storage order of A:
//      row panel: row i at a + i * kAPanelStride, its kc values contiguous (A stored m x k;
//                 a_step is 1);
//      col panel: K step p's rows values at a + p * a_step, contiguous (A stored k x m:
//                 packed with a_step = MR, or in place with a_step = lda).
// The kernels for each instruction set live in their own file, compiled with a function
// target attribute rather than a build flag, so one binary carries them all and gemm.cc
// picks the best one the CPU supports when the addon loads.
#pragma once

#include <cstdint>

namespace kiln {
namespace gemm {

// Depth of one K block; the row-panel stride leaves a cache line of slack so the rows of
// a panel do not map to the same L1 sets.
constexpr int64_t kKC = 256;
constexpr int64_t kAPanelStride = kKC + 16;

using MicroKernel = void (*)(int64_t kc, const float* a, int64_t a_step, const float* b, int64_t b_step, float* c,
                             int64_t ldc, int rows, int cols, bool accumulate);
// Packs one panel of a transposed B (B stored n x k): dst[p * nr + j] =
// b[(j0 + j) * ldb + p0 + p] for p < kc, j < cols, and zeros for cols <= j < nr.
using PackBTrans = void (*)(const float* b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int cols, int nr,
                            float* dst);

struct KernelSet {
  const char* name;  // e.g. "avx512 12x32"
  int mr, nr;
  MicroKernel row_panel;
  MicroKernel col_panel;
  PackBTrans pack_b_trans;  // nullptr: the portable scalar packer
};

// nullptr when the compiler cannot emit that instruction set (the CPU check is gemm.cc's).
const KernelSet* avx512_kernels();
const KernelSet* avx2_kernels();
// The AVX packer for transposed B (8 x 8 in-register transposes), shared by both sets.
PackBTrans avx2_pack_b_trans();

}  // namespace gemm
}  // namespace kiln
