// @kiln/gpu-kernels: the elementwise parts of a Mamba block around the selective scan —
// the causal depthwise convolution along the sequence (with its SiLU), SiLU itself and the
// SiLU gate y·silu(z) — forward and backward; and the EMA update of a teacher's weights.
//
// Layouts (row-major): the convolution's x, out [rows, L, C] (channels last, as the block's
// sequence features are), weight [K, C], bias [C]. Reductions over positions (the weight and
// bias gradients) add fixed blocks of positions and then the blocks in order, so results do
// not depend on the thread count.
#include <algorithm>
#include <vector>

#include "kiln_addon.h"
#include "ops/gk_common.h"
#include "parallel.h"

namespace {

// σ(x) with the vectorizable exp.
inline float fast_sigmoid(float x) { return 1.0f / (1.0f + gk::fast_exp(-x)); }

// d silu(a) / da = σ(a)·(1 + a·(1 − σ(a))).
inline float silu_grad(float a) {
  const float s = fast_sigmoid(a);
  return s * (1.0f + a * (1.0f - s));
}

struct ConvShape {
  int64_t rows, L, C, K;
};

// a[r, t, :] = bias + Σ_k w[k]·x[r, t − (K−1) + k] for the positions t0 ≤ t < t1 of row r.
void conv_rows(const float* x, const float* w, const float* bias, const ConvShape& s, int64_t r, int64_t t0, int64_t t1, float* a) {
  const int64_t C = s.C, K = s.K;
  for (int64_t t = t0; t < t1; t++) {
    float* o = a + (r * s.L + t) * C;
    if (bias) std::copy(bias, bias + C, o);
    else std::fill(o, o + C, 0.0f);
    for (int64_t k = std::max<int64_t>(0, K - 1 - t); k < K; k++) {
      const float* xr = x + (r * s.L + t - (K - 1) + k) * C;
      const float* wk = w + k * C;
      for (int64_t c = 0; c < C; c++) o[c] += wk[c] * xr[c];
    }
  }
}

// Positions per parallel chunk of the convolution (≈ 16k multiply-adds each).
int64_t position_grain(const ConvShape& s) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, s.C * s.K)); }

ConvShape read_conv_shape(const Napi::CallbackInfo& info, const char* fn, size_t first) {
  ConvShape s;
  s.rows = kiln::arg_int(info, first, fn, "rows", 1);
  s.L = kiln::arg_int(info, first + 1, fn, "L", 1);
  s.C = kiln::arg_int(info, first + 2, fn, "C", 1);
  s.K = kiln::arg_int(info, first + 3, fn, "K", 1);
  return s;
}

// causalConv1dForward(x, weight, bias or empty, out, rows, L, C, K, silu)
Napi::Value ConvForward(const Napi::CallbackInfo& info) {
  const char* fn = "causalConv1dForward";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto w = kiln::arg_f32(info, 1, fn, "weight");
  auto bias = kiln::arg_f32(info, 2, fn, "bias");
  auto out = kiln::arg_f32(info, 3, fn, "out");
  const ConvShape s = read_conv_shape(info, fn, 4);
  const bool silu = kiln::arg_bool(info, 8, fn, "silu");
  const int64_t total = s.rows * s.L;
  kiln::check_length(info.Env(), fn, "x", x.length, total * s.C);
  kiln::check_length(info.Env(), fn, "weight", w.length, s.K * s.C);
  if (bias.length) kiln::check_length(info.Env(), fn, "bias", bias.length, s.C);
  kiln::check_length(info.Env(), fn, "out", out.length, total * s.C);
  kiln::parallel_for(0, total, position_grain(s), [&](int64_t p0, int64_t p1) {
    // A chunk of flat positions may span rows.
    for (int64_t p = p0; p < p1;) {
      const int64_t r = p / s.L, t0 = p % s.L, t1 = std::min(s.L, t0 + (p1 - p));
      conv_rows(x.data, w.data, bias.length ? bias.data : nullptr, s, r, t0, t1, out.data);
      if (silu) {
        float* o = out.data + (r * s.L + t0) * s.C;
        const int64_t m = (t1 - t0) * s.C;
        for (int64_t i = 0; i < m; i++) o[i] = o[i] * fast_sigmoid(o[i]);
      }
      p += t1 - t0;
    }
  });
  return info.Env().Undefined();
}

