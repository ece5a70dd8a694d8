// Checks every CUDA kernel of native/cuda against the reference outputs of
// @kiln/gpu-kernels (fixtures/*.bin, written by make-fixtures.mjs from the ops' reference
// compositions), then times the kernels at the benchmark sizes.
//
// Fixture format (little-endian): "GKF1", int32 count, then per array: int32 name length,
// name, int32 dtype (0 f32, 1 i32), int32 rank, int32 dims[rank], data.
#include <cuda_runtime.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../../native/cuda/gk_kernels.cuh"

using namespace gk_cuda;

struct Array {
  int dtype = 0;
  std::vector<int> shape;
  std::vector<float> f;
  std::vector<int> i;
  size_t size() const { return dtype ? i.size() : f.size(); }
};
using Fixture = std::map<std::string, Array>;

static Fixture load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    std::exit(2);
  }
  char magic[4];
  in.read(magic, 4);
  if (std::memcmp(magic, "GKF1", 4) != 0) {
    std::fprintf(stderr, "%s: not a GKF1 fixture\n", path.c_str());
    std::exit(2);
  }
  int32_t count;
  in.read(reinterpret_cast<char*>(&count), 4);
  Fixture fx;
  for (int a = 0; a < count; a++) {
    int32_t len, dtype, rank;
    in.read(reinterpret_cast<char*>(&len), 4);
    std::string name(len, '\0');
    in.read(&name[0], len);
    in.read(reinterpret_cast<char*>(&dtype), 4);
    in.read(reinterpret_cast<char*>(&rank), 4);
    Array arr;
    arr.dtype = dtype;
    size_t n = 1;
    for (int r = 0; r < rank; r++) {
      int32_t d;
      in.read(reinterpret_cast<char*>(&d), 4);
      arr.shape.push_back(d);
      n *= d;
    }
    if (dtype) {
      arr.i.resize(n);
      in.read(reinterpret_cast<char*>(arr.i.data()), n * 4);
    } else {
      arr.f.resize(n);
      in.read(reinterpret_cast<char*>(arr.f.data()), n * 4);
    }
    fx[name] = arr;
  }
  return fx;
}

// Device copies that free themselves.
template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) { cudaMalloc(&p, (count ? count : 1) * sizeof(T)); }
  Dev(const std::vector<T>& host) : Dev(host.size()) { cudaMemcpy(p, host.data(), n * sizeof(T), cudaMemcpyHostToDevice); }
  ~Dev() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> h(n);
    cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
  }
};

static int failures = 0;

// max |got − want| / (1 + max |want|) ≤ tol; tol 0 means bit-exact (NaN matches NaN).
static void compare(const std::string& what, const std::vector<float>& got, const std::vector<float>& want, double tol) {
  double err = 0, scale = 0;
  size_t bad = 0;
  for (size_t k = 0; k < want.size(); k++) {
    if (std::isnan(want[k]) || std::isnan(got[k])) {
      if (std::isnan(want[k]) != std::isnan(got[k])) bad++;
      continue;
    }
    scale = std::fmax(scale, std::fabs(want[k]));
    double e = std::fabs(got[k] - want[k]);
    err = std::fmax(err, e);
    if (tol == 0 && (got[k] != want[k] || std::signbit(got[k]) != std::signbit(want[k]))) bad++;
  }
  double rel = err / (1 + scale);
  bool ok = got.size() == want.size() && bad == 0 && (tol == 0 || rel <= tol);
  if (!ok) failures++;
  std::printf("  %-4s %-34s %s\n", ok ? "ok" : "FAIL", what.c_str(),
              tol == 0 ? (bad ? (std::to_string(bad) + " elements differ").c_str() : "bit-exact") : ("rel err " + std::to_string(rel)).c_str());
}

static void compare_i(const std::string& what, const std::vector<int>& got, const std::vector<int>& want) {
  bool ok = got == want;
  if (!ok) failures++;
  std::printf("  %-4s %-34s %s\n", ok ? "ok" : "FAIL", what.c_str(), ok ? "identical" : "differ");
}

static const float* opt(Fixture& fx, const char* name, std::vector<std::unique_ptr<Dev<float>>>& keep) {
  auto it = fx.find(name);
  if (it == fx.end()) return nullptr;
  keep.emplace_back(new Dev<float>(it->second.f));
  return keep.back()->p;
}

