// Copyright (c) Coffer authors.
//
// Administrative subcommands: keygen, init, tenant *, stats.

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "coffer/cluster.h"
#include "coffer/key_provider.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace coffer::cli {
namespace {

struct TenantArgs {
  ClusterArgs cluster;
  std::string tenant;
  uint64_t quota = 0;
  std::string master_key_id;
  uint64_t rpo_bound_ms = 0;
  bool yes = false;
  bool json = false;
};

std::string QuotaText(uint64_t quota) {
  return quota == 0 ? "none" : FormatBytes(quota);
}

void RegisterKeygen(CLI::App* app, Runner* run) {
  auto out = std::make_shared<std::string>();
  CLI::App* cmd = app->add_subcommand(
      "keygen",
      "Writes a new master key file. The key is 256 random bits, written to "
      "--out with mode 0600; an existing file is never overwritten. It wraps "
      "every tenant "
      "key of the clusters it protects: keep it outside every data directory "
      "and back it up, since losing it loses their data.");
  cmd->add_option("--out", *out, "Where to write the key")
      ->type_name("PATH")
      ->required();
  OnRun(cmd, run, [out] {
    Status s = GenerateKeyFile(*out);
    if (!s.ok()) return Fail("keygen", s);
    std::printf("wrote a new master key to %s (mode 0600)\n", out->c_str());
    return kExitOk;
  });
}

void RegisterInit(CLI::App* app, Runner* run) {
  struct Args {
    ClusterArgs cluster;
    ClusterOptions options;
  };
  auto args = std::make_shared<Args>();
  ClusterLimits& limits = args->options.limits;
  CLI::App* cmd = app->add_subcommand(
      "init",
      "Creates a new cluster. The cluster lives in --data (created if "
      "missing; it must not hold a cluster already) and is protected by the "
      "master key in --key-file, which must lie outside --data. Its id, region "
      "and geography are "
      "recorded for good; the limits bound how many tenants it holds and how "
      "many bytes each tenant and all of them together may store. With "
      "--replica it is a passive replica: it takes no client writes and "
      "receives its tenants from a primary of the same geography (see "
      "'coffer replica serve').");
  AddClusterArgs(cmd, &args->cluster);
  cmd->add_option("--cluster-id", args->options.cluster_id, "Cluster id")
      ->type_name("ID")
      ->required();
  cmd->add_option("--region", args->options.region, "Region, e.g. eu-west-1")
      ->type_name("R")
      ->required();
  cmd->add_option("--geography", args->options.geography, "Geography, e.g. eu")
      ->type_name("G")
      ->required();
  cmd->add_flag("--replica", args->options.replica,
                "Create a passive replica instead of a primary");
  cmd->add_option("--max-tenants", limits.max_tenants, "Most tenants allowed")
      ->transform(CountArg())
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--tenant-quota", limits.default_tenant_quota,
                  "Default quota of a tenant in bytes or KiB/MiB/GiB; 0 = none")
      ->transform(SizeArg())
      ->type_name("SIZE")
      ->default_str("1GiB");
  cmd->add_option("--cluster-quota", limits.cluster_quota,
                  "Total bytes of all tenants together; 0 = none")
      ->transform(SizeArg())
      ->type_name("SIZE")
      ->default_str("0");
  OnRun(cmd, run, [args] {
    std::shared_ptr<KeyProvider> keys;
    Status s = OpenKeyProvider(args->cluster, &keys);
    std::unique_ptr<Cluster> cluster;
    if (s.ok()) {
      s = Cluster::Create(args->cluster.data, args->options, ToolOpenOptions(),
                          std::move(keys), &cluster);
    }
    if (!s.ok()) return Fail("init", s);
    const ClusterInfo info = cluster->Describe();
    std::printf(
        "created %s %s in %s (region %s, geography %s; up to %u tenants, "
        "tenant quota %s, cluster quota %s)\n",
        info.role == "replica" ? "replica cluster" : "cluster",
        info.cluster_id.c_str(), info.data_dir.c_str(), info.region.c_str(),
        info.geography.c_str(), info.limits.max_tenants,
        QuotaText(info.limits.default_tenant_quota).c_str(),
        QuotaText(info.limits.cluster_quota).c_str());
    return kExitOk;
  });
}

