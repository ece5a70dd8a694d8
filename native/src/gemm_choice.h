// Which GEMM implementation runs a shape when OpenBLAS is linked: decided by a measurement,
// not a guess. The first calls of each new shape (m, n, k, transposes) alternate between
// the built-in GEMM and OpenBLAS (each call computes its real result, so calibration costs
// no extra work), and after kTrials timed calls each the shape keeps the faster one for the
// rest of the process. OpenBLAS must win by kMargin to be chosen, so near-ties, and shapes
// too small to matter, stay on the built-in kernel and results stay reproducible.
#pragma once

#include <cstdint>
#include <cstddef>
#include <vector>

namespace kiln {
namespace gemm {

struct ShapeKey {
  int64_t m, n, k;
  bool trans_a, trans_b;
  int kernel;  // the built-in micro-kernel in use (a different kernel is a different contest)
  bool operator==(const ShapeKey& o) const {
    return m == o.m && n == o.n && k == o.k && trans_a == o.trans_a && trans_b == o.trans_b && kernel == o.kernel;
  }
};

enum class Choice {
  Builtin,     // decided (or not worth measuring): the built-in GEMM
  Blas,        // decided: OpenBLAS
  TryBuiltin,  // calibrating: run the built-in GEMM and record() its time
  TryBlas,     // calibrating: run OpenBLAS and record() its time
};

constexpr int kTrials = 3;
constexpr double kMargin = 0.9;        // OpenBLAS is chosen when best_blas < kMargin * best_builtin
constexpr int64_t kMinMacs = 1 << 15;  // smaller products are never measured
constexpr size_t kMaxShapes = 4096;    // shapes beyond this many are not measured

Choice choose(const ShapeKey& key);
void record(const ShapeKey& key, bool blas, double seconds);
// Forgets every decision (the thread count changed, so the timings are stale).
void reset_choices();

struct ShapeRecord {
  ShapeKey key;
  double best_builtin, best_blas;  // seconds, +inf when not run
  int runs_builtin, runs_blas;
  Choice choice;
};
std::vector<ShapeRecord> choice_records();

}  // namespace gemm
}  // namespace kiln
