// @kiln/gpu-kernels: Mamba's selective scan in a Mamba block's own layout (channels last),
// forward and backward:
//
//   Δ = softplus?(delta + bias);  h_t = exp(Δ_t·A) ⊙ h_{t−1} + Δ_t·u_t·B_t;  y_t = C_t·h_t + D·u_t
//
// Layouts (row-major): u, delta, y [rows, L, dim]; B, C [rows, L, N]; A [dim, N]; D, bias [dim].
//
// A model with a few dozen channels and a handful of states scans long sequences (a whole
// batch of point clouds is one sequence), so the work items are (row, block of 16 channels):
// each walks its row in time order with the 16×N state in registers, the channel lanes as the
// vector axis. No chunking or cross-chunk carry is needed, and with channels last every step
// reads 16 contiguous floats of u, delta and y. The backward pass checkpoints the state every
// kChunk steps, then walks the chunks from the end, recomputing each chunk's states before
// running the adjoint through it. Partial sums over channel blocks (dB, dC) and over rows
// (dA, dD, dbias) are kept per item and added in a fixed order: results do not depend on the
// thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln_addon.h"
#include "ops/gk_common.h"
#include "parallel.h"

namespace {

constexpr int64_t kW = 16;      // channels per work item (one AVX-512 vector)
constexpr int64_t kChunk = 64;  // backward: steps between state checkpoints

// log(1 + e) for e in [0, 1] as 2·atanh(s), s = e / (2 + e) ≤ 1/3, by its odd series (relative
// error < 1e-8): a vectorizable log1p for the softplus.
inline float log1p_unit(float e) {
  const float s = e / (2.0f + e), s2 = s * s;
  float p = 1.0f / 15.0f;
  p = p * s2 + 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}

inline float sigmoid_v(float v) { return 1.0f / (1.0f + gk::fast_exp(-v)); }

struct Shape {
  int64_t rows, L, dim, N;
  int64_t blocks() const { return (dim + kW - 1) / kW; }
};

struct Inputs {
  const float *u, *delta, *A, *B, *C, *D, *bias;
  bool softplus;
};

// One item's channel block: A transposed to [N][kW], D and bias padded with zeros (a padded
// lane has Δ = softplus(0) or 0, u = 0: its state stays 0 and nothing is written for it).
struct Block {
  int64_t d0, width;
  std::vector<float> At;
  float Dv[kW], bias[kW];
  Block(const Inputs& in, const Shape& s, int64_t blk) : d0(blk * kW), width(std::min(kW, s.dim - blk * kW)), At(s.N * kW, 0.0f) {
    for (int64_t w = 0; w < kW; w++) {
      const bool on = w < width;
      Dv[w] = on && in.D ? in.D[d0 + w] : 0.0f;
      bias[w] = on && in.bias ? in.bias[d0 + w] : 0.0f;
      for (int64_t n = 0; n < s.N; n++) At[n * kW + w] = on ? in.A[(d0 + w) * s.N + n] : 0.0f;
    }
  }
  // Loads kW lanes of a [.., dim] row at this block (zeros past the last channel).
  void load(const float* row, float* dst) const {
    for (int64_t w = 0; w < kW; w++) dst[w] = w < width ? row[d0 + w] : 0.0f;
  }
};

// Δ (after bias and softplus), its raw argument and u at one step.
inline void step_inputs(const Inputs& in, const Block& blk, const float* deltaRow, const float* uRow, float* raw, float* dt, float* uv) {
  blk.load(deltaRow, raw);
  blk.load(uRow, uv);
  for (int64_t w = 0; w < kW; w++) raw[w] += blk.bias[w];
  if (!in.softplus) {
    std::copy(raw, raw + kW, dt);
    return;
  }
  // Branch-free, so the lanes vectorize: both sides of the threshold, then a select.
  float e[kW];
  for (int64_t w = 0; w < kW; w++) e[w] = gk::fast_exp(-std::fabs(raw[w]));
  for (int64_t w = 0; w < kW; w++) e[w] = std::max(raw[w], 0.0f) + log1p_unit(e[w]);
  for (int64_t w = 0; w < kW; w++) dt[w] = raw[w] > 20.0f ? raw[w] : e[w];
}

// h ← exp(Δ·A)⊙h + Δ·u·B_t for one step; h is [N][kW].
inline void advance(const Shape& s, const Block& blk, const float* dt, const float* uv, const float* Bt, float* h) {
  for (int64_t n = 0; n < s.N; n++) {
    const float* a = blk.At.data() + n * kW;
    float* hn = h + n * kW;
    const float b = Bt[n];
    for (int64_t w = 0; w < kW; w++) hn[w] = gk::fast_exp(dt[w] * a[w]) * hn[w] + dt[w] * uv[w] * b;
  }
}

Inputs read_inputs(const Napi::CallbackInfo& info, const char* fn, Shape& s, size_t firstInt) {
  auto opt = [&](size_t i, const char* name) -> const float* {
    auto v = kiln::arg_f32(info, i, fn, name);
    return v.length ? v.data : nullptr;
  };
  Inputs in;
  auto u = kiln::arg_f32(info, 0, fn, "u");
  auto delta = kiln::arg_f32(info, 1, fn, "delta");
  auto A = kiln::arg_f32(info, 2, fn, "A");
  auto B = kiln::arg_f32(info, 3, fn, "B");
  auto C = kiln::arg_f32(info, 4, fn, "C");
  in.u = u.data;
  in.delta = delta.data;
  in.A = A.data;
  in.B = B.data;
  in.C = C.data;
  in.D = opt(5, "D");
  in.bias = opt(6, "deltaBias");
  s.rows = kiln::arg_int(info, firstInt, fn, "rows", 1);
  s.L = kiln::arg_int(info, firstInt + 1, fn, "L", 1);
  s.dim = kiln::arg_int(info, firstInt + 2, fn, "dim", 1);
  s.N = kiln::arg_int(info, firstInt + 3, fn, "dstate", 1);
  in.softplus = kiln::arg_bool(info, firstInt + 4, fn, "deltaSoftplus");
  const size_t rld = s.rows * s.L * s.dim, rln = s.rows * s.L * s.N;
  kiln::check_length(info.Env(), fn, "u", u.length, rld);
  kiln::check_length(info.Env(), fn, "delta", delta.length, rld);
  kiln::check_length(info.Env(), fn, "A", A.length, s.dim * s.N);
  kiln::check_length(info.Env(), fn, "B", B.length, rln);
  kiln::check_length(info.Env(), fn, "C", C.length, rln);
  if (in.D) kiln::check_length(info.Env(), fn, "D", kiln::arg_f32(info, 5, fn, "D").length, s.dim);
  if (in.bias) kiln::check_length(info.Env(), fn, "deltaBias", kiln::arg_f32(info, 6, fn, "deltaBias").length, s.dim);
  return in;
}

// selectiveScanChannelsLastForward(u, delta, A, B, C, D, deltaBias, y, rows, L, dim, dstate, deltaSoftplus)
Napi::Value Forward(const Napi::CallbackInfo& info) {
  const char* fn = "selectiveScanChannelsLastForward";
  Shape s;
  const Inputs in = read_inputs(info, fn, s, 8);
  auto y = kiln::arg_f32(info, 7, fn, "y");
  kiln::check_length(info.Env(), fn, "y", y.length, s.rows * s.L * s.dim);
  const int64_t nb = s.blocks();
  kiln::parallel_for(0, s.rows * nb, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> h(s.N * kW);
    for (int64_t item = i0; item < i1; item++) {
      const int64_t r = item / nb;
      const Block blk(in, s, item % nb);
      std::fill(h.begin(), h.end(), 0.0f);
      for (int64_t t = 0; t < s.L; t++) {
        const int64_t p = r * s.L + t;
        float raw[kW], dt[kW], uv[kW], acc[kW];
        step_inputs(in, blk, in.delta + p * s.dim, in.u + p * s.dim, raw, dt, uv);
        advance(s, blk, dt, uv, in.B + p * s.N, h.data());
        for (int64_t w = 0; w < kW; w++) acc[w] = blk.Dv[w] * uv[w];
        const float* Ct = in.C + p * s.N;
        for (int64_t n = 0; n < s.N; n++) {
          const float* hn = h.data() + n * kW;
          for (int64_t w = 0; w < kW; w++) acc[w] += Ct[n] * hn[w];
        }
        float* yr = y.data + p * s.dim + blk.d0;
        for (int64_t w = 0; w < blk.width; w++) yr[w] = acc[w];
      }
    }
  });
  return info.Env().Undefined();
}

