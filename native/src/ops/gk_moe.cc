// @kiln/gpu-kernels: grouped GEMM (one GEMM per expert over contiguous row groups), the
// row gather/scatter of MoE permute/unpermute, and Megatron-Core's top-k router.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "gemm.h"
#include "kiln_addon.h"
#include "ops/gk_common.h"
#include "parallel.h"

namespace {

// groupedMatMul(x, w, out, groupSizes: Int32Array, mode: 0 nn | 1 nt | 2 tn, K, N)
//   nn  out[M, N]    = x_g[rows, K] · W_g[K, N]
//   nt  out[M, K]    = x_g[rows, N] · W_gᵀ        (W [G, K, N])
//   tn  out[G, K, N] = x_g[rows, K]ᵀ · y_g[rows, N] (w holds y [M, N])
Napi::Value GroupedMatMul(const Napi::CallbackInfo& info) {
  const char* fn = "groupedMatMul";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto w = kiln::arg_f32(info, 1, fn, "w");
  auto out = kiln::arg_f32(info, 2, fn, "out");
  auto sizes = kiln::arg_i32(info, 3, fn, "groupSizes");
  const int64_t mode = kiln::arg_choice(info, 4, fn, "mode", 3);
  const int64_t K = kiln::arg_int(info, 5, fn, "K", 1);
  const int64_t N = kiln::arg_int(info, 6, fn, "N", 1);
  if (K > INT32_MAX || N > INT32_MAX) throw Napi::RangeError::New(info.Env(), "groupedMatMul: K and N must be below 2^31");
  const int64_t G = sizes.length;
  std::vector<int64_t> start(G + 1, 0);
  for (int64_t g = 0; g < G; g++) {
    if (sizes.data[g] < 0) throw Napi::RangeError::New(info.Env(), "groupedMatMul: groupSizes must be non-negative");
    start[g + 1] = start[g] + sizes.data[g];
  }
  const int64_t M = start[G];
  if (mode == 0) {
    kiln::check_shape(info.Env(), fn, "x", x.length, {M, K});
    kiln::check_shape(info.Env(), fn, "w", w.length, {G, K, N});
    kiln::check_shape(info.Env(), fn, "out", out.length, {M, N});
  } else if (mode == 1) {
    kiln::check_shape(info.Env(), fn, "x", x.length, {M, N});
    kiln::check_shape(info.Env(), fn, "w", w.length, {G, K, N});
    kiln::check_shape(info.Env(), fn, "out", out.length, {M, K});
  } else {
    kiln::check_shape(info.Env(), fn, "x", x.length, {M, K});
    kiln::check_shape(info.Env(), fn, "w", w.length, {M, N});
    kiln::check_shape(info.Env(), fn, "out", out.length, {G, K, N});
  }
  auto one = [&](int64_t g) {
    const int64_t r0 = start[g], rows = sizes.data[g];
    if (mode == 0) {
      if (rows) kiln::sgemm(false, false, rows, N, K, 1.0f, x.data + r0 * K, K, w.data + g * K * N, N, 0.0f, out.data + r0 * N, N);
    } else if (mode == 1) {
      if (rows) kiln::sgemm(false, true, rows, K, N, 1.0f, x.data + r0 * N, N, w.data + g * K * N, N, 0.0f, out.data + r0 * K, K);
    } else if (rows) {
      kiln::sgemm(true, false, K, N, rows, 1.0f, x.data + r0 * K, K, w.data + r0 * N, N, 0.0f, out.data + g * K * N, N);
    } else {
      std::fill(out.data + g * K * N, out.data + (g + 1) * K * N, 0.0f);
    }
  };
  // Many small groups: one GEMM per thread. Few or large ones: each GEMM uses every thread.
  const int64_t avgRows = G ? M / G : 0;
  if (G >= 2 * kiln::num_threads() && avgRows < 256) {
    kiln::parallel_for(0, G, 1, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; g++) one(g);
    });
  } else {
    for (int64_t g = 0; g < G; g++) one(g);
  }
  return info.Env().Undefined();
}

// moeGatherRows(x [T, H], indices [R], out [R, H], H): out[r] = x[indices[r]]
Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  const char* fn = "moeGatherRows";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto idx = kiln::arg_i32(info, 1, fn, "indices");
  auto out = kiln::arg_f32(info, 2, fn, "out");
  const int64_t H = kiln::arg_int(info, 3, fn, "H", 1);
  const int64_t T = x.length / H, R = idx.length;
  kiln::check_shape(info.Env(), fn, "x", x.length, {T, H});
  kiln::check_shape(info.Env(), fn, "out", out.length, {R, H});
  kiln::check_indices(info.Env(), fn, "indices", idx.data, idx.length, T);
  kiln::parallel_for(0, R, std::max<int64_t>(1, 16384 / H), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) std::copy(x.data + idx.data[r] * H, x.data + (idx.data[r] + 1) * H, out.data + r * H);
  });
  return info.Env().Undefined();
}

