// Thread pool behind kiln::parallel_for: persistent workers woken per job; chunks are
// handed out through an atomic counter so uneven chunks balance themselves.
#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "gemm.h"

namespace kiln {
namespace {

thread_local bool t_in_region = false;

class Pool {
 public:
  Pool() { resize(initial_size()); }
  ~Pool() { stop_workers(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    n = std::max(1, std::min(n, 256));
    std::lock_guard<std::mutex> use(use_mutex_);
    stop_workers();
    stopping_ = false;
    for (int i = 0; i < n - 1; ++i) workers_.emplace_back([this] { work_loop(); });
  }

  // Returns false when the pool is busy (another thread is running a job).
  bool run(int64_t begin, int64_t end, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
    std::unique_lock<std::mutex> use(use_mutex_, std::try_to_lock);
    if (!use.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lk(mutex_);
      fn_ = &fn;
      begin_ = begin;
      end_ = end;
      chunk_ = chunk;
      next_.store(begin, std::memory_order_relaxed);
      error_ = nullptr;
      active_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    drain();
    std::unique_lock<std::mutex> lk(mutex_);
    done_.wait(lk, [this] { return active_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  static int initial_size() {
    if (const char* env = std::getenv("KILN_NUM_THREADS")) {
      int n = std::atoi(env);
      if (n > 0) return n;
    }
    unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1 : static_cast<int>(hc);
  }

  void drain() {
    t_in_region = true;
    for (;;) {
      int64_t start = next_.fetch_add(chunk_, std::memory_order_relaxed);
      if (start >= end_) break;
      int64_t stop = std::min(end_, start + chunk_);
      try {
        (*fn_)(start, stop);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mutex_);
        if (!error_) error_ = std::current_exception();
        next_.store(end_, std::memory_order_relaxed);
      }
    }
    t_in_region = false;
  }

  void work_loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mutex_);
        wake_.wait(lk, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      drain();
      std::lock_guard<std::mutex> lk(mutex_);
      if (--active_ == 0) done_.notify_one();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::mutex use_mutex_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t begin_ = 0, end_ = 0, chunk_ = 1;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;
  int active_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
};

Pool& pool() {
  // Leaked on purpose: joining threads from a static destructor at process exit can
  // deadlock with Node's own teardown.
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  pool().resize(n);
  gemm_set_threads(pool().size());
}

bool in_parallel_region() { return t_in_region; }

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t range = end - begin;
  const int threads = t_in_region ? 1 : num_threads();
  if (threads == 1 || range <= grain) {
    fn(begin, end);
    return;
  }
  // About four chunks per thread balances uneven work without much hand-off overhead.
  int64_t chunk = std::max(grain, (range + threads * 4 - 1) / (threads * 4));
  if (!pool().run(begin, end, chunk, fn)) fn(begin, end);
}

}  // namespace kiln
