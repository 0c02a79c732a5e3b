// Copyright (c) Coffer authors.

#include "bench/bench_util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>

#include "CLI/CLI.hpp"
#include "coffer/key_provider.h"

namespace coffer::bench {

namespace fs = std::filesystem;

std::string ProgramName() { return program_invocation_short_name; }

int UsageError(const std::string& message) {
  std::string line = message;
  for (char& c : line) {
    if (c == '\n') c = ' ';
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  std::cerr << ProgramName() << ": " << line << " (see '" << ProgramName()
            << " --help')" << std::endl;
  return 2;
}

CLI::Validator IntegerIn(long long lo, long long hi) {
  const std::string range = hi == LLONG_MAX
                                ? "an integer >= " + std::to_string(lo)
                                : "an integer from " + std::to_string(lo) +
                                      " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || errno == ERANGE || v < lo ||
            v > hi) {
          return "'" + text + "' is not " + range;
        }
        return "";
      },
      range);
}

CLI::Validator NumberAtLeast(double lo) {
  char bound[32];
  std::snprintf(bound, sizeof(bound), "%g", lo);
  const std::string range = std::string("a number >= ") + bound;
  return CLI::Validator(
      [lo, range](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !std::isfinite(v) || v < lo) {
          return "'" + text + "' is not " + range;
        }
        return "";
      },
      range);
}

int ParseCommandLine(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app.exit(e);
    }
    return UsageError(e.what());
  }
  return -1;
}

// ---- Clean-up on signals ------------------------------------------------------

namespace {

struct CleanUpRegistry {
  std::mutex mu;
  std::set<std::string> dirs;
  std::set<int> children;
};

CleanUpRegistry& Registry() {
  static CleanUpRegistry* registry = new CleanUpRegistry();  // never destroyed
  return *registry;
}

[[noreturn]] void CleanUpAndExit(int sig) {
  CleanUpRegistry& r = Registry();
  std::lock_guard<std::mutex> lock(r.mu);  // held until the exit
  for (int pid : r.children) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  const char* name = sigabbrev_np(sig);
  std::cerr << ProgramName() << ": interrupted by SIG" << (name ? name : "?");
  if (!r.dirs.empty()) {
    // RocksDB's threads in this process still use the directories (and
    // assert when one vanishes under them): a process of its own removes
    // them once this one has exited (or is a zombie).
    std::vector<std::string> args = {
        "/bin/sh", "-c",
        "while s=$(cut -d' ' -f3 /proc/$0/stat 2>/dev/null) && "
        "[ \"$s\" != Z ]; do sleep 0.02; done; exec rm -rf -- \"$@\"",
        std::to_string(::getpid())};
    args.insert(args.end(), r.dirs.begin(), r.dirs.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);
    pid_t remover = 0;
    const int rc =
        posix_spawn(&remover, argv[0], nullptr, &attr, argv.data(), environ);
    posix_spawnattr_destroy(&attr);
    std::cerr << (rc == 0 ? "; removing " : "; cannot remove ")
              << r.dirs.size() << " scratch director"
              << (r.dirs.size() == 1 ? "y" : "ies");
    if (rc != 0) {
      for (const std::string& dir : r.dirs) std::cerr << " " << dir;
    }
  }
  std::cerr << std::endl;
  std::_Exit(128 + sig);
}

}  // namespace

void CleanUpOnSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    CleanUpAndExit(sig);
  }).detach();
}

void RegisterScratch(const std::string& dir) {
  std::lock_guard<std::mutex> lock(Registry().mu);
  Registry().dirs.insert(dir);
}

void UnregisterScratch(const std::string& dir) {
  std::lock_guard<std::mutex> lock(Registry().mu);
  Registry().dirs.erase(dir);
}

void RegisterChild(int pid) {
  std::lock_guard<std::mutex> lock(Registry().mu);
  Registry().children.insert(pid);
}

void UnregisterChild(int pid) {
  std::lock_guard<std::mutex> lock(Registry().mu);
  Registry().children.erase(pid);
}

