// Copyright (c) Coffer authors.
//
// `coffer ldb`: RocksDB's ldb tool on one tenant's encrypted database.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "engine/dir_lock.h"
#include "engine/tenant_fs.h"
#include "rocksdb/env.h"
#include "rocksdb/ldb_tool.h"
#include "rocksdb/options.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace coffer::cli {

namespace {

struct LdbArgs {
  ClusterArgs cluster;
  std::string tenant;
  std::vector<std::string> ldb;
};

}  // namespace

void RegisterLdbCommand(CLI::App* app, Runner* run) {
  auto args = std::make_shared<LdbArgs>();
  CLI::App* cmd = app->add_subcommand(
      "ldb",
      "Runs RocksDB's ldb tool on tenant --tenant, reading and writing its "
      "files through the tenant's keys; everything after '--' goes to ldb, "
      "and --db is filled in. For example: coffer ldb --data D --key-file K "
      "--tenant acme -- scan --max_keys=10. Holds the cluster's lock while "
      "it runs, so no Coffer process may have the cluster open. ldb's own "
      "exit status is returned.");
  AddClusterArgs(cmd, &args->cluster);
  cmd->add_option("--tenant", args->tenant, "Tenant id")->required();
  cmd->add_option("ldb_args", args->ldb, "ldb command and its options")
      ->required();
  OnRun(cmd, run, [args] {
    std::shared_ptr<KeyProvider> keys;
    std::unique_ptr<DirLock> lock;
    std::shared_ptr<rocksdb::FileSystem> fs;
    std::string db_dir;
    Status s = OpenKeyProvider(args->cluster, &keys);
    if (s.ok()) s = DirLock::Acquire(args->cluster.data, &lock);
    if (s.ok()) {
      s = OpenTenantFileSystem(args->cluster.data, keys, args->tenant, &fs,
                               &db_dir);
    }
    if (!s.ok()) return Fail("ldb", s);
    keys.reset();
    std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
    rocksdb::Options options;
    options.env = env.get();
    // ldb's info log would otherwise go to the plain POSIX logger.
    rocksdb::Status ls = rocksdb::NewEnvLogger(db_dir + "/LOG.ldb", env.get(),
                                               &options.info_log);
    if (!ls.ok()) return FailWith("ldb", ls.ToString());
    std::vector<std::string> argv_store = {"coffer ldb", "--db=" + db_dir};
    argv_store.insert(argv_store.end(), args->ldb.begin(), args->ldb.end());
    std::vector<char*> argv;
    for (std::string& a : argv_store) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(stdout);
    // Run() prints the result and exits the process with ldb's status.
    rocksdb::LDBTool().Run(static_cast<int>(argv_store.size()), argv.data(),
                           options);
    return kExitOk;
  });
}

}  // namespace coffer::cli
