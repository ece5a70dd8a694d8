// Thread pool behind kiln::parallel_for: persistent workers woken per job; chunks are
// handed out through an atomic counter so uneven chunks balance themselves, and the caller
// works too, so a job finishes even if no worker gets scheduled.
//
// A training step is a stream of ops a few microseconds apart, and waking a sleeping thread
// through the kernel (futex) takes several microseconds each way. So a worker that finishes
// a job spins for a short while (kSpin) watching for the next one before it sleeps, the
// caller spins the same way for the workers' last chunks before it blocks, and the futex
// wake is skipped when no worker is asleep.
#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "gemm.h"

namespace kiln {
namespace {

thread_local bool t_in_region = false;

// How long a thread spins for new work (workers) or for the last chunks (callers) before
// blocking.
constexpr std::chrono::microseconds kSpin{50};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spins until done() or kSpin has passed; returns done().
template <typename Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 1;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 0 && std::chrono::steady_clock::now() > deadline) return done();
  }
}

// One parallel_for call. Heap-allocated and shared with the workers, so the caller can
// return as soon as every chunk is done, without waiting for workers that have not woken
// up yet (on an oversubscribed machine that wait can be a whole scheduler time slice).
struct Job {
  const std::function<void(int64_t, int64_t)>* fn;
  int64_t end, chunk;
  std::atomic<int64_t> next;
  std::atomic<int64_t> remaining;  // chunks not yet finished
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex m;
  std::condition_variable finished;
};

class Pool {
 public:
  Pool() { resize(initial_size()); }
  ~Pool() { stop_workers(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    n = std::max(1, std::min(n, 256));
    std::lock_guard<std::mutex> use(use_mutex_);
    stop_workers();
    stopping_.store(false);
    for (int i = 0; i < n - 1; ++i) workers_.emplace_back([this] { work_loop(); });
  }

  // Returns false when the pool is busy (another thread is running a job).
  bool run(int64_t begin, int64_t end, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
    std::unique_lock<std::mutex> use(use_mutex_, std::try_to_lock);
    if (!use.owns_lock()) return false;
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->end = end;
    job->chunk = chunk;
    job->next.store(begin);
    job->remaining.store((end - begin + chunk - 1) / chunk);
    {
      std::lock_guard<std::mutex> lk(mutex_);
      current_ = job;
      generation_.fetch_add(1);
    }
    if (sleepers_.load() > 0) wake_.notify_all();
    drain(*job);
    if (!spin_until([&] { return job->remaining.load() == 0; })) {
      std::unique_lock<std::mutex> lk(job->m);
      job->finished.wait(lk, [&] { return job->remaining.load() == 0; });
    }
    {
      std::lock_guard<std::mutex> lk(mutex_);
      if (current_ == job) current_.reset();
    }
    if (job->error) std::rethrow_exception(job->error);
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

  static void drain(Job& job) {
    t_in_region = true;
    for (;;) {
      const int64_t start = job.next.fetch_add(job.chunk);
      if (start >= job.end) break;
      if (!job.failed.load()) {
        try {
          (*job.fn)(start, std::min(job.end, start + job.chunk));
        } catch (...) {
          std::lock_guard<std::mutex> lk(job.m);
          if (!job.error) job.error = std::current_exception();
          job.failed.store(true);
        }
      }
      if (job.remaining.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lk(job.m);
        job.finished.notify_all();
      }
    }
    t_in_region = false;
  }

  void work_loop() {
    uint64_t seen = generation_.load();
    for (;;) {
      spin_until([&] { return generation_.load() != seen || stopping_.load(); });
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lk(mutex_);
        if (generation_.load() == seen && !stopping_.load()) {
          sleepers_.fetch_add(1);
          wake_.wait(lk, [&] { return stopping_.load() || generation_.load() != seen; });
          sleepers_.fetch_sub(1);
        }
        if (stopping_.load()) return;
        seen = generation_.load();
        job = current_;
      }
      if (job) drain(*job);
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(mutex_);
      stopping_.store(true);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::mutex use_mutex_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::thread> workers_;
  std::shared_ptr<Job> current_;           // guarded by mutex_
  std::atomic<uint64_t> generation_{0};    // bumped (under mutex_) for every job
  std::atomic<bool> stopping_{false};
  std::atomic<int> sleepers_{0};           // workers blocked on wake_
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
