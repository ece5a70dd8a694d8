// Node-API binding to MPI. Every MPI call runs on one dedicated thread (MPI is initialized
// there with MPI_THREAD_FUNNELED), in the order JavaScript issued them, so each rank's
// collectives are matched in program order as MPI requires. The JS thread never blocks:
// each call returns a promise, settled through a thread-safe function when the MPI thread
// is done. Collectives are started non-blocking and polled against a deadline, so a dead
// rank or ranks calling different collectives end in a clear error instead of a hang; a
// one-word fingerprint exchanged before each collective names the mismatch when ranks are
// out of step.
#include <mpi.h>
#include <napi.h>
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

enum class Dtype { F32 = 0, I32 = 1 };
enum Opcode : long long { kAllreduce = 1, kAllgatherv, kAlltoallv, kBroadcast, kBarrier, kSplit };

const char* OpcodeName(long long op) {
  switch (op) {
    case kAllreduce: return "allreduce";
    case kAllgatherv: return "allgather";
    case kAlltoallv: return "alltoall";
    case kBroadcast: return "broadcast";
    case kBarrier: return "barrier";
    case kSplit: return "split";
    default: return "unknown";
  }
}

MPI_Datatype MpiType(Dtype d) { return d == Dtype::F32 ? MPI_FLOAT : MPI_INT; }
size_t ElementSize(Dtype) { return 4; }

std::string MpiError(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return std::string(text, len);
}

// A buffer produced on the MPI thread and handed to JavaScript without a copy.
struct Output {
  Dtype dtype = Dtype::F32;
  std::vector<char> bytes;
  std::vector<int> counts;  // per-rank element counts for the ragged collectives
};

struct Job {
  std::string what;  // "allreduce #12 on comm 0", for errors
  std::function<std::string(Job&)> run;  // on the MPI thread; returns "" or an error
  std::unique_ptr<Napi::Promise::Deferred> deferred;
  std::vector<Napi::Reference<Napi::Value>> keepAlive;  // inputs read by the MPI thread
  std::string error;
  Output output;
  std::function<Napi::Value(Napi::Env, Job&)> settle;  // on the JS thread
};

struct Comm {
  MPI_Comm handle = MPI_COMM_NULL;
  int rank = -1;
  int size = 0;
};

class MpiEngine {
 public:
  static MpiEngine& Get() {
    // Never destroyed: a process may exit (process.exit, a crash elsewhere) while the MPI
    // thread still runs, and destroying a joinable std::thread would abort the process.
    static MpiEngine* engine = new MpiEngine();
    return *engine;
  }

