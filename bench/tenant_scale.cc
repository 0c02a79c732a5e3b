// Copyright (c) Coffer authors.
//
// tenant_scale: many tenants on one cluster with a cap on open databases.
// Creates N tenants, writes one small record to each ("touch"), then
// reports the process's peak and current RSS, the latency of the first Get
// on a closed tenant (a cold open), and the throughput of random reads over
// all N tenants (working set above the cap: most reads open a database)
// against reads over a hot set below the cap, run alternately, as a ratio.
//
// Example:
//   tenant_scale --tenants 10000 --max-open 256 --hot 200

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "bench/bench_util.h"
#include "coffer/cluster.h"

namespace coffer::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Options {
  int tenants = 10000;
  size_t max_open = 256;
  int hot = 200;
  int cold_samples = 500;
  double read_seconds = 2;
  int rounds = 3;
  size_t value_size = 100;
  std::string mode = "coffer";
  std::string dir = "/tmp";
  bool json = false;
};

std::string TenantId(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "t%05d", i);
  return buf;
}

// Prints "... LABEL: i/n" on stderr every 2 s while a phase runs.
class Progress {
 public:
  explicit Progress(std::string label) : label_(std::move(label)) {}
  void Tick(int done, int total) {
    const double t = Since(start_);
    if (t >= next_) {
      std::fprintf(stderr, "... %s: %d/%d after %.0f s\n", label_.c_str(), done,
                   total, t);
      next_ += 2;
    }
  }

 private:
  std::string label_;
  Clock::time_point start_ = Clock::now();
  double next_ = 2;
};

// Random Gets of the touch record over tenants [0, count) for `seconds`.
Status ReadFor(const std::vector<std::unique_ptr<Tenant>>& handles, int count,
               double seconds, uint64_t seed, double* ops_per_sec) {
  Random rng(seed);
  std::string value;
  uint64_t ops = 0;
  const Clock::time_point t0 = Clock::now();
  double elapsed = 0;
  while ((elapsed = Since(t0)) < seconds) {
    for (int i = 0; i < 16; ++i, ++ops) {
      Status s = handles[rng.Uniform(count)]->Get(ReadOptions(), "touch", &value);
      if (!s.ok()) return s;
    }
  }
  *ops_per_sec = ops / elapsed;
  return Status::OK();
}

