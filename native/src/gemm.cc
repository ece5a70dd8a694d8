// sgemm: a BLIS-style blocked GEMM with run-time selected SIMD micro-kernels
// (gemm_kernels.h), and, where OpenBLAS is found (blas.h), a per-shape choice between the
// two made by timing both on the first calls of each shape (gemm_choice.h).
//
// Blocking, for K blocks of depth KC: op(B) is packed once per call into KC x NR panels
// shared by all threads (or read in place when M is too small to repay the copy); the work
// is split into items of (MC rows of C) x (a run of B panels) x (a slice of K), handed out
// dynamically (Plan); for each K block an item copies its MC x KC block of a non-transposed
// A into row panels of a per-thread buffer (a transposed A is read in place) and runs the
// micro-kernel over every (A micro-panel, B panel) pair, A micro-panel outermost so it
// stays in L1 while the item's B panels stream from L2. Every K block of an item runs on
// the same thread, so the first one writes C (beta == 0 needs no separate pass) and the
// rest accumulate.
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "blas.h"
#include "gemm_choice.h"
#include "gemm_kernels.h"
#include "parallel.h"

namespace kiln {
namespace {

using gemm::kAPanelStride;
using gemm::kKC;
using gemm::KernelSet;

// ---- the plain C++ kernel (any CPU; the compiler vectorizes the j loop for its target)

constexpr int kPortableMR = 4, kPortableNR = 16;

template <int64_t RS>
void portable_kernel(int64_t kc, const float* a, int64_t a_step, const float* b, int64_t b_step, float* c, int64_t ldc,
                     int rows, int cols, bool accumulate) {
  float acc[kPortableMR][kPortableNR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* bp = b + p * b_step;
    const float* ap = a + p * a_step;
    for (int i = 0; i < rows; ++i) {
      const float av = ap[i * RS];
      for (int j = 0; j < kPortableNR; ++j) acc[i][j] += av * bp[j];
    }
  }
  for (int i = 0; i < rows; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < cols; ++j) ci[j] = accumulate ? ci[j] + acc[i][j] : acc[i][j];
  }
}

void portable_pack_b_trans(const float* b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int cols, int nr,
                           float* dst) {
  for (int64_t p = 0; p < kc; ++p) {
    float* d = dst + p * nr;
    int j = 0;
    for (; j < cols; ++j) d[j] = b[(j0 + j) * ldb + p0 + p];
    for (; j < nr; ++j) d[j] = 0.f;
  }
}

const KernelSet kPortable{"portable 4x16", kPortableMR, kPortableNR, portable_kernel<kAPanelStride>,
                          portable_kernel<1>, portable_pack_b_trans};

// ---- kernel selection

bool cpu_has_avx512() {
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
         __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool cpu_has_avx2() {
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const KernelSet* kernel_set(GemmKernel which) {
  switch (which) {
    case GemmKernel::Avx512: return cpu_has_avx512() ? gemm::avx512_kernels() : nullptr;
    case GemmKernel::Avx2: return cpu_has_avx2() ? gemm::avx2_kernels() : nullptr;
    case GemmKernel::Portable: return &kPortable;
  }
  return nullptr;
}

GemmKernel best_kernel() {
  if (kernel_set(GemmKernel::Avx512)) return GemmKernel::Avx512;
  if (kernel_set(GemmKernel::Avx2)) return GemmKernel::Avx2;
  return GemmKernel::Portable;
}

// ---- packing

// 64-byte aligned scratch that only grows; one per thread, so packing never allocates
// (and never page-faults) once a thread has seen its largest GEMM.
struct Scratch {
  float* data = nullptr;
  size_t capacity = 0;
  float* get(size_t n) {
    if (n > capacity) {
      std::free(data);
      const size_t bytes = ((std::max<size_t>(n, 1024) * sizeof(float) + 63) / 64) * 64;
      data = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!data) throw std::bad_alloc();
      capacity = bytes / sizeof(float);
    }
    return data;
  }
  ~Scratch() { std::free(data); }
};

thread_local Scratch t_a_scratch;
thread_local Scratch t_b_scratch;

// Rows [i0, i0 + mc) x steps [p0, p0 + kc) of op(A), alpha applied, in the kernel's layout:
// row panels (row r at dst + r * kAPanelStride) from an m x k A, col panels (MR values
// per step) from a k x m A. Either way it is a copy of contiguous runs.
void pack_a(const float* a, int64_t lda, bool trans, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float alpha,
            int mr, float* dst) {
  if (!trans) {
    for (int64_t r = 0; r < mc; ++r) {
      const float* src = a + (i0 + r) * lda + p0;
      float* d = dst + r * kAPanelStride;
      if (alpha == 1.f) std::memcpy(d, src, sizeof(float) * kc);
      else for (int64_t p = 0; p < kc; ++p) d[p] = alpha * src[p];
    }
    return;
  }
  // K step outermost: each row of the stored A is read once, front to back.
  for (int64_t p = 0; p < kc; ++p) {
    const float* src = a + (p0 + p) * lda + i0;
    for (int64_t ir = 0; ir < mc; ir += mr) {
      const int rows = static_cast<int>(std::min<int64_t>(mr, mc - ir));
      float* d = dst + ir * kc + p * mr;
      // A loop, not memcpy: these copies are a few dozen bytes, and the libc call cost more
      // than the copy (14% of a 1024^3 transposed-A product).
      for (int i = 0; i < rows; ++i) d[i] = alpha * src[ir + i];
    }
  }
}

// One KC x NR panel of op(B): rows [p0, p0 + kc), columns [j0, j0 + cols), zero-padded.
void pack_b(const KernelSet& ks, const float* b, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j0, int cols,
            float* dst) {
  const int nr = ks.nr;
  if (trans) {
    ks.pack_b_trans(b, ldb, p0, kc, j0, cols, nr, dst);
    return;
  }
  for (int64_t p = 0; p < kc; ++p) {
    float* d = dst + p * nr;
    const float* src = b + (p0 + p) * ldb + j0;
    for (int j = 0; j < cols; ++j) d[j] = src[j];  // short rows: a loop beats a memcpy call
    for (int j = cols; j < nr; ++j) d[j] = 0.f;
  }
}

void scale_rows(int64_t rows, int64_t n, float beta, float* c, int64_t ldc) {
  if (beta == 1.f) return;
  for (int64_t i = 0; i < rows; ++i) {
    float* row = c + i * ldc;
    if (beta == 0.f) std::memset(row, 0, sizeof(float) * n);
    else for (int64_t j = 0; j < n; ++j) row[j] *= beta;
  }
}

// ---- the blocked driver

constexpr int64_t kMC = 192;               // most rows of A per item (A block: kMC x kKC in L2)
constexpr int64_t kChunkCols = 512;        // most columns of C per item (its C block stays in L2)
constexpr int64_t kItemsPerThread = 3;     // fewest items per thread when the product is split
constexpr int64_t kBPackFloats = 4 << 20;  // most floats of packed B per column block (16 MB)
constexpr int64_t kSplitKMaxC = 1 << 18;   // most elements of C for which K may be split
// B is read where it is stored instead of packed when M is this many micro-panels or fewer:
// each packed panel would serve too few micro-kernel calls to pay for its copy.
constexpr int64_t kDirectMaxReuse = 8;
// Below this many multiply-adds a GEMM runs on the calling thread: waking the pool costs
// more than it saves.
constexpr int64_t kSerialMacs = 1 << 19;

// How one column block of C (n columns, k deep) is cut into items for the threads:
// M blocks x column chunks x K slices. K is split only when C is small and M and N alone
// give too few items (e.g. the weight gradient [64, 16384] x [16384, 128]); each slice
// after the first writes its own partial C, added up at the end.
struct Plan {
  int64_t mc, mblocks;
  int64_t panels_per_chunk, nchunks;
  int64_t kslice, kslices;
  int64_t items() const { return mblocks * nchunks * kslices; }
};

Plan make_plan(int64_t m, int64_t n, int64_t k, int mr, int nr, int threads) {
  Plan p{};
  const int64_t npanels = (n + nr - 1) / nr;
  const int64_t want = threads > 1 ? threads * kItemsPerThread : 1;
  p.mblocks = (m + kMC - 1) / kMC;
  p.nchunks = std::min<int64_t>(npanels, (n + kChunkCols - 1) / kChunkCols);
  p.kslices = 1;
  if (p.mblocks * p.nchunks < want && m * n <= kSplitKMaxC && k >= 2 * kKC) {
    p.kslices = std::min<int64_t>((want + p.mblocks * p.nchunks - 1) / (p.mblocks * p.nchunks), k / kKC);
  }
  if (p.mblocks * p.nchunks * p.kslices < want) {
    // Smaller M blocks (down to one micro-panel), then narrower column chunks.
    p.mblocks = std::max(p.mblocks, std::min<int64_t>((want + p.nchunks - 1) / p.nchunks, (m + mr - 1) / mr));
    if (p.mblocks * p.nchunks < want) p.nchunks = std::min<int64_t>(npanels, (want + p.mblocks - 1) / p.mblocks);
  }
  p.mc = ((m + p.mblocks - 1) / p.mblocks + mr - 1) / mr * mr;
  p.mblocks = (m + p.mc - 1) / p.mc;
  p.panels_per_chunk = (npanels + p.nchunks - 1) / p.nchunks;
  p.nchunks = (npanels + p.panels_per_chunk - 1) / p.panels_per_chunk;
  p.kslice = ((k + p.kslices - 1) / p.kslices + kKC - 1) / kKC * kKC;
  p.kslices = (k + p.kslice - 1) / p.kslice;
  return p;
}

thread_local Scratch t_c_scratch;  // partial sums of K slices

void blocked_sgemm(const KernelSet& ks, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int mr = ks.mr, nr = ks.nr;
  const bool serial = in_parallel_region() || m * n * k < kSerialMacs;
  const int threads = serial ? 1 : num_threads();
  const int64_t row_grain = serial ? m : std::max<int64_t>(1, 65536 / n);
  if (k == 0 || alpha == 0.f) {
    parallel_for(0, m, row_grain, [&](int64_t r0, int64_t r1) { scale_rows(r1 - r0, n, beta, c + r0 * ldc, ldc); });
    return;
  }
  const gemm::MicroKernel kernel = trans_a ? ks.col_panel : ks.row_panel;
  const int64_t kblocks = (k + kKC - 1) / kKC;
  const bool b_direct = !trans_b && (m + mr - 1) / mr <= kDirectMaxReuse;
  const int64_t nc_max = std::max<int64_t>(nr, kBPackFloats / k / nr * nr);

  for (int64_t jc = 0; jc < n; jc += nc_max) {
    const int64_t nc = std::min<int64_t>(nc_max, n - jc);
    const int64_t npanels = (nc + nr - 1) / nr;
    const int64_t npad = npanels * nr;
    const Plan plan = make_plan(m, nc, k, mr, nr, threads);
    float* bpack = t_b_scratch.get(static_cast<size_t>(k * npad));
    float* partials = plan.kslices > 1 ? t_c_scratch.get(static_cast<size_t>((plan.kslices - 1) * m * nc)) : nullptr;
    // Panel (K block q, panel jp) lives at bpack + q * kKC * npad + jp * kc_q * nr.
    parallel_for(0, kblocks * npanels, serial ? kblocks * npanels : std::max<int64_t>(1, 16384 / (kKC * nr)),
                 [&](int64_t t0, int64_t t1) {
                   for (int64_t t = t0; t < t1; ++t) {
                     const int64_t q = t / npanels, jp = t % npanels;
                     const int64_t pc = q * kKC, kc = std::min<int64_t>(kKC, k - pc);
                     const int cols = static_cast<int>(std::min<int64_t>(nr, nc - jp * nr));
                     if (b_direct && cols == nr) continue;  // read in place
                     pack_b(ks, b, ldb, trans_b, pc, kc, jc + jp * nr, cols, bpack + pc * npad + jp * kc * nr);
                   }
                 });
    parallel_for(0, plan.items(), 1, [&](int64_t t0, int64_t t1) {
      float* apack = t_a_scratch.get(static_cast<size_t>(plan.mc * kAPanelStride));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t slice = t / (plan.mblocks * plan.nchunks), rest = t % (plan.mblocks * plan.nchunks);
        const int64_t ic = (rest / plan.nchunks) * plan.mc, mcur = std::min<int64_t>(plan.mc, m - ic);
        const int64_t jp0 = (rest % plan.nchunks) * plan.panels_per_chunk;
        const int64_t jp1 = std::min<int64_t>(npanels, jp0 + plan.panels_per_chunk);
        // Slice 0 writes C (beta applies); later slices overwrite their own partial C.
        float* cout = slice == 0 ? c + jc : partials + (slice - 1) * m * nc;
        const int64_t ldo = slice == 0 ? ldc : nc;
        const float b0 = slice == 0 ? beta : 0.f;
        if (b0 != 0.f && b0 != 1.f) {
          const int64_t ncols = std::min<int64_t>(nc, jp1 * nr) - jp0 * nr;
          scale_rows(mcur, ncols, b0, cout + ic * ldo + jp0 * nr, ldo);
        }
        const int64_t p_end = std::min<int64_t>(k, (slice + 1) * plan.kslice);
        // A transposed A is read in place: its K steps already hold the rows contiguously, and
        // measured, in-place reads beat packing (1024^3 and 2048^3 single-threaded: 165 vs 155
        // GFLOP/s). Packing is kept for alpha != 1, which it applies.
        const bool a_direct = trans_a && alpha == 1.f;
        for (int64_t pc = slice * plan.kslice; pc < p_end; pc += kKC) {
          const int64_t kc = std::min<int64_t>(kKC, k - pc);
          const bool accumulate = pc > slice * plan.kslice || b0 != 0.f;
          if (!a_direct) pack_a(a, lda, trans_a, ic, mcur, pc, kc, alpha, mr, apack);
          // A micro-panel outermost: its MR x KC values (12 KB for AVX-512) stay in L1 while
          // the chunk's B panels stream from L2; measured against B panel outermost (1024^3,
          // one thread, CPU time on a loaded machine): 176-180 vs 166-172 GFLOP/s.
          for (int64_t ir = 0; ir < mcur; ir += mr) {
            const int rows = static_cast<int>(std::min<int64_t>(mr, mcur - ir));
            const float* apanel = a_direct  ? a + pc * lda + ic + ir
                                  : trans_a ? apack + ir * kc
                                            : apack + ir * kAPanelStride;
            const int64_t a_step = a_direct ? lda : trans_a ? mr : 1;
            for (int64_t jp = jp0; jp < jp1; ++jp) {
              const int cols = static_cast<int>(std::min<int64_t>(nr, nc - jp * nr));
              const bool in_place = b_direct && cols == nr;
              const float* bpanel = in_place ? b + pc * ldb + jc + jp * nr : bpack + pc * npad + jp * kc * nr;
              const int64_t b_step = in_place ? ldb : nr;
              kernel(kc, apanel, a_step, bpanel, b_step, cout + (ic + ir) * ldo + jp * nr, ldo, rows, cols, accumulate);
            }
          }
        }
      }
    });
    if (plan.kslices > 1) {
      parallel_for(0, m, std::max<int64_t>(1, 16384 / (nc * plan.kslices)), [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0; i < r1; ++i) {
          float* row = c + i * ldc + jc;
          for (int64_t s = 0; s + 1 < plan.kslices; ++s) {
            const float* part = partials + s * m * nc + i * nc;
            for (int64_t j = 0; j < nc; ++j) row[j] += part[j];
          }
        }
      });
    }
  }
}