  bool started() const { return started_; }
  bool broken() const { return broken_.load(); }
  std::string brokenReason() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return brokenReason_;
  }
  double timeoutMs = 60000;
  bool checkCollectives = true;
  std::vector<Comm> comms;  // touched only on the MPI thread, after init

  void Start(Napi::Env env) {
    tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "kiln-mpi", 0, 1);
    tsfn_.Unref(env);
    started_ = true;
    thread_ = std::thread([this] { Loop(); });
  }

  void Submit(Napi::Env env, std::shared_ptr<Job> job) {
    if (pending_++ == 0) tsfn_.Ref(env);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_one();
  }

  void JoinIfStopped() {
    if (thread_.joinable() && stopping_) thread_.join();
  }

  void MarkBroken(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!broken_.exchange(true)) brokenReason_ = reason;
  }

  // Completes a request, polling so that a deadline can end a collective that never
  // completes. Backs off from spinning to short sleeps to leave cores to other ranks.
  std::string Wait(MPI_Request& request, const std::string& what) {
    auto start = std::chrono::steady_clock::now();
    long spins = 0;
    while (true) {
      int done = 0;
      int rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS) return what + " failed: " + MpiError(rc);
      if (done) return "";
      ++spins;
      if (spins < 200) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(spins < 20000 ? 20 : 500));
      }
      if ((spins & 63) == 0) {
        double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        if (elapsed > timeoutMs) {
          return what + " did not complete within " + std::to_string(static_cast<long long>(timeoutMs)) +
                 " ms: a rank has died or hung, or the ranks called different collectives (every rank must call the same "
                 "collectives in the same order)";
        }
      }
    }
  }

  // Every rank states which collective it is about to run (and, where counts must agree,
  // how many elements); a disagreement is reported on every rank instead of deadlocking.
  std::string CheckInStep(const Comm& comm, long long opcode, long long count, bool countsMustAgree, const std::string& what) {
    if (!checkCollectives) return "";
    long long mine[4] = {opcode, countsMustAgree ? count : 0, -opcode, countsMustAgree ? -count : 0};
    long long agreed[4] = {0, 0, 0, 0};
    MPI_Request request;
    int rc = MPI_Iallreduce(mine, agreed, 4, MPI_LONG_LONG, MPI_MAX, comm.handle, &request);
    if (rc != MPI_SUCCESS) return what + " failed: " + MpiError(rc);
    std::string waited = Wait(request, what + " (step check)");
    if (!waited.empty()) return waited;
    long long maxOp = agreed[0], minOp = -agreed[2];
    if (maxOp != minOp) {
      return what + ": collective mismatch: ranks of this communicator called different collectives (" +
             OpcodeName(minOp) + " and " + OpcodeName(maxOp) + ")";
    }
    long long maxCount = agreed[1], minCount = -agreed[3];
    if (maxCount != minCount) {
      return what + ": collective mismatch: ranks passed different element counts (from " + std::to_string(minCount) +
             " to " + std::to_string(maxCount) + ")";
    }
    return "";
  }

 private:
  void Loop() {
    while (true) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      if (broken_) {
        job->error = "MPI is unusable after an earlier failure: " + brokenReason();
      } else {
        try {
          job->error = job->run(*job);
        } catch (const std::exception& err) {
          job->error = job->what + ": " + err.what();
        }
        if (!job->error.empty() && job->what.rfind("init", 0) != 0) MarkBroken(job->error);
      }
      auto* raw = new std::shared_ptr<Job>(job);
      tsfn_.BlockingCall(raw, [this](Napi::Env env, Napi::Function, std::shared_ptr<Job>* data) {
        std::shared_ptr<Job> done = *data;
        delete data;
        if (done->error.empty()) {
          done->deferred->Resolve(done->settle ? done->settle(env, *done) : env.Undefined());
        } else {
          done->deferred->Reject(Napi::Error::New(env, "kiln-mpi: " + done->error).Value());
        }
        done->keepAlive.clear();
        if (--pending_ == 0) tsfn_.Unref(env);
        JoinIfStopped();
      });
    }
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::thread thread_;
  Napi::ThreadSafeFunction tsfn_;
  bool started_ = false;
  bool stopping_ = false;
  std::atomic<bool> broken_{false};
  std::string brokenReason_;
  int pending_ = 0;  // JS thread only
};

long long nextJobId = 0;

std::shared_ptr<Job> NewJob(Napi::Env env, const std::string& name) {
  auto job = std::make_shared<Job>();
  job->what = name + " #" + std::to_string(++nextJobId);
  job->deferred = std::make_unique<Napi::Promise::Deferred>(env);
  return job;
}

void RequireStarted(Napi::Env env, const char* fn) {
  if (!MpiEngine::Get().started()) throw Napi::Error::New(env, std::string("kiln-mpi: ") + fn + ": call init() first");
}

int ArgComm(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string("kiln-mpi: ") + fn + ": comm must be a communicator handle");
  return info[i].As<Napi::Number>().Int32Value();
}

struct TypedView {
  Dtype dtype;
  const char* data;
  size_t length;
};

