// Copyright (c) Coffer authors.
//
// coffer-bench: db_bench-style workloads against Coffer's public API, in one
// of three file modes, or two modes side by side (--compare A,B): the modes
// run alternately, each run on a fresh cluster, and the tool prints the
// ratio B/A of each workload's throughput as the median of the per-round
// pairs, so a noisy machine affects both sides alike.
//
// Example:
//   coffer-bench --benchmarks fillrandom,readrandom --compare none,coffer
//                --value-size 100 --tenants 64 --rounds 5

#include <openssl/crypto.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "bench/bench_util.h"
#include "bench/workloads.h"
#include "coffer/cluster.h"
#include "rocksdb/version.h"

namespace coffer::bench {
namespace {

struct Options {
  std::string benchmarks = "fillrandom,readrandom";
  size_t value_size = 100;
  uint64_t num = 0;  // 0: enough for 4x the block cache
  uint64_t ops = 0;  // 0: num x tenants
  int tenants = 1;
  int threads = 1;
  double duration = 0;
  std::string mode = "coffer";
  std::string compare;
  int rounds = 0;  // 0: 5 with --compare, else 1
  std::string dir = "/tmp";
  std::string block_cache = "8MiB";
  std::string write_buffer = "4MiB";
  int scan_length = 100;
  uint64_t write_rate = 0;
  uint64_t seed = 301;
  bool json = false;

  // Derived.
  std::vector<std::string> workloads;
  std::vector<Mode> modes;  // one, or two with --compare (A, B)
  uint64_t block_cache_bytes = 0;
  uint64_t write_buffer_bytes = 0;
};

struct RunRecord {
  int round = 0;
  Mode mode = Mode::kCoffer;
  WorkloadResult result;
  uint64_t loaded_raw_bytes = 0;    // keys + values loaded before a read run
  uint64_t table_bytes = 0;         // live table files after the load
  double load_seconds = 0;
};

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / 1048576.0);
  return buf;
}

std::string TenantId(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "t%05d", i);
  return buf;
}

// Everything printed for people goes here: stdout, or stderr with --json
// (stdout then carries only the JSON document).
std::ostream& Text(const Options& o) { return o.json ? std::cerr : std::cout; }

Status Validate(Options* o) {
  for (const std::string& w : Split(o->benchmarks, ',')) {
    std::string name = w == "ycsb-a" ? "ycsba" : w;
    if (!IsWorkload(name)) {
      std::string known;
      for (const std::string& n : WorkloadNames()) known += " " + n;
      return Status::InvalidArgument("unknown workload '" + w + "'; known:" + known);
    }
    o->workloads.push_back(name);
  }
  if (o->workloads.empty()) return Status::InvalidArgument("--benchmarks is empty");
  std::error_code ec;
  if (!std::filesystem::is_directory(o->dir, ec)) {
    return Status::InvalidArgument("--dir " + o->dir +
                                   " is not an existing directory");
  }
  std::vector<std::string> modes =
      o->compare.empty() ? std::vector<std::string>{o->mode} : Split(o->compare, ',');
  if (!o->compare.empty() && (modes.size() != 2 || modes[0] == modes[1])) {
    return Status::InvalidArgument(
        "--compare takes two different modes, e.g. none,coffer");
  }
  for (const std::string& m : modes) {
    Mode mode;
    if (!ParseMode(m, &mode)) {
      return Status::InvalidArgument("unknown mode '" + m +
                                     "'; use coffer, none or rocksdb-ctr");
    }
    o->modes.push_back(mode);
  }
  if (o->rounds == 0) o->rounds = o->compare.empty() ? 1 : 5;
  Status s = ParseSize(o->block_cache, &o->block_cache_bytes);
  if (!s.ok()) return Status::InvalidArgument("--block-cache: " + s.message());
  s = ParseSize(o->write_buffer, &o->write_buffer_bytes);
  if (!s.ok()) return Status::InvalidArgument("--write-buffer: " + s.message());
  if (o->num == 0) {
    const uint64_t per_key = kKeyLen + o->value_size;
    const uint64_t want = 4 * o->block_cache_bytes;
    o->num = std::max<uint64_t>(
        1000, (want + per_key * o->tenants - 1) / (per_key * o->tenants));
  }
  if (o->ops == 0) o->ops = o->num * o->tenants;
  return Status::OK();
}