// moeScatterRows(x [R, H], indices [R], weights [R] or empty, out [T, H], H):
// out[indices[r]] += x[r]·weights[r]. Threads split the columns, so no two write one element.
Napi::Value ScatterRows(const Napi::CallbackInfo& info) {
  const char* fn = "moeScatterRows";
  auto x = kiln::arg_f32(info, 0, fn, "x");
  auto idx = kiln::arg_i32(info, 1, fn, "indices");
  auto w = kiln::arg_f32(info, 2, fn, "weights");
  auto out = kiln::arg_f32(info, 3, fn, "out");
  const int64_t H = kiln::arg_int(info, 4, fn, "H", 1);
  const int64_t R = idx.length, T = out.length / H;
  kiln::check_shape(info.Env(), fn, "x", x.length, {R, H});
  kiln::check_shape(info.Env(), fn, "out", out.length, {T, H});
  kiln::check_optional(info.Env(), fn, "weights", w.length, R);
  kiln::check_indices(info.Env(), fn, "indices", idx.data, idx.length, T);
  std::fill(out.data, out.data + out.length, 0.0f);
  kiln::parallel_for(0, H, 64, [&](int64_t h0, int64_t h1) {
    for (int64_t r = 0; r < R; r++) {
      const float wr = w.length ? w.data[r] : 1.0f;
      float* o = out.data + idx.data[r] * H;
      const float* xr = x.data + r * H;
      for (int64_t h = h0; h < h1; h++) o[h] += xr[h] * wr;
    }
  });
  return info.Env().Undefined();
}

// swiglu(h [R, 2F], out [R, F], F): out = silu(gate)·up with gate = h[:, :F], up = h[:, F:]
// (Megatron's glu with SiLU on fc1's output). Rows split over the threads; the inner loop
// vectorizes (gk::fast_exp).
Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  const char* fn = "swiglu";
  auto h = kiln::arg_f32(info, 0, fn, "h");
  auto out = kiln::arg_f32(info, 1, fn, "out");
  const int64_t F = kiln::arg_int(info, 2, fn, "F", 1);
  const int64_t R = static_cast<int64_t>(h.length) / (2 * F);
  kiln::check_shape(info.Env(), fn, "h", h.length, {R, 2, F});
  kiln::check_shape(info.Env(), fn, "out", out.length, {R, F});
  kiln::parallel_for(0, R, std::max<int64_t>(1, 16384 / F), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* g = h.data + r * 2 * F;
      const float* u = g + F;
      float* o = out.data + r * F;
      // exp first, then the products: written as one loop, GCC 12's vectorized code ran 4×
      // slower than these two (measured, 16384 × 1024)
      for (int64_t j = 0; j < F; j++) o[j] = gk::fast_exp(-g[j]);
      for (int64_t j = 0; j < F; j++) o[j] = g[j] * u[j] / (1.0f + o[j]);
    }
  });
  return info.Env().Undefined();
}

// swigluGrad(h [R, 2F], dy [R, F], out [R, 2F], F): the cotangent of h —
// gate half dy·up·silu'(gate) = dy·up·s·(1 + gate·(1 − s)), up half dy·silu(gate).
Napi::Value SwigluGrad(const Napi::CallbackInfo& info) {
  const char* fn = "swigluGrad";
  auto h = kiln::arg_f32(info, 0, fn, "h");
  auto dy = kiln::arg_f32(info, 1, fn, "dy");
  auto out = kiln::arg_f32(info, 2, fn, "out");
  const int64_t F = kiln::arg_int(info, 3, fn, "F", 1);
  const int64_t R = static_cast<int64_t>(h.length) / (2 * F);
  kiln::check_shape(info.Env(), fn, "h", h.length, {R, 2, F});
  kiln::check_shape(info.Env(), fn, "dy", dy.length, {R, F});
  kiln::check_shape(info.Env(), fn, "out", out.length, {R, 2, F});
  kiln::parallel_for(0, R, std::max<int64_t>(1, 16384 / F), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* g = h.data + r * 2 * F;
      const float* u = g + F;
      const float* d = dy.data + r * F;
      float* og = out.data + r * 2 * F;
      float* ou = og + F;
      for (int64_t j = 0; j < F; j++) {
        const float s = 1.0f / (1.0f + gk::fast_exp(-g[j]));
        og[j] = d[j] * u[j] * s * (1.0f + g[j] * (1.0f - s));
        ou[j] = d[j] * g[j] * s;
      }
    }
  });
  return info.Env().Undefined();
}

// Indices of the k largest of v[0..n), larger first, ties to the lower index.
void topk_indices(const float* v, int64_t n, int64_t k, std::vector<int32_t>& order, int32_t* outIdx) {
  order.resize(n);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  std::copy(order.begin(), order.begin() + k, outIdx);
}