int Main(int argc, char** argv) {
  CleanUpOnSignals();
  Options o;
  CLI::App app{"tenant_scale: RSS, cold-open latency and read throughput "
               "with many tenants and a cap on open ones"};
  app.add_option("--tenants", o.tenants, "tenants to create and touch")
      ->capture_default_str()
      ->check(IntegerIn(1, 1000000));
  app.add_option("--max-open", o.max_open, "OpenOptions::max_open_tenants")
      ->capture_default_str()
      ->check(IntegerIn(1, 1000000));
  app.add_option("--hot", o.hot,
                 "tenants in the hot set (1..--max-open, at most --tenants)")
      ->capture_default_str()
      ->check(IntegerIn(1, 1000000));
  app.add_option("--cold-samples", o.cold_samples, "cold opens to time")
      ->capture_default_str()
      ->check(IntegerIn(1, 1000000));
  app.add_option("--read-seconds", o.read_seconds,
                 "seconds of each random-read run")
      ->capture_default_str()
      ->check(NumberAtLeast(0.01));
  app.add_option("--rounds", o.rounds, "alternating rounds of the two read runs")
      ->capture_default_str()
      ->check(IntegerIn(1, 1000));
  app.add_option("--value-size", o.value_size,
                 "bytes of the touch record (at most 1 MiB)")
      ->capture_default_str()
      ->check(IntegerIn(1, kMaxValueBytes));
  app.add_option("--mode", o.mode, "file mode: coffer, none, rocksdb-ctr")
      ->capture_default_str();
  app.add_option("--dir", o.dir, "parent of the scratch directory (must exist)")
      ->capture_default_str();
  app.add_flag("--json", o.json, "print a JSON document on stdout");
  const int parsed = ParseCommandLine(app, argc, argv);
  if (parsed >= 0) return parsed;
  Mode mode;
  if (!ParseMode(o.mode, &mode)) {
    return UsageError("--mode: unknown mode '" + o.mode +
                      "'; use coffer, none or rocksdb-ctr");
  }
  if (o.hot > o.tenants) {
    return UsageError("--hot " + std::to_string(o.hot) + " exceeds --tenants " +
                      std::to_string(o.tenants));
  }
  if (static_cast<size_t>(o.hot) > o.max_open) {
    return UsageError("--hot " + std::to_string(o.hot) +
                      " exceeds --max-open " + std::to_string(o.max_open) +
                      ": the hot set must fit below the cap");
  }
  std::ostream& text = o.json ? std::cerr : std::cout;
  const Clock::time_point start = Clock::now();

  OpenOptions oo;
  oo.max_open_tenants = o.max_open;
  std::unique_ptr<ScratchCluster> scratch;
  Status s = ScratchCluster::Create(o.dir, mode, oo, o.tenants, &scratch);
  Cluster* cluster = s.ok() ? scratch->cluster() : nullptr;

  // Create.
  const Clock::time_point create_start = Clock::now();
  {
    Progress progress("creating tenants");
    for (int i = 0; s.ok() && i < o.tenants; ++i) {
      s = cluster->CreateTenant(TenantId(i), TenantOptions());
      progress.Tick(i + 1, o.tenants);
    }
  }
  const double create_seconds = Since(create_start);

  // Touch: the first write opens (and creates) each tenant's database.
  std::vector<std::unique_ptr<Tenant>> handles;
  Histogram first_write;
  const Clock::time_point touch_start = Clock::now();
  {
    Progress progress("touching tenants");
    ValueGenerator gen(7);
    for (int i = 0; s.ok() && i < o.tenants; ++i) {
      std::unique_ptr<Tenant> t;
      s = cluster->GetTenant(TenantId(i), &t);
      const Clock::time_point t0 = Clock::now();
      if (s.ok()) s = t->Put(WriteOptions(), "touch", gen.Next(o.value_size));
      first_write.Add(static_cast<uint64_t>(Since(t0) * 1e9));
      handles.push_back(std::move(t));
      progress.Tick(i + 1, o.tenants);
    }
  }
  const double touch_seconds = Since(touch_start);
  const uint64_t rss_after_touch = CurrentRssBytes();

  // Cold opens: tenants touched longest ago are closed (only the last
  // max_open stay open); time the first Get on a sample of them.
  Histogram cold;
  const int closed = o.tenants - static_cast<int>(std::min<size_t>(o.max_open, o.tenants));
  if (s.ok() && closed > 0) {
    std::vector<int> sample;
    for (int i = 0; i < closed; ++i) sample.push_back(i);
    Random rng(11);
    for (int i = static_cast<int>(sample.size()) - 1; i > 0; --i) {
      std::swap(sample[i], sample[rng.Uniform(i + 1)]);
    }
    sample.resize(std::min<size_t>(sample.size(), o.cold_samples));
    std::string value;
    Progress progress("cold opens");
    for (size_t k = 0; s.ok() && k < sample.size(); ++k) {
      const Clock::time_point t0 = Clock::now();
      s = handles[sample[k]]->Get(ReadOptions(), "touch", &value);
      cold.Add(static_cast<uint64_t>(Since(t0) * 1e9));
      progress.Tick(static_cast<int>(k + 1), static_cast<int>(sample.size()));
    }
  }

  // Cold opens without an eviction: reopen the cluster (nothing open), then
  // time the first Get of tenants while fewer than max_open are open, so the
  // figure above minus this one is what closing the evicted tenant costs the
  // caller.
  Histogram cold_no_evict;
  if (s.ok()) {
    handles.clear();
    s = scratch->Reopen();
    cluster = s.ok() ? scratch->cluster() : nullptr;
    for (int i = 0; s.ok() && i < o.tenants; ++i) {
      std::unique_ptr<Tenant> t;
      s = cluster->GetTenant(TenantId(i), &t);
      handles.push_back(std::move(t));
    }
    const int n = std::min<int>({o.cold_samples, o.tenants,
                                 static_cast<int>(o.max_open)});
    std::string value;
    for (int i = 0; s.ok() && i < n; ++i) {
      const Clock::time_point t0 = Clock::now();
      s = handles[o.tenants - 1 - i]->Get(ReadOptions(), "touch", &value);
      cold_no_evict.Add(static_cast<uint64_t>(Since(t0) * 1e9));
    }
  }

  // Random reads over all tenants vs over the hot set, alternately.
  std::vector<double> all_ops, hot_ops, ratios;
  for (int r = 0; s.ok() && r < o.rounds; ++r) {
    double all = 0, hot = 0;
    std::string value;
    // Warm the hot set so its run measures reads, not opens.
    for (int i = 0; s.ok() && i < o.hot; ++i) {
      s = handles[i]->Get(ReadOptions(), "touch", &value);
    }
    if (r % 2 == 0) {
      if (s.ok()) s = ReadFor(handles, o.hot, o.read_seconds, 100 + r, &hot);
      if (s.ok()) s = ReadFor(handles, o.tenants, o.read_seconds, 200 + r, &all);
    } else {
      if (s.ok()) s = ReadFor(handles, o.tenants, o.read_seconds, 200 + r, &all);
      for (int i = 0; s.ok() && i < o.hot; ++i) {
        s = handles[i]->Get(ReadOptions(), "touch", &value);
      }
      if (s.ok()) s = ReadFor(handles, o.hot, o.read_seconds, 100 + r, &hot);
    }
    if (s.ok()) {
      all_ops.push_back(all);
      hot_ops.push_back(hot);
      ratios.push_back(hot > 0 ? all / hot : 0);
      std::fprintf(stderr, "... reads round %d/%d: all %.0f ops/sec, hot %.0f ops/sec\n",
                   r + 1, o.rounds, all, hot);
    }
  }
  if (!s.ok()) {
    std::cerr << "tenant_scale: " << s.ToString() << "\n";
    return 1;
  }
  ClusterStats stats;
  if (!cluster->GetStats(&stats).ok()) stats = ClusterStats();
  const uint64_t disk = DirectoryBytes(scratch->data_dir());
  const uint64_t peak = PeakRssBytes();
  const uint64_t rss = CurrentRssBytes();
  handles.clear();
  scratch.reset();
  const double total_seconds = Since(start);
  const Spread all = SpreadOf(all_ops), hot = SpreadOf(hot_ops),
               ratio = SpreadOf(ratios);

  char buf[1024];
  auto line = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof(buf), fmt, args...);
    text << buf << "\n";
  };
  line("tenant_scale: %s, %d CPUs; mode %s", CpuModel().c_str(), CpuCount(),
       ModeName(mode));
  line("tenants            : %d created in %.1f s (%.2f ms each), max_open_tenants %zu",
       o.tenants, create_seconds, create_seconds * 1e3 / o.tenants, o.max_open);
  line("touch (first Put)  : %.1f s; P50: %.2f P99: %.2f ms (creates each database)",
       touch_seconds, first_write.PercentileMicros(50) / 1e3,
       first_write.PercentileMicros(99) / 1e3);
  line("rss                : peak (VmHWM) %.1f MiB, after touch %.1f MiB, at end %.1f MiB",
       peak / 1048576.0, rss_after_touch / 1048576.0, rss / 1048576.0);
  line("cold open (Get)    : %" PRIu64 " samples; P50: %.2f P99: %.2f max %.2f ms",
       cold.count(), cold.PercentileMicros(50) / 1e3, cold.PercentileMicros(99) / 1e3,
       cold.MaxMicros() / 1e3);
  line("cold open, no evict: %" PRIu64 " samples; P50: %.2f P99: %.2f max %.2f ms "
       "(after a cluster reopen, below the cap)",
       cold_no_evict.count(), cold_no_evict.PercentileMicros(50) / 1e3,
       cold_no_evict.PercentileMicros(99) / 1e3, cold_no_evict.MaxMicros() / 1e3);
  line("readrandom all     : %.0f ops/sec over %d tenants (median of %d)", all.median,
       o.tenants, o.rounds);
  line("readrandom hot     : %.0f ops/sec over %d tenants (median of %d)", hot.median,
       o.hot, o.rounds);
  line("ratio all/hot      : median %.4f  min %.4f  max %.4f", ratio.median, ratio.min,
       ratio.max);
  line("cluster            : %" PRIu64 " opens, %" PRIu64 " closes, %.1f MiB on disk",
       stats.tenant_opens, stats.tenant_closes, disk / 1048576.0);
  line("total time         : %.1f s", total_seconds);

  if (o.json) {
    std::cout << "{\"tool\": \"tenant_scale\", \"cpu\": " << JsonString(CpuModel())
              << ", \"cpus\": " << CpuCount() << ", \"mode\": "
              << JsonString(ModeName(mode)) << ", \"tenants\": " << o.tenants
              << ", \"max_open_tenants\": " << o.max_open << ", \"hot\": " << o.hot
              << ", \"create_seconds\": " << JsonNumber(create_seconds)
              << ", \"touch_seconds\": " << JsonNumber(touch_seconds)
              << ", \"touch_p50_ms\": " << JsonNumber(first_write.PercentileMicros(50) / 1e3)
              << ", \"touch_p99_ms\": " << JsonNumber(first_write.PercentileMicros(99) / 1e3)
              << ", \"peak_rss_bytes\": " << peak
              << ", \"rss_after_touch_bytes\": " << rss_after_touch
              << ", \"rss_end_bytes\": " << rss
              << ", \"cold_open_samples\": " << cold.count()
              << ", \"cold_open_p50_ms\": " << JsonNumber(cold.PercentileMicros(50) / 1e3)
              << ", \"cold_open_p99_ms\": " << JsonNumber(cold.PercentileMicros(99) / 1e3)
              << ", \"cold_open_max_ms\": " << JsonNumber(cold.MaxMicros() / 1e3)
              << ", \"cold_open_no_evict_samples\": " << cold_no_evict.count()
              << ", \"cold_open_no_evict_p50_ms\": "
              << JsonNumber(cold_no_evict.PercentileMicros(50) / 1e3)
              << ", \"cold_open_no_evict_p99_ms\": "
              << JsonNumber(cold_no_evict.PercentileMicros(99) / 1e3)
              << ", \"read_all_ops_per_sec\": " << JsonNumber(all.median)
              << ", \"read_hot_ops_per_sec\": " << JsonNumber(hot.median)
              << ", \"ratio_all_hot\": " << JsonNumber(ratio.median)
              << ", \"ratio_all_hot_min\": " << JsonNumber(ratio.min)
              << ", \"ratio_all_hot_max\": " << JsonNumber(ratio.max)
              << ", \"tenant_opens\": " << stats.tenant_opens
              << ", \"tenant_closes\": " << stats.tenant_closes
              << ", \"disk_bytes\": " << disk
              << ", \"total_seconds\": " << JsonNumber(total_seconds) << "}\n";
  }
  return 0;
}

}  // namespace
}  // namespace coffer::bench

int main(int argc, char** argv) { return coffer::bench::Main(argc, argv); }
