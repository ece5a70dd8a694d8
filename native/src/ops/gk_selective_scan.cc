// @kiln/gpu-kernels: Mamba's selective scan (S6), forward and backward, as a chunked
// parallel scan over time (the algorithm of packages/gpu-kernels/src/scan/chunked-scan.ts).
//
// Work items are (batch, chunk) pairs, so both the batch and the time axis are parallel:
//   pass 1  each chunk reduces to (P, S) = (∏ a_t, state from zero)       [parallel over b, chunk]
//   pass 2  carry the state across chunks: hStart per chunk, last state   [parallel over b, d]
//   pass 3  each chunk replays from hStart and emits y                    [parallel over b, chunk]
// Inside an item the state vector over n is the innermost loop (vectorized), and B, C of the
// chunk are transposed once into [t][n] tiles that every channel d reuses from cache.
// The backward pass runs the same three passes on the adjoint k_t = a_t·g_t backwards in time.
//
// Layouts (row-major): u, delta, z, out [b, d, L]; A [d, N]; B, C [b, N, L]; D, bias [d];
// states [b, d, N]. Absent optional inputs are passed as empty Float32Arrays.
#include <vector>

#include "kiln_addon.h"
#include "ops/gk_common.h"
#include "parallel.h"

namespace {

struct ScanShape {
  int64_t batch, dim, N, L, chunk, nc;
};

struct ScanArgs {
  const float *u, *delta, *A, *B, *C, *D, *z, *bias, *h0;
  bool softplus;
};

// Δ = softplus?(delta + bias), [b, d, L].
void effective_delta(const ScanArgs& a, const ScanShape& s, float* dt) {
  kiln::parallel_for(0, s.batch * s.dim, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float bias = a.bias ? a.bias[r % s.dim] : 0.0f;
      const float* src = a.delta + r * s.L;
      float* dst = dt + r * s.L;
      for (int64_t t = 0; t < s.L; t++) {
        const float v = src[t] + bias;
        dst[t] = a.softplus ? gk::softplus(v) : v;
      }
    }
  });
}

// B or C of one (batch, chunk) as a [t][n] tile.
void load_tile(const float* X, const ScanShape& s, int64_t b, int64_t t0, int64_t len, float* tile) {
  for (int64_t n = 0; n < s.N; n++) {
    const float* row = X + (b * s.N + n) * s.L + t0;
    for (int64_t t = 0; t < len; t++) tile[t * s.N + n] = row[t];
  }
}

// Passes 1 and 2: hStart [(b, d, c), n] and the last state [b, d, n].
void chunk_start_states(const ScanArgs& a, const ScanShape& s, const float* dt, float* hStart, float* last) {
  const int64_t N = s.N;
  std::vector<float> P(s.batch * s.dim * s.nc * N), S(s.batch * s.dim * s.nc * N);
  kiln::parallel_for(0, s.batch * s.nc, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> Bt(s.chunk * N), p(N), h(N), ea(N);
    for (int64_t item = i0; item < i1; item++) {
      const int64_t b = item / s.nc, c = item % s.nc, t0 = c * s.chunk;
      const int64_t len = std::min(s.chunk, s.L - t0);
      load_tile(a.B, s, b, t0, len, Bt.data());
      for (int64_t d = 0; d < s.dim; d++) {
        const float* Ad = a.A + d * N;
        const float* dtr = dt + (b * s.dim + d) * s.L + t0;
        const float* ur = a.u + (b * s.dim + d) * s.L + t0;
        std::fill(p.begin(), p.end(), 1.0f);
        std::fill(h.begin(), h.end(), 0.0f);
        for (int64_t t = 0; t < len; t++) {
          const float dv = dtr[t], du = dtr[t] * ur[t];
          const float* bt = Bt.data() + t * N;
          for (int64_t n = 0; n < N; n++) ea[n] = gk::fast_exp(dv * Ad[n]);
          for (int64_t n = 0; n < N; n++) {
            p[n] *= ea[n];
            h[n] = ea[n] * h[n] + du * bt[n];
          }
        }
        const int64_t o = ((b * s.dim + d) * s.nc + c) * N;
        std::copy(p.begin(), p.end(), P.begin() + o);
        std::copy(h.begin(), h.end(), S.begin() + o);
      }
    }
  });
  kiln::parallel_for(0, s.batch * s.dim, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> h(N);
    for (int64_t r = r0; r < r1; r++) {
      for (int64_t n = 0; n < N; n++) h[n] = a.h0 ? a.h0[r * N + n] : 0.0f;
      for (int64_t c = 0; c < s.nc; c++) {
        const int64_t o = (r * s.nc + c) * N;
        for (int64_t n = 0; n < N; n++) {
          hStart[o + n] = h[n];
          h[n] = P[o + n] * h[n] + S[o + n];
        }
      }
      if (last) std::copy(h.begin(), h.end(), last + r * N);
    }
  });
}

