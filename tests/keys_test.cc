// Copyright (c) Coffer authors.
//
// Master keys: a wrong key changes nothing, unsafe key files are refused,
// keys never live inside the data directory, and one process at a time owns
// a data directory.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "coffer/coffer.h"
#include "tests/testutil.h"

namespace coffer::test {
namespace {

namespace fs = std::filesystem;

// ---- child process ----------------------------------------------------------
//
// A forked child re-executes this binary with COFFER_KEYS_CHILD set; the
// static initializer below then opens the cluster named in the environment,
// writes the outcome's code name to fd COFFER_KEYS_OUT, and (mode "hold")
// keeps the cluster open until fd COFFER_KEYS_IN reaches EOF.

int MaybeRunChild() {
  const char* mode = std::getenv("COFFER_KEYS_CHILD");
  if (mode == nullptr) return 0;
  const char* dir = std::getenv("COFFER_KEYS_DIR");
  const char* key = std::getenv("COFFER_KEYS_KEY");
  const int out = std::atoi(std::getenv("COFFER_KEYS_OUT"));
  const int in = std::atoi(std::getenv("COFFER_KEYS_IN"));
  std::shared_ptr<KeyProvider> keys;
  Status s = NewFileKeyProvider(key, &keys);
  std::unique_ptr<Cluster> cluster;
  if (s.ok()) s = Cluster::Open(dir, OpenOptions(), keys, &cluster);
  std::string line = std::string(Status::CodeName(s.code())) + "\n";
  if (::write(out, line.data(), line.size()) < 0) _exit(4);
  if (std::strcmp(mode, "hold") == 0 && s.ok()) {
    char c;
    while (::read(in, &c, 1) > 0) {
    }
    cluster.reset();
  }
  _exit(0);
}

[[maybe_unused]] const int kChildHook = MaybeRunChild();

class ChildOpen {
 public:
  ChildOpen(const std::string& mode, const std::string& dir,
            const std::string& key) {
    int out[2], in[2];
    if (::pipe(out) != 0 || ::pipe(in) != 0) std::abort();
    std::vector<std::string> env = {
        "COFFER_KEYS_CHILD=" + mode, "COFFER_KEYS_DIR=" + dir,
        "COFFER_KEYS_KEY=" + key, "COFFER_KEYS_OUT=" + std::to_string(out[1]),
        "COFFER_KEYS_IN=" + std::to_string(in[0])};
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string arg0 = "keys_child";
    char* argv[] = {arg0.data(), nullptr};
    pid_ = ::fork();
    if (pid_ < 0) std::abort();
    if (pid_ == 0) {
      ::close(out[0]);
      ::close(in[1]);
      ::execve("/proc/self/exe", argv, envp.data());
      _exit(127);
    }
    ::close(out[1]);
    ::close(in[0]);
    out_ = out[0];
    in_ = in[1];
  }
  ~ChildOpen() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
    ::close(out_);
    if (in_ >= 0) ::close(in_);
  }
  // The code name the child reported, e.g. "OK" or "Busy".
  std::string Outcome() {
    std::string line;
    char c;
    pollfd p{out_, POLLIN, 0};
    while (::poll(&p, 1, 20000) > 0 && ::read(out_, &c, 1) == 1 && c != '\n') {
      line += c;
    }
    return line;
  }
  // Lets a "hold" child close its cluster and exit.
  void Release() {
    ::close(in_);
    in_ = -1;
  }
  void KillNow() { ::kill(pid_, SIGKILL); }
  int Wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int in_ = -1;
};

// ---- tests ------------------------------------------------------------------

class KeysTest : public ClusterTest {
 protected:
  void MakeClusterWithData() {
    ASSERT_OK(CreateCluster());
    for (const char* id : {"one", "two"}) {
      ASSERT_OK(cluster_->CreateTenant(id, TenantOptions()));
      std::unique_ptr<Tenant> t;
      ASSERT_OK(cluster_->GetTenant(id, &t));
      for (int i = 0; i < 100; ++i) {
        ASSERT_OK(t->Put(WriteOptions(), "k" + std::to_string(i), id));
      }
      if (std::string(id) == "one") ASSERT_OK(t->Flush());
    }
    cluster_.reset();
  }
  void ExpectData() {
    for (const char* id : {"one", "two"}) {
      std::unique_ptr<Tenant> t;
      ASSERT_OK(cluster_->GetTenant(id, &t));
      EXPECT_EQ(GetValue(t.get(), "k7"), id);
    }
  }
};

TEST_F(KeysTest, WrongMasterKeyIsWrongKeyAndChangesNothing) {
  MakeClusterWithData();
  const FileTree before = ReadTree(data_dir_);
  const std::vector<std::string> tree = ListTreeRecursive(data_dir_);
  const std::string other_path = tmp_.Sub("other.key");
  WriteKeyFile(other_path);
  std::shared_ptr<KeyProvider> other = LoadKeys(other_path);
  ASSERT_NE(other, nullptr);
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Cluster> cluster;
    Status s = Cluster::Open(data_dir_, OpenOptions(), other, &cluster);
    EXPECT_TRUE(s.IsWrongKey()) << s.ToString();
    EXPECT_EQ(cluster, nullptr);
  }
  // Cluster::Open promises that nothing is modified on WrongKey, except the
  // record of the failed attempt in AUDIT.pending (the audit trail must show
  // failed key checks, and without the key it cannot extend the chain).
  const FileTree after = ReadTree(data_dir_);
  const std::vector<std::string> pending = {"AUDIT.pending"};
  EXPECT_EQ(Without(ListTreeRecursive(data_dir_), pending),
            Without(tree, pending));
  EXPECT_EQ(DiffTrees(before, after, pending), "");
  const std::string log = ReadFileBytes(data_dir_ + "/AUDIT.pending");
  EXPECT_NE(log.find("WrongKey"), std::string::npos) << log;
  size_t lines = 0;
  for (char ch : log) lines += ch == '\n';
  EXPECT_EQ(2u, lines) << "one pending record per failed attempt";
  // The failed open released the directory: the right key opens it.
  ASSERT_OK(ReopenCluster());
  ExpectData();
}

