// Copyright (c) Coffer authors.

#include "bench/workloads.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <functional>
#include <latch>
#include <memory>
#include <thread>

namespace coffer::bench {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

uint64_t Nanos(Clock::time_point a, Clock::time_point b) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
}

// What one worker thread measured.
struct ThreadState {
  Histogram latency;
  uint64_t ops = 0, found = 0, reads = 0, bytes = 0;
  Clock::time_point begin, end;
  Status status;
  alignas(64) std::atomic<uint64_t> progress{0};  // ops so far, for stderr
};

using Body = std::function<void(int thread, ThreadState& state,
                                const std::atomic<bool>& stop)>;

// Runs `body` in `timed + untimed` threads that start together. Untimed
// threads (a background writer) run until every timed thread is done or the
// duration has passed; with a duration, timed threads also stop then.
// Prints a progress line to stderr every 2 seconds. Returns wall seconds
// from the first timed thread's start to the last one's end (the threads'
// own clocks: this thread may wake from the latch after they have worked).
double RunThreads(int timed, int untimed, double duration,
                  const std::string& label,
                  std::vector<std::unique_ptr<ThreadState>>* states,
                  const Body& body) {
  const int total = timed + untimed;
  states->clear();
  for (int i = 0; i < total; ++i) states->push_back(std::make_unique<ThreadState>());
  std::atomic<bool> stop{false};
  std::atomic<int> running{timed};
  std::latch start(total + 1);
  std::vector<std::thread> threads;
  for (int i = 0; i < total; ++i) {
    threads.emplace_back([&, i] {
      ThreadState& st = *(*states)[i];
      start.arrive_and_wait();
      st.begin = Clock::now();
      body(i, st, stop);
      st.end = Clock::now();
      if (i < timed && running.fetch_sub(1) == 1) stop.store(true);
    });
  }
  start.arrive_and_wait();
  const Clock::time_point begin = Clock::now();
  double next_report = 2.0;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const double elapsed = Seconds(Clock::now() - begin);
    if (duration > 0 && elapsed >= duration) stop.store(true);
    if (elapsed >= next_report && running.load() > 0) {
      uint64_t ops = 0;
      for (int i = 0; i < timed; ++i) ops += (*states)[i]->progress.load();
      std::fprintf(stderr, "... %s: %.0f s, %" PRIu64 " ops, %.0f ops/sec\n",
                   label.c_str(), elapsed, ops, ops / elapsed);
      next_report += 2.0;
    }
  }
  stop.store(true);
  for (std::thread& t : threads) t.join();
  if (timed == 0) return 0;
  Clock::time_point first = (*states)[0]->begin;
  Clock::time_point last = (*states)[0]->end;
  for (int i = 1; i < timed; ++i) {
    first = std::min(first, (*states)[i]->begin);
    last = std::max(last, (*states)[i]->end);
  }
  return Seconds(last - first);
}

// Operation index range of thread `t` out of `n` for `ops` operations.
uint64_t RangeBegin(uint64_t ops, int t, int n) { return ops * t / n; }

Status FirstError(const std::vector<std::unique_ptr<ThreadState>>& states) {
  for (const auto& st : states) {
    if (!st->status.ok()) return st->status;
  }
  return Status::OK();
}

}  // namespace

const std::vector<std::string>& WorkloadNames() {
  static const std::vector<std::string> names = {
      "fillseq", "fillrandom", "readrandom", "readwhilewriting",
      "seekrandom", "ycsba"};
  return names;
}

bool IsWorkload(const std::string& name) {
  const auto& n = WorkloadNames();
  return std::find(n.begin(), n.end(), name) != n.end();
}

bool NeedsLoadedData(const std::string& name) {
  return name != "fillseq" && name != "fillrandom";
}

