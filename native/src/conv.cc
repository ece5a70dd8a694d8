// NHWC 2-D convolution and its two gradients as im2col + GEMM. The patch matrix is built
// for a bounded number of output pixels at a time so memory stays O(chunk), not O(input x
// filter size).
#include <algorithm>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "kiln_addon.h"
#include "parallel.h"

namespace kiln {
namespace {

struct Geometry {
  int64_t batch, in_h, in_w, in_c, out_h, out_w, out_c, f_h, f_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
  int64_t patch() const { return f_h * f_w * in_c; }
  int64_t pixels() const { return batch * out_h * out_w; }
  bool pointwise() const {
    return f_h == 1 && f_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 && pad_left == 0 && out_h == in_h &&
           out_w == in_w;
  }
};

Geometry read_geometry(const Napi::CallbackInfo& info, size_t index, const char* fn) {
  auto g = arg_i32(info, index, fn, "geometry");
  if (g.length != 15) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": geometry must have 15 entries");
  Geometry r{g.data[0], g.data[1], g.data[2],  g.data[3],  g.data[4],  g.data[5],  g.data[6], g.data[7],
             g.data[8], g.data[9], g.data[10], g.data[11], g.data[12], g.data[13], g.data[14]};
  for (int i = 0; i < 15; ++i)
    if (g.data[i] < 0) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": geometry entries must be >= 0");
  if (r.stride_h < 1 || r.stride_w < 1 || r.dil_h < 1 || r.dil_w < 1)
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": strides and dilations must be >= 1");
  return r;
}

// Output pixels per im2col chunk: about 4M floats of patches.
int64_t chunk_pixels(const Geometry& g) { return std::max<int64_t>(1, (int64_t{4} << 20) / std::max<int64_t>(g.patch(), 1)); }

// col[p - p0, (fh, fw, ic)] for output pixels p in [p0, p1); zero where the filter hangs off the input.
void im2col(const Geometry& g, const float* x, int64_t p0, int64_t p1, float* col) {
  const int64_t K = g.patch();
  parallel_for(p0, p1, std::max<int64_t>(1, 8192 / std::max<int64_t>(K, 1)), [&](int64_t a, int64_t b) {
    for (int64_t p = a; p < b; ++p) {
      const int64_t ow = p % g.out_w, oh = (p / g.out_w) % g.out_h, n = p / (g.out_w * g.out_h);
      float* dst = col + (p - p0) * K;
      for (int64_t fh = 0; fh < g.f_h; ++fh) {
        const int64_t ih = oh * g.stride_h - g.pad_top + fh * g.dil_h;
        for (int64_t fw = 0; fw < g.f_w; ++fw, dst += g.in_c) {
          const int64_t iw = ow * g.stride_w - g.pad_left + fw * g.dil_w;
          if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) {
            std::memset(dst, 0, g.in_c * sizeof(float));
          } else {
            std::memcpy(dst, x + ((n * g.in_h + ih) * g.in_w + iw) * g.in_c, g.in_c * sizeof(float));
          }
        }
      }
    }
  });
}

// dx += col2im(dcol) for output pixels [p0, p1). Threads own disjoint input-channel ranges.
void col2im_add(const Geometry& g, const float* dcol, int64_t p0, int64_t p1, float* dx) {
  const int64_t K = g.patch();
  parallel_for(0, g.in_c, std::max<int64_t>(8, g.in_c / std::max(1, num_threads())), [&](int64_t c0, int64_t c1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t ow = p % g.out_w, oh = (p / g.out_w) % g.out_h, n = p / (g.out_w * g.out_h);
      const float* src = dcol + (p - p0) * K;
      for (int64_t fh = 0; fh < g.f_h; ++fh) {
        const int64_t ih = oh * g.stride_h - g.pad_top + fh * g.dil_h;
        for (int64_t fw = 0; fw < g.f_w; ++fw, src += g.in_c) {
          const int64_t iw = ow * g.stride_w - g.pad_left + fw * g.dil_w;
          if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) continue;
          float* d = dx + ((n * g.in_h + ih) * g.in_w + iw) * g.in_c;
          for (int64_t c = c0; c < c1; ++c) d[c] += src[c];
        }
      }
    }
  });
}

void check_sizes(Napi::Env env, const char* fn, const Geometry& g, size_t x_len, size_t w_len, size_t y_len) {
  check_shape(env, fn, "x", x_len, {g.batch, g.in_h, g.in_w, g.in_c});
  check_shape(env, fn, "filter", w_len, {g.f_h, g.f_w, g.in_c, g.out_c});
  check_shape(env, fn, "y", y_len, {g.batch, g.out_h, g.out_w, g.out_c});
  // With out_c = 0 the arrays bound neither the pixel count nor the patch size: these
  // products must not overflow either.
  shape_size(env, fn, "the output pixels", {g.batch, g.out_h, g.out_w});
  shape_size(env, fn, "the filter patch", {g.f_h, g.f_w, g.in_c});
}

