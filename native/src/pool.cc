// Recycled output buffers for the kiln-native backend, through Node-API only (so one
// binary serves every Node version).
//
// Every tfjs kernel allocates a fresh output array. A fresh `new Float32Array(n)` of a few
// MB costs more than the kernel that fills it: V8 zero-fills it and, because large blocks
// come straight from mmap, the first write page-faults every 4 KiB page (measured here:
// ~1.5 ms per 4 MB array against ~0.4 ms for the multiply that fills it).
//
// allocF32(n) instead returns a Float32Array over an external ArrayBuffer whose memory
// comes from a free list of already-touched blocks, without zero-filling (callers write
// every element). The block goes back on the free list from the ArrayBuffer's finalizer,
// i.e. only after V8's GC has proven that nothing (tfjs, a kernel, or a user holding the
// array from dataSync()) can reach it any more, so recycling never overwrites data someone
// can still see.
//
// Node runs these finalizers when the event loop turns, not inside the collection (the
// basic finalizers of newer Node-API versions are deferred too for external buffers,
// measured on Node 20): a synchronous loop gets its blocks back at its next await. The
// @kiln/tensor backend recycles most outputs deterministically anyway, the moment tfjs
// disposes them (native-recycler.ts); this pool catches the rest. So that collected but not
// yet finalized arrays cannot pile up in a long synchronous loop, at most limit_bytes are
// handed out from the pool at a time; beyond that allocF32 returns ordinary V8-owned memory,
// which V8 frees itself.
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln_addon.h"

namespace kiln {
namespace {

struct Pool {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // capacity → blocks
  size_t cached_bytes = 0;               // on the free lists
  size_t live_bytes = 0;                 // handed out, not yet finalized
  size_t limit_bytes = size_t{1} << 30;  // most bytes cached, and most bytes live
  bool external_ok = true;               // false where the runtime refuses external buffers
  double hits = 0, misses = 0, recycled = 0, released = 0, unpooled = 0;
};

Pool& pool() {
  // Never destroyed: finalizers may run while the process shuts down.
  static Pool* p = new Pool();
  return *p;
}

// Capacities are rounded to 8 classes per power of two (at most 12.5% slack, and at least a
// page), so arrays of similar sizes share blocks.
size_t capacity_for(size_t bytes) {
  if (bytes <= 4096) return 4096;
  size_t top = 1;
  while (top < bytes) top <<= 1;
  const size_t step = std::max<size_t>(4096, top / 16);
  return (bytes + step - 1) / step * step;
}

// A block of `capacity` bytes from the free list or the system, counted live; nullptr when
// the pool already has limit_bytes live (or external buffers are refused, or out of memory).
void* take(size_t capacity) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    if (!p.external_ok || p.live_bytes + capacity > p.limit_bytes) {
      p.unpooled += 1;
      return nullptr;
    }
    p.live_bytes += capacity;
    auto it = p.free_blocks.find(capacity);
    if (it != p.free_blocks.end() && !it->second.empty()) {
      void* block = it->second.back();
      it->second.pop_back();
      p.cached_bytes -= capacity;
      p.hits += 1;
      return block;
    }
    p.misses += 1;
  }
  void* block = nullptr;
  if (posix_memalign(&block, 64, capacity) != 0) {
    std::lock_guard<std::mutex> lock(p.mutex);
    p.live_bytes -= capacity;
    return nullptr;
  }
  return block;
}

// The ArrayBuffer's finalizer (and the path for a block that never got one).
void give_back(napi_env /*env*/, void* data, void* hint) {
  const size_t capacity = reinterpret_cast<size_t>(hint);
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    p.live_bytes -= capacity;
    if (p.cached_bytes + capacity <= p.limit_bytes) {
      p.free_blocks[capacity].push_back(data);
      p.cached_bytes += capacity;
      p.recycled += 1;
      return;
    }
    p.released += 1;
  }
  std::free(data);
}

size_t trim_locked(Pool& p, std::vector<void*>& out) {
  size_t freed = 0;
  for (auto& entry : p.free_blocks) {
    for (void* b : entry.second) out.push_back(b);
    freed += entry.first * entry.second.size();
    entry.second.clear();
  }
  p.free_blocks.clear();
  p.cached_bytes = 0;
  return freed;
}