Status RunOne(const Options& o, Mode mode, const std::string& workload,
              int round, RunRecord* rec) {
  OpenOptions oo;
  oo.block_cache_bytes = o.block_cache_bytes;
  oo.tenant_write_buffer_bytes = o.write_buffer_bytes;
  oo.max_open_tenants = std::max<size_t>(256, o.tenants);
  std::unique_ptr<ScratchCluster> scratch;
  Status s = ScratchCluster::Create(o.dir, mode, oo, o.tenants, &scratch);
  if (!s.ok()) return s;
  std::vector<std::unique_ptr<Tenant>> handles;
  std::vector<Tenant*> tenants;
  for (int i = 0; s.ok() && i < o.tenants; ++i) {
    s = scratch->cluster()->CreateTenant(TenantId(i), TenantOptions());
    std::unique_ptr<Tenant> t;
    if (s.ok()) s = scratch->cluster()->GetTenant(TenantId(i), &t);
    if (s.ok()) {
      tenants.push_back(t.get());
      handles.push_back(std::move(t));
    }
  }
  // Open every tenant's database now: a fill must not time the first opens.
  std::string ignored;
  for (size_t i = 0; s.ok() && i < tenants.size(); ++i) {
    s = tenants[i]->Get(ReadOptions(), "coffer-bench-open", &ignored);
    if (s.IsNotFound()) s = Status::OK();
  }
  if (!s.ok()) return s;

  char label[128];
  std::snprintf(label, sizeof(label), "%s [%s, round %d/%d]", workload.c_str(),
                ModeName(mode), round + 1, o.rounds);
  rec->round = round;
  rec->mode = mode;
  if (NeedsLoadedData(workload)) {
    const auto t0 = std::chrono::steady_clock::now();
    s = LoadTenants(tenants, o.num, o.value_size, o.threads, o.seed,
                    std::string("load for ") + label);
    rec->load_seconds = std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - t0).count();
    if (!s.ok()) return s;
    rec->loaded_raw_bytes = o.num * o.tenants * (kKeyLen + o.value_size);
    for (int i = 0; i < o.tenants; ++i) {
      TenantInfo info;
      if (scratch->cluster()->DescribeTenant(TenantId(i), &info).ok()) {
        rec->table_bytes += info.used_bytes;
      }
    }
    WarmPageCache(scratch->data_dir());
  }
  WorkloadSpec spec;
  spec.name = workload;
  spec.num = o.num;
  spec.ops = o.ops;
  spec.duration = o.duration;
  spec.threads = o.threads;
  spec.value_size = o.value_size;
  spec.scan_length = o.scan_length;
  spec.write_rate = o.write_rate;
  spec.seed = o.seed + round;
  spec.progress_label = label;
  s = RunWorkload(tenants, spec, &rec->result);
  handles.clear();
  return s;
}

void PrintHeader(const Options& o) {
  std::ostream& out = Text(o);
  out << "coffer-bench: " << CpuModel() << ", " << CpuCount() << " CPUs; RocksDB "
      << ROCKSDB_MAJOR << "." << ROCKSDB_MINOR << "." << ROCKSDB_PATCH << ", "
      << OpenSSL_version(OPENSSL_VERSION) << "\n";
  out << "Keys:       " << kKeyLen << " bytes each\n";
  out << "Values:     " << o.value_size << " bytes each (about half compressible)\n";
  out << "Entries:    " << o.num << " per tenant x " << o.tenants << " tenants ("
      << Mib(o.num * o.tenants * (kKeyLen + o.value_size)) << " raw)\n";
  out << "Operations: ";
  if (o.duration > 0) {
    out << o.duration << " s per workload";
  } else {
    out << o.ops << " per workload";
  }
  out << ", " << o.threads << " thread(s)\n";
  out << "Cache:      block cache " << Mib(o.block_cache_bytes)
      << ", memtable " << Mib(o.write_buffer_bytes) << " per tenant\n";
  out << "Modes:      ";
  if (o.modes.size() == 2) {
    out << ModeName(o.modes[0]) << " vs " << ModeName(o.modes[1]) << ", "
        << o.rounds << " rounds, alternating; ratio = " << ModeName(o.modes[1])
        << "/" << ModeName(o.modes[0]) << "\n";
  } else {
    out << ModeName(o.modes[0]) << ", " << o.rounds << " round(s)\n";
  }
  out << "------------------------------------------------\n";
}

