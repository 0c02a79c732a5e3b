// Copyright (c) Coffer authors.
//
// Helpers shared by the benchmark tools: scratch clusters in each file mode,
// latency histograms, key and value generators, statistics of paired runs,
// machine facts and JSON text. Benchmark code only; not part of the library.

#ifndef COFFER_BENCH_BENCH_UTIL_H_
#define COFFER_BENCH_BENCH_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/cluster.h"
#include "coffer/key_provider.h"
#include "coffer/options.h"
#include "coffer/status.h"

namespace CLI {
class App;
class Validator;
}  // namespace CLI

namespace coffer::bench {

// Largest value the generators make (ValueGenerator's pool).
inline constexpr size_t kMaxValueBytes = 1 << 20;

// Parses the command line. Returns -1 to go on; otherwise the exit code,
// after printing the help (0) or one line "PROGRAM: what was wrong (see
// 'PROGRAM --help')" on stderr (2).
int ParseCommandLine(CLI::App& app, int argc, char** argv);

// Option checks that say in words what is allowed: an integer in [lo, hi]
// (so "-1" is not wrapped into a huge unsigned value), a number >= lo.
CLI::Validator IntegerIn(long long lo, long long hi);
CLI::Validator NumberAtLeast(double lo);

// One-line usage error as ParseCommandLine prints it; returns 2.
int UsageError(const std::string& message);

// Call first in main, before any thread starts: SIGINT, SIGTERM and SIGHUP
// then kill the registered child processes, say so on stderr and exit with
// 128 + the signal; the registered scratch directories are removed as soon
// as the process has exited (by a `sh` it starts). Blocks those signals in
// every thread (one thread waits for them): spawn children with an empty
// signal mask.
void CleanUpOnSignals();
void RegisterScratch(const std::string& dir);
void UnregisterScratch(const std::string& dir);
void RegisterChild(int pid);
void UnregisterChild(int pid);

// This program's name (for messages and scratch directory names).
std::string ProgramName();

// How tenant files are stored (OpenOptions' benchmark switches).
enum class Mode {
  kCoffer,      // Coffer's cipher stream: one EVP call per buffer
  kNone,        // same engine, plaintext files
  kRocksdbCtr,  // RocksDB's CTR provider over a per-16-byte-block AES cipher
};

// "coffer", "none", "rocksdb-ctr". False for anything else.
bool ParseMode(std::string_view name, Mode* mode);
const char* ModeName(Mode mode);

// A cluster created in a fresh directory under `parent` (a master key file
// beside its data directory), removed with everything in it on destruction
// or on a signal (see CleanUpOnSignals). `parent` must be an existing
// directory.
class ScratchCluster {
 public:
  // `open_options` gets the mode's benchmark switch set; every other field is
  // used as given. The cluster has no quotas and room for `max_tenants`.
  static Status Create(const std::string& parent, Mode mode,
                       OpenOptions open_options, uint32_t max_tenants,
                       std::unique_ptr<ScratchCluster>* result);
  ~ScratchCluster();
  ScratchCluster(const ScratchCluster&) = delete;
  ScratchCluster& operator=(const ScratchCluster&) = delete;

  Cluster* cluster() const { return cluster_.get(); }
  const std::string& data_dir() const { return data_dir_; }
  // Closes the cluster (every handle must be gone) and opens it again with
  // the same options: afterwards no tenant is open.
  Status Reopen();

 private:
  ScratchCluster() = default;

  std::string root_;
  std::string data_dir_;
  OpenOptions open_options_;
  std::shared_ptr<KeyProvider> keys_;
  std::unique_ptr<Cluster> cluster_;
};

// A fresh directory "PROGRAM-XXXXXX" under `parent` (which must exist),
// registered for clean-up on signals.
Status MakeScratchDir(const std::string& parent, std::string* dir);
// Removes it with everything in it.
void RemoveScratchDir(const std::string& dir);

// Bytes of all regular files under `dir` (apparent size).
uint64_t DirectoryBytes(const std::string& dir);

// Reads every regular file under `dir` once, so that the next reads of them
// come from the OS page cache: read benchmarks then measure the engine's
// CPU cost (block parsing, decryption), not whether this VM's page cache
// happened to keep the files. Returns the bytes read.
uint64_t WarmPageCache(const std::string& dir);

// Latencies in nanoseconds, log-linear buckets (64 per power of two, so a
// percentile is within 1.6%). Not thread-safe: one per thread, then Merge.
class Histogram {
 public:
  Histogram();
  void Add(uint64_t nanos);
  void Merge(const Histogram& other);
  uint64_t count() const { return count_; }
  // p in [0, 100]. 0 when empty.
  double PercentileMicros(double p) const;
  double MaxMicros() const { return max_ / 1000.0; }
  double MeanMicros() const {
    return count_ == 0 ? 0 : static_cast<double>(sum_) / count_ / 1000.0;
  }

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

// A small fast PRNG (splitmix64); one per thread.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n); n > 0.
  uint64_t Uniform(uint64_t n) { return Next() % n; }
  // Uniform in [0, 1).
  double NextDouble() { return (Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// YCSB's scrambled Zipfian distribution (theta 0.99) over [0, items): a few
// keys are hot, spread over the key space. Construction is O(items).
class ScrambledZipfian {
 public:
  explicit ScrambledZipfian(uint64_t items, double theta = 0.99);
  uint64_t Next(Random& rng) const;

 private:
  uint64_t items_;
  double theta_, zetan_, alpha_, eta_;
};

// A bijection of [0, n) that visits keys in a scattered order: a load in
// this order is a random-order fill with no duplicates.
class Permutation {
 public:
  explicit Permutation(uint64_t n);
  uint64_t operator()(uint64_t i) const;

 private:
  uint64_t n_, multiplier_, offset_;
};

// Keys are 16 bytes, the index in decimal, zero-padded (db_bench's default
// key size); they sort in index order.
inline constexpr size_t kKeyLen = 16;
void FormatKey(uint64_t index, char out[kKeyLen]);

// Values as db_bench makes them: a 1 MiB pool of random printable bytes that
// compress to about half (each 100-byte piece repeats a 50-byte random
// string), read at a moving offset. One per thread.
class ValueGenerator {
 public:
  explicit ValueGenerator(uint64_t seed);
  // `len` <= kMaxValueBytes (aborts otherwise).
  std::string_view Next(size_t len);

 private:
  std::string pool_;
  size_t pos_ = 0;
};

// Median, min and max of a non-empty list.
struct Spread {
  double median = 0, min = 0, max = 0;
};
Spread SpreadOf(std::vector<double> values);

// "AMD EPYC 7B13" from /proc/cpuinfo, and the number of online CPUs.
std::string CpuModel();
int CpuCount();
// Kernel-reported peak and current resident set size of this process.
uint64_t PeakRssBytes();
uint64_t CurrentRssBytes();

// `s` as a JSON string literal, quotes included.
std::string JsonString(std::string_view s);
// A number for JSON: finite, or 0.
std::string JsonNumber(double v);

}  // namespace coffer::bench

#endif  // COFFER_BENCH_BENCH_UTIL_H_
