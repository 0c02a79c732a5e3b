// Copyright (c) Coffer authors.
//
// No user key or value is ever stored in the clear: every byte of every file
// under the data directory (tables, WAL, MANIFEST, OPTIONS, info LOG, catalog
// records) is scanned for them.

#include <filesystem>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "coffer/coffer.h"
#include "tests/testutil.h"

namespace coffer::test {
namespace {

constexpr int kTenants = 3;
constexpr int kSmallPerTenant = 400;
constexpr int kLargePerTenant = 5;

// The needles to look for: whole short keys/values, and several 64-byte
// pieces of each large value (a value may be split across WAL blocks).
std::vector<std::string> Needles(const std::map<std::string, std::string>& kv) {
  std::vector<std::string> out;
  for (const auto& [k, v] : kv) {
    out.push_back(k);
    if (v.size() <= 64) {
      out.push_back(v);
    } else {
      for (size_t at = 0; at + 64 <= v.size(); at += v.size() / 8) {
        out.push_back(v.substr(at, 64));
      }
    }
  }
  return out;
}

// "" when no file holds any needle; otherwise which files hold what.
std::string FindPlaintext(const std::string& dir,
                          const std::vector<std::string>& needles,
                          size_t* files_scanned = nullptr,
                          size_t* bytes_scanned = nullptr) {
  const FileTree tree = ReadTree(dir);
  std::map<std::string, int> hits;
  std::map<std::string, std::string> example;
  size_t bytes = 0;
  for (const auto& [path, content] : tree) {
    bytes += content.size();
    for (const std::string& needle : needles) {
      if (content.find(needle) != std::string::npos) {
        if (hits[path]++ == 0) example[path] = needle;
      }
    }
  }
  if (files_scanned != nullptr) *files_scanned = tree.size();
  if (bytes_scanned != nullptr) *bytes_scanned = bytes;
  std::string report;
  for (const auto& [path, n] : hits) {
    report += path + ": " + std::to_string(n) + " needle(s), e.g. \"" +
              example[path].substr(0, 32) + "\"\n";
  }
  return report;
}

class PlaintextScanTest : public ClusterTest {
 protected:
  // Writes distinctive data to each tenant; returns tenant -> key -> value.
  std::map<std::string, std::map<std::string, std::string>> WriteData(
      int small, int large, const std::string& tag) {
    std::map<std::string, std::map<std::string, std::string>> data;
    for (int i = 0; i < kTenants; ++i) {
      const std::string id = "tenant" + std::to_string(i);
      std::unique_ptr<Tenant> t;
      EXPECT_OK(cluster_->GetTenant(id, &t));
      if (!t) continue;
      WriteBatch batch;
      for (int j = 0; j < small; ++j) {
        std::string key = tag + RandomString(32);
        std::string value = RandomString(32);
        if (j % 2 == 0) {
          EXPECT_OK(t->Put(WriteOptions(), key, value));
        } else {
          batch.Put(key, value);
        }
        data[id][key] = value;
      }
      EXPECT_OK(t->Write(WriteOptions(), batch));
      for (int j = 0; j < large; ++j) {
        std::string key = tag + RandomString(32);
        std::string value = RandomString(10 * 1024);
        EXPECT_OK(t->Put(WriteOptions(), key, value));
        data[id][key] = value;
      }
    }
    return data;
  }