TypedView ArgTyped(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  Napi::Env env = info.Env();
  if (!info[i].IsTypedArray()) {
    throw Napi::TypeError::New(env, std::string("kiln-mpi: ") + fn + ": " + name + " must be a Float32Array or Int32Array");
  }
  auto array = info[i].As<Napi::TypedArray>();
  Dtype dtype;
  if (array.TypedArrayType() == napi_float32_array) dtype = Dtype::F32;
  else if (array.TypedArrayType() == napi_int32_array) dtype = Dtype::I32;
  else throw Napi::TypeError::New(env, std::string("kiln-mpi: ") + fn + ": " + name + " must be a Float32Array or Int32Array");
  auto buffer = array.ArrayBuffer();
  const char* base = static_cast<const char*>(buffer.Data()) + array.ByteOffset();
  if (array.ElementLength() > 0x7fffffff) throw Napi::RangeError::New(env, std::string("kiln-mpi: ") + fn + ": " + name + " exceeds 2^31 elements");
  return {dtype, base, array.ElementLength()};
}

Napi::Value OutputArray(Napi::Env env, Output& out) {
  auto* owned = new std::vector<char>(std::move(out.bytes));
  size_t n = owned->size() / 4;
  auto buffer = Napi::ArrayBuffer::New(env, owned->data(), owned->size(), [](Napi::Env, void*, std::vector<char>* v) { delete v; }, owned);
  if (out.dtype == Dtype::F32) return Napi::Float32Array::New(env, n, buffer, 0);
  return Napi::Int32Array::New(env, n, buffer, 0);
}

Napi::Value OutputWithCounts(Napi::Env env, Output& out) {
  Napi::Object result = Napi::Object::New(env);
  auto counts = Napi::Int32Array::New(env, out.counts.size());
  for (size_t i = 0; i < out.counts.size(); i++) counts[i] = out.counts[i];
  result.Set("counts", counts);
  result.Set("data", OutputArray(env, out));
  return result;
}

const Comm& CommOrThrow(int handle, const std::string& what) {
  auto& comms = MpiEngine::Get().comms;
  if (handle < 0 || handle >= static_cast<int>(comms.size()) || comms[handle].handle == MPI_COMM_NULL) {
    throw std::runtime_error("communicator " + std::to_string(handle) + " does not exist (freed, or this rank is not in it) in " + what);
  }
  return comms[handle];
}

// init({ timeoutMs, checkCollectives }) → Promise<{ rank, size, processor, threadLevel }>
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& engine = MpiEngine::Get();
  if (engine.started()) throw Napi::Error::New(env, "kiln-mpi: init() was already called in this process");
  if (info.Length() > 0 && info[0].IsObject()) {
    auto opts = info[0].As<Napi::Object>();
    if (opts.Has("timeoutMs") && opts.Get("timeoutMs").IsNumber()) engine.timeoutMs = opts.Get("timeoutMs").As<Napi::Number>().DoubleValue();
    if (opts.Has("checkCollectives") && opts.Get("checkCollectives").IsBoolean()) {
      engine.checkCollectives = opts.Get("checkCollectives").As<Napi::Boolean>().Value();
    }
  }
  // Node loads addons with RTLD_LOCAL; Open MPI's plugins resolve symbols from libmpi
  // globally, so promote the already-loaded libmpi to RTLD_GLOBAL before MPI_Init.
  Dl_info where;
  if (dladdr(reinterpret_cast<void*>(&MPI_Init_thread), &where) && where.dli_fname) {
    dlopen(where.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  }
  auto job = NewJob(env, "init");
  auto result = std::make_shared<std::pair<std::string, int>>();
  job->run = [result](Job& self) -> std::string {
    int provided = 0;
    int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return self.what + ": MPI_Init_thread failed: " + MpiError(rc);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    Comm world;
    world.handle = MPI_COMM_WORLD;
    MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world.size);
    MpiEngine::Get().comms.push_back(world);
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    MPI_Get_processor_name(name, &len);
    result->first.assign(name, len);
    result->second = provided;
    return "";
  };
  job->settle = [result](Napi::Env env, Job&) -> Napi::Value {
    const Comm& world = MpiEngine::Get().comms[0];
    Napi::Object out = Napi::Object::New(env);
    out.Set("comm", 0);
    out.Set("rank", world.rank);
    out.Set("size", world.size);
    out.Set("processor", result->first);
    out.Set("threadLevel", result->second);
    return out;
  };
  engine.Start(env);
  engine.Submit(env, job);
  return job->deferred->Promise();
}