struct RatioRow {
  std::string workload;
  std::vector<double> pairs;  // per round, B/A of ops/sec
  Spread spread;
  Spread a_ops, b_ops;
};

std::vector<RatioRow> Ratios(const Options& o, const std::vector<RunRecord>& runs) {
  std::vector<RatioRow> rows;
  if (o.modes.size() != 2) return rows;
  for (const std::string& w : o.workloads) {
    RatioRow row;
    row.workload = w;
    std::vector<double> a_all, b_all;
    for (int r = 0; r < o.rounds; ++r) {
      double a = -1, b = -1;
      for (const RunRecord& rec : runs) {
        if (rec.round != r || rec.result.name != w) continue;
        const double ops = rec.result.seconds > 0 ? rec.result.ops / rec.result.seconds : 0;
        (rec.mode == o.modes[0] ? a : b) = ops;
      }
      if (a > 0 && b >= 0) {
        row.pairs.push_back(b / a);
        a_all.push_back(a);
        b_all.push_back(b);
      }
    }
    row.spread = SpreadOf(row.pairs);
    row.a_ops = SpreadOf(a_all);
    row.b_ops = SpreadOf(b_all);
    rows.push_back(row);
  }
  return rows;
}

void PrintJson(const Options& o, const std::vector<RunRecord>& runs,
               const std::vector<RatioRow>& ratios) {
  std::ostream& out = std::cout;
  out << "{\n  \"tool\": \"coffer-bench\",\n";
  out << "  \"machine\": {\"cpu\": " << JsonString(CpuModel())
      << ", \"cpus\": " << CpuCount() << ", \"rocksdb\": \"" << ROCKSDB_MAJOR
      << "." << ROCKSDB_MINOR << "." << ROCKSDB_PATCH
      << "\", \"openssl\": " << JsonString(OpenSSL_version(OPENSSL_VERSION))
      << "},\n";
  out << "  \"options\": {\"benchmarks\": [";
  for (size_t i = 0; i < o.workloads.size(); ++i) {
    out << (i ? ", " : "") << JsonString(o.workloads[i]);
  }
  out << "], \"modes\": [";
  for (size_t i = 0; i < o.modes.size(); ++i) {
    out << (i ? ", " : "") << JsonString(ModeName(o.modes[i]));
  }
  out << "], \"value_size\": " << o.value_size << ", \"key_size\": " << kKeyLen
      << ", \"num\": " << o.num << ", \"ops\": " << o.ops
      << ", \"tenants\": " << o.tenants << ", \"threads\": " << o.threads
      << ", \"duration\": " << JsonNumber(o.duration) << ", \"rounds\": " << o.rounds
      << ", \"block_cache_bytes\": " << o.block_cache_bytes
      << ", \"write_buffer_bytes\": " << o.write_buffer_bytes
      << ", \"scan_length\": " << o.scan_length << ", \"seed\": " << o.seed << "},\n";
  out << "  \"runs\": [";
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunRecord& rec = runs[i];
    const WorkloadResult& r = rec.result;
    const double ops_per_sec = r.seconds > 0 ? r.ops / r.seconds : 0;
    out << (i ? "," : "") << "\n    {\"round\": " << rec.round + 1
        << ", \"mode\": " << JsonString(ModeName(rec.mode))
        << ", \"workload\": " << JsonString(r.name) << ", \"ops\": " << r.ops
        << ", \"seconds\": " << JsonNumber(r.seconds)
        << ", \"ops_per_sec\": " << JsonNumber(ops_per_sec)
        << ", \"micros_per_op\": "
        << JsonNumber(r.ops ? r.thread_seconds * 1e6 / r.ops : 0)
        << ", \"mb_per_sec\": "
        << JsonNumber(r.seconds > 0 ? r.bytes / 1048576.0 / r.seconds : 0)
        << ", \"p50_us\": " << JsonNumber(r.latency.PercentileMicros(50))
        << ", \"p99_us\": " << JsonNumber(r.latency.PercentileMicros(99))
        << ", \"p999_us\": " << JsonNumber(r.latency.PercentileMicros(99.9))
        << ", \"max_us\": " << JsonNumber(r.latency.MaxMicros())
        << ", \"reads\": " << r.reads << ", \"found\": " << r.found
        << ", \"writer_ops\": " << r.writer_ops
        << ", \"loaded_raw_bytes\": " << rec.loaded_raw_bytes
        << ", \"table_bytes\": " << rec.table_bytes
        << ", \"load_seconds\": " << JsonNumber(rec.load_seconds) << "}";
  }
  out << "\n  ],\n  \"ratios\": [";
  for (size_t i = 0; i < ratios.size(); ++i) {
    const RatioRow& row = ratios[i];
    out << (i ? "," : "") << "\n    {\"workload\": " << JsonString(row.workload)
        << ", \"a\": " << JsonString(ModeName(o.modes[0]))
        << ", \"b\": " << JsonString(ModeName(o.modes[1]))
        << ", \"median\": " << JsonNumber(row.spread.median)
        << ", \"min\": " << JsonNumber(row.spread.min)
        << ", \"max\": " << JsonNumber(row.spread.max)
        << ", \"a_ops_per_sec_median\": " << JsonNumber(row.a_ops.median)
        << ", \"b_ops_per_sec_median\": " << JsonNumber(row.b_ops.median)
        << ", \"pairs\": [";
    for (size_t j = 0; j < row.pairs.size(); ++j) {
      out << (j ? ", " : "") << JsonNumber(row.pairs[j]);
    }
    out << "]}";
  }
  out << "\n  ]\n}\n";
}