bool ParseMode(std::string_view name, Mode* mode) {
  if (name == "coffer") {
    *mode = Mode::kCoffer;
  } else if (name == "none") {
    *mode = Mode::kNone;
  } else if (name == "rocksdb-ctr") {
    *mode = Mode::kRocksdbCtr;
  } else {
    return false;
  }
  return true;
}

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kCoffer: return "coffer";
    case Mode::kNone: return "none";
    case Mode::kRocksdbCtr: return "rocksdb-ctr";
  }
  return "?";
}

// ---- ScratchCluster ---------------------------------------------------------

Status ScratchCluster::Create(const std::string& parent, Mode mode,
                              OpenOptions open_options, uint32_t max_tenants,
                              std::unique_ptr<ScratchCluster>* result) {
  std::string root;
  Status s = MakeScratchDir(parent, &root);
  if (!s.ok()) return s;
  std::unique_ptr<ScratchCluster> c(new ScratchCluster());
  c->root_ = root;
  c->data_dir_ = c->root_ + "/data";
  const std::string key_file = c->root_ + "/master.key";
  s = GenerateKeyFile(key_file);
  std::shared_ptr<KeyProvider> keys;
  if (s.ok()) s = NewFileKeyProvider(key_file, &keys);
  if (!s.ok()) return s;

  open_options.plaintext_for_benchmarks = mode == Mode::kNone;
  open_options.rocksdb_ctr_for_benchmarks = mode == Mode::kRocksdbCtr;
  ClusterOptions options;
  options.cluster_id = "bench";
  options.region = "local";
  options.geography = "local";
  options.limits.max_tenants = max_tenants;
  options.limits.default_tenant_quota = 0;
  options.limits.cluster_quota = 0;
  c->open_options_ = open_options;
  c->keys_ = keys;
  s = Cluster::Create(c->data_dir_, options, open_options, std::move(keys),
                      &c->cluster_);
  if (!s.ok()) return s;
  *result = std::move(c);
  return Status::OK();
}

Status ScratchCluster::Reopen() {
  cluster_.reset();
  return Cluster::Open(data_dir_, open_options_, keys_, &cluster_);
}

ScratchCluster::~ScratchCluster() {
  cluster_.reset();
  RemoveScratchDir(root_);
}

Status MakeScratchDir(const std::string& parent, std::string* dir) {
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) {
    return Status::InvalidArgument("--dir " + parent +
                                   " is not an existing directory");
  }
  std::string pattern =
      (fs::path(parent) / (ProgramName() + "-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return Status::IOError("cannot create a scratch directory under " + parent +
                           ": " + std::strerror(errno) +
                           " (choose another with --dir)");
  }
  RegisterScratch(pattern);
  *dir = pattern;
  return Status::OK();
}

void RemoveScratchDir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  UnregisterScratch(dir);
}

uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      uintmax_t n = it->file_size(size_ec);
      if (!size_ec) total += n;
    }
  }
  return total;
}

uint64_t WarmPageCache(const std::string& dir) {
  uint64_t total = 0;
  std::vector<char> buf(1 << 20);
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    while (in.read(buf.data(), buf.size()) || in.gcount() > 0) {
      total += static_cast<uint64_t>(in.gcount());
    }
  }
  return total;
}

// ---- Histogram --------------------------------------------------------------

namespace {

constexpr int kSubBits = 6;
constexpr uint64_t kSub = uint64_t{1} << kSubBits;

size_t BucketOf(uint64_t v) {
  if (v < kSub) return static_cast<size_t>(v);
  const int e = 63 - std::countl_zero(v);  // >= kSubBits
  const int shift = e - kSubBits;
  return (static_cast<size_t>(shift + 1) << kSubBits) + ((v >> shift) & (kSub - 1));
}

// Midpoint of a bucket's range.
double BucketMid(size_t index) {
  if (index < kSub) return static_cast<double>(index);
  const int shift = static_cast<int>(index >> kSubBits) - 1;
  const uint64_t lower = (kSub + (index & (kSub - 1))) << shift;
  return static_cast<double>(lower) + ((uint64_t{1} << shift) - 1) / 2.0;
}

}  // namespace

Histogram::Histogram() : buckets_((64 - kSubBits + 1) << kSubBits, 0) {}