// conv2d(x, filter, out, geometry)
Napi::Value Conv2D(const Napi::CallbackInfo& info) {
  const char* fn = "conv2d";
  auto x = arg_f32(info, 0, fn, "x");
  auto w = arg_f32(info, 1, fn, "filter");
  auto out = arg_f32(info, 2, fn, "out");
  const Geometry g = read_geometry(info, 3, fn);
  check_sizes(info.Env(), fn, g, x.length, w.length, out.length);
  const int64_t P = g.pixels(), K = g.patch();
  if (P == 0 || g.out_c == 0) return info.Env().Undefined();
  if (K == 0) {  // no input channels: every output is an empty sum
    std::fill(out.data, out.data + out.length, 0.0f);
    return info.Env().Undefined();
  }
  if (g.pointwise()) {
    sgemm(false, false, P, g.out_c, K, 1.f, x.data, K, w.data, g.out_c, 0.f, out.data, g.out_c);
    return info.Env().Undefined();
  }
  const int64_t chunk = chunk_pixels(g);
  std::vector<float> col(static_cast<size_t>(std::min(chunk, P) * K));
  for (int64_t p0 = 0; p0 < P; p0 += chunk) {
    const int64_t p1 = std::min(P, p0 + chunk);
    im2col(g, x.data, p0, p1, col.data());
    sgemm(false, false, p1 - p0, g.out_c, K, 1.f, col.data(), K, w.data, g.out_c, 0.f, out.data + p0 * g.out_c, g.out_c);
  }
  return info.Env().Undefined();
}

// conv2dBackpropInput(dy, filter, dx, geometry)
Napi::Value Conv2DBackpropInput(const Napi::CallbackInfo& info) {
  const char* fn = "conv2dBackpropInput";
  auto dy = arg_f32(info, 0, fn, "dy");
  auto w = arg_f32(info, 1, fn, "filter");
  auto dx = arg_f32(info, 2, fn, "dx");
  const Geometry g = read_geometry(info, 3, fn);
  check_sizes(info.Env(), fn, g, dx.length, w.length, dy.length);
  const int64_t P = g.pixels(), K = g.patch();
  std::memset(dx.data, 0, dx.length * sizeof(float));
  if (P == 0 || K == 0 || g.out_c == 0) return info.Env().Undefined();
  if (g.pointwise()) {
    sgemm(false, true, P, K, g.out_c, 1.f, dy.data, g.out_c, w.data, g.out_c, 0.f, dx.data, K);
    return info.Env().Undefined();
  }
  const int64_t chunk = chunk_pixels(g);
  std::vector<float> dcol(static_cast<size_t>(std::min(chunk, P) * K));
  for (int64_t p0 = 0; p0 < P; p0 += chunk) {
    const int64_t p1 = std::min(P, p0 + chunk);
    sgemm(false, true, p1 - p0, K, g.out_c, 1.f, dy.data + p0 * g.out_c, g.out_c, w.data, g.out_c, 0.f, dcol.data(), K);
    col2im_add(g, dcol.data(), p0, p1, dx.data);
  }
  return info.Env().Undefined();
}

// conv2dBackpropFilter(x, dy, dw, geometry)
Napi::Value Conv2DBackpropFilter(const Napi::CallbackInfo& info) {
  const char* fn = "conv2dBackpropFilter";
  auto x = arg_f32(info, 0, fn, "x");
  auto dy = arg_f32(info, 1, fn, "dy");
  auto dw = arg_f32(info, 2, fn, "dw");
  const Geometry g = read_geometry(info, 3, fn);
  check_sizes(info.Env(), fn, g, x.length, dw.length, dy.length);
  const int64_t P = g.pixels(), K = g.patch();
  std::memset(dw.data, 0, dw.length * sizeof(float));
  if (P == 0 || K == 0 || g.out_c == 0) return info.Env().Undefined();
  if (g.pointwise()) {
    sgemm(true, false, K, g.out_c, P, 1.f, x.data, K, dy.data, g.out_c, 0.f, dw.data, g.out_c);
    return info.Env().Undefined();
  }
  const int64_t chunk = chunk_pixels(g);
  std::vector<float> col(static_cast<size_t>(std::min(chunk, P) * K));
  for (int64_t p0 = 0; p0 < P; p0 += chunk) {
    const int64_t p1 = std::min(P, p0 + chunk);
    im2col(g, x.data, p0, p1, col.data());
    sgemm(true, false, K, g.out_c, p1 - p0, 1.f, col.data(), K, dy.data + p0 * g.out_c, g.out_c, 1.f, dw.data, g.out_c);
  }
  return info.Env().Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(conv2d, Conv2D);
KILN_EXPORT_FUNCTION(conv2dBackpropInput, Conv2DBackpropInput);
KILN_EXPORT_FUNCTION(conv2dBackpropFilter, Conv2DBackpropFilter);

}  // namespace kiln
