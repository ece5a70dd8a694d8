// @kiln/gpu-kernels: the row movements of a serialized point backbone — putting points into
// scan order and back (a one-to-one gather with zero padding), and pooling points into
// clusters and broadcasting clusters back to their points — and column blocks of a matrix. Rows are split over the threads;
// every output row is written by exactly one thread, so results do not depend on the
// thread count.
#include <algorithm>
#include <string>

#include "kiln_addon.h"
#include "parallel.h"

namespace {

// Rows per parallel chunk: about 16k floats of copying each.
int64_t row_grain(int64_t C) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1)); }

// permuteRows(x [m, C], index [s], out [s, C], C): out[i] = x[index[i]], or a zero row when
// index[i] is outside [0, m) (padding slots of a sequence).
Napi::Value PermuteRows(const Napi::CallbackInfo& info) {
  const char* fn = "permuteRows";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto idx = kiln::arg_i32(info, 1, fn, "index");
  auto out = kiln::arg_f32(info, 2, fn, "out");
  const int64_t C = kiln::arg_int(info, 3, fn, "C", 1);
  const int64_t m = static_cast<int64_t>(x.length) / C, s = idx.length;
  kiln::check_length(info.Env(), fn, "x", x.length, m * C);
  kiln::check_length(info.Env(), fn, "out", out.length, s * C);
  kiln::parallel_for(0, s, row_grain(C), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const int64_t r = idx.data[i];
      float* o = out.data + i * C;
      if (r >= 0 && r < m) std::copy(x.data + r * C, x.data + (r + 1) * C, o);
      else std::fill(o, o + C, 0.0f);
    }
  });
  return info.Env().Undefined();
}

void check_segments(const Napi::CallbackInfo& info, const char* fn, const kiln::ArrayView<int32_t>& ptr, int64_t n) {
  if (ptr.length < 1 || ptr.data[0] != 0 || ptr.data[ptr.length - 1] != n) {
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": ptr must run from 0 to " + std::to_string(n));
  }
  for (size_t s = 0; s + 1 < ptr.length; s++) {
    if (ptr.data[s + 1] <= ptr.data[s]) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": segment " + std::to_string(s) + " is empty");
  }
}

// segmentPool(x [n, C], sorted [n], ptr [S+1], out [S, C], C, mean):
// out[s] = Σ_{j ∈ [ptr[s], ptr[s+1])} x[sorted[j]], divided by the count when `mean`.
// Rows of a segment are added in `sorted` order.
Napi::Value SegmentPool(const Napi::CallbackInfo& info) {
  const char* fn = "segmentPool";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto sorted = kiln::arg_i32(info, 1, fn, "sorted");
  auto ptr = kiln::arg_i32(info, 2, fn, "ptr");
  auto out = kiln::arg_f32(info, 3, fn, "out");
  const int64_t C = kiln::arg_int(info, 4, fn, "C", 1);
  const bool mean = kiln::arg_bool(info, 5, fn, "mean");
  const int64_t n = sorted.length, S = static_cast<int64_t>(ptr.length) - 1;
  kiln::check_length(info.Env(), fn, "x", x.length, n * C);
  kiln::check_length(info.Env(), fn, "out", out.length, S * C);
  check_segments(info, fn, ptr, n);
  for (int64_t j = 0; j < n; j++) {
    if (sorted.data[j] < 0 || sorted.data[j] >= n) throw Napi::RangeError::New(info.Env(), "segmentPool: sorted[" + std::to_string(j) + "] is outside [0, " + std::to_string(n) + ")");
  }
  kiln::parallel_for(0, S, std::max<int64_t>(1, row_grain(C) / 4), [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; s++) {
      float* o = out.data + s * C;
      std::fill(o, o + C, 0.0f);
      for (int64_t j = ptr.data[s]; j < ptr.data[s + 1]; j++) {
        const float* xr = x.data + static_cast<int64_t>(sorted.data[j]) * C;
        for (int64_t c = 0; c < C; c++) o[c] += xr[c];
      }
      if (mean) {
        const float inv = 1.0f / static_cast<float>(ptr.data[s + 1] - ptr.data[s]);
        for (int64_t c = 0; c < C; c++) o[c] *= inv;
      }
    }
  });
  return info.Env().Undefined();
}

