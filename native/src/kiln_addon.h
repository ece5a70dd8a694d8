// The addon's registration mechanism and argument helpers.
//
// Any .cc file compiled into the addon (every file in src/ops/ is picked up by binding.gyp)
// adds JavaScript functions to the addon's exports with one line at namespace scope:
//
//   static Napi::Value MyOp(const Napi::CallbackInfo& info) { ... }
//   KILN_EXPORT_FUNCTION(myOp, MyOp);          // exports.myOp = MyOp
//
// or, to add several exports or constants at once:
//
//   static void InitMine(Napi::Env env, Napi::Object exports) { exports.Set(...); }
//   KILN_REGISTER_EXPORTS(mine, InitMine);
//
// The registrars run during static initialization (before Node calls the module's init),
// so no central file lists the ops. Names must be unique across the addon; a duplicate is
// reported as an Error when the addon loads.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace kiln {

using ExportInit = void (*)(Napi::Env env, Napi::Object exports);

// Records `init` to be called once when the addon is loaded. Use the macros below.
void register_exports(const char* name, ExportInit init);
void register_function(const char* name, Napi::Function::Callback fn);

// Called by the module's init (addon.cc) for every registration, in registration order.
void run_registrations(Napi::Env env, Napi::Object exports);

struct ExportRegistrar {
  ExportRegistrar(const char* name, ExportInit init) { register_exports(name, init); }
  ExportRegistrar(const char* name, Napi::Function::Callback fn) { register_function(name, fn); }
};

// ---- Argument helpers: they throw a Napi::TypeError naming the function and argument.

template <typename T>
struct ArrayView {
  T* data;
  size_t length;
};

// A Float32Array argument (zero-copy view of its memory).
ArrayView<float> arg_f32(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name);
// An Int32Array argument.
ArrayView<int32_t> arg_i32(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name);
// Any TypedArray whose elements are 4 bytes wide (Float32Array, Int32Array, Uint32Array).
ArrayView<uint32_t> arg_word(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name);
// An integral Number argument in [min_value, kMaxArgInt] (NaN, infinities and fractions are refused).
int64_t arg_int(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name, int64_t min_value = 0);
double arg_number(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name);
bool arg_bool(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name);
std::string arg_string(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name);

// Throws a RangeError "<fn>: <name> has <got> elements, expected <want>" when they differ.
void check_length(Napi::Env env, const char* fn, const char* name, size_t got, size_t want);

// ---- Shape checks. Every size a kernel computes from its arguments goes through these, so
// no product can overflow and no array is read or written past its end: a bad call is a
// JavaScript RangeError, never a crash (src/fuzz.test.ts calls every export with random,
// mismatched and out-of-range arguments to keep it so).

// The largest integer arg_int accepts: 2^53, below which every integer is exact in a double.
constexpr int64_t kMaxArgInt = int64_t{1} << 53;

// The number of elements of a shape. Throws a RangeError naming <fn> and <what> when a
// dimension is negative or the product exceeds kMaxArgInt.
int64_t shape_size(Napi::Env env, const char* fn, const char* what, std::initializer_list<int64_t> dims);
int64_t shape_size(Napi::Env env, const char* fn, const char* what, const int64_t* dims, size_t rank);

// check_length against the product of dims (computed by shape_size).
void check_shape(Napi::Env env, const char* fn, const char* name, size_t got, std::initializer_list<int64_t> dims);

// An optional array: empty (absent) or exactly `want` elements.
void check_optional(Napi::Env env, const char* fn, const char* name, size_t got, size_t want);

// Throws a RangeError naming the first entry of values[0..n) outside [0, limit).
void check_indices(Napi::Env env, const char* fn, const char* name, const int32_t* values, size_t n, int64_t limit);

// An integer argument in [0, count) selecting one of `count` modes.
int64_t arg_choice(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name, int64_t count);

// An integral Number reduced modulo 2^32, as JavaScript's `seed >>> 0` (random-stream seeds).
uint32_t arg_seed(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name);

}  // namespace kiln

#define KILN_CONCAT_INNER(a, b) a##b
#define KILN_CONCAT(a, b) KILN_CONCAT_INNER(a, b)

// exports.<js_name> = fn   where fn is `Napi::Value fn(const Napi::CallbackInfo&)`.
#define KILN_EXPORT_FUNCTION(js_name, fn) \
  static ::kiln::ExportRegistrar KILN_CONCAT(kiln_export_fn_, js_name)(#js_name, static_cast<Napi::Function::Callback>(fn))

// Calls init(env, exports) at load time; `tag` is any identifier unique to the file.
#define KILN_REGISTER_EXPORTS(tag, init) \
  static ::kiln::ExportRegistrar KILN_CONCAT(kiln_export_init_, tag)(#tag, static_cast<::kiln::ExportInit>(init))
