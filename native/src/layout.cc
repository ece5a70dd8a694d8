// Data movement of 4-byte elements: transpose, gather, concat, unsorted segment sum.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kiln_addon.h"
#include "parallel.h"

namespace kiln {
namespace {

constexpr int64_t kGrain = 1 << 15;

// Square tiles keep both the reads and the writes of a 2-D transpose in cache.
void transpose_2d(const uint32_t* x, uint32_t* out, int64_t batch, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 32;
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  parallel_for(0, batch * row_tiles, std::max<int64_t>(1, kGrain / (kTile * std::max<int64_t>(cols, 1))),
               [&](int64_t t0, int64_t t1) {
                 for (int64_t t = t0; t < t1; ++t) {
                   const int64_t bi = t / row_tiles, r0 = (t % row_tiles) * kTile;
                   const int64_t r1 = std::min(rows, r0 + kTile);
                   const uint32_t* xb = x + bi * rows * cols;
                   uint32_t* ob = out + bi * rows * cols;
                   for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
                     const int64_t c1 = std::min(cols, c0 + kTile);
                     for (int64_t c = c0; c < c1; ++c)
                       for (int64_t r = r0; r < r1; ++r) ob[c * rows + r] = xb[r * cols + c];
                   }
                 }
               });
}

// transpose(x, out, shape, perm)
Napi::Value Transpose(const Napi::CallbackInfo& info) {
  const char* fn = "transpose";
  auto x = arg_word(info, 0, fn, "x");
  auto out = arg_word(info, 1, fn, "out");
  auto shape_v = arg_i32(info, 2, fn, "shape");
  auto perm_v = arg_i32(info, 3, fn, "perm");
  Napi::Env env = info.Env();
  const int rank = static_cast<int>(shape_v.length);
  if (static_cast<int>(perm_v.length) != rank) throw Napi::RangeError::New(env, "transpose: perm and shape differ in length");
  std::vector<bool> seen(rank, false);
  for (int d = 0; d < rank; ++d) {
    const int p = perm_v.data[d];
    if (p < 0 || p >= rank || seen[p]) throw Napi::RangeError::New(env, "transpose: perm is not a permutation of 0.." + std::to_string(rank - 1));
    seen[p] = true;
  }
  const std::vector<int64_t> dims(shape_v.data, shape_v.data + rank);
  const int64_t total = shape_size(env, fn, "shape", dims.data(), dims.size());
  check_length(env, fn, "x", x.length, static_cast<size_t>(total));
  check_length(env, fn, "out", out.length, static_cast<size_t>(total));
  if (total == 0) return env.Undefined();
  // Drop size-1 axes, then merge input axes that stay adjacent and in order in perm.
  std::vector<int> kept;
  std::vector<int> new_index(rank, -1);
  for (int d = 0; d < rank; ++d)
    if (shape_v.data[d] != 1) {
      new_index[d] = static_cast<int>(kept.size());
      kept.push_back(d);
    }
  std::vector<int> perm;  // over kept axes, in kept numbering
  for (int d = 0; d < rank; ++d)
    if (new_index[perm_v.data[d]] >= 0) perm.push_back(new_index[perm_v.data[d]]);
  std::vector<int64_t> shape;
  for (int d : kept) shape.push_back(shape_v.data[d]);
  // merge: walk perm; consecutive perm entries p, p+1 form one axis.
  std::vector<std::vector<int>> groups;
  for (size_t i = 0; i < perm.size(); ++i) {
    if (!groups.empty() && groups.back().back() + 1 == perm[i]) groups.back().push_back(perm[i]);
    else groups.push_back({perm[i]});
  }
  // Groups in input order give the collapsed input shape; perm maps output groups to them.
  std::vector<int> order(groups.size());
  for (size_t i = 0; i < groups.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return groups[a][0] < groups[b][0]; });
  const int r = static_cast<int>(groups.size());
  std::vector<int64_t> in_shape(r), cperm(r);
  std::vector<int> group_pos(r);
  for (int i = 0; i < r; ++i) group_pos[order[i]] = i;
  for (int i = 0; i < r; ++i) {
    int64_t s = 1;
    for (int ax : groups[order[i]]) s *= shape[ax];
    in_shape[i] = s;
  }
  for (int i = 0; i < r; ++i) cperm[i] = group_pos[i];
  const uint32_t* src = x.data;
  uint32_t* dst = out.data;
  bool identity = true;
  for (int i = 0; i < r; ++i) identity &= cperm[i] == i;
  if (identity) {
    parallel_for(0, total, kGrain, [&](int64_t b, int64_t e) { std::memcpy(dst + b, src + b, (e - b) * 4); });
    return env.Undefined();
  }
  if (r == 2) {
    transpose_2d(src, dst, 1, in_shape[0], in_shape[1]);
    return env.Undefined();
  }
  if (r == 3 && cperm[0] == 0 && cperm[1] == 2 && cperm[2] == 1) {
    transpose_2d(src, dst, in_shape[0], in_shape[1], in_shape[2]);
    return env.Undefined();
  }
  // General case: odometer over the output, reading x with permuted strides.
  std::vector<int64_t> in_stride(r), out_shape(r), stride(r);
  in_stride[r - 1] = 1;
  for (int i = r - 2; i >= 0; --i) in_stride[i] = in_stride[i + 1] * in_shape[i + 1];
  for (int i = 0; i < r; ++i) {
    out_shape[i] = in_shape[cperm[i]];
    stride[i] = in_stride[cperm[i]];
  }
  const int64_t inner = out_shape[r - 1], step = stride[r - 1];
  const int64_t rows = total / inner;
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx(r, 0);
    int64_t rem = r0, off = 0;
    for (int d = r - 2; d >= 0; --d) {
      idx[d] = rem % out_shape[d];
      rem /= out_shape[d];
      off += idx[d] * stride[d];
    }
    for (int64_t row = r0; row < r1; ++row) {
      uint32_t* o = dst + row * inner;
      for (int64_t j = 0; j < inner; ++j) o[j] = src[off + j * step];
      for (int d = r - 2; d >= 0; --d) {
        off += stride[d];
        if (++idx[d] < out_shape[d]) break;
        off -= stride[d] * out_shape[d];
        idx[d] = 0;
      }
    }
  });
  return env.Undefined();
}