TEST(KeyFileTest, GroupOrOtherPermissionsAreRefused) {
  TempDir tmp;
  const std::string key(32, 'k');
  for (mode_t mode :
       {0644, 0640, 0604, 0660, 0666, 0620, 0602, 0610, 0601, 0700 | 0044}) {
    const std::string path = tmp.Sub("key-" + std::to_string(mode));
    WriteFileBytes(path, key, mode);
    std::shared_ptr<KeyProvider> keys;
    Status s = NewFileKeyProvider(path, &keys);
    EXPECT_TRUE(s.IsPermissionDenied())
        << "mode " << std::oct << mode << ": " << s.ToString();
    EXPECT_EQ(keys, nullptr);
    EXPECT_NE(s.message().find(path), std::string::npos)
        << "the message should name the file: " << s.ToString();
  }
  for (mode_t mode : {0600, 0400, 0700}) {
    const std::string path = tmp.Sub("ok-" + std::to_string(mode));
    WriteFileBytes(path, key, mode);
    std::shared_ptr<KeyProvider> keys;
    Status s = NewFileKeyProvider(path, &keys);
    EXPECT_TRUE(s.ok()) << "mode " << std::oct << mode << ": " << s.ToString();
    EXPECT_NE(keys, nullptr);
  }
}

TEST(KeyFileTest, WrongSizeIsInvalidArgument) {
  TempDir tmp;
  for (size_t size : {0, 1, 31, 33, 64}) {
    const std::string path = tmp.Sub("key-" + std::to_string(size));
    WriteFileBytes(path, std::string(size, 'k'), 0600);
    std::shared_ptr<KeyProvider> keys;
    Status s = NewFileKeyProvider(path, &keys);
    EXPECT_TRUE(s.IsInvalidArgument()) << size << " bytes: " << s.ToString();
    EXPECT_EQ(keys, nullptr);
  }
  std::shared_ptr<KeyProvider> keys;
  Status missing = NewFileKeyProvider(tmp.Sub("missing"), &keys);
  EXPECT_FALSE(missing.ok());
  EXPECT_EQ(keys, nullptr);
  fs::create_directory(tmp.Sub("dir"));
  Status dir = NewFileKeyProvider(tmp.Sub("dir"), &keys);
  EXPECT_FALSE(dir.ok());
}