// allreduce(comm, data, op: 'sum'|'max'|'min') → Promise<TypedArray>
Napi::Value Allreduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireStarted(env, "allreduce");
  int comm = ArgComm(info, 0, "allreduce");
  TypedView in = ArgTyped(info, 1, "allreduce", "data");
  std::string opName = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "sum";
  MPI_Op op;
  if (opName == "sum") op = MPI_SUM;
  else if (opName == "max") op = MPI_MAX;
  else if (opName == "min") op = MPI_MIN;
  else throw Napi::TypeError::New(env, "kiln-mpi: allreduce: op must be 'sum', 'max' or 'min', got '" + opName + "'");
  auto job = NewJob(env, "allreduce");
  job->keepAlive.push_back(Napi::Persistent(info[1]));
  job->output.dtype = in.dtype;
  job->run = [comm, in, op](Job& self) -> std::string {
    const Comm& c = CommOrThrow(comm, self.what);
    std::string check = MpiEngine::Get().CheckInStep(c, kAllreduce, static_cast<long long>(in.length), true, self.what);
    if (!check.empty()) return check;
    self.output.bytes.resize(in.length * ElementSize(in.dtype));
    MPI_Request request;
    int rc = MPI_Iallreduce(in.data, self.output.bytes.data(), static_cast<int>(in.length), MpiType(in.dtype), op, c.handle, &request);
    if (rc != MPI_SUCCESS) return self.what + " failed: " + MpiError(rc);
    return MpiEngine::Get().Wait(request, self.what);
  };
  job->settle = [](Napi::Env e, Job& self) { return OutputArray(e, self.output); };
  MpiEngine::Get().Submit(env, job);
  return job->deferred->Promise();
}

// allgatherv(comm, data) → Promise<{ data, counts }>: every rank's data, concatenated in rank order.
Napi::Value Allgatherv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireStarted(env, "allgather");
  int comm = ArgComm(info, 0, "allgather");
  TypedView in = ArgTyped(info, 1, "allgather", "data");
  auto job = NewJob(env, "allgather");
  job->keepAlive.push_back(Napi::Persistent(info[1]));
  job->output.dtype = in.dtype;
  job->run = [comm, in](Job& self) -> std::string {
    auto& engine = MpiEngine::Get();
    const Comm& c = CommOrThrow(comm, self.what);
    std::string check = engine.CheckInStep(c, kAllgatherv, 0, false, self.what);
    if (!check.empty()) return check;
    int mine = static_cast<int>(in.length);
    self.output.counts.assign(c.size, 0);
    MPI_Request request;
    int rc = MPI_Iallgather(&mine, 1, MPI_INT, self.output.counts.data(), 1, MPI_INT, c.handle, &request);
    if (rc != MPI_SUCCESS) return self.what + " failed: " + MpiError(rc);
    std::string waited = engine.Wait(request, self.what + " (counts)");
    if (!waited.empty()) return waited;
    std::vector<int> displs(c.size, 0);
    long long total = 0;
    for (int r = 0; r < c.size; r++) {
      displs[r] = static_cast<int>(total);
      total += self.output.counts[r];
    }
    if (total > 0x7fffffff) return self.what + ": gathered result exceeds 2^31 elements";
    self.output.bytes.resize(static_cast<size_t>(total) * 4);
    rc = MPI_Iallgatherv(in.data, mine, MpiType(in.dtype), self.output.bytes.data(), self.output.counts.data(), displs.data(),
                         MpiType(in.dtype), c.handle, &request);
    if (rc != MPI_SUCCESS) return self.what + " failed: " + MpiError(rc);
    return engine.Wait(request, self.what);
  };
  job->settle = [](Napi::Env e, Job& self) { return OutputWithCounts(e, self.output); };
  MpiEngine::Get().Submit(env, job);
  return job->deferred->Promise();
}