static void check_scan(const std::string& dir, const char* name) {
  Fixture fx = load(dir + "/scan-" + name + ".bin");
  std::printf("selectiveScan %s\n", name);
  auto& u = fx["u"];
  ScanShape s{u.shape[0], u.shape[1], fx["A"].shape[1], u.shape[2], 16};
  std::vector<std::unique_ptr<Dev<float>>> keep;
  const float* dU = opt(fx, "u", keep);
  const float* dDelta = opt(fx, "delta", keep);
  const float* dA_ = opt(fx, "A", keep);
  const float* dB_ = opt(fx, "B", keep);
  const float* dC_ = opt(fx, "C", keep);
  const float* dD_ = opt(fx, "D", keep);
  const float* dZ = opt(fx, "z", keep);
  const float* dBias = opt(fx, "deltaBias", keep);
  const float* dH0 = opt(fx, "initialState", keep);
  const float* dOut = opt(fx, "dout", keep);
  const float* dLast = opt(fx, "dLast", keep);
  bool softplus = fx["softplus"].f[0] != 0;
  size_t bdl = u.size(), bnl = fx["B"].size(), bdn = fx["last"].size();
  Dev<float> out(bdl), last(bdn);
  selective_scan_forward(dU, dDelta, dA_, dB_, dC_, dD_, dZ, dBias, dH0, softplus, s, out.p, last.p);
  compare("out", out.get(), fx["out"].f, 1e-4);
  compare("lastState", last.get(), fx["last"].f, 1e-4);
  Dev<float> du(bdl), ddelta(bdl), dA(fx["A"].size()), dB(bnl), dC(bnl), dD(s.dim), dz(bdl), dbias(s.dim), dh0(bdn);
  selective_scan_backward(dU, dDelta, dA_, dB_, dC_, dD_, dZ, dBias, dH0, softplus, s, dOut, dLast, du.p, ddelta.p, dA.p, dB.p, dC.p, dD.p, dz.p,
                          dbias.p, dh0.p);
  compare("d u", du.get(), fx["d_u"].f, 5e-4);
  compare("d delta", ddelta.get(), fx["d_delta"].f, 5e-4);
  compare("d A", dA.get(), fx["d_A"].f, 5e-4);
  compare("d B", dB.get(), fx["d_B"].f, 5e-4);
  compare("d C", dC.get(), fx["d_C"].f, 5e-4);
  if (dD_) compare("d D", dD.get(), fx["d_D"].f, 5e-4);
  if (dZ) compare("d z", dz.get(), fx["d_z"].f, 5e-4);
  if (dBias) compare("d deltaBias", dbias.get(), fx["d_deltaBias"].f, 5e-4);
  if (dH0) compare("d initialState", dh0.get(), fx["d_initialState"].f, 5e-4);
}

static void check_grouped(const std::string& dir, const char* name) {
  Fixture fx = load(dir + "/grouped-" + name + ".bin");
  std::printf("groupedMatMul %s\n", name);
  auto& x = fx["x"];
  auto& w = fx["w"];
  int M = x.shape[0], K = x.shape[1], G = w.shape[0], N = w.shape[2];
  Dev<float> dx(x.f), dw(w.f), ddy(fx["dy"].f), out((size_t)M * N), gx((size_t)M * K), gw((size_t)G * K * N);
  Dev<int> off(fx["offsets"].i);
  grouped_matmul(dx.p, dw.p, out.p, off.p, G, M, K, N, 0);
  compare("out", out.get(), fx["out"].f, 1e-5);
  grouped_matmul(ddy.p, dw.p, gx.p, off.p, G, M, K, N, 1);
  compare("d x", gx.get(), fx["dx"].f, 1e-5);
  grouped_matmul(dx.p, ddy.p, gw.p, off.p, G, M, K, N, 2);
  compare("d weights", gw.get(), fx["dw"].f, 1e-5);
}

static void check_rows(const std::string& dir) {
  Fixture fx = load(dir + "/rows-padded.bin");
  std::printf("moe rows (drop-and-pad plan)\n");
  auto& x = fx["x"];
  int T = x.shape[0], H = x.shape[1], R = fx["indices"].shape[0];
  Dev<float> dx(x.f), w(fx["weights"].f), rows((size_t)R * H), back((size_t)T * H);
  Dev<int> idx(fx["indices"].i);
  gather_rows(dx.p, idx.p, rows.p, R, H);
  compare("gather", rows.get(), fx["gathered"].f, 0);
  Dev<float> g(fx["gathered"].f);
  scatter_rows(g.p, idx.p, w.p, back.p, R, T, H);
  compare("weighted scatter-add", back.get(), fx["scattered"].f, 1e-6);
}

static void check_router(const std::string& dir, const char* name) {
  Fixture fx = load(dir + "/router-" + name + ".bin");
  std::printf("topkRouter %s\n", name);
  auto& l = fx["logits"];
  auto& a = fx["attrs"].f;
  int T = l.shape[0], E = l.shape[1], k = (int)a[0];
  std::vector<std::unique_ptr<Dev<float>>> keep;
  const float* bias = opt(fx, "bias", keep);
  Dev<float> dl(l.f), probs((size_t)T * E);
  Dev<int> idx((size_t)T * k);
  topk_router(dl.p, bias, probs.p, idx.p, T, E, k, (int)a[1], a[2] != 0, (int)a[3], (int)a[4], a[5]);
  compare_i("indices", idx.get(), fx["indices"].i);
  compare("probs", probs.get(), fx["probs"].f, 1e-6);
}

