// Copyright (c) Coffer authors.
//
// Helpers shared by the tests. Helpers that read data return strings (the
// value, "NOT_FOUND", or the status) so that a failed comparison reads well.

#ifndef COFFER_TESTS_TESTUTIL_H_
#define COFFER_TESTS_TESTUTIL_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/coffer.h"

namespace coffer::test {

// ASSERT_OK(s) prints the status on failure.
#define ASSERT_OK(expr)                                       \
  do {                                                        \
    const ::coffer::Status _s = (expr);                       \
    ASSERT_TRUE(_s.ok()) << #expr << " -> " << _s.ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                       \
  do {                                                        \
    const ::coffer::Status _s = (expr);                       \
    EXPECT_TRUE(_s.ok()) << #expr << " -> " << _s.ToString(); \
  } while (0)

// A fresh directory under $TMPDIR (or /tmp), removed with its contents when
// the object dies unless COFFER_KEEP_TEST_DIRS is set.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes a fresh master key file (mode 0600) at `path`.
void WriteKeyFile(const std::string& path);

// Every regular file under `dir`, recursively.
std::vector<std::string> ListFilesRecursive(const std::string& dir);

// The files under `dir` whose bytes contain `needle`.
std::vector<std::string> FilesContaining(const std::string& dir,
                                         const std::string& needle);

// Random printable string of `n` characters.
std::string RandomString(size_t n);

// ---- files ------------------------------------------------------------------

// The whole content of `path`; adds a test failure if it cannot be read.
std::string ReadFileBytes(const std::string& path);

// Creates or replaces `path` with `bytes`, then sets exactly `mode` (the
// umask does not apply).
void WriteFileBytes(const std::string& path, const std::string& bytes,
                    mode_t mode = 0600);

// Every file and directory under `dir`, as paths relative to `dir`, sorted;
// directories end in '/'. Lets a test prove that nothing was created.
std::vector<std::string> ListTreeRecursive(const std::string& dir);

// Relative path -> bytes of every regular file under `dir`.
using FileTree = std::map<std::string, std::string>;
FileTree ReadTree(const std::string& dir);

// Human-readable differences between two trees; empty when identical.
// Paths in `ignore` (relative, e.g. "AUDIT") are not compared.
std::string DiffTrees(const FileTree& before, const FileTree& after,
                      const std::vector<std::string>& ignore = {});

// The audit trail's files directly under a data dir (include/coffer/audit.h):
// DATA/AUDIT, its verified head and events recorded without the master key.
inline const std::vector<std::string> kAuditFiles = {"AUDIT", "AUDIT.head",
                                                     "AUDIT.pending"};

// `tree` (from ListTreeRecursive) without the entries in `remove`.
std::vector<std::string> Without(std::vector<std::string> tree,
                                 const std::vector<std::string>& remove);

// Number of file descriptors this process holds open.
int CountOpenFds();

// ---- clusters and tenants ---------------------------------------------------

// Loads the key file at `path`; adds a test failure (and returns null) if it
// cannot.
std::shared_ptr<KeyProvider> LoadKeys(const std::string& path);

// Valid identity for a test cluster with the given limits.
ClusterOptions TestClusterOptions(
    const ClusterLimits& limits = ClusterLimits());

// The value of `key`, "NOT_FOUND", or the status of the failed read.
std::string GetValue(Tenant* tenant, std::string_view key,
                     const Snapshot* snapshot = nullptr);

// Every key/value an iterator with `options` visits, front to back. Adds a
// test failure if the iterator ends with an error.
std::map<std::string, std::string> ScanAll(Tenant* tenant,
                                           const ReadOptions& options = {});

// Fixture: a temp dir holding master.key (outside the data dir) and data/.
class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  Status CreateCluster(const ClusterLimits& limits = ClusterLimits(),
                       const OpenOptions& open_options = OpenOptions());
  // Destroys the open cluster (if any) and opens the directory again.
  Status ReopenCluster(const OpenOptions& open_options = OpenOptions());

  std::string TenantDir(const std::string& id) const {
    return data_dir_ + "/tenants/" + id;
  }

  TempDir tmp_;
  std::string key_path_;
  std::string data_dir_;
  std::shared_ptr<KeyProvider> keys_;
  std::unique_ptr<Cluster> cluster_;
};

}  // namespace coffer::test

#endif  // COFFER_TESTS_TESTUTIL_H_