// ---- settings

GemmKernel initial_kernel() {
  const char* env = std::getenv("KILN_GEMM_KERNEL");
  GemmKernel want = best_kernel();
  if (env) {
    const std::string v(env);
    if (v == "avx2" && kernel_set(GemmKernel::Avx2)) want = GemmKernel::Avx2;
    if (v == "portable") want = GemmKernel::Portable;
  }
  return want;
}

GemmPath initial_path() {
  if (const char* env = std::getenv("KILN_GEMM")) {
    const std::string v(env);
    if (v == "builtin") return GemmPath::Builtin;
    if (v == "blas" && blas_available()) return GemmPath::Blas;
  }
  return blas_available() ? GemmPath::Auto : GemmPath::Builtin;
}

std::atomic<GemmPath> g_path{initial_path()};
std::atomic<GemmKernel> g_kernel{initial_kernel()};

void blas_sgemm(const Blas& blas, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;  // CBLAS's enum values
  blas.sgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, static_cast<int>(m),
             static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
             static_cast<int>(ldc));
}

bool blas_can_take(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  return k > 0 && m <= kMax && n <= kMax && k <= kMax && lda <= kMax && ldb <= kMax && ldc <= kMax;
}

}  // namespace

GemmPath gemm_path() { return g_path.load(); }