Status RunWorkload(const std::vector<Tenant*>& tenants,
                   const WorkloadSpec& spec, WorkloadResult* result) {
  const uint64_t n_tenants = tenants.size();
  const uint64_t num = std::max<uint64_t>(spec.num, 1);
  const bool timed_by_duration = spec.duration > 0;
  const int threads = std::max(spec.threads, 1);
  const std::string& name = spec.name;
  const size_t kv_bytes = kKeyLen + spec.value_size;
  std::unique_ptr<ScrambledZipfian> zipf;
  if (name == "ycsba") zipf = std::make_unique<ScrambledZipfian>(num * n_tenants);

  // Writes a random key to a random tenant; shared by fills and writers.
  auto put_random = [&](Random& rng, ValueGenerator& gen, char* key) {
    const uint64_t t = rng.Uniform(n_tenants);
    FormatKey(rng.Uniform(num), key);
    return tenants[t]->Put(WriteOptions(), std::string_view(key, kKeyLen),
                           gen.Next(spec.value_size));
  };

  const Body body = [&](int thread, ThreadState& st,
                        const std::atomic<bool>& stop) {
    Random rng(spec.seed * 1000003 + thread);
    ValueGenerator gen(spec.seed + thread);
    char key[kKeyLen];
    std::string value;
    std::vector<std::unique_ptr<Iterator>> iters;
    const uint64_t begin = RangeBegin(spec.ops, thread, threads);
    const uint64_t end = RangeBegin(spec.ops, thread + 1, threads);

    if (thread == threads) {  // readwhilewriting's writer, untimed
      const Clock::time_point start = Clock::now();
      while (!stop.load(std::memory_order_relaxed)) {
        st.status = put_random(rng, gen, key);
        if (!st.status.ok()) return;
        st.ops++;
        if (spec.write_rate > 0) {
          const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(
                                           static_cast<double>(st.ops) / spec.write_rate));
          if (due > Clock::now()) std::this_thread::sleep_until(due);
        }
      }
      return;
    }

    Clock::time_point t0 = Clock::now();
    for (uint64_t i = begin;
         timed_by_duration ? !stop.load(std::memory_order_relaxed) : i < end;
         ++i) {
      Status s;
      if (name == "fillseq") {
        FormatKey((i / n_tenants) % num, key);
        s = tenants[i % n_tenants]->Put(WriteOptions(),
                                        std::string_view(key, kKeyLen),
                                        gen.Next(spec.value_size));
        st.bytes += kv_bytes;
      } else if (name == "fillrandom") {
        s = put_random(rng, gen, key);
        st.bytes += kv_bytes;
      } else if (name == "readrandom" || name == "readwhilewriting") {
        const uint64_t t = rng.Uniform(n_tenants);
        FormatKey(rng.Uniform(num), key);
        s = tenants[t]->Get(ReadOptions(), std::string_view(key, kKeyLen),
                            &value);
        st.reads++;
        if (s.ok()) {
          st.found++;
          st.bytes += kKeyLen + value.size();
        }
      } else if (name == "seekrandom") {
        const uint64_t t = rng.Uniform(n_tenants);
        if (iters.empty()) iters.resize(n_tenants);
        if (iters[t] == nullptr) iters[t] = tenants[t]->NewIterator(ReadOptions());
        Iterator* it = iters[t].get();
        FormatKey(rng.Uniform(num), key);
        it->Seek(std::string_view(key, kKeyLen));
        st.reads++;
        if (it->Valid()) st.found++;
        for (int j = 0; j < spec.scan_length && it->Valid(); ++j) {
          st.bytes += it->key().size() + it->value().size();
          it->Next();
        }
        s = it->status();
      } else if (name == "ycsba") {
        const uint64_t g = zipf->Next(rng);
        FormatKey(g / n_tenants, key);
        Tenant* tenant = tenants[g % n_tenants];
        if (rng.Uniform(2) == 0) {
          s = tenant->Get(ReadOptions(), std::string_view(key, kKeyLen), &value);
          st.reads++;
          if (s.ok()) {
            st.found++;
            st.bytes += kKeyLen + value.size();
          }
        } else {
          s = tenant->Put(WriteOptions(), std::string_view(key, kKeyLen),
                          gen.Next(spec.value_size));
          st.bytes += kv_bytes;
        }
      } else {
        st.status = Status::InvalidArgument("unknown workload " + name);
        return;
      }
      if (!s.ok() && !s.IsNotFound()) {
        st.status = s;
        return;
      }
      const Clock::time_point t1 = Clock::now();
      st.latency.Add(Nanos(t0, t1));
      t0 = t1;
      st.ops++;
      st.progress.store(st.ops, std::memory_order_relaxed);
    }
  };

  std::vector<std::unique_ptr<ThreadState>> states;
  const int untimed = name == "readwhilewriting" ? 1 : 0;
  const double wall = RunThreads(threads, untimed,
                                 timed_by_duration ? spec.duration : 0,
                                 spec.progress_label, &states, body);
  WorkloadResult r;
  r.name = name;
  r.seconds = wall;
  for (int i = 0; i < threads; ++i) {
    const ThreadState& st = *states[i];
    r.ops += st.ops;
    r.found += st.found;
    r.reads += st.reads;
    r.bytes += st.bytes;
    r.thread_seconds += Seconds(st.end - st.begin);
    r.latency.Merge(st.latency);
  }
  if (untimed > 0) r.writer_ops = states[threads]->ops;
  *result = std::move(r);
  return FirstError(states);
}