// topkRouter(logits [T, E], expertBias [E] or empty, probs [T, E], indices Int32 [T, k],
//            E, k, scoreFunction: 0 softmax | 1 sigmoid | 2 sqrtsoftplus, usePreSoftmax,
//            numGroups, groupTopk (0: no group limit), scalingFactor (0: none))
Napi::Value TopkRouter(const Napi::CallbackInfo& info) {
  const char* fn = "topkRouter";
  auto logits = kiln::arg_f32(info, 0, fn, "logits");
  auto bias = kiln::arg_f32(info, 1, fn, "expertBias");
  auto probs = kiln::arg_f32(info, 2, fn, "probs");
  auto indices = kiln::arg_i32(info, 3, fn, "indices");
  const int64_t E = kiln::arg_int(info, 4, fn, "E", 1);
  const int64_t k = kiln::arg_int(info, 5, fn, "k", 1);
  const int64_t scoreFn = kiln::arg_choice(info, 6, fn, "scoreFunction", 3);
  const bool pre = kiln::arg_bool(info, 7, fn, "usePreSoftmax");
  const int64_t G = kiln::arg_int(info, 8, fn, "numGroups");
  const int64_t gk = kiln::arg_int(info, 9, fn, "groupTopk");
  const float scaling = static_cast<float>(kiln::arg_number(info, 10, fn, "scalingFactor"));
  const int64_t T = logits.length / E;
  kiln::check_shape(info.Env(), fn, "logits", logits.length, {T, E});
  kiln::check_optional(info.Env(), fn, "expertBias", bias.length, E);
  kiln::check_shape(info.Env(), fn, "probs", probs.length, {T, E});
  kiln::check_shape(info.Env(), fn, "indices", indices.length, {T, k});
  // With group-limited routing each chosen group contributes its top k / groupTopk experts,
  // so that many must exist per group (E / numGroups).
  if (k > E || (gk && (G <= 0 || E % G != 0 || gk > G || k / gk < 1 || k / gk > E / G))) throw Napi::RangeError::New(info.Env(), "topkRouter: inconsistent topk / numGroups / groupTopk");
  const int64_t groups = gk ? G : 1;  // numGroups matters only with a group limit
  std::fill(probs.data, probs.data + probs.length, 0.0f);
  kiln::parallel_for(0, T, 64, [&](int64_t t0, int64_t t1) {
    std::vector<float> row(E), sel(E), groupScores(groups), masked(E);
    std::vector<int32_t> order, chosen(k), inGroup(E), keep(groups);
    for (int64_t t = t0; t < t1; t++) {
      const float* l = logits.data + t * E;
      if (scoreFn == 0) {
        std::copy(l, l + E, row.begin());
        if (pre) {
          const float m = *std::max_element(row.begin(), row.end());
          double s = 0;
          for (int64_t e = 0; e < E; e++) s += std::exp(static_cast<double>(row[e]) - m);
          for (int64_t e = 0; e < E; e++) row[e] = static_cast<float>(std::exp(static_cast<double>(row[e]) - m) / s);
        }
        std::copy(row.begin(), row.end(), sel.begin());
      } else {
        for (int64_t e = 0; e < E; e++) {
          const double v = l[e];
          row[e] = static_cast<float>(scoreFn == 1 ? 1.0 / (1.0 + std::exp(-v)) : std::sqrt(v > 20 ? v : std::log1p(std::exp(v))));
          sel[e] = bias.length ? row[e] + bias.data[e] : row[e];
        }
      }
      if (gk) {
        const int64_t per = E / G, inK = k / gk;
        for (int64_t g = 0; g < G; g++) {
          topk_indices(sel.data() + g * per, per, inK, order, inGroup.data());
          double s = 0;
          for (int64_t i = 0; i < inK; i++) s += sel[g * per + inGroup[i]];
          groupScores[g] = static_cast<float>(s);
        }
        topk_indices(groupScores.data(), G, gk, order, keep.data());
        std::fill(masked.begin(), masked.end(), -std::numeric_limits<float>::infinity());
        for (int64_t i = 0; i < gk; i++) std::copy(sel.begin() + keep[i] * per, sel.begin() + (keep[i] + 1) * per, masked.begin() + keep[i] * per);
        topk_indices(masked.data(), E, k, order, chosen.data());
      } else {
        topk_indices(sel.data(), E, k, order, chosen.data());
      }
      std::vector<double> gates(k);
      for (int64_t i = 0; i < k; i++) gates[i] = row[chosen[i]];
      if (scoreFn == 0 && !pre) {
        const double m = *std::max_element(gates.begin(), gates.end());
        double s = 0;
        for (auto& g : gates) s += (g = std::exp(g - m));
        for (auto& g : gates) g /= s;
      } else if (scoreFn != 0 && k > 1) {
        double s = 1e-20;
        for (auto g : gates) s += g;
        for (auto& g : gates) g /= s;
      }
      for (int64_t i = 0; i < k; i++) {
        indices.data[t * k + i] = chosen[i];
        probs.data[t * E + chosen[i]] = static_cast<float>(static_cast<float>(gates[i]) * (scaling != 0.0f ? scaling : 1.0f));
      }
    }
  });
  return info.Env().Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(groupedMatMul, GroupedMatMul);
KILN_EXPORT_FUNCTION(moeGatherRows, GatherRows);
KILN_EXPORT_FUNCTION(moeScatterRows, ScatterRows);
KILN_EXPORT_FUNCTION(swiglu, Swiglu);
KILN_EXPORT_FUNCTION(swigluGrad, SwigluGrad);
KILN_EXPORT_FUNCTION(topkRouter, TopkRouter);
