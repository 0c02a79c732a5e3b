// Copyright (c) Coffer authors.
//
// Key lifecycle subcommands: key rotate-master|rotate|revoke|restore|status.
// They print key ids, versions, times and file counts; never key bytes.

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "coffer/cluster.h"
#include "coffer/key_provider.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace coffer::cli {
namespace {

struct KeyArgs {
  ClusterArgs cluster;
  std::string tenant;
  std::string new_key_file;
  std::string reason;
  bool rekey = false;
  bool json = false;
};

std::string Millis(uint64_t micros) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f ms",
                static_cast<double>(micros) / 1000);
  return buf;
}

std::string JoinVersions(const std::vector<uint32_t>& versions) {
  std::string out;
  for (uint32_t v : versions) {
    out += (out.empty() ? "" : ", ") + std::to_string(v);
  }
  return out.empty() ? "none" : out;
}

// "v2  created 2026-11-29T10:00:00Z (age 3m 5s)  12 files  (current)"
std::string VersionLine(const KeyVersionInfo& v, uint32_t current,
                        uint64_t now) {
  const uint64_t age =
      now > v.created_unix_micros ? now - v.created_unix_micros : 0;
  return "v" + std::to_string(v.version) + "  created " +
         FormatUnixMicros(v.created_unix_micros) + " (age " + FormatAge(age) +
         ")  " + std::to_string(v.files) + (v.files == 1 ? " file" : " files") +
         (v.version == current ? "  (current)" : "");
}

std::string VersionsJson(const std::vector<KeyVersionInfo>& versions,
                         uint32_t current, uint64_t now) {
  std::string list;
  for (const KeyVersionInfo& v : versions) {
    const uint64_t age =
        now > v.created_unix_micros ? now - v.created_unix_micros : 0;
    list += (list.empty() ? "" : ",") +
            JsonObject()
                .AddNumber("version", v.version)
                .AddString("created", FormatUnixMicros(v.created_unix_micros))
                .AddNumber("created_unix_micros", v.created_unix_micros)
                .AddNumber("age_seconds", age / 1000000)
                .AddNumber("files", v.files)
                .AddBool("current", v.version == current)
                .str();
  }
  return "[" + list + "]";
}

void PrintVersions(const std::vector<KeyVersionInfo>& versions,
                   uint32_t current, uint64_t now) {
  bool first = true;
  for (const KeyVersionInfo& v : versions) {
    const std::string line = VersionLine(v, current, now);
    if (first) {
      PrintField("versions", line);
    } else {
      std::printf("%16s%s\n", "", line.c_str());
    }
    first = false;
  }
  if (first) PrintField("versions", "none");
}

CLI::App* AddTenantKeyCommand(CLI::App* key, const std::string& name,
                              const std::string& description, KeyArgs* args) {
  CLI::App* cmd = key->add_subcommand(name, description);
  AddClusterArgs(cmd, &args->cluster);
  cmd->add_option("--tenant", args->tenant, "Tenant id")
      ->type_name("T")
      ->required();
  return cmd;
}