// alltoallv(comm, data, sendCounts: Int32Array) → Promise<{ data, counts }>: data holds the
// chunks for ranks 0..size-1 back to back; the result holds what each rank sent here.
Napi::Value Alltoallv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireStarted(env, "alltoall");
  int comm = ArgComm(info, 0, "alltoall");
  TypedView in = ArgTyped(info, 1, "alltoall", "data");
  TypedView counts = ArgTyped(info, 2, "alltoall", "sendCounts");
  if (counts.dtype != Dtype::I32) throw Napi::TypeError::New(env, "kiln-mpi: alltoall: sendCounts must be an Int32Array");
  const int* sendCounts = reinterpret_cast<const int*>(counts.data);
  long long sum = 0;
  for (size_t i = 0; i < counts.length; i++) {
    if (sendCounts[i] < 0) throw Napi::RangeError::New(env, "kiln-mpi: alltoall: sendCounts[" + std::to_string(i) + "] is negative");
    sum += sendCounts[i];
  }
  if (sum != static_cast<long long>(in.length)) {
    throw Napi::RangeError::New(env, "kiln-mpi: alltoall: sendCounts sum to " + std::to_string(sum) + " but data has " +
                                         std::to_string(in.length) + " elements");
  }
  auto job = NewJob(env, "alltoall");
  job->keepAlive.push_back(Napi::Persistent(info[1]));
  job->keepAlive.push_back(Napi::Persistent(info[2]));
  job->output.dtype = in.dtype;
  size_t nCounts = counts.length;
  job->run = [comm, in, sendCounts, nCounts](Job& self) -> std::string {
    auto& engine = MpiEngine::Get();
    const Comm& c = CommOrThrow(comm, self.what);
    if (static_cast<int>(nCounts) != c.size) {
      return self.what + ": sendCounts has " + std::to_string(nCounts) + " entries but the communicator has " + std::to_string(c.size) + " ranks";
    }
    std::string check = engine.CheckInStep(c, kAlltoallv, 0, false, self.what);
    if (!check.empty()) return check;
    self.output.counts.assign(c.size, 0);
    MPI_Request request;
    int rc = MPI_Ialltoall(sendCounts, 1, MPI_INT, self.output.counts.data(), 1, MPI_INT, c.handle, &request);
    if (rc != MPI_SUCCESS) return self.what + " failed: " + MpiError(rc);
    std::string waited = engine.Wait(request, self.what + " (counts)");
    if (!waited.empty()) return waited;
    std::vector<int> sdispls(c.size, 0), rdispls(c.size, 0);
    long long sTotal = 0, rTotal = 0;
    for (int r = 0; r < c.size; r++) {
      sdispls[r] = static_cast<int>(sTotal);
      sTotal += sendCounts[r];
      rdispls[r] = static_cast<int>(rTotal);
      rTotal += self.output.counts[r];
    }
    if (rTotal > 0x7fffffff) return self.what + ": received data exceeds 2^31 elements";
    self.output.bytes.resize(static_cast<size_t>(rTotal) * 4);
    rc = MPI_Ialltoallv(in.data, sendCounts, sdispls.data(), MpiType(in.dtype), self.output.bytes.data(), self.output.counts.data(),
                        rdispls.data(), MpiType(in.dtype), c.handle, &request);
    if (rc != MPI_SUCCESS) return self.what + " failed: " + MpiError(rc);
    return engine.Wait(request, self.what);
  };
  job->settle = [](Napi::Env e, Job& self) { return OutputWithCounts(e, self.output); };
  MpiEngine::Get().Submit(env, job);
  return job->deferred->Promise();
}

