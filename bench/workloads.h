// Copyright (c) Coffer authors.
//
// The workloads of coffer-bench, run against open tenant handles through the
// public API only, so every mode pays for exactly what an application would.
//
// Key space: every tenant holds keys 0 .. num-1 (16-byte decimal strings).
// Operations are spread over tenants: sequential ones round-robin, random
// ones to a uniformly chosen tenant (YCSB: a Zipfian choice over all
// tenant/key pairs).

#ifndef COFFER_BENCH_WORKLOADS_H_
#define COFFER_BENCH_WORKLOADS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "coffer/status.h"
#include "coffer/tenant.h"

namespace coffer::bench {

// The workload names coffer-bench accepts, in its help text's order.
const std::vector<std::string>& WorkloadNames();
bool IsWorkload(const std::string& name);
// Whether the workload reads data that must be loaded first.
bool NeedsLoadedData(const std::string& name);

struct WorkloadSpec {
  std::string name;
  uint64_t num = 0;          // keys per tenant
  uint64_t ops = 0;          // operations in all threads (when duration == 0)
  double duration = 0;       // seconds; > 0 overrides ops
  int threads = 1;
  size_t value_size = 100;
  int scan_length = 100;     // seekrandom: Next() calls after each Seek
  uint64_t write_rate = 0;   // readwhilewriting: writer puts/s, 0 = unlimited
  uint64_t seed = 1;
  std::string progress_label;  // printed with progress lines on stderr
};

struct WorkloadResult {
  std::string name;
  uint64_t ops = 0;           // operations timed (readwhilewriting: reads)
  uint64_t found = 0;         // reads and seeks that found a key
  uint64_t reads = 0;         // reads and seeks attempted
  uint64_t bytes = 0;         // key + value bytes written or read
  uint64_t writer_ops = 0;    // readwhilewriting: puts by the writer thread
  double seconds = 0;         // wall time
  double thread_seconds = 0;  // summed over worker threads
  Histogram latency;          // per operation
};

// Runs one workload. Stops at the first error other than NotFound.
Status RunWorkload(const std::vector<Tenant*>& tenants,
                   const WorkloadSpec& spec, WorkloadResult* result);

// Writes all `num` keys of every tenant in a scattered order (batches of
// 100), then flushes and fully compacts each tenant, so that reads find
// every key in table files. Untimed set-up for read workloads; shows
// progress on stderr like a workload.
Status LoadTenants(const std::vector<Tenant*>& tenants, uint64_t num,
                   size_t value_size, int threads, uint64_t seed,
                   const std::string& progress_label);

// One line in db_bench's format, e.g.
// "fillrandom   :       5.375 micros/op 186011 ops/sec 0.108 seconds 20000
// operations;   20.6 MB/s", then "(F of N found)" for reads and `suffix`.
std::string FormatResultLine(const WorkloadResult& r, const std::string& suffix);
// "Percentiles: P50: 3.10 P99: 12.40 P99.9: 40.20 micros/op (max 95.1)"
std::string FormatPercentiles(const WorkloadResult& r);

}  // namespace coffer::bench

#endif  // COFFER_BENCH_WORKLOADS_H_