static void check_fp8(const std::string& dir, const char* name) {
  Fixture fx = load(dir + "/fp8-" + name + ".bin");
  std::printf("castFp8 %s\n", name);
  int fmt = (int)fx["format"].f[0];
  Dev<float> grid(fx["grid"].f), go(fx["grid"].size()), rand(fx["rand"].f), ro(fx["rand"].size());
  cast_fp8(grid.p, go.p, grid.n, 1.f, fmt, false, 0);
  compare("codes, midpoints, saturation", go.get(), fx["grid_out"].f, 0);
  cast_fp8(rand.p, ro.p, rand.n, 37.5f, fmt, false, 0);
  compare("scaled random", ro.get(), fx["rand_out"].f, 0);
  cast_fp8(rand.p, ro.p, rand.n, 37.5f, fmt, true, 3);
  compare("stochastic (seed 3)", ro.get(), fx["rand_sr"].f, 0);
}

template <typename F>
static double time_ms(F&& fn, int runs) {
  fn();  // warm-up
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a);
  for (int r = 0; r < runs; r++) fn();
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms;
  cudaEventElapsedTime(&ms, a, b);
  return ms / runs;
}

static std::vector<float> randn(size_t n, float mean, float std, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(mean, std);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

static void bench() {
  std::printf("\ntimings (mean of 20 runs after a warm-up; kernels synchronize)\n");
  {
    int b = 2, d = 256, N = 16, L = 4096;
    size_t bdl = (size_t)b * d * L, bnl = (size_t)b * N * L;
    Dev<float> u(randn(bdl, 0, 1, 1)), delta(randn(bdl, 0, 0.5, 2)), B(randn(bnl, 0, 1, 3)), C(randn(bnl, 0, 1, 4)), z(randn(bdl, 0, 1, 5));
    std::vector<float> hA((size_t)d * N);
    for (int i = 0; i < d; i++)
      for (int n = 0; n < N; n++) hA[(size_t)i * N + n] = -(n + 1.f);
    Dev<float> A(hA), D(randn(d, 0, 1, 6)), bias(randn(d, 0, 0.1, 7)), dout(randn(bdl, 0, 1, 8));
    Dev<float> out(bdl), last((size_t)b * d * N), du(bdl), ddelta(bdl), dA((size_t)d * N), dB(bnl), dC(bnl), dD(d), dz(bdl), db(d), dh0((size_t)b * d * N);
    ScanShape s{b, d, N, L, 64};
    double f = time_ms([&] { selective_scan_forward(u.p, delta.p, A.p, B.p, C.p, D.p, z.p, bias.p, nullptr, true, s, out.p, last.p); }, 20);
    double g = time_ms(
        [&] {
          selective_scan_backward(u.p, delta.p, A.p, B.p, C.p, D.p, z.p, bias.p, nullptr, true, s, dout.p, nullptr, du.p, ddelta.p, dA.p, dB.p, dC.p,
                                  dD.p, dz.p, db.p, dh0.p);
        },
        20);
    std::printf("  selectiveScan b=2 d=256 N=16 L=4096   forward %.3f ms   backward %.3f ms   fwd+bwd %.3f ms\n", f, g, f + g);
  }
  {
    int G = 8, K = 1024, N = 1024, M = 8 * 512;
    std::vector<int> off(G + 1);
    for (int g = 0; g <= G; g++) off[g] = g * (M / G);
    Dev<float> x(randn((size_t)M * K, 0, 1, 9)), w(randn((size_t)G * K * N, 0, 1, 10)), out((size_t)M * N);
    Dev<int> doff(off);
    double t = time_ms([&] { grouped_matmul(x.p, w.p, out.p, doff.p, G, M, K, N, 0); }, 20);
    std::printf("  groupedMatMul G=8 M=4096 K=N=1024      %.3f ms   %.1f GFLOP/s\n", t, 2.0 * M * K * N / (t * 1e6));
  }
  {
    int64_t n = 1 << 24;
    Dev<float> x(randn(n, 0, 3, 11)), out(n);
    double t = time_ms([&] { cast_fp8(x.p, out.p, n, 37.5f, 0, false, 0); }, 20);
    std::printf("  castFp8 e4m3 16M elements             %.3f ms   %.1f GB/s\n", t, 8.0 * n / (t * 1e6));
  }
}

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "tools/cuda-check/fixtures";
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: the kernels compiled, but cannot be run here\n");
    return 3;
  }
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  std::printf("device: %s (sm_%d%d)\n\n", prop.name, prop.major, prop.minor);
  for (const char* c : {"full", "L1", "bare", "long"}) check_scan(dir, c);
  for (const char* c : {"ragged", "wide", "single"}) check_grouped(dir, c);
  check_rows(dir);
  for (const char* c : {"softmax", "presoftmax", "sigmoid-group", "sqrtsoftplus", "sigmoid-top1"}) check_router(dir, c);
  for (const char* c : {"e4m3", "e5m2"}) check_fp8(dir, c);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    std::printf("CUDA error: %s\n", cudaGetErrorString(err));
    failures++;
  }
  if (argc <= 2 || std::strcmp(argv[2], "--no-bench") != 0) bench();
  std::printf("\n%s: %d failing check(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