void RegisterRotateMaster(CLI::App* key, Runner* run) {
  auto args = std::make_shared<KeyArgs>();
  CLI::App* cmd = key->add_subcommand(
      "rotate-master",
      "Moves the cluster to a new master key. Re-wraps the catalog key and "
      "the data keys of every tenant on the cluster's master key under the "
      "key in --new-key-file (from 'coffer keygen'), online and without "
      "rewriting any data; tenants with a master key of their own keep it. "
      "Afterwards the new key opens the cluster and the old one is no longer "
      "needed. If a rotation was interrupted, running the same command again "
      "completes it.");
  AddClusterArgs(cmd, &args->cluster);
  cmd->add_option("--new-key-file", args->new_key_file,
                  "The new master key file (mode 0600, from 'coffer keygen')")
      ->type_name("PATH")
      ->required();
  cmd->add_flag("--json", args->json, "Print one JSON object");
  OnRun(cmd, run, [args] {
    std::shared_ptr<KeyProvider> old_keys;
    std::shared_ptr<KeyProvider> new_keys;
    Status s = OpenKeyProvider(args->cluster, &old_keys);
    if (s.ok()) s = NewFileKeyProvider(args->new_key_file, &new_keys);
    std::unique_ptr<Cluster> cluster;
    if (s.ok()) {
      // Both keys: the catalog may be wrapped by either while a rotation
      // is under way, and only by the new one after it.
      s = Cluster::Open(args->cluster.data, ToolOpenOptions(),
                        NewCompositeKeyProvider({old_keys, new_keys}),
                        &cluster);
    }
    MasterRotationReport report;
    if (s.ok()) s = cluster->RotateMasterKey(new_keys->DefaultKeyId(), &report);
    if (!s.ok()) return Fail("key rotate-master", s);
    const std::string cluster_id = cluster->Describe().cluster_id;
    if (args->json) {
      std::printf(
          "%s\n",
          JsonObject()
              .AddString("cluster_id", cluster_id)
              .AddString("from_key_id", report.from_key_id)
              .AddString("to_key_id", report.to_key_id)
              .AddNumber("tenants_rewrapped", report.tenants_rewrapped)
              .AddNumber("tenants_with_own_key", report.tenants_with_own_key)
              .AddNumber("micros", report.micros)
              .str()
              .c_str());
      return kExitOk;
    }
    if (report.from_key_id == report.to_key_id) {
      std::printf(
          "the master key of cluster %s is already %s (an earlier rotation "
          "completed): nothing to re-wrap; %llu tenant(s) with a master key "
          "of their own\n",
          cluster_id.c_str(), report.to_key_id.c_str(),
          static_cast<unsigned long long>(report.tenants_with_own_key));
    } else {
      std::printf(
          "rotated the master key of cluster %s from %s to %s in %s: %llu "
          "tenant(s) re-wrapped, %llu with a master key of their own left "
          "unchanged\n",
          cluster_id.c_str(), report.from_key_id.c_str(),
          report.to_key_id.c_str(), Millis(report.micros).c_str(),
          static_cast<unsigned long long>(report.tenants_rewrapped),
          static_cast<unsigned long long>(report.tenants_with_own_key));
    }
    const std::string old_id = old_keys->DefaultKeyId();
    if (old_id != report.to_key_id) {
      const std::string old_key =
          args->cluster.key_dir.empty()
              ? args->cluster.key_file
              : args->cluster.key_dir + "/" + old_id + ".key";
      std::printf(
          "the old master key %s (%s) is no longer needed by this cluster; "
          "open it with --key-file %s from now on%s\n",
          old_id.c_str(), old_key.c_str(), args->new_key_file.c_str(),
          report.tenants_with_own_key > 0
              ? " (tenants with their own master key still need theirs)"
              : "");
    }
    return kExitOk;
  });
}

void RegisterRotate(CLI::App* key, Runner* run) {
  auto args = std::make_shared<KeyArgs>();
  CLI::App* cmd = AddTenantKeyCommand(
      key, "rotate",
      "Gives a tenant a new data-key version. New files of tenant --tenant "
      "use it at once; existing files keep their version until rewritten. "
      "With --rekey every remaining file is rewritten now and each version "
      "no file needs any more is destroyed. Fails with Busy while iterators "
      "or snapshots keep the tenant in use.",
      args.get());
  cmd->add_flag("--rekey", args->rekey,
                "Also rewrite every file and destroy unused versions");
  cmd->add_flag("--json", args->json, "Print one JSON object");
  OnRun(cmd, run, [args] {
    std::unique_ptr<Cluster> cluster;
    KeyRotationReport report;
    Status s = OpenCluster(args->cluster, &cluster);
    if (s.ok())
      s = cluster->RotateTenantKey(args->tenant, args->rekey, &report);
    if (!s.ok()) return Fail("key rotate", s);
    const uint64_t now = NowUnixMicros();
    if (args->json) {
      std::string retired;
      for (uint32_t v : report.versions_retired) {
        retired += (retired.empty() ? "" : ",") + std::to_string(v);
      }
      std::printf("%s\n",
                  JsonObject()
                      .AddString("tenant", report.tenant)
                      .AddNumber("new_version", report.new_version)
                      .AddBool("rekeyed", report.rekeyed)
                      .AddRaw("versions_retired", "[" + retired + "]")
                      .AddRaw("versions", VersionsJson(report.versions,
                                                       report.new_version, now))
                      .AddNumber("micros", report.micros)
                      .str()
                      .c_str());
      return kExitOk;
    }
    std::printf("rotated the data key of tenant %s to version %u in %s\n",
                report.tenant.c_str(), report.new_version,
                Millis(report.micros).c_str());
    PrintField("rekeyed", report.rekeyed
                              ? "yes, every file rewritten"
                              : "no, older files keep their versions");
    PrintField("retired", JoinVersions(report.versions_retired));
    PrintVersions(report.versions, report.new_version, now);
    return kExitOk;
  });
}

void RegisterRevoke(CLI::App* key, Runner* run) {
  auto args = std::make_shared<KeyArgs>();
  CLI::App* cmd = AddTenantKeyCommand(
      key, "revoke",
      "Takes a tenant offline. Every later call on tenant --tenant fails "
      "with KeyRevoked and its keys leave memory; other tenants are "
      "unaffected. Nothing is deleted, and the revocation lasts across "
      "restarts until 'coffer key restore'.",
      args.get());
  cmd->add_option("--reason", args->reason,
                  "Why; recorded with the tenant and in the audit trail")
      ->type_name("TEXT");
  OnRun(cmd, run, [args] {
    std::unique_ptr<Cluster> cluster;
    Status s = OpenCluster(args->cluster, &cluster);
    if (s.ok()) s = cluster->RevokeTenantKey(args->tenant, args->reason);
    if (!s.ok()) return Fail("key revoke", s);
    std::printf(
        "revoked the key of tenant %s: it is offline until 'coffer key "
        "restore'; no data was deleted\n",
        args->tenant.c_str());
    return kExitOk;
  });
}