Status LoadTenants(const std::vector<Tenant*>& tenants, uint64_t num,
                   size_t value_size, int threads, uint64_t seed,
                   const std::string& progress_label) {
  constexpr uint64_t kChunk = 1000;  // keys per work unit
  constexpr uint64_t kBatch = 100;   // keys per WriteBatch
  const uint64_t n_tenants = tenants.size();
  const uint64_t chunks = (num + kChunk - 1) / kChunk;
  const uint64_t units = chunks * n_tenants;
  const Permutation perm(num);
  std::atomic<uint64_t> next_unit{0};
  std::vector<std::unique_ptr<ThreadState>> states;
  RunThreads(std::max(threads, 1), 0, 0, progress_label, &states,
             [&](int thread, ThreadState& st, const std::atomic<bool>&) {
               ValueGenerator gen(seed + 7919 * (thread + 1));
               char key[kKeyLen];
               WriteBatch batch;
               for (uint64_t u; (u = next_unit.fetch_add(1)) < units;) {
                 Tenant* tenant = tenants[u % n_tenants];
                 const uint64_t first = (u / n_tenants) * kChunk;
                 const uint64_t last = std::min(num, first + kChunk);
                 for (uint64_t i = first; i < last; ++i) {
                   FormatKey(perm(i), key);
                   batch.Put(std::string_view(key, kKeyLen), gen.Next(value_size));
                   if (batch.Count() == kBatch || i + 1 == last) {
                     st.status = tenant->Write(WriteOptions(), batch);
                     batch.Clear();
                     if (!st.status.ok()) return;
                   }
                 }
                 st.ops += last - first;
                 st.progress.store(st.ops, std::memory_order_relaxed);
               }
             });
  Status s = FirstError(states);
  for (Tenant* t : tenants) {
    if (s.ok()) s = t->Flush();
    if (s.ok()) s = t->Compact();
  }
  return s;
}

std::string FormatResultLine(const WorkloadResult& r, const std::string& suffix) {
  const double micros_per_op =
      r.ops == 0 ? 0 : r.thread_seconds * 1e6 / static_cast<double>(r.ops);
  const double ops_per_sec = r.seconds > 0 ? r.ops / r.seconds : 0;
  const double mb_per_sec = r.seconds > 0 ? r.bytes / 1048576.0 / r.seconds : 0;
  char line[512];
  int n = std::snprintf(line, sizeof(line),
                        "%-12s : %11.3f micros/op %" PRIu64
                        " ops/sec %.3f seconds %" PRIu64 " operations; %6.1f MB/s",
                        r.name.c_str(), micros_per_op,
                        static_cast<uint64_t>(ops_per_sec), r.seconds, r.ops,
                        mb_per_sec);
  std::string out(line, std::min<size_t>(n, sizeof(line) - 1));
  if (r.reads > 0) {
    out += " (" + std::to_string(r.found) + " of " + std::to_string(r.reads) +
           " found)";
  }
  if (r.writer_ops > 0) {
    out += " (" + std::to_string(r.writer_ops) + " writes by the writer)";
  }
  if (!suffix.empty()) out += " " + suffix;
  return out;
}

std::string FormatPercentiles(const WorkloadResult& r) {
  char line[256];
  std::snprintf(line, sizeof(line),
                "Percentiles: P50: %.2f P99: %.2f P99.9: %.2f micros/op (max %.1f)",
                r.latency.PercentileMicros(50), r.latency.PercentileMicros(99),
                r.latency.PercentileMicros(99.9), r.latency.MaxMicros());
  return line;
}

}  // namespace coffer::bench