// Pass 3: y = Σ_n C·h + D·u (before the gate), [b, d, L].
void replay_outputs(const ScanArgs& a, const ScanShape& s, const float* dt, const float* hStart, float* y) {
  const int64_t N = s.N;
  kiln::parallel_for(0, s.batch * s.nc, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> Bt(s.chunk * N), Ct(s.chunk * N), h(N), ea(N);
    for (int64_t item = i0; item < i1; item++) {
      const int64_t b = item / s.nc, c = item % s.nc, t0 = c * s.chunk;
      const int64_t len = std::min(s.chunk, s.L - t0);
      load_tile(a.B, s, b, t0, len, Bt.data());
      load_tile(a.C, s, b, t0, len, Ct.data());
      for (int64_t d = 0; d < s.dim; d++) {
        const float* Ad = a.A + d * N;
        const int64_t row = (b * s.dim + d) * s.L + t0;
        const float Dd = a.D ? a.D[d] : 0.0f;
        std::copy(hStart + ((b * s.dim + d) * s.nc + c) * N, hStart + ((b * s.dim + d) * s.nc + c + 1) * N, h.begin());
        for (int64_t t = 0; t < len; t++) {
          const float dv = dt[row + t], du = dt[row + t] * a.u[row + t];
          const float *bt = Bt.data() + t * N, *ct = Ct.data() + t * N;
          for (int64_t n = 0; n < N; n++) ea[n] = gk::fast_exp(dv * Ad[n]);
          float acc = 0.0f;
          for (int64_t n = 0; n < N; n++) {
            h[n] = ea[n] * h[n] + du * bt[n];
            acc += ct[n] * h[n];
          }
          y[row + t] = acc + Dd * a.u[row + t];
        }
      }
    }
  });
}

ScanArgs read_args(const Napi::CallbackInfo& info, const char* fn, ScanShape& s, int first_int) {
  auto opt = [&](size_t i, const char* name) -> const float* {
    auto v = kiln::arg_f32(info, i, fn, name);
    return v.length ? v.data : nullptr;
  };
  ScanArgs a;
  a.u = kiln::arg_f32(info, 0, fn, "u").data;
  a.delta = kiln::arg_f32(info, 1, fn, "delta").data;
  a.A = kiln::arg_f32(info, 2, fn, "A").data;
  a.B = kiln::arg_f32(info, 3, fn, "B").data;
  a.C = kiln::arg_f32(info, 4, fn, "C").data;
  a.D = opt(5, "D");
  a.z = opt(6, "z");
  a.bias = opt(7, "deltaBias");
  a.h0 = opt(8, "initialState");
  s.batch = kiln::arg_int(info, first_int, fn, "batch", 1);
  s.dim = kiln::arg_int(info, first_int + 1, fn, "dim", 1);
  s.N = kiln::arg_int(info, first_int + 2, fn, "dstate", 1);
  s.L = kiln::arg_int(info, first_int + 3, fn, "length", 1);
  a.softplus = kiln::arg_bool(info, first_int + 4, fn, "deltaSoftplus");
  // A chunk longer than the sequence is the whole sequence (and sizes the scratch tiles).
  s.chunk = std::min(kiln::arg_int(info, first_int + 5, fn, "chunk", 1), s.L);
  s.nc = (s.L + s.chunk - 1) / s.chunk;
  Napi::Env env = info.Env();
  kiln::check_shape(env, fn, "u", kiln::arg_f32(info, 0, fn, "u").length, {s.batch, s.dim, s.L});
  kiln::check_shape(env, fn, "delta", kiln::arg_f32(info, 1, fn, "delta").length, {s.batch, s.dim, s.L});
  kiln::check_shape(env, fn, "A", kiln::arg_f32(info, 2, fn, "A").length, {s.dim, s.N});
  kiln::check_shape(env, fn, "B", kiln::arg_f32(info, 3, fn, "B").length, {s.batch, s.N, s.L});
  kiln::check_shape(env, fn, "C", kiln::arg_f32(info, 4, fn, "C").length, {s.batch, s.N, s.L});
  const size_t bdl = s.batch * s.dim * s.L;
  kiln::check_optional(env, fn, "D", kiln::arg_f32(info, 5, fn, "D").length, s.dim);
  kiln::check_optional(env, fn, "z", kiln::arg_f32(info, 6, fn, "z").length, bdl);
  kiln::check_optional(env, fn, "deltaBias", kiln::arg_f32(info, 7, fn, "deltaBias").length, s.dim);
  kiln::check_optional(env, fn, "initialState", kiln::arg_f32(info, 8, fn, "initialState").length,
                       kiln::shape_size(env, fn, "initialState", {s.batch, s.dim, s.N}));
  return a;
}

