// Module entry: runs every registration (kiln_addon.h) and exports the addon's core
// functions (build info, thread pool, GEMM path, batched matmul).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#ifndef _WIN32
#include <dlfcn.h>
#endif

#include "gemm.h"
#include "gemm_choice.h"
#include "kiln_addon.h"
#include "parallel.h"

namespace kiln {
namespace {

struct Registration {
  std::string name;
  ExportInit init = nullptr;
  Napi::Function::Callback fn = nullptr;
};

std::vector<Registration>& registry() {
  // Function-local so registrars in other translation units can run first.
  static std::vector<Registration> r;
  return r;
}

// A number as JavaScript would print it (std::to_string gives "nan" and 6 decimals).
std::string number_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

[[noreturn]] void type_error(const Napi::CallbackInfo& info, const char* fn, const char* name, const char* want) {
  throw Napi::TypeError::New(info.Env(), std::string(fn) + ": argument " + name + " must be " + want);
}

// The argument helpers below make one raw N-API call per argument (node-addon-api's typed
// wrappers make two or three): they run for every argument of every kernel call, and a
// small op's whole native cost is a few hundred nanoseconds.
struct TypedArrayArg {
  napi_typedarray_type type;
  size_t length;
  void* data;
};

bool typed_array(const Napi::CallbackInfo& info, size_t index, TypedArrayArg& out) {
  if (index >= info.Length()) return false;
  return napi_get_typedarray_info(info.Env(), info[index], &out.type, &out.length, &out.data, nullptr, nullptr) ==
         napi_ok;
}

}  // namespace

void register_exports(const char* name, ExportInit init) { registry().push_back({name, init, nullptr}); }
void register_function(const char* name, Napi::Function::Callback fn) { registry().push_back({name, nullptr, fn}); }

void run_registrations(Napi::Env env, Napi::Object exports) {
  for (const auto& r : registry()) {
    if (r.fn) {
      if (exports.Has(r.name)) {
        throw Napi::Error::New(env, "@kiln/native: two op files export the same name '" + r.name + "'");
      }
      exports.Set(r.name, Napi::Function::New(env, r.fn, r.name));
    } else {
      r.init(env, exports);
    }
  }
}

// An empty typed array may have no memory at all (a null data pointer). Kernels pass their
// arrays to memset/memcpy, where even a 0-byte null pointer is undefined behaviour, so an
// empty array gets the address of this unused word instead.
namespace {
alignas(64) uint32_t g_empty_array[16];

template <typename T>
T* non_null(T* data) {
  return data ? data : reinterpret_cast<T*>(g_empty_array);
}
}  // namespace

ArrayView<float> arg_f32(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  TypedArrayArg t;
  if (!typed_array(info, index, t) || t.type != napi_float32_array) type_error(info, fn, name, "a Float32Array");
  return {non_null(static_cast<float*>(t.data)), t.length};
}

ArrayView<int32_t> arg_i32(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  TypedArrayArg t;
  if (!typed_array(info, index, t) || t.type != napi_int32_array) type_error(info, fn, name, "an Int32Array");
  return {non_null(static_cast<int32_t*>(t.data)), t.length};
}

ArrayView<uint32_t> arg_word(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  TypedArrayArg t;
  if (!typed_array(info, index, t) ||
      (t.type != napi_float32_array && t.type != napi_int32_array && t.type != napi_uint32_array)) {
    type_error(info, fn, name, "a Float32Array, Int32Array or Uint32Array");
  }
  return {non_null(static_cast<uint32_t*>(t.data)), t.length};
}

double arg_number(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  double v;
  if (index >= info.Length() || napi_get_value_double(info.Env(), info[index], &v) != napi_ok) {
    type_error(info, fn, name, "a number");
  }
  return v;
}

int64_t arg_int(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name, int64_t min_value) {
  const double v = arg_number(info, index, fn, name);
  // Range first: converting NaN, an infinity or anything past 2^63 to int64_t is undefined.
  if (!(v >= static_cast<double>(min_value) && v <= static_cast<double>(kMaxArgInt)) || v != std::floor(v)) {
    const std::string bound = v > static_cast<double>(kMaxArgInt) ? "<= 2^53" : ">= " + std::to_string(min_value);
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": argument " + name + " must be an integer " + bound +
                                                ", got " + number_text(v));
  }
  return static_cast<int64_t>(v);
}