TEST(KeyFileTest, GenerateKeyFileMakesPrivateFilesAndNeverOverwrites) {
  TempDir tmp;
  const std::string a = tmp.Sub("a.key");
  const std::string b = tmp.Sub("b.key");
  // Even with a permissive umask, the file is created private.
  const mode_t old_umask = ::umask(0);
  Status sa = GenerateKeyFile(a);
  ::umask(old_umask);
  ASSERT_OK(sa);
  ASSERT_OK(GenerateKeyFile(b));
  struct stat st;
  ASSERT_EQ(::stat(a.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u) << std::oct << (st.st_mode & 07777);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  const std::string key_a = ReadFileBytes(a);
  const std::string key_b = ReadFileBytes(b);
  EXPECT_EQ(key_a.size(), 32u);
  EXPECT_NE(key_a, key_b);
  EXPECT_NE(key_a, std::string(32, '\0'));
  std::shared_ptr<KeyProvider> keys;
  EXPECT_OK(NewFileKeyProvider(a, &keys));

  Status again = GenerateKeyFile(a);
  EXPECT_TRUE(again.IsAlreadyExists()) << again.ToString();
  EXPECT_EQ(ReadFileBytes(a), key_a);

  const std::string other = tmp.Sub("other");
  WriteFileBytes(other, "not a key", 0644);
  Status over = GenerateKeyFile(other);
  EXPECT_TRUE(over.IsAlreadyExists()) << over.ToString();
  EXPECT_EQ(ReadFileBytes(other), "not a key");

  // A dangling symlink is not followed to create its target.
  const std::string target = tmp.Sub("target");
  const std::string link = tmp.Sub("link");
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  Status via_link = GenerateKeyFile(link);
  EXPECT_TRUE(via_link.IsAlreadyExists()) << via_link.ToString();
  EXPECT_FALSE(fs::exists(target));
}

TEST(KeyFileTest, WrapRoundTripsAndBindsAssociatedData) {
  TempDir tmp;
  WriteKeyFile(tmp.Sub("m.key"));
  WriteKeyFile(tmp.Sub("n.key"));
  std::shared_ptr<KeyProvider> m = LoadKeys(tmp.Sub("m.key"));
  std::shared_ptr<KeyProvider> n = LoadKeys(tmp.Sub("n.key"));
  ASSERT_NE(m, nullptr);
  ASSERT_NE(n, nullptr);
  const std::string dek(32, '\x5a');
  std::string wrapped, plain;
  ASSERT_OK(m->Wrap(m->DefaultKeyId(), dek, "aad-1", &wrapped));
  EXPECT_EQ(wrapped.find(dek), std::string::npos);
  ASSERT_OK(m->Unwrap(m->DefaultKeyId(), wrapped, "aad-1", &plain));
  EXPECT_EQ(plain, dek);
  Status s = m->Unwrap(m->DefaultKeyId(), wrapped, "aad-2", &plain);
  EXPECT_TRUE(s.IsWrongKey()) << s.ToString();
  s = n->Unwrap(n->DefaultKeyId(), wrapped, "aad-1", &plain);
  EXPECT_TRUE(s.IsWrongKey()) << s.ToString();
  std::string tampered = wrapped;
  tampered[tampered.size() / 2] ^= 1;
  s = m->Unwrap(m->DefaultKeyId(), tampered, "aad-1", &plain);
  EXPECT_TRUE(s.IsWrongKey()) << s.ToString();
  // A key file's id is a fingerprint of its key: distinct files, distinct
  // ids, and data wrapped under another key file's id is WrongKey naming
  // both ids (key_provider.h).
  EXPECT_NE(m->DefaultKeyId(), n->DefaultKeyId());
  std::string wrapped_by_n;
  ASSERT_OK(n->Wrap(n->DefaultKeyId(), dek, "aad-1", &wrapped_by_n));
  s = m->Unwrap(n->DefaultKeyId(), wrapped_by_n, "aad-1", &plain);
  EXPECT_TRUE(s.IsWrongKey()) << s.ToString();
  EXPECT_NE(s.message().find(n->DefaultKeyId()), std::string::npos)
      << s.ToString();
  EXPECT_NE(s.message().find(m->DefaultKeyId()), std::string::npos)
      << s.ToString();
  // An id the provider does not hold is never unwrapped.
  s = m->Unwrap("no-such-key", wrapped, "aad-1", &plain);
  EXPECT_TRUE(s.IsNotFound() || s.IsWrongKey()) << s.ToString();
  // The same key file loaded twice has the same id and unwraps.
  std::shared_ptr<KeyProvider> m2 = LoadKeys(tmp.Sub("m.key"));
  ASSERT_NE(m2, nullptr);
  EXPECT_EQ(m2->DefaultKeyId(), m->DefaultKeyId());
  ASSERT_OK(m2->Unwrap(m->DefaultKeyId(), wrapped, "aad-1", &plain));
  EXPECT_EQ(plain, dek);
  EXPECT_EQ(m->Location(), fs::absolute(tmp.Sub("m.key")).string());
}

TEST_F(KeysTest, KeyFileInsideDataDirIsRefused) {
  fs::create_directories(data_dir_ + "/sub");
  for (const std::string& inside :
       {data_dir_ + "/master.key", data_dir_ + "/sub/master.key"}) {
    WriteFileBytes(inside, ReadFileBytes(key_path_), 0600);
    std::shared_ptr<KeyProvider> keys = LoadKeys(inside);
    ASSERT_NE(keys, nullptr);
    std::unique_ptr<Cluster> cluster;
    Status s = Cluster::Create(data_dir_, TestClusterOptions(), OpenOptions(),
                               keys, &cluster);
    EXPECT_TRUE(s.IsPermissionDenied()) << inside << ": " << s.ToString();
    EXPECT_EQ(cluster, nullptr);
    EXPECT_FALSE(fs::exists(data_dir_ + "/CLUSTER"));
    s = Cluster::Create(data_dir_ + "/", TestClusterOptions(), OpenOptions(),
                        keys, &cluster);
    EXPECT_TRUE(s.IsPermissionDenied())
        << inside << " (dir/): " << s.ToString();
    EXPECT_FALSE(fs::exists(data_dir_ + "/CLUSTER"));
  }
  // A sibling whose name merely starts with the data dir's name is fine.
  const std::string sibling = data_dir_ + "-keys";
  fs::create_directories(sibling);
  WriteFileBytes(sibling + "/master.key", ReadFileBytes(key_path_), 0600);
  std::shared_ptr<KeyProvider> sibling_keys = LoadKeys(sibling + "/master.key");
  ASSERT_NE(sibling_keys, nullptr);
  fs::remove_all(data_dir_);
  ASSERT_OK(Cluster::Create(data_dir_, TestClusterOptions(), OpenOptions(),
                            sibling_keys, &cluster_));
  cluster_.reset();

  // Open refuses too, once the key has been copied into the directory.
  WriteFileBytes(data_dir_ + "/copied.key", ReadFileBytes(key_path_), 0600);
  std::shared_ptr<KeyProvider> copied = LoadKeys(data_dir_ + "/copied.key");
  ASSERT_NE(copied, nullptr);
  std::unique_ptr<Cluster> cluster;
  Status s = Cluster::Open(data_dir_, OpenOptions(), copied, &cluster);
  EXPECT_TRUE(s.IsPermissionDenied()) << s.ToString();
  EXPECT_EQ(cluster, nullptr);
  // The same key from outside works.
  ASSERT_OK(Cluster::Open(data_dir_, OpenOptions(), sibling_keys, &cluster));
}

TEST_F(KeysTest, KeyFileInsideDataDirThroughAliasesIsRefused) {
  fs::create_directories(data_dir_);
  WriteFileBytes(data_dir_ + "/master.key", ReadFileBytes(key_path_), 0600);
  // The data dir named through a symlink.
  const std::string link = tmp_.Sub("data-link");
  fs::create_directory_symlink(data_dir_, link);
  std::shared_ptr<KeyProvider> keys = LoadKeys(data_dir_ + "/master.key");
  ASSERT_NE(keys, nullptr);
  std::unique_ptr<Cluster> cluster;
  Status s = Cluster::Create(link, TestClusterOptions(), OpenOptions(), keys,
                             &cluster);
  EXPECT_TRUE(s.IsPermissionDenied())
      << "data dir via symlink: " << s.ToString();
  cluster.reset();
  // The key named with "..".
  fs::create_directories(tmp_.Sub("elsewhere"));
  std::shared_ptr<KeyProvider> dotted =
      LoadKeys(tmp_.Sub("elsewhere/../data/master.key"));
  ASSERT_NE(dotted, nullptr);
  s = Cluster::Create(data_dir_, TestClusterOptions(), OpenOptions(), dotted,
                      &cluster);
  EXPECT_TRUE(s.IsPermissionDenied()) << "key path with ..: " << s.ToString();
  EXPECT_FALSE(fs::exists(data_dir_ + "/CLUSTER"));
}

TEST_F(KeysTest, SecondOpenInProcessIsBusy) {
  MakeClusterWithData();
  ASSERT_OK(ReopenCluster());
  std::unique_ptr<Cluster> second;
  Status s = Cluster::Open(data_dir_, OpenOptions(), keys_, &second);
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_EQ(second, nullptr);
  // Also with a different path to the same directory.
  s = Cluster::Open(data_dir_ + "/.", OpenOptions(), keys_, &second);
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  // Create on an open cluster's directory is refused as well.
  s = Cluster::Create(data_dir_, TestClusterOptions(), OpenOptions(), keys_,
                      &second);
  EXPECT_FALSE(s.ok());
  // The first cluster is unaffected.
  ExpectData();
  ASSERT_OK(cluster_->CreateTenant("three", TenantOptions()));
  cluster_.reset();
  ASSERT_OK(Cluster::Open(data_dir_, OpenOptions(), keys_, &second));
  EXPECT_EQ(second->ListTenants().size(), 3u);
}

TEST_F(KeysTest, OpenFromAnotherProcessIsBusy) {
  MakeClusterWithData();
  {
    // This process holds it; a child cannot open it.
    ASSERT_OK(ReopenCluster());
    ChildOpen child("try", data_dir_, key_path_);
    EXPECT_EQ(child.Outcome(), "Busy");
    child.Wait();
    ExpectData();
    cluster_.reset();
  }
  {
    // Once released, a child can.
    ChildOpen child("try", data_dir_, key_path_);
    EXPECT_EQ(child.Outcome(), "OK");
    child.Wait();
  }
  {
    // A child holds it; this process cannot open it until the child closes.
    ChildOpen child("hold", data_dir_, key_path_);
    ASSERT_EQ(child.Outcome(), "OK");
    Status s = ReopenCluster();
    EXPECT_TRUE(s.IsBusy()) << s.ToString();
    child.Release();
    child.Wait();
    ASSERT_OK(ReopenCluster());
    ExpectData();
    cluster_.reset();
  }
  {
    // A child that dies holding it releases it.
    ChildOpen child("hold", data_dir_, key_path_);
    ASSERT_EQ(child.Outcome(), "OK");
    Status s = ReopenCluster();
    EXPECT_TRUE(s.IsBusy()) << s.ToString();
    child.KillNow();
    child.Wait();
    ASSERT_OK(ReopenCluster());
    ExpectData();
  }
}

}  // namespace
}  // namespace coffer::test
