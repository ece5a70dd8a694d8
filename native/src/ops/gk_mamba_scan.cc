// @kiln/gpu-kernels: Mamba's selective scan in a Mamba block's own layout (channels last),
// forward and backward:
//
//   Δ = softplus?(delta + bias);  h_t = exp(Δ_t·A) ⊙ h_{t−1} + Δ_t·u_t·B_t;  y_t = C_t·h_t + D·u_t
//
// Layouts (row-major): u, delta, y [rows, L, dim]; B, C [rows, L, N]; A [dim, N]; D, bias [dim].
//
// A model with a few dozen channels and a handful of states scans long sequences (a whole
// batch of point clouds is one sequence), so the work items are (row, block of 16 channels):
// each walks its row in time order with the 16×N state in vector registers, the channel lanes
// as the vector axis (GCC/Clang vector extensions: one AVX-512 register, two AVX2 ones, or
// scalar code elsewhere). No chunking or cross-chunk carry is needed, and with channels last
// every step reads 16 contiguous floats of u, delta and y. The backward pass checkpoints the
// state every kChunk steps, then walks the chunks from the end, recomputing each chunk's
// states and decays before running the adjoint through it. Partial sums over channel blocks
// (dB, dC) and over rows (dA, dD, dbias) are kept per item and added in a fixed order:
// results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kiln_addon.h"
#include "parallel.h"