// selectiveScanForward(u, delta, A, B, C, D, z, deltaBias, initialState, out, lastState,
//                      batch, dim, dstate, length, deltaSoftplus, chunk)
Napi::Value Forward(const Napi::CallbackInfo& info) {
  const char* fn = "selectiveScanForward";
  ScanShape s;
  ScanArgs a = read_args(info, fn, s, 11);
  auto out = kiln::arg_f32(info, 9, fn, "out");
  auto last = kiln::arg_f32(info, 10, fn, "lastState");
  kiln::check_shape(info.Env(), fn, "out", out.length, {s.batch, s.dim, s.L});
  kiln::check_shape(info.Env(), fn, "lastState", last.length, {s.batch, s.dim, s.N});
  std::vector<float> dt(s.batch * s.dim * s.L), hStart(s.batch * s.dim * s.nc * s.N);
  effective_delta(a, s, dt.data());
  chunk_start_states(a, s, dt.data(), hStart.data(), last.data);
  replay_outputs(a, s, dt.data(), hStart.data(), out.data);
  if (a.z) {
    kiln::parallel_for(0, s.batch * s.dim * s.L, 32768, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) out.data[i] *= a.z[i] * gk::sigmoid(a.z[i]);
    });
  }
  return info.Env().Undefined();
}