  void ExpectReadable(
      const std::map<std::string, std::map<std::string, std::string>>& data) {
    for (const auto& [id, kv] : data) {
      std::unique_ptr<Tenant> t;
      ASSERT_OK(cluster_->GetTenant(id, &t));
      for (const auto& [k, v] : kv) ASSERT_EQ(GetValue(t.get(), k), v);
    }
  }
};

TEST_F(PlaintextScanTest, NoKeyOrValueInAnyFile) {
  ASSERT_OK(CreateCluster());
  for (int i = 0; i < kTenants; ++i) {
    ASSERT_OK(
        cluster_->CreateTenant("tenant" + std::to_string(i), TenantOptions()));
  }
  auto data = WriteData(kSmallPerTenant, kLargePerTenant, "K");
  // Overwrites and deletes leave older versions and tombstones behind; the
  // overwritten values are needles too.
  std::vector<std::string> old_values;
  {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(cluster_->GetTenant("tenant0", &t));
    auto it = data["tenant0"].begin();
    for (int j = 0; j < 20; ++j, ++it) {
      std::string value = RandomString(32);
      ASSERT_OK(t->Put(WriteOptions(), it->first, value));
      old_values.push_back(it->second);
      it->second = value;
    }
    for (int j = 0; j < 10; ++j, ++it) {
      ASSERT_OK(t->Delete(WriteOptions(), it->first));
      old_values.push_back(it->second);
    }
  }
  for (int i = 0; i < kTenants; ++i) {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(cluster_->GetTenant("tenant" + std::to_string(i), &t));
    ASSERT_OK(t->Flush());
    ASSERT_OK(t->Compact());
  }
  // What must read back: everything but the deleted keys.
  std::map<std::string, std::map<std::string, std::string>> live = data;
  {
    auto it = data["tenant0"].begin();
    std::advance(it, 20);
    for (int j = 0; j < 10; ++j, ++it) live["tenant0"].erase(it->first);
  }
  cluster_.reset();
  ASSERT_OK(ReopenCluster());
  ExpectReadable(live);
  {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(cluster_->GetTenant("tenant0", &t));
    auto it = data["tenant0"].begin();
    std::advance(it, 20);
    EXPECT_EQ(GetValue(t.get(), it->first), "NOT_FOUND");
  }

  // A few more writes that stay in the WAL and memtable.
  auto fresh = WriteData(10, 1, "W");
  std::vector<std::string> needles;
  for (const auto& [id, kv] : data) {
    for (std::string& n : Needles(kv)) needles.push_back(std::move(n));
  }
  needles.insert(needles.end(), old_values.begin(), old_values.end());
  for (const auto& [id, kv] : fresh) {
    for (std::string& n : Needles(kv)) needles.push_back(std::move(n));
  }

  // Scan while the writes sit in the WAL of the open cluster.
  size_t files = 0, bytes = 0;
  EXPECT_EQ(FindPlaintext(data_dir_, needles, &files, &bytes), "")
      << "plaintext found while open";
  std::printf("[ info     ] open: scanned %zu files, %zu bytes, %zu needles\n",
              files, bytes, needles.size());

  // And after a clean close.
  cluster_.reset();
  EXPECT_EQ(FindPlaintext(data_dir_, needles, &files, &bytes), "")
      << "plaintext found after close";
  std::printf("[ info     ] closed: scanned %zu files, %zu bytes\n", files,
              bytes);
  // The scan covered the kinds of files RocksDB writes.
  bool sst = false, wal_or_manifest = false, options = false;
  for (const std::string& f : ListFilesRecursive(data_dir_)) {
    if (f.find(".sst") != std::string::npos) sst = true;
    if (f.find(".log") != std::string::npos ||
        f.find("MANIFEST") != std::string::npos) {
      wal_or_manifest = true;
    }
    if (f.find("OPTIONS") != std::string::npos) options = true;
  }
  EXPECT_TRUE(sst);
  EXPECT_TRUE(wal_or_manifest);
  EXPECT_TRUE(options);

  // Everything still reads back.
  ASSERT_OK(ReopenCluster());
  ExpectReadable(live);
  ExpectReadable(fresh);

  // Control: the scan does find plaintext when it is there.
  const std::string control_dir = tmp_.Sub("control");
  std::filesystem::create_directories(control_dir);
  const std::string some_value = live["tenant1"].begin()->second;
  WriteFileBytes(control_dir + "/copy", "xx" + some_value + "yy");
  EXPECT_EQ(FilesContaining(control_dir, some_value).size(), 1u);
  EXPECT_NE(FindPlaintext(control_dir, needles), "");
  EXPECT_NE(FindPlaintext(tmp_.path(), needles), "");
}

// Control for the scanner itself: a benchmark-only plaintext cluster stores
// keys and values in the clear, and the same scan must find them in its
// tables and WAL. If this fails, the scan above proves nothing.
TEST_F(PlaintextScanTest, ScanFindsKeysInAPlaintextCluster) {
  OpenOptions plain;
  plain.plaintext_for_benchmarks = true;
  ASSERT_OK(CreateCluster(ClusterLimits(), plain));
  for (int i = 0; i < kTenants; ++i) {
    ASSERT_OK(
        cluster_->CreateTenant("tenant" + std::to_string(i), TenantOptions()));
  }
  auto flushed = WriteData(50, 1, "F");
  for (int i = 0; i < kTenants; ++i) {
    std::unique_ptr<Tenant> t;
    ASSERT_OK(cluster_->GetTenant("tenant" + std::to_string(i), &t));
    ASSERT_OK(t->Flush());
  }
  auto in_wal = WriteData(50, 0, "L");
  std::vector<std::string> sst_needles, wal_needles;
  for (const auto& [id, kv] : flushed) {
    for (const auto& [k, v] : kv) sst_needles.push_back(k);
  }
  for (const auto& [id, kv] : in_wal) {
    for (const auto& [k, v] : kv) wal_needles.push_back(k);
  }
  const std::string sst_hits = FindPlaintext(data_dir_, sst_needles);
  const std::string wal_hits = FindPlaintext(data_dir_, wal_needles);
  EXPECT_NE(sst_hits.find(".sst"), std::string::npos) << sst_hits;
  EXPECT_NE(wal_hits.find(".log"), std::string::npos) << wal_hits;
  cluster_.reset();
  // Open refuses to mix modes on one directory.
  std::unique_ptr<Cluster> encrypted;
  Status s = Cluster::Open(data_dir_, OpenOptions(), keys_, &encrypted);
  EXPECT_FALSE(s.ok()) << "an encrypted open of a plaintext cluster succeeded";
}

}  // namespace
}  // namespace coffer::test