namespace {

constexpr int64_t kW = 16;      // channels per work item
constexpr int64_t kChunk = 64;  // backward: steps between state checkpoints

typedef float vf __attribute__((vector_size(kW * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(kW * sizeof(int32_t))));

inline vf splat(float v) { return vf{} + v; }

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline float hsum(vf v) {
  float s = 0.0f;
  for (int w = 0; w < kW; w++) s += v[w];
  return s;
}

// exp(x) as gk::fast_exp, lane-wise: x = n·ln2 + r with n rounded to nearest (1.5·2^23 added
// and taken off again), exp(r) by its degree-7 Taylor polynomial, 2^n built in the exponent.
inline vf vexp(vf x) {
  x = x < -87.0f ? splat(-87.0f) : x;
  x = x > 88.0f ? splat(88.0f) : x;
  const vf magic = splat(12582912.0f);
  const vf t = x * 1.4426950408889634f + magic;
  const vf n = t - magic;
  const vf r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  vf p = splat(1.9841270e-4f);
  p = p * r + 1.3888889e-3f;
  p = p * r + 8.3333333e-3f;
  p = p * r + 4.1666667e-2f;
  p = p * r + 1.6666667e-1f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const vi bits = ((vi)t - (vi)magic + 127) << 23;
  return p * (vf)bits;
}

// log(1 + e) for e in [0, 1] as 2·atanh(s), s = e / (2 + e) ≤ 1/3, by its odd series (relative
// error < 1e-8).
inline vf vlog1p_unit(vf e) {
  const vf s = e / (2.0f + e), s2 = s * s;
  vf p = splat(1.0f / 15.0f);
  p = p * s2 + 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}

inline vf vsigmoid(vf v) { return 1.0f / (1.0f + vexp(-v)); }

// mamba's softplus (the identity above 20), as max(v, 0) + log1p(exp(−|v|)).
inline vf vsoftplus(vf v) {
  const vf a = v < 0.0f ? -v : v;
  const vf sp = (v > 0.0f ? v : splat(0.0f)) + vlog1p_unit(vexp(-a));
  return v > 20.0f ? v : sp;
}

struct Shape {
  int64_t rows, L, dim, N;
  int64_t blocks() const { return (dim + kW - 1) / kW; }
};

struct Inputs {
  const float *u, *delta, *A, *B, *C, *D, *bias;
  bool softplus;
};

// One item's channel block: A as N vectors, D and bias, zero past the last channel (a padded
// lane has u = 0: its state stays 0 and nothing is written for it).
struct Block {
  int64_t d0, width;
  std::vector<vf> A;
  vf D, bias;
  Block(const Inputs& in, const Shape& s, int64_t blk) : d0(blk * kW), width(std::min(kW, s.dim - blk * kW)), A(s.N, splat(0.0f)), D{}, bias{} {
    for (int64_t w = 0; w < width; w++) {
      if (in.D) D[w] = in.D[d0 + w];
      if (in.bias) bias[w] = in.bias[d0 + w];
      for (int64_t n = 0; n < s.N; n++) A[n][w] = in.A[(d0 + w) * s.N + n];
    }
  }
  // This block's lanes of a [.., dim] row (zeros past the last channel).
  vf load_row(const float* row) const {
    if (width == kW) return load(row + d0);
    vf v{};
    for (int64_t w = 0; w < width; w++) v[w] = row[d0 + w];
    return v;
  }
  void store_row(float* row, vf v) const {
    if (width == kW) std::memcpy(row + d0, &v, sizeof v);
    else for (int64_t w = 0; w < width; w++) row[d0 + w] = v[w];
  }
};

// One step's inputs: the raw Δ argument (delta + bias), Δ and u.
struct Step {
  vf raw, dt, u;
};

inline Step step_inputs(const Inputs& in, const Block& blk, const Shape& s, int64_t p) {
  Step st;
  st.raw = blk.load_row(in.delta + p * s.dim) + blk.bias;
  st.dt = in.softplus ? vsoftplus(st.raw) : st.raw;
  st.u = blk.load_row(in.u + p * s.dim);
  return st;
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
  const int64_t nb = s.blocks(), N = s.N;
  kiln::parallel_for(0, s.rows * nb, 1, [&](int64_t i0, int64_t i1) {
    std::vector<vf> h(N);
    for (int64_t item = i0; item < i1; item++) {
      const int64_t r = item / nb;
      const Block blk(in, s, item % nb);
      std::fill(h.begin(), h.end(), splat(0.0f));
      for (int64_t t = 0; t < s.L; t++) {
        const int64_t p = r * s.L + t;
        const Step st = step_inputs(in, blk, s, p);
        const vf du = st.dt * st.u;
        const float *Bt = in.B + p * N, *Ct = in.C + p * N;
        vf acc = blk.D * st.u;
        for (int64_t n = 0; n < N; n++) {
          h[n] = vexp(st.dt * blk.A[n]) * h[n] + du * Bt[n];
          acc += h[n] * Ct[n];
        }
        blk.store_row(y.data + p * s.dim, acc);
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
  // Per item: dB, dC partials over its channels [L][N]; dA [N] lanes; dD, dbias lanes. The
  // large two are kept between calls (grown, never shrunk; one pair per calling thread):
  // fresh buffers cost their page faults on every call.
  // (Bound to references here: inside the parallel body a thread_local would name the pool
  // thread's own copy.)
  thread_local std::vector<float> scratchB, scratchC;
  std::vector<float>& dBpart = scratchB;
  std::vector<float>& dCpart = scratchC;
  dBpart.resize(items * s.L * N);
  dCpart.resize(items * s.L * N);
  std::vector<vf> dApart(items * N, splat(0.0f)), dDpart(items), dbiasPart(items);
  kiln::parallel_for(0, items, 1, [&](int64_t i0, int64_t i1) {
    // Per chunk step j: the state before it hs[j·N + n] (hs[len·N ..] after the last), its
    // decays ea[j·N + n] and inputs.
    std::vector<vf> checkpoints(nc * N), hs((kChunk + 1) * N), ea(kChunk * N), k(N);
    std::vector<Step> steps(kChunk);
    for (int64_t item = i0; item < i1; item++) {
      const int64_t r = item / nb;
      const Block blk(in, s, item % nb);
      float* dBi = dBpart.data() + item * s.L * N;
      float* dCi = dCpart.data() + item * s.L * N;
      vf* dAi = dApart.data() + item * N;
      vf dDi = splat(0.0f), dbi = splat(0.0f);
      // Forward: the state entering every chunk (hs[0 .. N) as the running state).
      std::fill(hs.begin(), hs.begin() + N, splat(0.0f));
      for (int64_t t = 0; t < s.L; t++) {
        if (t % kChunk == 0) std::copy(hs.begin(), hs.begin() + N, checkpoints.begin() + (t / kChunk) * N);
        const int64_t p = r * s.L + t;
        const Step st = step_inputs(in, blk, s, p);
        const vf duv = st.dt * st.u;
        const float* Bt = in.B + p * N;
        for (int64_t n = 0; n < N; n++) hs[n] = vexp(st.dt * blk.A[n]) * hs[n] + duv * Bt[n];
      }
      // Backward, chunk by chunk from the end; k = the adjoint arriving from step t + 1
      // (a_{t+1}·g_{t+1}).
      std::fill(k.begin(), k.end(), splat(0.0f));
      for (int64_t c = nc - 1; c >= 0; c--) {
        const int64_t t0 = c * kChunk, len = std::min(kChunk, s.L - t0);
        std::copy(checkpoints.begin() + c * N, checkpoints.begin() + (c + 1) * N, hs.begin());
        for (int64_t j = 0; j < len; j++) {
          const int64_t p = r * s.L + t0 + j;
          const Step st = steps[j] = step_inputs(in, blk, s, p);
          const vf duv = st.dt * st.u;
          const float* Bt = in.B + p * N;
          for (int64_t n = 0; n < N; n++) {
            const vf e = ea[j * N + n] = vexp(st.dt * blk.A[n]);
            hs[(j + 1) * N + n] = e * hs[j * N + n] + duv * Bt[n];
          }
        }
        for (int64_t j = len - 1; j >= 0; j--) {
          const int64_t t = t0 + j, p = r * s.L + t;
          const Step& st = steps[j];
          const vf g0 = blk.load_row(dy.data + p * s.dim);
          const vf duv = st.dt * st.u;
          const float *Bt = in.B + p * N, *Ct = in.C + p * N;
          vf accDt = splat(0.0f), accU = splat(0.0f);
          for (int64_t n = 0; n < N; n++) {
            const vf e = ea[j * N + n];
            const vf g = k[n] + g0 * Ct[n];                 // ∂/∂h_t
            const vf gah = g * e * hs[j * N + n];           // ∂/∂(Δ·A) through the decay
            accDt += gah * blk.A[n] + g * st.u * Bt[n];
            dAi[n] += gah * st.dt;
            accU += g * Bt[n];
            dBi[t * N + n] = hsum(g * duv);
            dCi[t * N + n] = hsum(g0 * hs[(j + 1) * N + n]);
            k[n] = e * g;
          }
          vf gRaw = accDt;
          if (in.softplus) gRaw = st.raw > 20.0f ? accDt : accDt * vsigmoid(st.raw);
          dDi += g0 * st.u;
          dbi += gRaw;
          blk.store_row(du.data + p * s.dim, accU * st.dt + blk.D * g0);
          blk.store_row(ddelta.data + p * s.dim, gRaw);
        }
      }
      dDpart[item] = dDi;
      dbiasPart[item] = dbi;
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
      sD += dDpart[item][w];
      sBias += dbiasPart[item][w];
      for (int64_t n = 0; n < N; n++) sA[n] += dApart[item * N + n][w];
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
