// Copyright (c) Coffer authors.
//
// Data subcommands: put, get, delete, scan. Each opens the cluster, works on
// one tenant and closes the cluster again.

#include <cstdio>
#include <memory>
#include <string>

#include "coffer/cluster.h"
#include "coffer/tenant.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace coffer::cli {
namespace {

struct DataArgs {
  ClusterArgs cluster;
  std::string tenant;
  std::string key;
  std::string value;
  bool raw = false;
  std::string prefix;
  std::string start;
  std::string end;
  uint64_t limit = 0;
  bool json = false;
};

CLI::App* AddDataCommand(CLI::App* app, const std::string& name,
                         const std::string& description, DataArgs* args) {
  CLI::App* cmd = app->add_subcommand(name, description);
  AddClusterArgs(cmd, &args->cluster);
  cmd->add_option("--tenant", args->tenant, "Tenant id")
      ->type_name("T")
      ->required();
  return cmd;
}

Status OpenTenant(const DataArgs& args, std::unique_ptr<Cluster>* cluster,
                  std::unique_ptr<Tenant>* tenant) {
  Status s = OpenCluster(args.cluster, cluster);
  if (s.ok()) s = (*cluster)->GetTenant(args.tenant, tenant);
  return s;
}

bool ReadAll(std::FILE* file, std::string* out) {
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), file)) > 0) out->append(buf, n);
  return std::ferror(file) == 0;
}

bool WriteAll(std::string_view bytes) {
  return std::fwrite(bytes.data(), 1, bytes.size(), stdout) == bytes.size();
}

void RegisterPut(CLI::App* app, Runner* run) {
  auto args = std::make_shared<DataArgs>();
  CLI::App* cmd = AddDataCommand(
      app, "put",
      "Stores a value. Writes VALUE under KEY in tenant --tenant, replacing "
      "any previous "
      "value. A VALUE of '-' reads the value from standard input, all of it "
      "and byte for byte (use this for binary data or values starting with "
      "'-'). Fails with QuotaExceeded, storing nothing, when the write would "
      "take the tenant or cluster over its quota. Prints nothing on success.",
      args.get());
  cmd->add_option("KEY", args->key, "Key")->required();
  cmd->add_option("VALUE", args->value, "Value, or '-' for standard input")
      ->required();
  OnRun(cmd, run, [args] {
    if (args->value == "-") {
      args->value.clear();
      if (!ReadAll(stdin, &args->value)) {
        return FailWith("put", "cannot read the value from standard input");
      }
    }
    std::unique_ptr<Cluster> cluster;
    std::unique_ptr<Tenant> tenant;
    Status s = OpenTenant(*args, &cluster, &tenant);
    if (s.ok()) s = tenant->Put(WriteOptions(), args->key, args->value);
    return s.ok() ? kExitOk : Fail("put", s);
  });
}

void RegisterGet(CLI::App* app, Runner* run) {
  auto args = std::make_shared<DataArgs>();
  CLI::App* cmd = AddDataCommand(
      app, "get",
      "Prints a value. Writes the value of KEY in tenant --tenant, followed by "
      "a "
      "newline (with --raw: exactly the stored bytes, nothing added). Exits "
      "with status 1 and 'not found' when the key is absent.",
      args.get());
  cmd->add_option("KEY", args->key, "Key")->required();
  cmd->add_flag("--raw", args->raw, "Print the value without a newline");
  OnRun(cmd, run, [args] {
    std::unique_ptr<Cluster> cluster;
    std::unique_ptr<Tenant> tenant;
    std::string value;
    Status s = OpenTenant(*args, &cluster, &tenant);
    if (!s.ok()) return Fail("get", s);
    s = tenant->Get(ReadOptions(), args->key, &value);
    if (s.IsNotFound()) {
      return FailWith("get",
                      "NotFound: key not found in tenant " + args->tenant);
    }
    if (!s.ok()) return Fail("get", s);
    if (!args->raw) value.push_back('\n');
    if (!WriteAll(value) || std::fflush(stdout) != 0) {
      return FailWith("get", "cannot write the value to standard output");
    }
    return kExitOk;
  });
}

