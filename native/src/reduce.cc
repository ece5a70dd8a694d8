// Reductions over the middle axis of [outer, reduce, inner] and softmax over rows.
// Sums accumulate in double, like tfjs-backend-cpu's JavaScript numbers.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "fastmath.h"
#include "kiln_addon.h"
#include "parallel.h"

namespace kiln {
namespace {

constexpr int64_t kGrain = 1 << 15;

enum class Op { Sum, Mean, Max, Min, Prod };

float nan_f() { return std::numeric_limits<float>::quiet_NaN(); }

// Contiguous row: NaN propagates through max/min as in JavaScript's Math.max.
double reduce_row(Op op, const float* x, int64_t n) {
  switch (op) {
    case Op::Sum:
    case Op::Mean: {
      double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += x[i + l];
      double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      for (; i < n; ++i) s += x[i];
      return s;
    }
    case Op::Prod: {
      double p = 1;
      for (int64_t i = 0; i < n; ++i) p *= x[i];
      return p;
    }
    case Op::Max:
    case Op::Min: {
      float m = x[0];
      bool has_nan = false;
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        has_nan |= v != v;
        m = op == Op::Max ? (v > m ? v : m) : (v < m ? v : m);
      }
      return has_nan ? nan_f() : m;
    }
  }
  return 0;
}

double combine(Op op, double a, double b) {
  switch (op) {
    case Op::Sum:
    case Op::Mean: return a + b;
    case Op::Prod: return a * b;
    case Op::Max: return (a != a || b != b) ? nan_f() : std::max(a, b);
    case Op::Min: return (a != a || b != b) ? nan_f() : std::min(a, b);
  }
  return 0;
}

void reduce_inner1(Op op, const float* x, float* out, int64_t outer, int64_t n) {
  const double scale = op == Op::Mean ? 1.0 / static_cast<double>(n) : 1.0;
  if (outer >= num_threads() || n < kGrain) {
    parallel_for(0, outer, std::max<int64_t>(1, kGrain / n), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) out[o] = static_cast<float>(reduce_row(op, x + o * n, n) * scale);
    });
    return;
  }
  // Few long rows: split each row across the pool and combine the partial results.
  for (int64_t o = 0; o < outer; ++o) {
    const int64_t chunks = std::min<int64_t>((n + kGrain - 1) / kGrain, 64);
    const int64_t per = (n + chunks - 1) / chunks;
    std::vector<double> partial(chunks);
    const float* row = x + o * n;
    parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t s = c * per, e = std::min(n, s + per);
        partial[c] = reduce_row(op, row + s, e - s);
      }
    });
    double acc = partial[0];
    for (int64_t c = 1; c < chunks; ++c) acc = combine(op, acc, partial[c]);
    out[o] = static_cast<float>(acc * scale);
  }
}

// out[o, j] = reduce_r x[o, r, j]: rows of the reduced axis are streamed, the inner axis
// vectorizes, and threads split (o, j-block) pairs.
void reduce_strided(Op op, const float* x, float* out, int64_t outer, int64_t n, int64_t inner) {
  constexpr int64_t kBlock = 256;
  const int64_t jblocks = (inner + kBlock - 1) / kBlock;
  const double scale = op == Op::Mean ? 1.0 / static_cast<double>(n) : 1.0;
  parallel_for(0, outer * jblocks, std::max<int64_t>(1, kGrain / (n * kBlock)), [&](int64_t t0, int64_t t1) {
    double acc[kBlock];
    bool nan[kBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / jblocks, j0 = (t % jblocks) * kBlock;
      const int64_t len = std::min(kBlock, inner - j0);
      const float* base = x + o * n * inner + j0;
      for (int64_t j = 0; j < len; ++j) {
        acc[j] = op == Op::Prod ? 1.0 : (op == Op::Max || op == Op::Min) ? base[j] : 0.0;
        nan[j] = false;
      }
      for (int64_t r = 0; r < n; ++r) {
        const float* row = base + r * inner;
        switch (op) {
          case Op::Sum:
          case Op::Mean:
            for (int64_t j = 0; j < len; ++j) acc[j] += row[j];
            break;
          case Op::Prod:
            for (int64_t j = 0; j < len; ++j) acc[j] *= row[j];
            break;
          case Op::Max:
            for (int64_t j = 0; j < len; ++j) {
              nan[j] |= row[j] != row[j];
              acc[j] = row[j] > acc[j] ? row[j] : acc[j];
            }
            break;
          case Op::Min:
            for (int64_t j = 0; j < len; ++j) {
              nan[j] |= row[j] != row[j];
              acc[j] = row[j] < acc[j] ? row[j] : acc[j];
            }
            break;
        }
      }
      float* o_row = out + o * inner + j0;
      for (int64_t j = 0; j < len; ++j) o_row[j] = nan[j] ? nan_f() : static_cast<float>(acc[j] * scale);
    }
  });
}

Napi::Value Reduce(const Napi::CallbackInfo& info) {
  const char* fn = "reduce";
  const std::string name = arg_string(info, 0, fn, "op");
  auto x = arg_f32(info, 1, fn, "x");
  auto out = arg_f32(info, 2, fn, "out");
  const int64_t outer = arg_int(info, 3, fn, "outer"), n = arg_int(info, 4, fn, "reduce", 1),
                inner = arg_int(info, 5, fn, "inner");
  Op op;
  if (name == "sum") op = Op::Sum;
  else if (name == "mean") op = Op::Mean;
  else if (name == "max") op = Op::Max;
  else if (name == "min") op = Op::Min;
  else if (name == "prod") op = Op::Prod;
  else throw Napi::RangeError::New(info.Env(), "reduce: unknown op '" + name + "'");
  check_shape(info.Env(), fn, "x", x.length, {outer, n, inner});
  check_shape(info.Env(), fn, "out", out.length, {outer, inner});
  if (outer * inner == 0) return info.Env().Undefined();
  if (inner == 1) reduce_inner1(op, x.data, out.data, outer, n);
  else reduce_strided(op, x.data, out.data, outer, n, inner);
  return info.Env().Undefined();
}

// softmax(x, out, rows, cols): out = exp(x - max) / sum(exp(x - max)) per row.
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  const char* fn = "softmax";
  auto x = arg_f32(info, 0, fn, "x");
  auto out = arg_f32(info, 1, fn, "out");
  const int64_t rows = arg_int(info, 2, fn, "rows"), cols = arg_int(info, 3, fn, "cols", 1);
  check_shape(info.Env(), fn, "x", x.length, {rows, cols});
  check_shape(info.Env(), fn, "out", out.length, {rows, cols});
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / (4 * cols)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x.data + r * cols;
      float* o = out.data + r * cols;
      const float m = static_cast<float>(reduce_row(Op::Max, xr, cols));
      for (int64_t j = 0; j < cols; ++j) o[j] = fast_exp(xr[j] - m);
      const double s = reduce_row(Op::Sum, o, cols);
      const float inv = static_cast<float>(1.0 / s);
      for (int64_t j = 0; j < cols; ++j) o[j] *= inv;
    }
  });
  return info.Env().Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(reduce, Reduce);
KILN_EXPORT_FUNCTION(softmax, Softmax);

}  // namespace kiln