CLI::App* AddTenantCommand(CLI::App* tenant, const std::string& name,
                           const std::string& description, TenantArgs* args) {
  CLI::App* cmd = tenant->add_subcommand(name, description);
  AddClusterArgs(cmd, &args->cluster);
  if (name != "list") {
    cmd->add_option("TENANT", args->tenant, "Tenant id")->required();
  }
  return cmd;
}

void RegisterTenantCreate(CLI::App* tenant, Runner* run) {
  auto args = std::make_shared<TenantArgs>();
  CLI::App* cmd = AddTenantCommand(
      tenant, "create",
      "Creates a tenant. TENANT gets a fresh random data key, wrapped by "
      "the cluster's master key, or with --master-key-id by a master key of "
      "its own (bring your own key: with --key-dir, the key DIR/ID.key; "
      "making that key unavailable takes only this tenant offline). Ids match "
      "[a-z0-9][a-z0-9_-]{0,62}. Without --quota the tenant gets the "
      "cluster's default tenant quota.",
      args.get());
  CLI::Option* quota =
      cmd->add_option("--quota", args->quota, "Quota override; 0 = none")
          ->transform(SizeArg())
          ->type_name("SIZE");
  CLI::Option* own_key =
      cmd->add_option("--master-key-id", args->master_key_id,
                      "The tenant's own master key, a key id of the key "
                      "provider; default: the cluster's master key")
          ->type_name("ID");
  CLI::Option* rpo =
      cmd->add_option("--rpo-bound", args->rpo_bound_ms,
                      "Bounded RPO in ms: once the replica has not "
                      "acknowledged a write of this tenant for longer, its "
                      "writes fail with LagExceeded (0 = no bound); default: "
                      "the embedding application's cluster-wide bound")
          ->transform(CountArg())
          ->type_name("MS");
  OnRun(cmd, run, [args, quota, own_key, rpo] {
    TenantOptions options;
    if (quota->count() > 0) options.quota = args->quota;
    if (rpo->count() > 0) options.rpo_bound_ms = args->rpo_bound_ms;
    if (own_key->count() > 0) options.master_key_id = args->master_key_id;
    std::unique_ptr<Cluster> cluster;
    Status s = OpenCluster(args->cluster, &cluster);
    if (s.ok()) s = cluster->CreateTenant(args->tenant, options);
    if (!s.ok()) return Fail("tenant create", s);
    std::printf(
        "created tenant %s (quota %s, master key %s)\n", args->tenant.c_str(),
        options.quota ? QuotaText(*options.quota).c_str() : "cluster default",
        options.master_key_id ? options.master_key_id->c_str()
                              : "of the cluster");
    return kExitOk;
  });
}

void RegisterTenantInfo(CLI::App* tenant, Runner* run) {
  auto args = std::make_shared<TenantArgs>();
  CLI::App* cmd = AddTenantCommand(
      tenant, "info",
      "Describes a tenant. Shows when TENANT was created, its effective quota "
      "and "
      "whether it overrides the cluster default, the bytes it uses (live "
      "table files plus unflushed memtable), its current data-key version and "
      "the id of the master key wrapping it.",
      args.get());
  cmd->add_flag("--json", args->json, "Print one JSON object");
  OnRun(cmd, run, [args] {
    std::unique_ptr<Cluster> cluster;
    TenantInfo info;
    Status s = OpenCluster(args->cluster, &cluster);
    if (s.ok()) s = cluster->DescribeTenant(args->tenant, &info);
    if (!s.ok()) return Fail("tenant info", s);
    if (args->json) {
      JsonObject json;
      json.AddString("id", info.id)
          .AddNumber("created_unix_micros", info.created_unix_micros)
          .AddNumber("quota", info.quota)
          .AddBool("quota_overridden", info.quota_overridden)
          .AddNumber("used_bytes", info.used_bytes)
          .AddNumber("key_version", info.key_version)
          .AddString("master_key_id", info.master_key_id)
          .AddBool("open", info.open);
      std::printf("%s\n", json.str().c_str());
      return kExitOk;
    }
    PrintField("tenant", info.id);
    PrintField("created", FormatUnixMicros(info.created_unix_micros));
    PrintField("quota", QuotaText(info.quota) + (info.quota_overridden
                                                     ? " (override)"
                                                     : " (cluster default)"));
    PrintField("used", FormatBytes(info.used_bytes));
    PrintField("key version", std::to_string(info.key_version));
    PrintField("master key id", info.master_key_id);
    return kExitOk;
  });
}

