// The addon's thread pool. One pool per process, sized to the machine's cores
// (std::thread::hardware_concurrency) unless KILN_NUM_THREADS is set when the addon loads.
#pragma once

#include <cstdint>
#include <functional>

namespace kiln {

// Number of threads parallel_for uses (the calling thread counts as one).
int num_threads();

// Changes the pool size (1 = everything on the calling thread). Must not be called from
// inside a parallel_for body.
void set_num_threads(int n);

// Runs fn(chunk_begin, chunk_end) over disjoint chunks covering [begin, end), on the pool
// and the calling thread, and returns when all chunks are done. No chunk is smaller than
// `grain` elements except the last, so `grain` is the amount of work worth a thread hand-off
// (use e.g. 32768 for simple elementwise loops). Runs inline when the range is at most
// one grain, when called from inside another parallel_for body (nested parallelism is
// serial), or while another thread is using the pool. Exceptions thrown by fn are
// rethrown on the calling thread (the first one wins).
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// True while the current thread is executing a parallel_for body.
bool in_parallel_region();

}  // namespace kiln
