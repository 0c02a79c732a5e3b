// Copyright (c) Coffer authors.

#include "tests/testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>

#include "coffer/key_provider.h"

namespace coffer::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ =
      std::string(base && *base ? base : "/tmp") + "/coffer-test-XXXXXX";
  char* made = mkdtemp(templ.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  if (std::getenv("COFFER_KEEP_TEST_DIRS") != nullptr) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void WriteKeyFile(const std::string& path) {
  Status s = GenerateKeyFile(path);
  if (!s.ok()) {
    ADD_FAILURE() << "GenerateKeyFile(" << path << "): " << s.ToString();
  }
}

std::vector<std::string> ListFilesRecursive(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) out.push_back(it->path().string());
  }
  return out;
}

std::vector<std::string> FilesContaining(const std::string& dir,
                                         const std::string& needle) {
  std::vector<std::string> hits;
  for (const std::string& file : ListFilesRecursive(dir)) {
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
    if (bytes.find(needle) != std::string::npos) hits.push_back(file);
  }
  return hits;
}

std::string RandomString(size_t n) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string s(n, ' ');
  for (char& c : s) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return s;
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return {};
  }
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

void WriteFileBytes(const std::string& path, const std::string& bytes,
                    mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    ADD_FAILURE() << "cannot create " << path;
    return;
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ADD_FAILURE() << "cannot write " << path;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0) ADD_FAILURE() << "cannot chmod " << path;
  ::close(fd);
}

std::vector<std::string> ListTreeRecursive(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::string rel = fs::relative(it->path(), dir).string();
    if (it->is_directory()) rel += "/";
    out.push_back(rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

FileTree ReadTree(const std::string& dir) {
  FileTree tree;
  for (const std::string& file : ListFilesRecursive(dir)) {
    tree[fs::relative(file, dir).string()] = ReadFileBytes(file);
  }
  return tree;
}

std::string DiffTrees(const FileTree& before, const FileTree& after,
                      const std::vector<std::string>& ignore) {
  auto ignored = [&](const std::string& path) {
    return std::find(ignore.begin(), ignore.end(), path) != ignore.end();
  };
  std::ostringstream out;
  for (const auto& [path, bytes] : before) {
    if (ignored(path)) continue;
    auto it = after.find(path);
    if (it == after.end()) {
      out << "removed: " << path << "\n";
    } else if (it->second != bytes) {
      out << "changed: " << path << " (" << bytes.size() << " -> "
          << it->second.size() << " bytes)\n";
    }
  }
  for (const auto& [path, bytes] : after) {
    if (!ignored(path) && before.count(path) == 0)
      out << "added: " << path << "\n";
  }
  return out.str();
}

std::vector<std::string> Without(std::vector<std::string> tree,
                                 const std::vector<std::string>& remove) {
  tree.erase(std::remove_if(tree.begin(), tree.end(),
                            [&](const std::string& path) {
                              return std::find(remove.begin(), remove.end(),
                                               path) != remove.end();
                            }),
             tree.end());
  return tree;
}

int CountOpenFds() {
  int n = 0;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    (void)entry;
    ++n;
  }
  return n;
}

std::shared_ptr<KeyProvider> LoadKeys(const std::string& path) {
  std::shared_ptr<KeyProvider> keys;
  Status s = NewFileKeyProvider(path, &keys);
  if (!s.ok()) {
    ADD_FAILURE() << "NewFileKeyProvider(" << path << "): " << s.ToString();
    return nullptr;
  }
  return keys;
}

ClusterOptions TestClusterOptions(const ClusterLimits& limits) {
  ClusterOptions options;
  options.cluster_id = "test-cluster";
  options.region = "eu-west-1";
  options.geography = "eu";
  options.limits = limits;
  return options;
}

std::string GetValue(Tenant* tenant, std::string_view key,
                     const Snapshot* snapshot) {
  ReadOptions options;
  options.snapshot = snapshot;
  std::string value;
  Status s = tenant->Get(options, key, &value);
  if (s.IsNotFound()) return "NOT_FOUND";
  if (!s.ok()) return s.ToString();
  return value;
}

std::map<std::string, std::string> ScanAll(Tenant* tenant,
                                           const ReadOptions& options) {
  std::map<std::string, std::string> out;
  std::unique_ptr<Iterator> it = tenant->NewIterator(options);
  std::string previous;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string key(it->key());
    if (!out.empty() && key <= previous) {
      ADD_FAILURE() << "iterator of " << tenant->id()
                    << " went backwards or repeated a key";
    }
    previous = key;
    out.emplace(std::move(key), std::string(it->value()));
  }
  Status s = it->status();
  if (!s.ok()) {
    ADD_FAILURE() << "iterator of " << tenant->id() << ": " << s.ToString();
  }
  return out;
}

void ClusterTest::SetUp() {
  key_path_ = tmp_.Sub("master.key");
  data_dir_ = tmp_.Sub("data");
  WriteKeyFile(key_path_);
  keys_ = LoadKeys(key_path_);
  ASSERT_NE(keys_, nullptr);
}

void ClusterTest::TearDown() { cluster_.reset(); }

Status ClusterTest::CreateCluster(const ClusterLimits& limits,
                                  const OpenOptions& open_options) {
  cluster_.reset();
  return Cluster::Create(data_dir_, TestClusterOptions(limits), open_options,
                         keys_, &cluster_);
}

Status ClusterTest::ReopenCluster(const OpenOptions& open_options) {
  cluster_.reset();
  return Cluster::Open(data_dir_, open_options, keys_, &cluster_);
}

}  // namespace coffer::test