// causalConv1dBackward(x, weight, bias or empty, dy, dx, dweight, dbias, rows, L, C, K, silu)
Napi::Value ConvBackward(const Napi::CallbackInfo& info) {
  const char* fn = "causalConv1dBackward";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto w = kiln::arg_f32(info, 1, fn, "weight");
  auto bias = kiln::arg_f32(info, 2, fn, "bias");
  auto dy = kiln::arg_f32(info, 3, fn, "dy");
  auto dx = kiln::arg_f32(info, 4, fn, "dx");
  auto dw = kiln::arg_f32(info, 5, fn, "dweight");
  auto db = kiln::arg_f32(info, 6, fn, "dbias");
  const ConvShape s = read_conv_shape(info, fn, 7);
  const bool silu = kiln::arg_bool(info, 11, fn, "silu");
  const int64_t C = s.C, K = s.K, L = s.L, total = s.rows * L;
  for (auto [name, len] : {std::pair<const char*, size_t>{"x", x.length}, {"dy", dy.length}, {"dx", dx.length}}) {
    kiln::check_length(info.Env(), fn, name, len, total * C);
  }
  kiln::check_length(info.Env(), fn, "weight", w.length, K * C);
  kiln::check_length(info.Env(), fn, "dweight", dw.length, K * C);
  if (bias.length) kiln::check_length(info.Env(), fn, "bias", bias.length, C);
  kiln::check_length(info.Env(), fn, "dbias", db.length, C);

  // g = ∂loss/∂(pre-activation): dy itself, or dy·silu'(a) with a recomputed.
  std::vector<float> gBuf;
  const float* g = dy.data;
  if (silu) {
    gBuf.resize(total * C);
    kiln::parallel_for(0, total, position_grain(s), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1;) {
        const int64_t r = p / L, t0 = p % L, t1 = std::min(L, t0 + (p1 - p));
        conv_rows(x.data, w.data, bias.length ? bias.data : nullptr, s, r, t0, t1, gBuf.data());
        for (int64_t i = (r * L + t0) * C; i < (r * L + t1) * C; i++) gBuf[i] = dy.data[i] * silu_grad(gBuf[i]);
        p += t1 - t0;
      }
    });
    g = gBuf.data();
  }

  // dx[r, t] = Σ_k w[k]·g[r, t + (K−1) − k]
  kiln::parallel_for(0, total, position_grain(s), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t t = p % L;
      float* o = dx.data + p * C;
      std::fill(o, o + C, 0.0f);
      for (int64_t k = 0; k < K; k++) {
        const int64_t src = t + (K - 1) - k;
        if (src >= L) continue;
        const float* gr = g + (p - t + src) * C;
        const float* wk = w.data + k * C;
        for (int64_t c = 0; c < C; c++) o[c] += wk[c] * gr[c];
      }
    }
  });

  // dw[k] = Σ_p g[p]·x[p − (K−1) + k] (same row), db = Σ_p g[p]: per block of positions, then
  // the blocks in order.
  const int64_t block = 1024, blocks = (total + block - 1) / block;
  std::vector<float> part(blocks * (K + 1) * C, 0.0f);
  kiln::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t bi = b0; bi < b1; bi++) {
      float* pw = part.data() + bi * (K + 1) * C;
      float* pb = pw + K * C;
      for (int64_t p = bi * block; p < std::min(total, (bi + 1) * block); p++) {
        const int64_t t = p % L;
        const float* gr = g + p * C;
        for (int64_t c = 0; c < C; c++) pb[c] += gr[c];
        for (int64_t k = std::max<int64_t>(0, K - 1 - t); k < K; k++) {
          const float* xr = x.data + (p - (K - 1) + k) * C;
          float* pk = pw + k * C;
          for (int64_t c = 0; c < C; c++) pk[c] += gr[c] * xr[c];
        }
      }
    }
  });
  std::vector<double> acc((K + 1) * C, 0.0);
  for (int64_t bi = 0; bi < blocks; bi++) {
    const float* pw = part.data() + bi * (K + 1) * C;
    for (int64_t i = 0; i < (K + 1) * C; i++) acc[i] += pw[i];
  }
  for (int64_t i = 0; i < K * C; i++) dw.data[i] = static_cast<float>(acc[i]);
  for (int64_t c = 0; c < C; c++) db.data[c] = static_cast<float>(acc[K * C + c]);
  return info.Env().Undefined();
}

constexpr int64_t kElementGrain = 32768;