void RegisterRestore(CLI::App* key, Runner* run) {
  auto args = std::make_shared<KeyArgs>();
  CLI::App* cmd = AddTenantKeyCommand(
      key, "restore",
      "Brings a revoked tenant back online. Tenant --tenant can be read and "
      "written again, with its data as it was when revoked.",
      args.get());
  OnRun(cmd, run, [args] {
    std::unique_ptr<Cluster> cluster;
    Status s = OpenCluster(args->cluster, &cluster);
    if (s.ok()) s = cluster->RestoreTenantKey(args->tenant);
    if (!s.ok()) return Fail("key restore", s);
    std::printf("restored the key of tenant %s: it is online again\n",
                args->tenant.c_str());
    return kExitOk;
  });
}

void RegisterStatus(CLI::App* key, Runner* run) {
  auto args = std::make_shared<KeyArgs>();
  CLI::App* cmd = key->add_subcommand(
      "status",
      "Shows the key state of tenants. For --tenant, or every tenant: the "
      "master key wrapping its data keys (the cluster's or its own) and "
      "whether the key provider has it, the current data-key version, "
      "whether it is revoked and why, and each version with its creation "
      "time, age and number of files. Never prints key bytes.");
  AddClusterArgs(cmd, &args->cluster);
  CLI::Option* tenant =
      cmd->add_option("--tenant", args->tenant, "Only this tenant")
          ->type_name("T");
  cmd->add_flag("--json", args->json,
                "Print one JSON object: {\"tenants\": [{...}...]}");
  OnRun(cmd, run, [args, tenant] {
    std::unique_ptr<Cluster> cluster;
    Status s = OpenCluster(args->cluster, &cluster);
    if (!s.ok()) return Fail("key status", s);
    const std::vector<std::string> ids = tenant->count() > 0
                                             ? std::vector{args->tenant}
                                             : cluster->ListTenants();
    std::vector<TenantKeyStatus> statuses(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      s = cluster->GetKeyStatus(ids[i], &statuses[i]);
      if (!s.ok()) return Fail("key status", s);
    }
    const uint64_t now = NowUnixMicros();
    if (args->json) {
      std::string list;
      for (const TenantKeyStatus& k : statuses) {
        list += (list.empty() ? "" : ",") +
                JsonObject()
                    .AddString("tenant", k.tenant)
                    .AddString("master_key_id", k.master_key_id)
                    .AddBool("own_master_key", k.own_master_key)
                    .AddBool("master_key_available", k.master_key_available)
                    .AddNumber("current_version", k.current_version)
                    .AddBool("revoked", k.revoked)
                    .AddString("revoke_reason", k.revoke_reason)
                    .AddRaw("versions",
                            VersionsJson(k.versions, k.current_version, now))
                    .str();
      }
      std::printf(
          "%s\n",
          JsonObject().AddRaw("tenants", "[" + list + "]").str().c_str());
      return kExitOk;
    }
    bool first = true;
    for (const TenantKeyStatus& k : statuses) {
      if (!first) std::printf("\n");
      first = false;
      PrintField("tenant", k.tenant);
      PrintField("master key",
                 k.master_key_id + (k.own_master_key ? " (the tenant's own)"
                                                     : " (the cluster's)"));
      PrintField("key available",
                 k.master_key_available
                     ? "yes"
                     : "no: the tenant is offline until the key is back");
      PrintField("key version", std::to_string(k.current_version));
      PrintField("revoked",
                 k.revoked ? "yes: " + (k.revoke_reason.empty()
                                            ? std::string("no reason given")
                                            : EscapeForLine(k.revoke_reason))
                           : std::string("no"));
      PrintVersions(k.versions, k.current_version, now);
    }
    return kExitOk;
  });
}

}  // namespace

void RegisterKeyCommands(CLI::App* app, Runner* run) {
  CLI::App* key = app->add_subcommand(
      "key",
      "Manages master keys and tenant data keys. Rotates the cluster's "
      "master key or a tenant's data key, revokes and restores a tenant's "
      "key, and shows the key state of tenants.");
  key->require_subcommand(1);
  RegisterRotateMaster(key, run);
  RegisterRotate(key, run);
  RegisterRevoke(key, run);
  RegisterRestore(key, run);
  RegisterStatus(key, run);
}

}  // namespace coffer::cli
