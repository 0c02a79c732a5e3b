// Copyright (c) Coffer authors.
//
// The subcommands of the `coffer` tool. Each Register function adds its
// subcommands to `app`; the one given on the command line stores its action
// in *run (see OnRun in cli_common.h).

#ifndef COFFER_TOOLS_COMMANDS_H_
#define COFFER_TOOLS_COMMANDS_H_

#include "tools/cli_common.h"

namespace coffer::cli {

// keygen, init, tenant create|info|drop|list|quota, stats.
void RegisterClusterCommands(CLI::App* app, Runner* run);
// put, get, delete, scan.
void RegisterDataCommands(CLI::App* app, Runner* run);
// key rotate-master|rotate|revoke|restore|status.
void RegisterKeyCommands(CLI::App* app, Runner* run);
// audit show|verify.
void RegisterAuditCommands(CLI::App* app, Runner* run);
// ldb: RocksDB's ldb on a tenant's encrypted files.
void RegisterLdbCommand(CLI::App* app, Runner* run);
// replica serve, replication status, metrics.
void RegisterReplicationCommands(CLI::App* app, Runner* run);
// demo.
void RegisterDemoCommand(CLI::App* app, Runner* run);
// workload, verify: a verifiable test workload and its check.
void RegisterWorkloadCommands(CLI::App* app, Runner* run);

}  // namespace coffer::cli

#endif  // COFFER_TOOLS_COMMANDS_H_