void RegisterDelete(CLI::App* app, Runner* run) {
  auto args = std::make_shared<DataArgs>();
  CLI::App* cmd = AddDataCommand(
      app, "delete",
      "Deletes a key. Removes KEY from tenant --tenant. Deleting an absent key "
      "succeeds, "
      "and deletes succeed even when the tenant is over its quota. Prints "
      "nothing on success.",
      args.get());
  cmd->add_option("KEY", args->key, "Key")->required();
  OnRun(cmd, run, [args] {
    std::unique_ptr<Cluster> cluster;
    std::unique_ptr<Tenant> tenant;
    Status s = OpenTenant(*args, &cluster, &tenant);
    if (s.ok()) s = tenant->Delete(WriteOptions(), args->key);
    return s.ok() ? kExitOk : Fail("delete", s);
  });
}

void RegisterScan(CLI::App* app, Runner* run) {
  auto args = std::make_shared<DataArgs>();
  CLI::App* cmd = AddDataCommand(
      app, "scan",
      "Lists keys and values. Prints the pairs of tenant --tenant in "
      "byte-wise key order, one pair per line separated by a tab, with control "
      "characters, "
      "backslashes and bytes that are not UTF-8 escaped as in JSON. "
      "--prefix, --start (inclusive) and --end (exclusive) restrict the keys; "
      "--limit stops after N pairs.",
      args.get());
  cmd->add_option("--prefix", args->prefix, "Only keys starting with P")
      ->type_name("P");
  CLI::Option* start =
      cmd->add_option("--start", args->start, "Only keys >= K")->type_name("K");
  CLI::Option* end =
      cmd->add_option("--end", args->end, "Only keys < K")->type_name("K");
  cmd->add_option("--limit", args->limit, "At most N pairs; 0 = all")
      ->transform(CountArg())
      ->type_name("N");
  cmd->add_flag("--json", args->json,
                "Print one JSON object: {\"tenant\", \"entries\": [{\"key\", "
                "\"value\"}...], \"truncated\"}");
  OnRun(cmd, run, [args, start, end] {
    std::unique_ptr<Cluster> cluster;
    std::unique_ptr<Tenant> tenant;
    Status s = OpenTenant(*args, &cluster, &tenant);
    if (!s.ok()) return Fail("scan", s);
    ReadOptions options;
    options.prefix = args->prefix;
    if (start->count() > 0) options.lower_bound = args->start;
    if (end->count() > 0) options.upper_bound = args->end;
    std::unique_ptr<Iterator> it = tenant->NewIterator(options);
    if (args->json) {
      std::printf("{\"tenant\":%s,\"entries\":[",
                  JsonString(args->tenant).c_str());
    }
    uint64_t count = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (args->limit != 0 && count == args->limit) break;
      std::string line;
      if (args->json) {
        line = (count == 0 ? "" : ",") + JsonObject()
                                             .AddString("key", it->key())
                                             .AddString("value", it->value())
                                             .str();
      } else {
        line =
            EscapeForLine(it->key()) + "\t" + EscapeForLine(it->value()) + "\n";
      }
      WriteAll(line);
      ++count;
    }
    s = it->status();
    if (args->json) {
      std::printf("],\"truncated\":%s}\n", it->Valid() ? "true" : "false");
    }
    if (!s.ok()) return Fail("scan", s);
    if (std::fflush(stdout) != 0) {
      return FailWith("scan", "cannot write to standard output");
    }
    return kExitOk;
  });
}

}  // namespace

void RegisterDataCommands(CLI::App* app, Runner* run) {
  RegisterPut(app, run);
  RegisterGet(app, run);
  RegisterDelete(app, run);
  RegisterScan(app, run);
}

}  // namespace coffer::cli
