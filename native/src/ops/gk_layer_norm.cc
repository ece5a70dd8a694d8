// @kiln/gpu-kernels: LayerNorm over the last axis, forward and backward each in one pass
// over the rows (two-pass mean and variance per row, summed in 16 vector lanes; the backward
// recomputes them instead of keeping them from the forward). The γ and β gradients add fixed blocks of rows, then the
// blocks in order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln_addon.h"
#include "parallel.h"

namespace {

constexpr int64_t kLanes = 16;

// Σ_c f(c) over one row with kLanes partial sums (a single running sum would keep GCC from
// vectorizing the loop), then the lanes in order.
template <typename F>
inline float lane_sum(int64_t C, F f) {
  float lanes[kLanes] = {0};
  int64_t c = 0;
  for (; c + kLanes <= C; c += kLanes) {
    for (int64_t w = 0; w < kLanes; w++) lanes[w] += f(c + w);
  }
  float s = 0.0f;
  for (; c < C; c++) s += f(c);
  for (int64_t w = 0; w < kLanes; w++) s += lanes[w];
  return s;
}

// Mean and 1/√(var + eps) of one row (variance of the centred values, as the two-pass
// formula: no cancellation).
inline void row_stats(const float* x, int64_t C, float eps, float& mean, float& rstd) {
  const float inv = 1.0f / static_cast<float>(C);
  const float m = lane_sum(C, [&](int64_t c) { return x[c]; }) * inv;
  const float v = lane_sum(C, [&](int64_t c) { return (x[c] - m) * (x[c] - m); }) * inv;
  mean = m;
  rstd = 1.0f / std::sqrt(v + eps);
}

int64_t row_grain(int64_t C) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(C, 1)); }

// layerNormForward(x [R, C], gamma [C] or empty, beta [C] or empty, out [R, C], C, eps)
Napi::Value Forward(const Napi::CallbackInfo& info) {
  const char* fn = "layerNormForward";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto gamma = kiln::arg_f32(info, 1, fn, "gamma");
  auto beta = kiln::arg_f32(info, 2, fn, "beta");
  auto out = kiln::arg_f32(info, 3, fn, "out");
  const int64_t C = kiln::arg_int(info, 4, fn, "C", 1);
  const float eps = static_cast<float>(kiln::arg_number(info, 5, fn, "eps"));
  const int64_t R = static_cast<int64_t>(x.length) / C;
  kiln::check_length(info.Env(), fn, "x", x.length, R * C);
  kiln::check_length(info.Env(), fn, "out", out.length, R * C);
  if (gamma.length) kiln::check_length(info.Env(), fn, "gamma", gamma.length, C);
  if (beta.length) kiln::check_length(info.Env(), fn, "beta", beta.length, C);
  kiln::parallel_for(0, R, row_grain(C), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x.data + r * C;
      float* o = out.data + r * C;
      float mean, rstd;
      row_stats(xr, C, eps, mean, rstd);
      for (int64_t c = 0; c < C; c++) {
        float v = (xr[c] - mean) * rstd;
        if (gamma.length) v *= gamma.data[c];
        if (beta.length) v += beta.data[c];
        o[c] = v;
      }
    }
  });
  return info.Env().Undefined();
}

// layerNormBackward(x, gamma or empty, dy, dx, dgamma, dbeta, C, eps):
//   x̂ = (x − μ)·rstd, ĝ = dy·γ, dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)),
//   dγ = Σ_rows dy·x̂, dβ = Σ_rows dy.
Napi::Value Backward(const Napi::CallbackInfo& info) {
  const char* fn = "layerNormBackward";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto gamma = kiln::arg_f32(info, 1, fn, "gamma");
  auto dy = kiln::arg_f32(info, 2, fn, "dy");
  auto dx = kiln::arg_f32(info, 3, fn, "dx");
  auto dgamma = kiln::arg_f32(info, 4, fn, "dgamma");
  auto dbeta = kiln::arg_f32(info, 5, fn, "dbeta");
  const int64_t C = kiln::arg_int(info, 6, fn, "C", 1);
  const float eps = static_cast<float>(kiln::arg_number(info, 7, fn, "eps"));
  const int64_t R = static_cast<int64_t>(x.length) / C;
  kiln::check_length(info.Env(), fn, "x", x.length, R * C);
  kiln::check_length(info.Env(), fn, "dy", dy.length, R * C);
  kiln::check_length(info.Env(), fn, "dx", dx.length, R * C);
  if (gamma.length) kiln::check_length(info.Env(), fn, "gamma", gamma.length, C);
  kiln::check_length(info.Env(), fn, "dgamma", dgamma.length, C);
  kiln::check_length(info.Env(), fn, "dbeta", dbeta.length, C);
  const int64_t block = 256, blocks = (R + block - 1) / block;
  std::vector<float> part(blocks * 2 * C, 0.0f);
  kiln::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> xhat(C), ghat(C);
    for (int64_t bi = b0; bi < b1; bi++) {
      float* pg = part.data() + bi * 2 * C;
      float* pb = pg + C;
      for (int64_t r = bi * block; r < std::min(R, (bi + 1) * block); r++) {
        const float* xr = x.data + r * C;
        const float* dr = dy.data + r * C;
        float mean, rstd;
        row_stats(xr, C, eps, mean, rstd);
        for (int64_t c = 0; c < C; c++) {
          xhat[c] = (xr[c] - mean) * rstd;
          ghat[c] = gamma.length ? dr[c] * gamma.data[c] : dr[c];
          pg[c] += dr[c] * xhat[c];
          pb[c] += dr[c];
        }
        const float mg = lane_sum(C, [&](int64_t c) { return ghat[c]; }) / static_cast<float>(C);
        const float mgx = lane_sum(C, [&](int64_t c) { return ghat[c] * xhat[c]; }) / static_cast<float>(C);
        float* o = dx.data + r * C;
        for (int64_t c = 0; c < C; c++) o[c] = rstd * (ghat[c] - mg - xhat[c] * mgx);
      }
    }
  });
  std::vector<double> acc(2 * C, 0.0);
  for (int64_t bi = 0; bi < blocks; bi++) {
    for (int64_t i = 0; i < 2 * C; i++) acc[i] += part[bi * 2 * C + i];
  }
  for (int64_t c = 0; c < C; c++) {
    dgamma.data[c] = static_cast<float>(acc[c]);
    dbeta.data[c] = static_cast<float>(acc[C + c]);
  }
  return info.Env().Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(layerNormForward, Forward);
KILN_EXPORT_FUNCTION(layerNormBackward, Backward);