bool arg_bool(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  bool v;
  if (index >= info.Length() || napi_get_value_bool(info.Env(), info[index], &v) != napi_ok) {
    type_error(info, fn, name, "a boolean");
  }
  return v;
}

std::string arg_string(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  // Op names are short: one call into a stack buffer, a second only for long strings.
  char buf[64];
  size_t len = 0;
  if (index >= info.Length() || napi_get_value_string_utf8(info.Env(), info[index], buf, sizeof buf, &len) != napi_ok) {
    type_error(info, fn, name, "a string");
  }
  if (len + 1 < sizeof buf) return std::string(buf, len);
  napi_get_value_string_utf8(info.Env(), info[index], nullptr, 0, &len);
  std::string s(len, '\0');
  napi_get_value_string_utf8(info.Env(), info[index], s.data(), len + 1, &len);
  return s;
}

void check_length(Napi::Env env, const char* fn, const char* name, size_t got, size_t want) {
  if (got != want) {
    throw Napi::RangeError::New(env, std::string(fn) + ": " + name + " has " + std::to_string(got) +
                                         " elements, expected " + std::to_string(want));
  }
}

int64_t shape_size(Napi::Env env, const char* fn, const char* what, std::initializer_list<int64_t> dims) {
  return shape_size(env, fn, what, dims.begin(), dims.size());
}

int64_t shape_size(Napi::Env env, const char* fn, const char* what, const int64_t* dims, size_t rank) {
  int64_t size = 1;
  for (size_t i = 0; i < rank; ++i) {
    const int64_t d = dims[i];
    if (d < 0) {
      throw Napi::RangeError::New(env, std::string(fn) + ": " + what + " has a negative dimension " + std::to_string(d));
    }
    if (d != 0 && size > kMaxArgInt / d) {
      throw Napi::RangeError::New(env, std::string(fn) + ": " + what + " has more than 2^53 elements");
    }
    size *= d;
  }
  // A zero dimension makes the product 0 even when the others overflow together: keep
  // checking them, so that a later loop over the non-zero dimensions stays bounded.
  for (size_t i = 0; i < rank; ++i) {
    if (dims[i] > kMaxArgInt) throw Napi::RangeError::New(env, std::string(fn) + ": " + what + " has a dimension past 2^53");
  }
  return size;
}

void check_shape(Napi::Env env, const char* fn, const char* name, size_t got, std::initializer_list<int64_t> dims) {
  check_length(env, fn, name, got, static_cast<size_t>(shape_size(env, fn, name, dims)));
}

void check_optional(Napi::Env env, const char* fn, const char* name, size_t got, size_t want) {
  if (got != 0 && got != want) {
    throw Napi::RangeError::New(env, std::string(fn) + ": " + name + " has " + std::to_string(got) +
                                         " elements, expected " + std::to_string(want) + " or none");
  }
}

void check_indices(Napi::Env env, const char* fn, const char* name, const int32_t* values, size_t n, int64_t limit) {
  for (size_t i = 0; i < n; ++i) {
    if (values[i] < 0 || values[i] >= limit) {
      throw Napi::RangeError::New(env, std::string(fn) + ": " + name + "[" + std::to_string(i) + "] = " +
                                           std::to_string(values[i]) + " is outside [0, " + std::to_string(limit) + ")");
    }
  }
}

int64_t arg_choice(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name, int64_t count) {
  const int64_t v = arg_int(info, index, fn, name, 0);
  if (v >= count) {
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": argument " + name + " must be one of 0.." +
                                                std::to_string(count - 1) + ", got " + std::to_string(v));
  }
  return v;
}

uint32_t arg_seed(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  const double v = arg_number(info, index, fn, name);
  if (!std::isfinite(v) || v != std::floor(v)) {
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": argument " + name + " must be an integer, got " + number_text(v));
  }
  // ToUint32: exact for every integral double (fmod is exact).
  double m = std::fmod(v, 4294967296.0);
  if (m < 0) m += 4294967296.0;
  return static_cast<uint32_t>(m);
}