// gather(x, indices, out, batch, outer, dim, slice, count)
Napi::Value Gather(const Napi::CallbackInfo& info) {
  const char* fn = "gather";
  auto x = arg_word(info, 0, fn, "x");
  auto idx = arg_i32(info, 1, fn, "indices");
  auto out = arg_word(info, 2, fn, "out");
  const int64_t batch = arg_int(info, 3, fn, "batch"), outer = arg_int(info, 4, fn, "outer"),
                dim = arg_int(info, 5, fn, "dim"), slice = arg_int(info, 6, fn, "slice"),
                count = arg_int(info, 7, fn, "count");
  Napi::Env env = info.Env();
  check_shape(env, fn, "x", x.length, {batch, outer, dim, slice});
  check_shape(env, fn, "indices", idx.length, {batch, count});
  check_shape(env, fn, "out", out.length, {batch, outer, count, slice});
  for (size_t i = 0; i < idx.length; ++i) {
    const int32_t v = idx.data[i];
    if (v < 0 || v >= dim) {
      throw Napi::RangeError::New(env, "GatherV2: the index value " + std::to_string(v) + " is not in [0, " +
                                           std::to_string(dim - 1) + "]");
    }
  }
  // An empty output (slice 0, say) leaves `outer` unbounded by any array: nothing to copy.
  if (out.length == 0) return env.Undefined();
  const int64_t rows = batch * outer * count;
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(slice, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t c = row % count, bo = row / count, b = bo / outer;
      const int64_t src_row = bo * dim + idx.data[b * count + c];
      std::memcpy(out.data + row * slice, x.data + src_row * slice, slice * 4);
    }
  });
  return env.Undefined();
}