void RegisterTenantDrop(CLI::App* tenant, Runner* run) {
  auto args = std::make_shared<TenantArgs>();
  CLI::App* cmd = AddTenantCommand(
      tenant, "drop",
      "Destroys a tenant and its data. TENANT is crypto-shredded: its keys are "
      "destroyed first, then "
      "its files, so its data cannot be recovered even from a copy of the "
      "disk. This cannot be undone; it refuses to run without --yes.",
      args.get());
  cmd->add_flag("--yes", args->yes, "Really destroy the tenant and its data");
  OnRun(cmd, run, [args] {
    if (!args->yes) {
      return FailWith("tenant drop",
                      "refusing to drop tenant '" + args->tenant +
                          "' without --yes: it destroys the tenant's keys "
                          "and all its data for good");
    }
    std::unique_ptr<Cluster> cluster;
    DropReport report;
    Status s = OpenCluster(args->cluster, &cluster);
    if (s.ok()) s = cluster->DropTenant(args->tenant, &report);
    if (!s.ok()) return Fail("tenant drop", s);
    std::string versions;
    for (uint32_t v : report.key_versions_destroyed) {
      versions += (versions.empty() ? "" : ", ") + std::to_string(v);
    }
    std::printf(
        "dropped tenant %s: destroyed %zu key version(s) [%s], removed %llu "
        "files (%s) in %.1f ms\n",
        report.tenant.c_str(), report.key_versions_destroyed.size(),
        versions.c_str(), static_cast<unsigned long long>(report.files_removed),
        FormatBytes(report.bytes_removed).c_str(),
        static_cast<double>(report.micros) / 1000);
    return kExitOk;
  });
}

void RegisterTenantList(CLI::App* tenant, Runner* run) {
  auto args = std::make_shared<TenantArgs>();
  CLI::App* cmd = AddTenantCommand(
      tenant, "list",
      "Lists tenants. Prints the ids of all tenants of the cluster, sorted, "
      "one per line.",
      args.get());
  cmd->add_flag("--json", args->json,
                "Print one JSON object: {\"tenants\": [ids...]}");
  OnRun(cmd, run, [args] {
    std::unique_ptr<Cluster> cluster;
    Status s = OpenCluster(args->cluster, &cluster);
    if (!s.ok()) return Fail("tenant list", s);
    const std::vector<std::string> ids = cluster->ListTenants();
    if (args->json) {
      std::string list;
      for (const std::string& id : ids) {
        list += (list.empty() ? "" : ",") + JsonString(id);
      }
      std::printf(
          "%s\n",
          JsonObject().AddRaw("tenants", "[" + list + "]").str().c_str());
    } else {
      for (const std::string& id : ids) std::printf("%s\n", id.c_str());
    }
    return kExitOk;
  });
}

void RegisterTenantQuota(CLI::App* tenant, Runner* run) {
  auto args = std::make_shared<TenantArgs>();
  CLI::App* cmd = AddTenantCommand(
      tenant, "quota",
      "Sets a tenant's quota. The new quota of TENANT overrides the "
      "cluster's default (0 = no limit). Writes that "
      "would take the tenant over its quota fail with QuotaExceeded; deletes "
      "always succeed.",
      args.get());
  cmd->add_option("--quota", args->quota, "New quota; 0 = none")
      ->transform(SizeArg())
      ->type_name("SIZE")
      ->required();
  OnRun(cmd, run, [args] {
    std::unique_ptr<Cluster> cluster;
    Status s = OpenCluster(args->cluster, &cluster);
    if (s.ok()) s = cluster->SetTenantQuota(args->tenant, args->quota);
    if (!s.ok()) return Fail("tenant quota", s);
    std::printf("set quota of tenant %s to %s\n", args->tenant.c_str(),
                QuotaText(args->quota).c_str());
    return kExitOk;
  });
}