void Histogram::Add(uint64_t nanos) {
  buckets_[BucketOf(nanos)]++;
  count_++;
  sum_ += nanos;
  max_ = std::max(max_, nanos);
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

double Histogram::PercentileMicros(double p) const {
  if (count_ == 0) return 0;
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * count_;
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (buckets_[i] != 0 && static_cast<double>(seen) >= rank) {
      return std::min(BucketMid(i), static_cast<double>(max_)) / 1000.0;
    }
  }
  return max_ / 1000.0;
}

// ---- Random, Zipfian, Permutation ------------------------------------------

uint64_t Random::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

namespace {

double Zeta(uint64_t n, double theta) {
  double sum = 0;
  for (uint64_t i = 1; i <= n; ++i) sum += 1.0 / std::pow(static_cast<double>(i), theta);
  return sum;
}

uint64_t Fnv1a64(uint64_t v) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 8; ++i) {
    h ^= v & 0xff;
    h *= 0x100000001b3ull;
    v >>= 8;
  }
  return h;
}

}  // namespace

ScrambledZipfian::ScrambledZipfian(uint64_t items, double theta)
    : items_(std::max<uint64_t>(items, 1)), theta_(theta) {
  zetan_ = Zeta(items_, theta_);
  alpha_ = 1.0 / (1.0 - theta_);
  const double zeta2 = Zeta(2, theta_);
  eta_ = (1 - std::pow(2.0 / items_, 1 - theta_)) / (1 - zeta2 / zetan_);
}

uint64_t ScrambledZipfian::Next(Random& rng) const {
  const double u = rng.NextDouble();
  const double uz = u * zetan_;
  uint64_t rank;
  if (uz < 1.0) {
    rank = 0;
  } else if (uz < 1.0 + std::pow(0.5, theta_)) {
    rank = 1;
  } else {
    rank = static_cast<uint64_t>(items_ * std::pow(eta_ * u - eta_ + 1, alpha_));
  }
  return Fnv1a64(std::min(rank, items_ - 1)) % items_;
}

Permutation::Permutation(uint64_t n) : n_(std::max<uint64_t>(n, 1)) {
  multiplier_ = 0x9e3779b97f4a7c15ull % n_;
  if (multiplier_ == 0) multiplier_ = 1;
  while (std::gcd(multiplier_, n_) != 1) multiplier_++;
  offset_ = 0x632be59bd9b4e019ull % n_;
}

uint64_t Permutation::operator()(uint64_t i) const {
  const unsigned __int128 x =
      static_cast<unsigned __int128>(i % n_) * multiplier_ + offset_;
  return static_cast<uint64_t>(x % n_);
}

void FormatKey(uint64_t index, char out[kKeyLen]) {
  for (int i = kKeyLen - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + index % 10);
    index /= 10;
  }
}

ValueGenerator::ValueGenerator(uint64_t seed) {
  Random rng(seed);
  constexpr size_t kPool = kMaxValueBytes;
  pool_.reserve(kPool + 100);
  while (pool_.size() < kPool) {
    char piece[50];
    for (char& c : piece) c = static_cast<char>(' ' + rng.Uniform(95));
    pool_.append(piece, sizeof(piece));
    pool_.append(piece, sizeof(piece));
  }
}

std::string_view ValueGenerator::Next(size_t len) {
  if (len > pool_.size()) std::abort();  // the tools check kMaxValueBytes
  if (pos_ + len > pool_.size()) pos_ = 0;
  std::string_view v(pool_.data() + pos_, len);
  pos_ += len;
  return v;
}

// ---- Statistics and machine facts -------------------------------------------

Spread SpreadOf(std::vector<double> values) {
  Spread s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  s.median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  s.min = values.front();
  s.max = values.back();
  return s;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? "" : line.substr(start);
      }
    }
  }
  return "unknown";
}

int CpuCount() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

namespace {

uint64_t StatusKib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') {
      return std::strtoull(line.c_str() + n + 1, nullptr, 10);
    }
  }
  return 0;
}

}  // namespace

uint64_t PeakRssBytes() { return StatusKib("VmHWM") * 1024; }
uint64_t CurrentRssBytes() { return StatusKib("VmRSS") * 1024; }

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "0";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

}  // namespace coffer::bench