namespace {

const char* path_name(GemmPath p) {
  switch (p) {
    case GemmPath::Auto: return "auto";
    case GemmPath::Blas: return "blas";
    case GemmPath::Builtin: return "builtin";
  }
  return "?";
}

constexpr GemmKernel kKernels[] = {GemmKernel::Avx512, GemmKernel::Avx2, GemmKernel::Portable};

const char* kernel_name(GemmKernel k) {
  switch (k) {
    case GemmKernel::Avx512: return "avx512";
    case GemmKernel::Avx2: return "avx2";
    case GemmKernel::Portable: return "portable";
  }
  return "?";
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("threads", num_threads());
  o.Set("gemmPath", path_name(gemm_path()));
  o.Set("blas", blas_description());
  o.Set("blasLinked", blas_available());
  o.Set("gemmKernel", kernel_name(gemm_kernel()));
  o.Set("builtinKernel", builtin_kernel_name());
  Napi::Array kernels = Napi::Array::New(env);
  for (GemmKernel k : kKernels) {
    if (gemm_kernel_supported(k)) kernels.Set(kernels.Length(), kernel_name(k));
  }
  o.Set("gemmKernels", kernels);
  o.Set("blasThreads", gemm_threads());
#if defined(__AVX512F__)
  o.Set("simd", "avx512");
#elif defined(__AVX2__)
  o.Set("simd", "avx2");
#elif defined(__ARM_NEON)
  o.Set("simd", "neon");
#else
  o.Set("simd", "none");
#endif
  return o;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  set_num_threads(static_cast<int>(arg_int(info, 0, "setNumThreads", "n", 1)));
  return Napi::Number::New(info.Env(), num_threads());
}

Napi::Value SetGemmPath(const Napi::CallbackInfo& info) {
  const std::string want = arg_string(info, 0, "setGemmPath", "path");
  GemmPath p;
  if (want == "auto") p = GemmPath::Auto;
  else if (want == "blas") p = GemmPath::Blas;
  else if (want == "builtin") p = GemmPath::Builtin;
  else throw Napi::RangeError::New(info.Env(), "setGemmPath: path must be 'auto', 'blas' or 'builtin', got '" + want + "'");
  if (!set_gemm_path(p)) {
    throw Napi::Error::New(info.Env(), "setGemmPath: this build of @kiln/native is not linked with a BLAS");
  }
  return Napi::String::New(info.Env(), path_name(gemm_path()));
}

Napi::Value SetGemmKernel(const Napi::CallbackInfo& info) {
  const std::string want = arg_string(info, 0, "setGemmKernel", "kernel");
  for (GemmKernel k : kKernels) {
    if (want != kernel_name(k)) continue;
    if (!set_gemm_kernel(k)) {
      throw Napi::Error::New(info.Env(), "setGemmKernel: this CPU or build has no '" + want + "' kernel");
    }
    return Napi::String::New(info.Env(), kernel_name(gemm_kernel()));
  }
  throw Napi::RangeError::New(info.Env(),
                              "setGemmKernel: kernel must be 'avx512', 'avx2' or 'portable', got '" + want + "'");
}

// gemmChoices(): what the auto path measured and decided for each shape it has seen.
Napi::Value GemmChoices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  for (const auto& r : gemm::choice_records()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("m", static_cast<double>(r.key.m));
    o.Set("n", static_cast<double>(r.key.n));
    o.Set("k", static_cast<double>(r.key.k));
    o.Set("transA", r.key.trans_a);
    o.Set("transB", r.key.trans_b);
    o.Set("kernel", kernel_name(static_cast<GemmKernel>(r.key.kernel)));
    o.Set("builtinSeconds", r.runs_builtin > 0 ? Napi::Value(Napi::Number::New(env, r.best_builtin)) : env.Null());
    o.Set("blasSeconds", r.runs_blas > 0 ? Napi::Value(Napi::Number::New(env, r.best_blas)) : env.Null());
    o.Set("builtinRuns", r.runs_builtin);
    o.Set("blasRuns", r.runs_blas);
    const bool decided = r.choice == gemm::Choice::Builtin || r.choice == gemm::Choice::Blas;
    o.Set("choice", decided ? (r.choice == gemm::Choice::Blas ? "blas" : "builtin") : "measuring");
    out.Set(out.Length(), o);
  }
  return out;
}

