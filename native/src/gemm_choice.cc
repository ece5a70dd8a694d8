// Per-shape GEMM path decisions (see gemm_choice.h).
#include "gemm_choice.h"

#include <functional>
#include <limits>
#include <mutex>
#include <unordered_map>

namespace kiln {
namespace gemm {
namespace {

struct KeyHash {
  size_t operator()(const ShapeKey& k) const {
    size_t h = std::hash<int64_t>()(k.m);
    h = h * 1000003u ^ std::hash<int64_t>()(k.n);
    h = h * 1000003u ^ std::hash<int64_t>()(k.k);
    return h * 31u + (k.trans_a ? 1u : 0u) + (k.trans_b ? 2u : 0u) + static_cast<size_t>(k.kernel) * 4u;
  }
};

struct Entry {
  double best[2] = {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
  int runs[2] = {0, 0};
  Choice decided = Choice::TryBuiltin;  // TryBuiltin / TryBlas: still calibrating
};

struct Table {
  std::mutex mutex;
  std::unordered_map<ShapeKey, Entry, KeyHash> entries;
};

Table& table() {
  static Table* t = new Table();  // never destroyed: sgemm may run during shutdown
  return *t;
}

Choice next_trial(const Entry& e) {
  // Alternate, built-in first: built-in, OpenBLAS, built-in, ...
  return e.runs[0] <= e.runs[1] ? Choice::TryBuiltin : Choice::TryBlas;
}

}  // namespace

Choice choose(const ShapeKey& key) {
  if (key.m * key.n * key.k < kMinMacs) return Choice::Builtin;
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  auto it = t.entries.find(key);
  if (it == t.entries.end()) {
    if (t.entries.size() >= kMaxShapes) return Choice::Builtin;
    it = t.entries.emplace(key, Entry{}).first;
  }
  const Entry& e = it->second;
  if (e.decided == Choice::Builtin || e.decided == Choice::Blas) return e.decided;
  return next_trial(e);
}

void record(const ShapeKey& key, bool blas, double seconds) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  auto it = t.entries.find(key);
  if (it == t.entries.end()) return;
  Entry& e = it->second;
  if (e.decided == Choice::Builtin || e.decided == Choice::Blas) return;
  const int side = blas ? 1 : 0;
  e.runs[side] += 1;
  if (seconds < e.best[side]) e.best[side] = seconds;
  if (e.runs[0] >= kTrials && e.runs[1] >= kTrials) {
    e.decided = e.best[1] < kMargin * e.best[0] ? Choice::Blas : Choice::Builtin;
  }
}

void reset_choices() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  t.entries.clear();
}

std::vector<ShapeRecord> choice_records() {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  std::vector<ShapeRecord> out;
  out.reserve(t.entries.size());
  for (const auto& [key, e] : t.entries) {
    const bool decided = e.decided == Choice::Builtin || e.decided == Choice::Blas;
    out.push_back({key, e.best[0], e.best[1], e.runs[0], e.runs[1], decided ? e.decided : next_trial(e)});
  }
  return out;
}

}  // namespace gemm
}  // namespace kiln