int Main(int argc, char** argv) {
  CleanUpOnSignals();
  Options o;
  CLI::App app{
      "coffer-bench: db_bench-style workloads on Coffer, in one file mode or "
      "two side by side (--compare A,B prints the ratio B/A, median of "
      "alternating rounds)."};
  app.add_option("--benchmarks,-b", o.benchmarks,
                 "comma-separated workloads: fillseq, fillrandom, readrandom, "
                 "readwhilewriting, seekrandom, ycsba (50/50 read/update, "
                 "Zipfian keys)")
      ->capture_default_str();
  app.add_option("--value-size", o.value_size, "value bytes (at most 1 MiB)")
      ->capture_default_str()
      ->check(IntegerIn(1, kMaxValueBytes));
  app.add_option("--num", o.num,
                 "keys per tenant (default: enough that the data is 4x the "
                 "block cache, at least 1000)")
      ->check(IntegerIn(1, LLONG_MAX));
  app.add_option("--ops", o.ops,
                 "operations per workload over all threads, without "
                 "--duration (default: num x tenants)")
      ->check(IntegerIn(1, LLONG_MAX));
  app.add_option("--tenants", o.tenants, "tenants (1..10000)")
      ->capture_default_str()
      ->check(IntegerIn(1, 10000));
  app.add_option("--threads", o.threads, "client threads (1..1024)")
      ->capture_default_str()
      ->check(IntegerIn(1, 1024));
  app.add_option("--duration", o.duration,
                 "seconds per workload (default: run --ops operations)")
      ->check(NumberAtLeast(0.001));
  app.add_option("--mode", o.mode, "file mode: coffer, none, rocksdb-ctr")
      ->capture_default_str();
  app.add_option("--compare", o.compare,
                 "two modes A,B run alternately; prints B/A per workload");
  app.add_option("--rounds", o.rounds,
                 "rounds, each a fresh cluster per mode and workload "
                 "(default: 5 with --compare, else 1)")
      ->check(IntegerIn(1, 1000));
  app.add_option("--dir", o.dir, "parent of the scratch directories")
      ->capture_default_str();
  app.add_option("--block-cache", o.block_cache, "shared block cache size")
      ->capture_default_str();
  app.add_option("--write-buffer", o.write_buffer, "memtable size per tenant")
      ->capture_default_str();
  app.add_option("--scan-length", o.scan_length,
                 "seekrandom: keys read after each seek")
      ->capture_default_str()
      ->check(IntegerIn(1, 1000000));
  app.add_option("--write-rate", o.write_rate,
                 "readwhilewriting: writer puts per second (0 = unlimited)")
      ->capture_default_str()
      ->check(IntegerIn(0, LLONG_MAX));
  app.add_option("--seed", o.seed, "random seed")
      ->capture_default_str()
      ->check(IntegerIn(0, LLONG_MAX));
  app.add_flag("--json", o.json,
               "print one JSON document on stdout (the text goes to stderr)");
  const int parsed = ParseCommandLine(app, argc, argv);
  if (parsed >= 0) return parsed;
  Status s = Validate(&o);
  if (!s.ok()) return UsageError(s.message());
  PrintHeader(o);
  std::ostream& text = Text(o);
  std::vector<RunRecord> runs;
  for (int round = 0; round < o.rounds; ++round) {
    for (const std::string& w : o.workloads) {
      std::vector<Mode> order = o.modes;
      if (round % 2 == 1) std::reverse(order.begin(), order.end());
      for (Mode mode : order) {
        RunRecord rec;
        s = RunOne(o, mode, w, round, &rec);
        if (!s.ok()) {
          std::cerr << "coffer-bench: " << w << " [" << ModeName(mode)
                    << "]: " << s.ToString() << "\n";
          return 1;
        }
        std::string suffix = "[" + std::string(ModeName(mode));
        if (o.rounds > 1) {
          suffix += ", round " + std::to_string(round + 1) + "/" +
                    std::to_string(o.rounds);
        }
        suffix += "]";
        text << FormatResultLine(rec.result, suffix) << "\n";
        text << "             " << FormatPercentiles(rec.result) << "\n";
        if (rec.loaded_raw_bytes > 0) {
          char ratio[32];
          std::snprintf(ratio, sizeof(ratio), "%.1f",
                        static_cast<double>(rec.loaded_raw_bytes) /
                            std::max<uint64_t>(o.block_cache_bytes, 1));
          text << "             Loaded " << Mib(rec.loaded_raw_bytes)
               << " raw (" << ratio << "x block cache), "
               << Mib(rec.table_bytes) << " in table files, in "
               << JsonNumber(rec.load_seconds) << " s\n";
        }
        text.flush();
        runs.push_back(std::move(rec));
      }
    }
  }
  const std::vector<RatioRow> ratios = Ratios(o, runs);
  if (!ratios.empty()) {
    text << "------------------------------------------------\n";
    const std::string label = std::string(ModeName(o.modes[1])) + "/" +
                              ModeName(o.modes[0]);
    for (const RatioRow& row : ratios) {
      char line[256];
      std::snprintf(line, sizeof(line),
                    "ratio %s %-12s : median %.3f  min %.3f  max %.3f  (%zu "
                    "pairs; median ops/sec %s %.0f, %s %.0f)",
                    label.c_str(), row.workload.c_str(), row.spread.median,
                    row.spread.min, row.spread.max, row.pairs.size(),
                    ModeName(o.modes[0]), row.a_ops.median, ModeName(o.modes[1]),
                    row.b_ops.median);
      text << line << "\n";
    }
  }
  if (o.json) PrintJson(o, runs, ratios);
  return 0;
}

}  // namespace
}  // namespace coffer::bench

int main(int argc, char** argv) { return coffer::bench::Main(argc, argv); }