void check(Napi::Env env, napi_status status, const char* what) {
  if (status != napi_ok) throw Napi::Error::New(env, std::string("allocF32: ") + what + " failed");
}

// allocF32(n): a Float32Array of n elements over recycled, uninitialized memory (or, past
// the pool's limit, a zeroed V8-owned one).
Napi::Value AllocF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t n = arg_int(info, 0, "allocF32", "n", 1);
  // The longest typed array Node >= 20 makes on 64-bit (V8's TypedArray::kMaxLength, 2^32),
  // written out so the addon stays Node-API only and one binary serves every Node version.
  constexpr uint64_t kMaxTypedArrayLength = uint64_t{1} << 32;
  if (static_cast<uint64_t>(n) > kMaxTypedArrayLength) {
    throw Napi::RangeError::New(env, "allocF32: argument n must be at most " + std::to_string(kMaxTypedArrayLength) +
                                         " (the largest typed array), got " + std::to_string(n));
  }
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  const size_t capacity = capacity_for(bytes);
  napi_value buffer = nullptr;
  if (void* block = take(capacity)) {
    const napi_status status =
        napi_create_external_arraybuffer(env, block, bytes, give_back, reinterpret_cast<void*>(capacity), &buffer);
    if (status != napi_ok) {
      // e.g. napi_no_external_buffers_allowed (runtimes with a V8 sandbox): stop trying.
      give_back(env, block, reinterpret_cast<void*>(capacity));
      std::lock_guard<std::mutex> lock(pool().mutex);
      pool().external_ok = false;
      buffer = nullptr;
    }
  }
  if (!buffer) {
    void* data = nullptr;
    if (napi_create_arraybuffer(env, bytes, &data, &buffer) != napi_ok) {
      throw Napi::Error::New(env, "allocF32: out of memory allocating " + std::to_string(bytes) + " bytes");
    }
  }
  napi_value array;
  check(env, napi_create_typedarray(env, napi_float32_array, static_cast<size_t>(n), buffer, 0, &array),
        "napi_create_typedarray");
  return Napi::Value(env, array);
}

Napi::Value PoolStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  Napi::Object o = Napi::Object::New(env);
  o.Set("cachedBytes", static_cast<double>(p.cached_bytes));
  o.Set("liveBytes", static_cast<double>(p.live_bytes));
  o.Set("limitBytes", static_cast<double>(p.limit_bytes));
  o.Set("hits", p.hits);
  o.Set("misses", p.misses);
  o.Set("recycled", p.recycled);
  o.Set("released", p.released);
  o.Set("unpooled", p.unpooled);
  return o;
}

// setPoolLimit(bytes): most bytes kept for reuse, and most bytes handed out from the pool at
// a time (0 turns the pool off); frees the cached excess.
Napi::Value SetPoolLimit(const Napi::CallbackInfo& info) {
  const int64_t limit = arg_int(info, 0, "setPoolLimit", "bytes", 0);
  Pool& p = pool();
  std::vector<void*> to_free;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    p.limit_bytes = static_cast<size_t>(limit);
    if (p.cached_bytes > p.limit_bytes) trim_locked(p, to_free);
  }
  for (void* b : to_free) std::free(b);
  return Napi::Number::New(info.Env(), static_cast<double>(limit));
}

// trimPool(): returns every cached block to the system; returns the bytes freed.
Napi::Value TrimPool(const Napi::CallbackInfo& info) {
  Pool& p = pool();
  std::vector<void*> to_free;
  size_t freed;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    freed = trim_locked(p, to_free);
  }
  for (void* b : to_free) std::free(b);
  return Napi::Number::New(info.Env(), static_cast<double>(freed));
}

}  // namespace

KILN_EXPORT_FUNCTION(allocF32, AllocF32);
KILN_EXPORT_FUNCTION(poolStats, PoolStats);
KILN_EXPORT_FUNCTION(setPoolLimit, SetPoolLimit);
KILN_EXPORT_FUNCTION(trimPool, TrimPool);

}  // namespace kiln