bool set_gemm_path(GemmPath path) {
  if ((path == GemmPath::Blas || path == GemmPath::Auto) && !blas_available()) return false;
  g_path.store(path);
  return true;
}

GemmKernel gemm_kernel() { return g_kernel.load(); }

bool set_gemm_kernel(GemmKernel kernel) {
  if (!kernel_set(kernel)) return false;
  g_kernel.store(kernel);
  return true;
}

bool gemm_kernel_supported(GemmKernel kernel) { return kernel_set(kernel) != nullptr; }

bool blas_available() { return openblas() != nullptr; }

const char* blas_description() {
  static const std::string desc = [] {
    const Blas* blas = openblas();
    if (!blas) return std::string("none");
    return std::string(blas->get_config()) + " (core " + blas->get_corename() + ")";
  }();
  return desc.c_str();
}

const char* builtin_kernel_name() { return kernel_set(g_kernel.load())->name; }

void gemm_set_threads(int n) {
  gemm::reset_choices();
  if (const Blas* blas = openblas()) blas->set_num_threads(n);
}

int gemm_threads() {
  const Blas* blas = openblas();
  return blas ? blas->get_num_threads() : 0;
}

static void builtin_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                   int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  blocked_sgemm(*kernel_set(g_kernel.load()), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  const GemmPath path = g_path.load();
  const Blas* blas = path == GemmPath::Builtin ? nullptr : openblas();
  // Inside a parallel_for body (a batch of GEMMs split across the pool) the built-in
  // kernel runs on the calling thread alone; OpenBLAS's thread count is process-wide.
  if (blas && !in_parallel_region() && blas_can_take(m, n, k, lda, ldb, ldc)) {
    if (path == GemmPath::Blas) {
      blas_sgemm(*blas, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
    const gemm::ShapeKey key{m, n, k, trans_a, trans_b, static_cast<int>(g_kernel.load())};
    const gemm::Choice choice = gemm::choose(key);
    if (choice != gemm::Choice::Builtin) {
      const bool use_blas = choice == gemm::Choice::Blas || choice == gemm::Choice::TryBlas;
      const auto t0 = std::chrono::steady_clock::now();
      if (use_blas) blas_sgemm(*blas, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      else builtin_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      if (choice != gemm::Choice::Blas) {
        gemm::record(key, use_blas, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      return;
    }
  }
  builtin_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace kiln