// broadcast(comm, data, root) → Promise<TypedArray>: root's data on every rank (same length everywhere).
Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireStarted(env, "broadcast");
  int comm = ArgComm(info, 0, "broadcast");
  TypedView in = ArgTyped(info, 1, "broadcast", "data");
  if (!info[2].IsNumber()) throw Napi::TypeError::New(env, "kiln-mpi: broadcast: root must be a rank number");
  int root = info[2].As<Napi::Number>().Int32Value();
  auto job = NewJob(env, "broadcast");
  job->keepAlive.push_back(Napi::Persistent(info[1]));
  job->output.dtype = in.dtype;
  job->run = [comm, in, root](Job& self) -> std::string {
    auto& engine = MpiEngine::Get();
    const Comm& c = CommOrThrow(comm, self.what);
    if (root < 0 || root >= c.size) return self.what + ": root " + std::to_string(root) + " is not a rank of a " + std::to_string(c.size) + "-rank communicator";
    std::string check = engine.CheckInStep(c, kBroadcast, static_cast<long long>(in.length), true, self.what);
    if (!check.empty()) return check;
    self.output.bytes.assign(in.data, in.data + in.length * 4);
    MPI_Request request;
    int rc = MPI_Ibcast(self.output.bytes.data(), static_cast<int>(in.length), MpiType(in.dtype), root, c.handle, &request);
    if (rc != MPI_SUCCESS) return self.what + " failed: " + MpiError(rc);
    return engine.Wait(request, self.what);
  };
  job->settle = [](Napi::Env e, Job& self) { return OutputArray(e, self.output); };
  MpiEngine::Get().Submit(env, job);
  return job->deferred->Promise();
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireStarted(env, "barrier");
  int comm = ArgComm(info, 0, "barrier");
  auto job = NewJob(env, "barrier");
  job->run = [comm](Job& self) -> std::string {
    auto& engine = MpiEngine::Get();
    const Comm& c = CommOrThrow(comm, self.what);
    std::string check = engine.CheckInStep(c, kBarrier, 0, false, self.what);
    if (!check.empty()) return check;
    MPI_Request request;
    int rc = MPI_Ibarrier(c.handle, &request);
    if (rc != MPI_SUCCESS) return self.what + " failed: " + MpiError(rc);
    return engine.Wait(request, self.what);
  };
  MpiEngine::Get().Submit(env, job);
  return job->deferred->Promise();
}

