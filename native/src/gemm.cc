// sgemm: the system BLAS when linked, else a BLIS-style blocked GEMM. B is packed into
// KC x NR panels shared by all threads, each thread packs its own MC x KC block of A into
// MR-row panels, and a register-blocked micro-kernel multiplies one A panel by one B panel.
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#ifdef KILN_HAVE_OPENBLAS
#include <cblas.h>
extern "C" {
// Declared by OpenBLAS's cblas.h in recent versions; repeated for older headers.
void openblas_set_num_threads(int);
char* openblas_get_config(void);
char* openblas_get_corename(void);
int openblas_get_num_threads(void);
}
#endif

#include "parallel.h"

namespace kiln {
namespace {

// ---- micro-kernels: acc[MR x NR] = sum_p a[p*MR + i] * b[p*NR + j]; C += alpha * acc.

template <int MR, int NR>
void store_tile(const float* acc, float alpha, float* c, int64_t ldc, int mr, int nr) {
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) c[i * ldc + j] += alpha * acc[i * NR + j];
}

// Plain C++: the compiler vectorizes the j loop for whatever ISA it targets.
constexpr int kPortableMR = 4, kPortableNR = 16;
void kernel_portable(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, int mr, int nr) {
  float acc[kPortableMR * kPortableNR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* bp = b + p * kPortableNR;
    const float* ap = a + p * kPortableMR;
    for (int i = 0; i < kPortableMR; ++i) {
      const float av = ap[i];
      for (int j = 0; j < kPortableNR; ++j) acc[i * kPortableNR + j] += av * bp[j];
    }
  }
  store_tile<kPortableMR, kPortableNR>(acc, alpha, c, ldc, mr, nr);
}

#if defined(__AVX512F__)
constexpr int kFastMR = 12, kFastNR = 32;
constexpr const char* kFastName = "avx512 12x32";
void kernel_fast(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, int mr, int nr) {
  __m512 acc[kFastMR][2];
#pragma GCC unroll 12
  for (int i = 0; i < kFastMR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(b + p * kFastNR);
    const __m512 b1 = _mm512_loadu_ps(b + p * kFastNR + 16);
    const float* ap = a + p * kFastMR;
#pragma GCC unroll 12
    for (int i = 0; i < kFastMR; ++i) {
      const __m512 av = _mm512_set1_ps(ap[i]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (mr == kFastMR && nr == kFastNR) {
#pragma GCC unroll 12
    for (int i = 0; i < kFastMR; ++i) {
      float* ci = c + i * ldc;
      _mm512_storeu_ps(ci, _mm512_fmadd_ps(va, acc[i][0], _mm512_loadu_ps(ci)));
      _mm512_storeu_ps(ci + 16, _mm512_fmadd_ps(va, acc[i][1], _mm512_loadu_ps(ci + 16)));
    }
    return;
  }
  alignas(64) float tile[kFastMR * kFastNR];
  for (int i = 0; i < kFastMR; ++i) {
    _mm512_store_ps(tile + i * kFastNR, acc[i][0]);
    _mm512_store_ps(tile + i * kFastNR + 16, acc[i][1]);
  }
  store_tile<kFastMR, kFastNR>(tile, alpha, c, ldc, mr, nr);
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kFastMR = 6, kFastNR = 16;
constexpr const char* kFastName = "avx2 6x16";
void kernel_fast(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, int mr, int nr) {
  __m256 acc[kFastMR][2];
  for (int i = 0; i < kFastMR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b + p * kFastNR);
    const __m256 b1 = _mm256_loadu_ps(b + p * kFastNR + 8);
    const float* ap = a + p * kFastMR;
#pragma GCC unroll 6
    for (int i = 0; i < kFastMR; ++i) {
      const __m256 av = _mm256_broadcast_ss(ap + i);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
  }
  alignas(32) float tile[kFastMR * kFastNR];
  for (int i = 0; i < kFastMR; ++i) {
    _mm256_store_ps(tile + i * kFastNR, acc[i][0]);
    _mm256_store_ps(tile + i * kFastNR + 8, acc[i][1]);
  }
  store_tile<kFastMR, kFastNR>(tile, alpha, c, ldc, mr, nr);
}
#else
constexpr int kFastMR = kPortableMR, kFastNR = kPortableNR;
constexpr const char* kFastName = "portable 4x16";
void kernel_fast(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, int mr, int nr) {
  kernel_portable(kc, a, b, c, ldc, alpha, mr, nr);
}
#endif

using MicroKernel = void (*)(int64_t, const float*, const float*, float*, int64_t, float, int, int);

struct KernelSpec {
  int mr, nr;
  MicroKernel fn;
};

// Blocking: an MC x KC block of A stays in L2, a KC x NR panel of B in L1.
constexpr int64_t kKC = 384;
constexpr int64_t kMC = 240;   // multiple of 12, 6 and 4
constexpr int64_t kNC = 3072;  // multiple of 32 and 16

struct Aligned {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float, Aligned>;
Buffer alloc_floats(size_t n) {
  size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
  return Buffer(static_cast<float*>(std::aligned_alloc(64, bytes == 0 ? 64 : bytes)));
}

// op(A)[row, col] for the packed block: rows [i0, i0+mc), cols [p0, p0+kc).
void pack_a(const float* a, int64_t lda, bool trans, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr, float* out) {
  for (int64_t ir = 0; ir < mc; ir += mr) {
    const int rows = static_cast<int>(std::min<int64_t>(mr, mc - ir));
    float* panel = out + ir * kc;
    for (int64_t p = 0; p < kc; ++p) {
      float* dst = panel + p * mr;
      int i = 0;
      if (!trans) {
        for (; i < rows; ++i) dst[i] = a[(i0 + ir + i) * lda + p0 + p];
      } else {
        const float* src = a + (p0 + p) * lda + i0 + ir;
        for (; i < rows; ++i) dst[i] = src[i];
      }
      for (; i < mr; ++i) dst[i] = 0.f;
    }
  }
}

// op(B)[row, col] for rows [p0, p0+kc), cols [j0, j0+nc), as NR-column panels.
void pack_b_panel(const float* b, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j, int cols, int nr, float* dst) {
  for (int64_t p = 0; p < kc; ++p) {
    float* d = dst + p * nr;
    int jj = 0;
    if (!trans) {
      const float* src = b + (p0 + p) * ldb + j;
      for (; jj < cols; ++jj) d[jj] = src[jj];
    } else {
      for (; jj < cols; ++jj) d[jj] = b[(j + jj) * ldb + p0 + p];
    }
    for (; jj < nr; ++jj) d[jj] = 0.f;
  }
}

void scale_c(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  if (beta == 1.f) return;
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.f) {
      std::memset(row, 0, sizeof(float) * n);
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
  }
}

void blocked_sgemm(const KernelSpec& ks, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  // Scaling C by beta first lets every K block simply accumulate.
  parallel_for(0, m, std::max<int64_t>(1, 65536 / std::max<int64_t>(n, 1)),
               [&](int64_t r0, int64_t r1) { scale_c(r1 - r0, n, beta, c + r0 * ldc, ldc); });
  if (k == 0 || alpha == 0.f) return;
  const int mr = ks.mr, nr = ks.nr;
  const int threads = in_parallel_region() ? 1 : num_threads();
  // Smaller M blocks when M alone would not keep every thread busy.
  int64_t mc = std::min<int64_t>(kMC, ((m + threads - 1) / threads + mr - 1) / mr * mr);
  mc = std::max<int64_t>(mc, mr);
  const int64_t kc_max = std::min<int64_t>(kKC, k);
  const int64_t nc_max = std::min<int64_t>(kNC, (n + nr - 1) / nr * nr);
  Buffer bpack = alloc_floats(static_cast<size_t>(kc_max * nc_max));
  for (int64_t jc = 0; jc < n; jc += kNC) {
    const int64_t nc = std::min<int64_t>(kNC, n - jc);
    const int64_t npanels = (nc + nr - 1) / nr;
    for (int64_t pc = 0; pc < k; pc += kKC) {
      const int64_t kc = std::min<int64_t>(kKC, k - pc);
      float* bp = bpack.get();
      parallel_for(0, npanels, 8, [&](int64_t p0, int64_t p1) {
        for (int64_t jp = p0; jp < p1; ++jp) {
          const int64_t j = jc + jp * nr;
          pack_b_panel(b, ldb, trans_b, pc, kc, j, static_cast<int>(std::min<int64_t>(nr, jc + nc - j)), nr,
                       bp + jp * kc * nr);
        }
      });
      // Work items: (M block, N chunk) pairs; splitting N too keeps threads busy when M is small.
      const int64_t mblocks = (m + mc - 1) / mc;
      int64_t nchunks = 1;
      if (mblocks < threads * 2) nchunks = std::min<int64_t>(npanels, (threads * 2 + mblocks - 1) / mblocks);
      const int64_t panels_per_chunk = (npanels + nchunks - 1) / nchunks;
      parallel_for(0, mblocks * nchunks, 1, [&](int64_t t0, int64_t t1) {
        Buffer apack = alloc_floats(static_cast<size_t>(mc * kc));
        int64_t packed_block = -1;
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t mb = t / nchunks, nchunk = t % nchunks;
          const int64_t ic = mb * mc;
          const int64_t mcur = std::min<int64_t>(mc, m - ic);
          if (packed_block != mb) {
            pack_a(a, lda, trans_a, ic, mcur, pc, kc, mr, apack.get());
            packed_block = mb;
          }
          const int64_t jp_end = std::min<int64_t>(npanels, (nchunk + 1) * panels_per_chunk);
          for (int64_t jp = nchunk * panels_per_chunk; jp < jp_end; ++jp) {
            const int64_t j = jc + jp * nr;
            const int ncur = static_cast<int>(std::min<int64_t>(nr, jc + nc - j));
            const float* bpanel = bp + jp * kc * nr;
            for (int64_t ir = 0; ir < mcur; ir += mr) {
              const int mcur_r = static_cast<int>(std::min<int64_t>(mr, mcur - ir));
              ks.fn(kc, apack.get() + ir * kc, bpanel, c + (ic + ir) * ldc + j, ldc, alpha, mcur_r, ncur);
            }
          }
        }
      });
    }
  }
}

GemmPath initial_path() {
  const char* env = std::getenv("KILN_GEMM");
  if (env) {
    std::string v(env);
    if (v == "builtin") return GemmPath::Builtin;
    if (v == "portable") return GemmPath::Portable;
  }
#ifdef KILN_HAVE_OPENBLAS
  return GemmPath::Blas;
#else
  return GemmPath::Builtin;
#endif
}

std::atomic<GemmPath> g_path{initial_path()};

}  // namespace

GemmPath gemm_path() { return g_path.load(); }

bool set_gemm_path(GemmPath path) {
  if (path == GemmPath::Blas && !blas_available()) return false;
  g_path.store(path);
  return true;
}

bool blas_available() {
#ifdef KILN_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

const char* blas_description() {
#ifdef KILN_HAVE_OPENBLAS
  static std::string desc = [] {
    std::string s = openblas_get_config();
    s += " (core ";
    s += openblas_get_corename();
    s += ")";
    return s;
  }();
  return desc.c_str();
#else
  return "none";
#endif
}

const char* builtin_kernel_name() { return kFastName; }

void gemm_set_threads(int n) {
#ifdef KILN_HAVE_OPENBLAS
  openblas_set_num_threads(n);
#else
  (void)n;
#endif
}

int gemm_threads() {
#ifdef KILN_HAVE_OPENBLAS
  return openblas_get_num_threads();
#else
  return 0;
#endif
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  const GemmPath path = g_path.load();
#ifdef KILN_HAVE_OPENBLAS
  // Inside a parallel_for body (a batch of GEMMs split across the pool) the built-in
  // kernel runs single-threaded on the calling thread; OpenBLAS's thread count is global,
  // so it cannot be told to stay on one thread for just this call.
  if (path == GemmPath::Blas && !in_parallel_region()) {
    if (k == 0) {
      scale_c(m, n, beta, c, ldc);
      return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b,
                static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
    return;
  }
#endif
  static const KernelSpec fast{kFastMR, kFastNR, kernel_fast};
  static const KernelSpec portable{kPortableMR, kPortableNR, kernel_portable};
  blocked_sgemm(path == GemmPath::Portable ? portable : fast, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc);
}

}  // namespace kiln