// selectiveScanBackward(u, delta, A, B, C, D, z, deltaBias, initialState, dout, dLast,
//                       du, ddelta, dA, dB, dC, dD, dz, ddeltaBias, dInitialState,
//                       batch, dim, dstate, length, deltaSoftplus, chunk)
// dLast may be empty (zero); every gradient array is written in full.
Napi::Value Backward(const Napi::CallbackInfo& info) {
  const char* fn = "selectiveScanBackward";
  ScanShape s;
  ScanArgs a = read_args(info, fn, s, 20);
  const int64_t N = s.N, bdl = s.batch * s.dim * s.L;
  auto dout = kiln::arg_f32(info, 9, fn, "dout");
  auto dLastV = kiln::arg_f32(info, 10, fn, "dLast");
  const float* dLast = dLastV.length ? dLastV.data : nullptr;
  auto du = kiln::arg_f32(info, 11, fn, "du");
  auto ddelta = kiln::arg_f32(info, 12, fn, "ddelta");
  auto dA = kiln::arg_f32(info, 13, fn, "dA");
  auto dB = kiln::arg_f32(info, 14, fn, "dB");
  auto dC = kiln::arg_f32(info, 15, fn, "dC");
  auto dD = kiln::arg_f32(info, 16, fn, "dD");
  auto dz = kiln::arg_f32(info, 17, fn, "dz");
  auto dbias = kiln::arg_f32(info, 18, fn, "ddeltaBias");
  auto dh0 = kiln::arg_f32(info, 19, fn, "dInitialState");
  kiln::check_length(info.Env(), fn, "dout", dout.length, bdl);
  kiln::check_length(info.Env(), fn, "du", du.length, bdl);
  kiln::check_length(info.Env(), fn, "ddelta", ddelta.length, bdl);
  kiln::check_length(info.Env(), fn, "dA", dA.length, s.dim * N);
  kiln::check_length(info.Env(), fn, "dB", dB.length, s.batch * N * s.L);
  kiln::check_length(info.Env(), fn, "dC", dC.length, s.batch * N * s.L);
  kiln::check_length(info.Env(), fn, "dD", dD.length, s.dim);
  kiln::check_length(info.Env(), fn, "dz", dz.length, bdl);
  kiln::check_length(info.Env(), fn, "ddeltaBias", dbias.length, s.dim);
  kiln::check_shape(info.Env(), fn, "dInitialState", dh0.length, {s.batch, s.dim, N});
  if (dLast) kiln::check_length(info.Env(), fn, "dLast", dLastV.length, dh0.length);

  std::vector<float> dt(bdl), hStart(s.batch * s.dim * s.nc * N);
  effective_delta(a, s, dt.data());
  chunk_start_states(a, s, dt.data(), hStart.data(), nullptr);
  // The gate: dy = dout·silu(z), dz = dout·y·silu'(z).
  std::vector<float> dyBuf;
  const float* dy = dout.data;
  if (a.z) {
    replay_outputs(a, s, dt.data(), hStart.data(), dz.data);  // y, overwritten below
    dyBuf.resize(bdl);
    kiln::parallel_for(0, bdl, 32768, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) {
        const float zv = a.z[i], sg = gk::sigmoid(zv), g = dout.data[i];
        dyBuf[i] = g * zv * sg;
        dz.data[i] = g * dz.data[i] * sg * (1.0f + zv * (1.0f - sg));
      }
    });
    dy = dyBuf.data();
  } else {
    std::fill(dz.data, dz.data + bdl, 0.0f);
  }

  // Backward passes 1 and 2: the adjoint entering each chunk from its right.
  std::vector<float> Q(s.batch * s.dim * s.nc * N), K(s.batch * s.dim * s.nc * N), kEnd(s.batch * s.dim * s.nc * N);
  kiln::parallel_for(0, s.batch * s.nc, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> Ct(s.chunk * N), q(N), k(N), ea(N);
    for (int64_t item = i0; item < i1; item++) {
      const int64_t b = item / s.nc, c = item % s.nc, t0 = c * s.chunk;
      const int64_t len = std::min(s.chunk, s.L - t0);
      load_tile(a.C, s, b, t0, len, Ct.data());
      for (int64_t d = 0; d < s.dim; d++) {
        const float* Ad = a.A + d * N;
        const int64_t row = (b * s.dim + d) * s.L + t0;
        std::fill(q.begin(), q.end(), 1.0f);
        std::fill(k.begin(), k.end(), 0.0f);
        for (int64_t t = len - 1; t >= 0; t--) {
          const float dv = dt[row + t], g = dy[row + t];
          const float* ct = Ct.data() + t * N;
          for (int64_t n = 0; n < N; n++) ea[n] = gk::fast_exp(dv * Ad[n]);
          for (int64_t n = 0; n < N; n++) {
            q[n] *= ea[n];
            k[n] = ea[n] * (k[n] + g * ct[n]);
          }
        }
        const int64_t o = ((b * s.dim + d) * s.nc + c) * N;
        std::copy(q.begin(), q.end(), Q.begin() + o);
        std::copy(k.begin(), k.end(), K.begin() + o);
      }
    }
  });
  kiln::parallel_for(0, s.batch * s.dim, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> k(N);
    for (int64_t r = r0; r < r1; r++) {
      for (int64_t n = 0; n < N; n++) k[n] = dLast ? dLast[r * N + n] : 0.0f;
      for (int64_t c = s.nc - 1; c >= 0; c--) {
        const int64_t o = (r * s.nc + c) * N;
        for (int64_t n = 0; n < N; n++) {
          kEnd[o + n] = k[n];
          k[n] = Q[o + n] * k[n] + K[o + n];
        }
      }
      std::copy(k.begin(), k.end(), dh0.data + r * N);
    }
  });

  // Pass 3: replay each chunk forward (states) then backward (adjoints), accumulating.
  const int64_t items = s.batch * s.nc;
  std::vector<float> dApart(items * s.dim * N, 0.0f);
  std::vector<float> ddt(bdl, 0.0f);
  kiln::parallel_for(0, items, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> Bt(s.chunk * N), Ct(s.chunk * N), dBt(s.chunk * N), dCt(s.chunk * N), hPrev(s.chunk * N), h(N), k(N), ea(N);
    for (int64_t item = i0; item < i1; item++) {
      const int64_t b = item / s.nc, c = item % s.nc, t0 = c * s.chunk;
      const int64_t len = std::min(s.chunk, s.L - t0);
      load_tile(a.B, s, b, t0, len, Bt.data());
      load_tile(a.C, s, b, t0, len, Ct.data());
      std::fill(dBt.begin(), dBt.end(), 0.0f);
      std::fill(dCt.begin(), dCt.end(), 0.0f);
      float* dAi = dApart.data() + item * s.dim * N;
      for (int64_t d = 0; d < s.dim; d++) {
        const float* Ad = a.A + d * N;
        const int64_t row = (b * s.dim + d) * s.L + t0;
        const int64_t o = ((b * s.dim + d) * s.nc + c) * N;
        std::copy(hStart.begin() + o, hStart.begin() + o + N, h.begin());
        for (int64_t t = 0; t < len; t++) {
          const float dv = dt[row + t], dvu = dt[row + t] * a.u[row + t];
          const float* bt = Bt.data() + t * N;
          float* hp = hPrev.data() + t * N;
          for (int64_t n = 0; n < N; n++) ea[n] = gk::fast_exp(dv * Ad[n]);
          for (int64_t n = 0; n < N; n++) {
            hp[n] = h[n];
            h[n] = ea[n] * h[n] + dvu * bt[n];
          }
        }
        std::copy(kEnd.begin() + o, kEnd.begin() + o + N, k.begin());
        float* dAd = dAi + d * N;
        for (int64_t t = len - 1; t >= 0; t--) {
          const float dv = dt[row + t], uv = a.u[row + t], g0 = dy[row + t];
          const float *bt = Bt.data() + t * N, *ct = Ct.data() + t * N, *hp = hPrev.data() + t * N;
          float *dbt = dBt.data() + t * N, *dct = dCt.data() + t * N;
          for (int64_t n = 0; n < N; n++) ea[n] = gk::fast_exp(dv * Ad[n]);
          float accDt = 0.0f, accU = 0.0f;
          for (int64_t n = 0; n < N; n++) {
            const float g = k[n] + g0 * ct[n];
            const float ah = ea[n] * hp[n];
            accDt += g * (Ad[n] * ah + bt[n] * uv);
            dAd[n] += g * ah * dv;
            accU += g * bt[n];
            dbt[n] += g * dv * uv;
            dct[n] += g0 * (ah + dv * bt[n] * uv);
            k[n] = ea[n] * g;
          }
          ddt[row + t] = accDt;
          du.data[row + t] = accU * dv;
        }
      }
      for (int64_t n = 0; n < N; n++) {
        float* dbRow = dB.data + (b * N + n) * s.L + t0;
        float* dcRow = dC.data + (b * N + n) * s.L + t0;
        for (int64_t t = 0; t < len; t++) {
          dbRow[t] = dBt[t * N + n];
          dcRow[t] = dCt[t * N + n];
        }
      }
    }
  });
  // Reductions over (batch, chunk) for dA; over (batch, time) for dD and the bias.
  kiln::parallel_for(0, s.dim, 4, [&](int64_t d0, int64_t d1) {
    for (int64_t d = d0; d < d1; d++) {
      for (int64_t n = 0; n < N; n++) {
        double acc = 0.0;
        for (int64_t item = 0; item < items; item++) acc += dApart[(item * s.dim + d) * N + n];
        dA.data[d * N + n] = static_cast<float>(acc);
      }
      const float Dd = a.D ? a.D[d] : 0.0f;
      const float bias = a.bias ? a.bias[d] : 0.0f;
      double accD = 0.0, accBias = 0.0;
      for (int64_t b = 0; b < s.batch; b++) {
        const int64_t row = (b * s.dim + d) * s.L;
        for (int64_t t = 0; t < s.L; t++) {
          accD += static_cast<double>(dy[row + t]) * a.u[row + t];
          du.data[row + t] += dy[row + t] * Dd;
          float g = ddt[row + t];
          if (a.softplus) {
            const float r = a.delta[row + t] + bias;
            if (r <= 20.0f) g *= gk::sigmoid(r);
          }
          ddelta.data[row + t] = g;
          accBias += g;
        }
      }
      dD.data[d] = static_cast<float>(accD);
      dbias.data[d] = static_cast<float>(accBias);
    }
  });
  return info.Env().Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(selectiveScanForward, Forward);
KILN_EXPORT_FUNCTION(selectiveScanBackward, Backward);