// matmul(a, b, out, batchA, batchB, m, n, k, transA, transB[, alpha = 1, beta = 0])
// a: batchA x (m x k, or k x m when transA); b: batchB x (k x n, or n x k when transB);
// out: max(batchA, batchB) x m x n. A batch of 1 broadcasts against the other.
// out = alpha * op(a) * op(b) + beta * out (beta == 0: out's old contents are ignored).
Napi::Value MatMul(const Napi::CallbackInfo& info) {
  const char* fn = "matmul";
  auto a = arg_f32(info, 0, fn, "a");
  auto b = arg_f32(info, 1, fn, "b");
  auto out = arg_f32(info, 2, fn, "out");
  const int64_t ba = arg_int(info, 3, fn, "batchA", 1), bb = arg_int(info, 4, fn, "batchB", 1);
  const int64_t m = arg_int(info, 5, fn, "m"), n = arg_int(info, 6, fn, "n"), k = arg_int(info, 7, fn, "k");
  const bool ta = arg_bool(info, 8, fn, "transA"), tb = arg_bool(info, 9, fn, "transB");
  const float alpha = info.Length() > 10 ? static_cast<float>(arg_number(info, 10, fn, "alpha")) : 1.f;
  const float beta = info.Length() > 11 ? static_cast<float>(arg_number(info, 11, fn, "beta")) : 0.f;
  if (ba != bb && ba != 1 && bb != 1) {
    throw Napi::RangeError::New(info.Env(), "matmul: batch sizes " + std::to_string(ba) + " and " + std::to_string(bb) +
                                                " do not broadcast");
  }
  const int64_t batch = std::max(ba, bb);
  check_shape(info.Env(), fn, "a", a.length, {ba, m, k});
  check_shape(info.Env(), fn, "b", b.length, {bb, k, n});
  check_shape(info.Env(), fn, "out", out.length, {batch, m, n});
  // BLAS takes int dimensions.
  if (std::max({m, n, k}) > INT32_MAX) throw Napi::RangeError::New(info.Env(), "matmul: m, n and k must be below 2^31");
  if (out.length == 0) return info.Env().Undefined();
  const int64_t lda = ta ? m : k, ldb = tb ? k : n;
  auto one = [&](int64_t i) {
    sgemm(ta, tb, m, n, k, alpha, a.data + (ba == 1 ? 0 : i) * m * k, lda, b.data + (bb == 1 ? 0 : i) * k * n, ldb,
          beta, out.data + i * m * n, n);
  };
  // Many small products: one per thread at a time. Few large ones: each uses the pool.
  if (batch > 1 && m * n * k < (int64_t{1} << 18)) {
    parallel_for(0, batch, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) one(i);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i);
  }
  return info.Env().Undefined();
}

}  // namespace

KILN_EXPORT_FUNCTION(info, Info);
KILN_EXPORT_FUNCTION(setNumThreads, SetNumThreads);
KILN_EXPORT_FUNCTION(setGemmPath, SetGemmPath);
KILN_EXPORT_FUNCTION(setGemmKernel, SetGemmKernel);
KILN_EXPORT_FUNCTION(gemmChoices, GemmChoices);
KILN_EXPORT_FUNCTION(matmul, MatMul);

}  // namespace kiln

// Keeps this shared object mapped until the process ends.
//
// Node unloads (dlclose) an addon when the last environment that loaded it goes away: a
// worker thread that was the only user of the addon unmaps it in its cleanup, before its
// V8 isolate is torn down. The teardown then releases every ArrayBuffer still alive, and
// those made by allocF32 (pool.cc) call back into this library to return their block,
// which by then would be unmapped code: the whole process died with SIGSEGV whenever a
// worker that had used kiln-native exited (an evaluation job in the eval server).
// A second dlopen with RTLD_NODELETE makes the loader keep the code; its handle is never
// closed on purpose. Loading in several workers shares one mapping, as before.
static void pin_library() {
#ifndef _WIN32
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&pin_library), &self) != 0 && self.dli_fname != nullptr) {
    dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE);
  }
#endif
}

static Napi::Object InitKilnNative(Napi::Env env, Napi::Object exports) {
  pin_library();
  // OpenBLAS starts with one thread per core; KILN_NUM_THREADS applies to it as well.
  kiln::gemm_set_threads(kiln::num_threads());
  kiln::run_registrations(env, exports);
  return exports;
}

NODE_API_MODULE(kiln_native, InitKilnNative)