// selectiveScanChannelsLastBackward(u, delta, A, B, C, D, deltaBias, dy,
//                                   du, ddelta, dA, dB, dC, dD, ddeltaBias,
//                                   rows, L, dim, dstate, deltaSoftplus)
// Every gradient array is written in full.
Napi::Value Backward(const Napi::CallbackInfo& info) {
  const char* fn = "selectiveScanChannelsLastBackward";
  Shape s;
  const Inputs in = read_inputs(info, fn, s, 15);
  const int64_t N = s.N, rld = s.rows * s.L * s.dim, rln = s.rows * s.L * N;
  auto dy = kiln::arg_f32(info, 7, fn, "dy");
  auto du = kiln::arg_f32(info, 8, fn, "du");
  auto ddelta = kiln::arg_f32(info, 9, fn, "ddelta");
  auto dA = kiln::arg_f32(info, 10, fn, "dA");
  auto dB = kiln::arg_f32(info, 11, fn, "dB");
  auto dC = kiln::arg_f32(info, 12, fn, "dC");
  auto dD = kiln::arg_f32(info, 13, fn, "dD");
  auto dbias = kiln::arg_f32(info, 14, fn, "ddeltaBias");
  for (auto [name, len, want] : {std::tuple<const char*, size_t, size_t>{"dy", dy.length, rld}, {"du", du.length, rld}, {"ddelta", ddelta.length, rld},
                                 {"dA", dA.length, s.dim * N}, {"dB", dB.length, rln}, {"dC", dC.length, rln}, {"dD", dD.length, s.dim}, {"ddeltaBias", dbias.length, s.dim}}) {
    kiln::check_length(info.Env(), fn, name, len, want);
  }
  const int64_t nb = s.blocks(), items = s.rows * nb, nc = (s.L + kChunk - 1) / kChunk;
  // Per item: dB, dC partials over its channels [L][N]; dA [N][kW]; dD, dbias [kW].
  std::vector<float> dBpart(items * s.L * N), dCpart(items * s.L * N), dApart(items * N * kW), dDpart(items * kW), dbiasPart(items * kW);
  kiln::parallel_for(0, items, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> checkpoints(nc * N * kW), hs((kChunk + 1) * N * kW), k(N * kW);
    for (int64_t item = i0; item < i1; item++) {
      const int64_t r = item / nb;
      const Block blk(in, s, item % nb);
      float* dBi = dBpart.data() + item * s.L * N;
      float* dCi = dCpart.data() + item * s.L * N;
      float* dAi = dApart.data() + item * N * kW;
      float dDi[kW] = {0}, dbi[kW] = {0};
      std::fill(dAi, dAi + N * kW, 0.0f);
      // Forward: the state entering every chunk.
      std::vector<float>& h = hs;  // first N·kW floats as the running state
      std::fill(h.begin(), h.begin() + N * kW, 0.0f);
      for (int64_t t = 0; t < s.L; t++) {
        if (t % kChunk == 0) std::copy(h.begin(), h.begin() + N * kW, checkpoints.begin() + (t / kChunk) * N * kW);
        const int64_t p = r * s.L + t;
        float raw[kW], dt[kW], uv[kW];
        step_inputs(in, blk, in.delta + p * s.dim, in.u + p * s.dim, raw, dt, uv);
        advance(s, blk, dt, uv, in.B + p * N, h.data());
      }
      // Backward, chunk by chunk from the end; k = the adjoint arriving from step t + 1
      // (a_{t+1}·g_{t+1}).
      std::fill(k.begin(), k.end(), 0.0f);
      for (int64_t c = nc - 1; c >= 0; c--) {
        const int64_t t0 = c * kChunk, len = std::min(kChunk, s.L - t0);
        // hs[j] = state after step t0 + j − 1 (hs[0] = the checkpoint).
        std::copy(checkpoints.begin() + c * N * kW, checkpoints.begin() + (c + 1) * N * kW, hs.begin());
        for (int64_t j = 0; j < len; j++) {
          const int64_t p = r * s.L + t0 + j;
          float raw[kW], dt[kW], uv[kW];
          step_inputs(in, blk, in.delta + p * s.dim, in.u + p * s.dim, raw, dt, uv);
          std::copy(hs.begin() + j * N * kW, hs.begin() + (j + 1) * N * kW, hs.begin() + (j + 1) * N * kW);
          advance(s, blk, dt, uv, in.B + p * N, hs.data() + (j + 1) * N * kW);
        }
        for (int64_t j = len - 1; j >= 0; j--) {
          const int64_t t = t0 + j, p = r * s.L + t;
          float raw[kW], dt[kW], uv[kW], g0[kW], accDt[kW], accU[kW];
          step_inputs(in, blk, in.delta + p * s.dim, in.u + p * s.dim, raw, dt, uv);
          blk.load(dy.data + p * s.dim, g0);
          for (int64_t w = 0; w < kW; w++) {
            accDt[w] = 0.0f;
            accU[w] = 0.0f;
          }
          const float *Bt = in.B + p * N, *Ct = in.C + p * N;
          const float* hPrev = hs.data() + j * N * kW;
          const float* hCur = hs.data() + (j + 1) * N * kW;
          for (int64_t n = 0; n < N; n++) {
            const float* a = blk.At.data() + n * kW;
            float* kn = k.data() + n * kW;
            float* dAn = dAi + n * kW;
            const float* hp = hPrev + n * kW;
            const float* hc = hCur + n * kW;
            // Lane terms of dB and dC first, summed after (a float reduction inside the
            // loop would keep GCC from vectorizing it).
            float tB[kW], tC[kW];
            for (int64_t w = 0; w < kW; w++) {
              const float g = kn[w] + g0[w] * Ct[n];  // ∂/∂h_t
              const float ea = gk::fast_exp(dt[w] * a[w]);
              const float gah = g * ea * hp[w];       // ∂/∂(Δ·A) through the decay
              accDt[w] += gah * a[w] + g * Bt[n] * uv[w];
              dAn[w] += gah * dt[w];
              accU[w] += g * Bt[n];
              tB[w] = g * dt[w] * uv[w];
              tC[w] = g0[w] * hc[w];
              kn[w] = ea * g;
            }
            float sB = 0.0f, sC = 0.0f;
            for (int64_t w = 0; w < kW; w++) {
              sB += tB[w];
              sC += tC[w];
            }
            dBi[t * N + n] = sB;
            dCi[t * N + n] = sC;
          }
          float* duRow = du.data + p * s.dim + blk.d0;
          float* ddRow = ddelta.data + p * s.dim + blk.d0;
          for (int64_t w = 0; w < kW; w++) {
            const float gRaw = in.softplus && raw[w] <= 20.0f ? accDt[w] * sigmoid_v(raw[w]) : accDt[w];
            dDi[w] += g0[w] * uv[w];
            dbi[w] += gRaw;
            if (w < blk.width) {
              duRow[w] = accU[w] * dt[w] + blk.Dv[w] * g0[w];
              ddRow[w] = gRaw;
            }
          }
        }
      }
      std::copy(dDi, dDi + kW, dDpart.begin() + item * kW);
      std::copy(dbi, dbi + kW, dbiasPart.begin() + item * kW);
    }
  });
  // dB, dC: each row's blocks in order; dA, dD, dbias: over rows in order, in double.
  kiln::parallel_for(0, s.rows * s.L, 4096, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t r = p / s.L, t = p % s.L;
      for (int64_t n = 0; n < N; n++) {
        float sb = 0.0f, sc = 0.0f;
        for (int64_t b = 0; b < nb; b++) {
          const int64_t o = ((r * nb + b) * s.L + t) * N + n;
          sb += dBpart[o];
          sc += dCpart[o];
        }
        dB.data[p * N + n] = sb;
        dC.data[p * N + n] = sc;
      }
    }
  });
  for (int64_t d = 0; d < s.dim; d++) {
    const int64_t b = d / kW, w = d % kW;
    double sD = 0.0, sBias = 0.0;
    std::vector<double> sA(N, 0.0);
    for (int64_t r = 0; r < s.rows; r++) {
      const int64_t item = r * nb + b;
      sD += dDpart[item * kW + w];
      sBias += dbiasPart[item * kW + w];
      for (int64_t n = 0; n < N; n++) sA[n] += dApart[(item * N + n) * kW + w];
    }
    dD.data[d] = static_cast<float>(sD);
    dbias.data[d] = static_cast<float>(sBias);
    for (int64_t n = 0; n < N; n++) dA.data[d * N + n] = static_cast<float>(sA[n]);
  }
  return info.Env().Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(selectiveScanChannelsLastForward, Forward);
KILN_EXPORT_FUNCTION(selectiveScanChannelsLastBackward, Backward);