// siluForward(x, out): out = x·σ(x)
Napi::Value SiluForward(const Napi::CallbackInfo& info) {
  const char* fn = "siluForward";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto out = kiln::arg_f32(info, 1, fn, "out");
  kiln::check_length(info.Env(), fn, "out", out.length, x.length);
  kiln::parallel_for(0, x.length, kElementGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) out.data[i] = x.data[i] * fast_sigmoid(x.data[i]);
  });
  return info.Env().Undefined();
}

// siluBackward(x, dy, dx): dx = dy·silu'(x)
Napi::Value SiluBackward(const Napi::CallbackInfo& info) {
  const char* fn = "siluBackward";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto dy = kiln::arg_f32(info, 1, fn, "dy");
  auto dx = kiln::arg_f32(info, 2, fn, "dx");
  kiln::check_length(info.Env(), fn, "dy", dy.length, x.length);
  kiln::check_length(info.Env(), fn, "dx", dx.length, x.length);
  kiln::parallel_for(0, x.length, kElementGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) dx.data[i] = dy.data[i] * silu_grad(x.data[i]);
  });
  return info.Env().Undefined();
}

// siluGateForward(x, z, out): out = x·silu(z)
Napi::Value GateForward(const Napi::CallbackInfo& info) {
  const char* fn = "siluGateForward";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto z = kiln::arg_f32(info, 1, fn, "z");
  auto out = kiln::arg_f32(info, 2, fn, "out");
  kiln::check_length(info.Env(), fn, "z", z.length, x.length);
  kiln::check_length(info.Env(), fn, "out", out.length, x.length);
  kiln::parallel_for(0, x.length, kElementGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) out.data[i] = x.data[i] * (z.data[i] * fast_sigmoid(z.data[i]));
  });
  return info.Env().Undefined();
}

// siluGateBackward(x, z, dy, dx, dz): dx = dy·silu(z), dz = dy·x·silu'(z)
Napi::Value GateBackward(const Napi::CallbackInfo& info) {
  const char* fn = "siluGateBackward";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto z = kiln::arg_f32(info, 1, fn, "z");
  auto dy = kiln::arg_f32(info, 2, fn, "dy");
  auto dx = kiln::arg_f32(info, 3, fn, "dx");
  auto dz = kiln::arg_f32(info, 4, fn, "dz");
  for (auto [name, len] : {std::pair<const char*, size_t>{"z", z.length}, {"dy", dy.length}, {"dx", dx.length}, {"dz", dz.length}}) {
    kiln::check_length(info.Env(), fn, name, len, x.length);
  }
  kiln::parallel_for(0, x.length, kElementGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const float zi = z.data[i], s = fast_sigmoid(zi);
      dx.data[i] = dy.data[i] * (zi * s);
      dz.data[i] = dy.data[i] * x.data[i] * (s * (1.0f + zi * (1.0f - s)));
    }
  });
  return info.Env().Undefined();
}

// emaUpdate(average, value, out, momentum): out = momentum·average + (1 − momentum)·value
// (an EMA teacher's weights).
Napi::Value EmaUpdate(const Napi::CallbackInfo& info) {
  const char* fn = "emaUpdate";
  auto avg = kiln::arg_f32(info, 0, fn, "average");
  auto val = kiln::arg_f32(info, 1, fn, "value");
  auto out = kiln::arg_f32(info, 2, fn, "out");
  const float m = static_cast<float>(kiln::arg_number(info, 3, fn, "momentum"));
  const float rest = static_cast<float>(1.0 - kiln::arg_number(info, 3, fn, "momentum"));
  kiln::check_length(info.Env(), fn, "value", val.length, avg.length);
  kiln::check_length(info.Env(), fn, "out", out.length, avg.length);
  kiln::parallel_for(0, avg.length, kElementGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const float a = avg.data[i] * m;
      const float b = val.data[i] * rest;
      out.data[i] = a + b;
    }
  });
  return info.Env().Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(emaUpdate, EmaUpdate);
KILN_EXPORT_FUNCTION(causalConv1dForward, ConvForward);
KILN_EXPORT_FUNCTION(causalConv1dBackward, ConvBackward);
KILN_EXPORT_FUNCTION(siluForward, SiluForward);
KILN_EXPORT_FUNCTION(siluBackward, SiluBackward);
KILN_EXPORT_FUNCTION(siluGateForward, GateForward);
KILN_EXPORT_FUNCTION(siluGateBackward, GateBackward);