// segmentBroadcast(x [S, C], segment [n], ptr [S+1], out [n, C], C, mean):
// out[p] = x[segment[p]], divided by the segment's count when `mean` (the adjoint of
// segmentPool).
Napi::Value SegmentBroadcast(const Napi::CallbackInfo& info) {
  const char* fn = "segmentBroadcast";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto segment = kiln::arg_i32(info, 1, fn, "segment");
  auto ptr = kiln::arg_i32(info, 2, fn, "ptr");
  auto out = kiln::arg_f32(info, 3, fn, "out");
  const int64_t C = kiln::arg_int(info, 4, fn, "C", 1);
  const bool mean = kiln::arg_bool(info, 5, fn, "mean");
  const int64_t n = segment.length, S = static_cast<int64_t>(ptr.length) - 1;
  kiln::check_length(info.Env(), fn, "x", x.length, S * C);
  kiln::check_length(info.Env(), fn, "out", out.length, n * C);
  check_segments(info, fn, ptr, n);
  for (int64_t p = 0; p < n; p++) {
    if (segment.data[p] < 0 || segment.data[p] >= S) throw Napi::RangeError::New(info.Env(), "segmentBroadcast: segment[" + std::to_string(p) + "] is outside [0, " + std::to_string(S) + ")");
  }
  kiln::parallel_for(0, n, row_grain(C), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t s = segment.data[p];
      const float* xr = x.data + s * C;
      float* o = out.data + p * C;
      if (mean) {
        const float inv = 1.0f / static_cast<float>(ptr.data[s + 1] - ptr.data[s]);
        for (int64_t c = 0; c < C; c++) o[c] = xr[c] * inv;
      } else {
        std::copy(xr, xr + C, o);
      }
    }
  });
  return info.Env().Undefined();
}

// sliceColumns(x [R, C], out [R, W], begin, W): out[r] = x[r, begin .. begin + W).
// sliceColumnsBackward(dy [R, W], dx [R, C], begin, W): dx[r, begin ..] = dy[r], zeros elsewhere.
Napi::Value SliceColumns(const Napi::CallbackInfo& info) {
  const char* fn = "sliceColumns";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto out = kiln::arg_f32(info, 1, fn, "out");
  const int64_t begin = kiln::arg_int(info, 2, fn, "begin");
  const int64_t W = kiln::arg_int(info, 3, fn, "W", 1);
  const int64_t R = static_cast<int64_t>(out.length) / W;
  kiln::check_length(info.Env(), fn, "out", out.length, R * W);
  const int64_t C = R ? static_cast<int64_t>(x.length) / R : 0;
  kiln::check_length(info.Env(), fn, "x", x.length, R * C);
  if (begin + W > C) throw Napi::RangeError::New(info.Env(), "sliceColumns: columns " + std::to_string(begin) + " .. " + std::to_string(begin + W) + " exceed " + std::to_string(C));
  kiln::parallel_for(0, R, row_grain(W + 16), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) std::copy(x.data + r * C + begin, x.data + r * C + begin + W, out.data + r * W);
  });
  return info.Env().Undefined();
}

Napi::Value SliceColumnsBackward(const Napi::CallbackInfo& info) {
  const char* fn = "sliceColumnsBackward";
  auto dy = kiln::arg_f32(info, 0, fn, "dy");
  auto dx = kiln::arg_f32(info, 1, fn, "dx");
  const int64_t begin = kiln::arg_int(info, 2, fn, "begin");
  const int64_t W = kiln::arg_int(info, 3, fn, "W", 1);
  const int64_t R = static_cast<int64_t>(dy.length) / W;
  kiln::check_length(info.Env(), fn, "dy", dy.length, R * W);
  const int64_t C = R ? static_cast<int64_t>(dx.length) / R : 0;
  kiln::check_length(info.Env(), fn, "dx", dx.length, R * C);
  if (begin + W > C) throw Napi::RangeError::New(info.Env(), "sliceColumnsBackward: columns " + std::to_string(begin) + " .. " + std::to_string(begin + W) + " exceed " + std::to_string(C));
  kiln::parallel_for(0, R, row_grain(C + 16), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      float* o = dx.data + r * C;
      std::fill(o, o + begin, 0.0f);
      std::copy(dy.data + r * W, dy.data + (r + 1) * W, o + begin);
      std::fill(o + begin + W, o + C, 0.0f);
    }
  });
  return info.Env().Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(sliceColumns, SliceColumns);
KILN_EXPORT_FUNCTION(sliceColumnsBackward, SliceColumnsBackward);
KILN_EXPORT_FUNCTION(permuteRows, PermuteRows);
KILN_EXPORT_FUNCTION(segmentPool, SegmentPool);
KILN_EXPORT_FUNCTION(segmentBroadcast, SegmentBroadcast);