// split(parent, members: Int32Array, groupSizes: Int32Array) → Promise<{ comm, rank, size }>:
// the groups (lists of parent ranks, back to back) become communicators; this rank gets
// the one it belongs to, with ranks numbered in list order (comm -1 if in none). Every
// rank of the parent must call it with the same groups.
Napi::Value Split(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireStarted(env, "split");
  int parent = ArgComm(info, 0, "split");
  TypedView members = ArgTyped(info, 1, "split", "members");
  TypedView sizes = ArgTyped(info, 2, "split", "groupSizes");
  if (members.dtype != Dtype::I32 || sizes.dtype != Dtype::I32) throw Napi::TypeError::New(env, "kiln-mpi: split: members and groupSizes must be Int32Arrays");
  std::vector<int> flat(reinterpret_cast<const int*>(members.data), reinterpret_cast<const int*>(members.data) + members.length);
  std::vector<int> groupSizes(reinterpret_cast<const int*>(sizes.data), reinterpret_cast<const int*>(sizes.data) + sizes.length);
  long long total = 0;
  for (int s : groupSizes) {
    if (s <= 0) throw Napi::RangeError::New(env, "kiln-mpi: split: every group needs at least one rank");
    total += s;
  }
  if (total != static_cast<long long>(flat.size())) throw Napi::RangeError::New(env, "kiln-mpi: split: groupSizes do not add up to the number of members");
  auto job = NewJob(env, "split");
  auto created = std::make_shared<Comm>();
  auto index = std::make_shared<int>(-1);
  job->run = [parent, flat, groupSizes, created, index](Job& self) -> std::string {
    auto& engine = MpiEngine::Get();
    const Comm& p = CommOrThrow(parent, self.what);
    std::vector<int> seen(p.size, 0);
    int color = MPI_UNDEFINED, key = 0;
    size_t at = 0;
    for (size_t g = 0; g < groupSizes.size(); g++) {
      for (int k = 0; k < groupSizes[g]; k++, at++) {
        int r = flat[at];
        if (r < 0 || r >= p.size) return self.what + ": rank " + std::to_string(r) + " is not in the " + std::to_string(p.size) + "-rank parent";
        if (seen[r]++) return self.what + ": rank " + std::to_string(r) + " appears in more than one group";
        if (r == p.rank) {
          color = static_cast<int>(g);
          key = k;
        }
      }
    }
    std::string check = engine.CheckInStep(p, kSplit, static_cast<long long>(flat.size()), true, self.what);
    if (!check.empty()) return check;
    MPI_Comm out = MPI_COMM_NULL;
    int rc = MPI_Comm_split(p.handle, color, key, &out);
    if (rc != MPI_SUCCESS) return self.what + " failed: " + MpiError(rc);
    if (out == MPI_COMM_NULL) return "";
    MPI_Comm_set_errhandler(out, MPI_ERRORS_RETURN);
    created->handle = out;
    MPI_Comm_rank(out, &created->rank);
    MPI_Comm_size(out, &created->size);
    engine.comms.push_back(*created);
    *index = static_cast<int>(engine.comms.size()) - 1;
    return "";
  };
  job->settle = [created, index](Napi::Env e, Job&) -> Napi::Value {
    Napi::Object out = Napi::Object::New(e);
    out.Set("comm", *index);
    out.Set("rank", created->rank);
    out.Set("size", created->size);
    return out;
  };
  MpiEngine::Get().Submit(env, job);
  return job->deferred->Promise();
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireStarted(env, "finalize");
  auto job = NewJob(env, "finalize");
  job->run = [](Job& self) -> std::string {
    auto& comms = MpiEngine::Get().comms;
    for (size_t i = 1; i < comms.size(); i++) {
      if (comms[i].handle != MPI_COMM_NULL) MPI_Comm_free(&comms[i].handle);
    }
    int rc = MPI_Finalize();
    return rc == MPI_SUCCESS ? "" : self.what + " failed: " + MpiError(rc);
  };
  MpiEngine::Get().Submit(env, job);
  MpiEngine::Get().Stop();
  return job->deferred->Promise();
}

// abort(code, message): ends every rank of the job now (mpirun tears the job down).
Napi::Value Abort(const Napi::CallbackInfo& info) {
  int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  if (info.Length() > 1 && info[1].IsString()) {
    std::string message = info[1].As<Napi::String>().Utf8Value();
    fprintf(stderr, "%s\n", message.c_str());
    fflush(stderr);
  }
  MPI_Abort(MPI_COMM_WORLD, code);
  return info.Env().Undefined();
}

Napi::Object Init_(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("allreduce", Napi::Function::New(env, Allreduce));
  exports.Set("allgatherv", Napi::Function::New(env, Allgatherv));
  exports.Set("alltoallv", Napi::Function::New(env, Alltoallv));
  exports.Set("broadcast", Napi::Function::New(env, Broadcast));
  exports.Set("barrier", Napi::Function::New(env, Barrier));
  exports.Set("split", Napi::Function::New(env, Split));
  exports.Set("finalize", Napi::Function::New(env, Finalize));
  exports.Set("abort", Napi::Function::New(env, Abort));
  int major = 0, minor = 0;
  MPI_Get_version(&major, &minor);
  char library[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(library, &len);
  exports.Set("mpiVersion", std::to_string(major) + "." + std::to_string(minor));
  exports.Set("library", std::string(library, len));
  return exports;
}

}  // namespace

NODE_API_MODULE(kiln_mpi, Init_)