void RegisterStats(CLI::App* app, Runner* run) {
  auto args = std::make_shared<TenantArgs>();
  CLI::App* cmd = app->add_subcommand(
      "stats",
      "Shows the cluster's identity, limits and usage. That is its id, "
      "region, geography, role and epoch, its limits, and its usage: "
      "tenants, bytes stored, and the memory held by the shared block cache "
      "and memtables.");
  AddClusterArgs(cmd, &args->cluster);
  cmd->add_flag("--json", args->json, "Print one JSON object");
  OnRun(cmd, run, [args] {
    std::unique_ptr<Cluster> cluster;
    ClusterStats stats;
    Status s = OpenCluster(args->cluster, &cluster);
    if (s.ok()) s = cluster->GetStats(&stats);
    if (!s.ok()) return Fail("stats", s);
    const ClusterInfo info = cluster->Describe();
    if (args->json) {
      JsonObject limits;
      limits.AddNumber("max_tenants", info.limits.max_tenants)
          .AddNumber("default_tenant_quota", info.limits.default_tenant_quota)
          .AddNumber("cluster_quota", info.limits.cluster_quota);
      JsonObject cluster_json;
      cluster_json.AddString("cluster_id", info.cluster_id)
          .AddString("region", info.region)
          .AddString("geography", info.geography)
          .AddString("role", info.role)
          .AddNumber("epoch", info.epoch)
          .AddString("data_dir", info.data_dir)
          .AddRaw("limits", limits.str());
      JsonObject stats_json;
      stats_json.AddNumber("tenants", stats.tenants)
          .AddNumber("open_tenants", stats.open_tenants)
          .AddNumber("used_bytes", stats.used_bytes)
          .AddNumber("block_cache_usage", stats.block_cache_usage)
          .AddNumber("memtable_usage", stats.memtable_usage)
          .AddNumber("tenant_opens", stats.tenant_opens)
          .AddNumber("tenant_closes", stats.tenant_closes);
      std::printf("%s\n", JsonObject()
                              .AddRaw("cluster", cluster_json.str())
                              .AddRaw("stats", stats_json.str())
                              .str()
                              .c_str());
      return kExitOk;
    }
    PrintField("cluster", info.cluster_id);
    PrintField("region", info.region);
    PrintField("geography", info.geography);
    PrintField("role",
               info.role + " (epoch " + std::to_string(info.epoch) + ")");
    PrintField("data dir", info.data_dir);
    PrintField("max tenants", std::to_string(info.limits.max_tenants));
    PrintField("tenant quota", QuotaText(info.limits.default_tenant_quota));
    PrintField("cluster quota", QuotaText(info.limits.cluster_quota));
    PrintField("tenants", std::to_string(stats.tenants) + " (" +
                              std::to_string(stats.open_tenants) + " open)");
    PrintField("used", FormatBytes(stats.used_bytes));
    PrintField("block cache", FormatBytes(stats.block_cache_usage));
    PrintField("memtables", FormatBytes(stats.memtable_usage));
    return kExitOk;
  });
}

}  // namespace

void RegisterClusterCommands(CLI::App* app, Runner* run) {
  RegisterKeygen(app, run);
  RegisterInit(app, run);
  CLI::App* tenant = app->add_subcommand(
      "tenant",
      "Manages tenants. Each tenant is its own encrypted database with its "
      "own data key, isolated from every other tenant.");
  tenant->require_subcommand(1);
  RegisterTenantCreate(tenant, run);
  RegisterTenantInfo(tenant, run);
  RegisterTenantDrop(tenant, run);
  RegisterTenantList(tenant, run);
  RegisterTenantQuota(tenant, run);
  RegisterStats(app, run);
}

}  // namespace coffer::cli