// concat(inputs, out, outer, widths): inputs[i] viewed as [outer, widths[i]], out as
// [outer, sum(widths)]; out row r is the inputs' rows r side by side. All arrays Float32Array,
// or all Int32Array.
Napi::Value Concat(const Napi::CallbackInfo& info) {
  const char* fn = "concat";
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "concat: argument inputs must be an array");
  auto list = info[0].As<Napi::Array>();
  auto out = arg_word(info, 1, fn, "out");
  const int64_t outer = arg_int(info, 2, fn, "outer");
  auto widths = arg_i32(info, 3, fn, "widths");
  const napi_typedarray_type kind = info[1].As<Napi::TypedArray>().TypedArrayType();
  check_length(env, fn, "widths", widths.length, list.Length());
  std::vector<const uint32_t*> src(list.Length());
  std::vector<int64_t> offset(list.Length() + 1, 0);
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const Napi::Value v = list.Get(i);
    const std::string name = "inputs[" + std::to_string(i) + "]";
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kind) {
      throw Napi::TypeError::New(env, "concat: " + name + " must be a typed array of the same kind as out");
    }
    if (widths.data[i] < 0) throw Napi::RangeError::New(env, "concat: widths must be >= 0");
    auto t = v.As<Napi::TypedArray>();
    check_length(env, fn, name.c_str(), t.ElementLength(), static_cast<size_t>(outer * widths.data[i]));
    src[i] = reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset());
    offset[i + 1] = offset[i] + widths.data[i];
  }
  const int64_t width = offset.back();
  check_length(env, fn, "out", out.length, static_cast<size_t>(outer * width));
  if (outer == 1) {
    // One row (concatenating along the first axis): split the copy itself.
    parallel_for(0, width, kGrain, [&](int64_t b, int64_t e) {
      for (size_t i = 0; i + 1 < offset.size(); ++i) {
        const int64_t s = std::max(b, offset[i]), t = std::min(e, offset[i + 1]);
        if (s < t) std::memcpy(out.data + s, src[i] + (s - offset[i]), (t - s) * 4);
      }
    });
    return env.Undefined();
  }
  parallel_for(0, outer, std::max<int64_t>(1, kGrain / std::max<int64_t>(width, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (size_t i = 0; i + 1 < offset.size(); ++i) {
        const int64_t w = offset[i + 1] - offset[i];
        std::memcpy(out.data + r * width + offset[i], src[i] + r * w, w * 4);
      }
    }
  });
  return env.Undefined();
}

// unsortedSegmentSum(x, ids, out, numSegments, inner)
Napi::Value UnsortedSegmentSum(const Napi::CallbackInfo& info) {
  const char* fn = "unsortedSegmentSum";
  auto x = arg_f32(info, 0, fn, "x");
  auto ids = arg_i32(info, 1, fn, "ids");
  auto out = arg_f32(info, 2, fn, "out");
  const int64_t segments = arg_int(info, 3, fn, "numSegments"), inner = arg_int(info, 4, fn, "inner");
  Napi::Env env = info.Env();
  const int64_t n = static_cast<int64_t>(ids.length);
  check_shape(env, fn, "x", x.length, {n, inner});
  check_shape(env, fn, "out", out.length, {segments, inner});
  std::memset(out.data, 0, out.length * 4);
  // With no input or no output element, `inner` is bounded by neither array: nothing to add.
  if (x.length == 0 || out.length == 0) return env.Undefined();
  // Threads own disjoint column ranges, so no two write the same output element.
  const int64_t col_grain = std::max<int64_t>(16, kGrain / std::max<int64_t>(n, 1));
  parallel_for(0, inner, col_grain, [&](int64_t c0, int64_t c1) {
    for (int64_t i = 0; i < n; ++i) {
      const int32_t s = ids.data[i];
      if (s < 0 || s >= segments) continue;  // tfjs drops ids outside [0, numSegments)
      const float* xr = x.data + i * inner;
      float* o = out.data + s * inner;
      for (int64_t c = c0; c < c1; ++c) o[c] += xr[c];
    }
  });
  return env.Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(transpose, Transpose);
KILN_EXPORT_FUNCTION(gather, Gather);
KILN_EXPORT_FUNCTION(concat, Concat);
KILN_EXPORT_FUNCTION(unsortedSegmentSum, UnsortedSegmentSum);

}  // namespace kiln
