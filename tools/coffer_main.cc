// Copyright (c) Coffer authors.
//
// `coffer`: administer a Coffer cluster and its keys, read and write tenant
// data, inspect the audit trail, and run the demo.

#include "tools/cli_common.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app(
      "Coffer: a multi-tenant encrypted key-value store. Every tenant's data "
      "is encrypted at rest with the tenant's own key, wrapped by a master "
      "key kept outside the data directory. Start with 'coffer demo'.",
      "coffer");
  coffer::cli::UseHelpFormat(&app);
  app.require_subcommand(1);
  app.footer(
      "Exit status: 0 on success, 1 when the operation failed, 2 on a usage "
      "error. --data, --key-file and --key-dir may be given as COFFER_DATA, "
      "COFFER_KEY_FILE and COFFER_KEY_DIR.");

  coffer::cli::Runner run;
  coffer::cli::RegisterClusterCommands(&app, &run);
  coffer::cli::RegisterDataCommands(&app, &run);
  coffer::cli::RegisterKeyCommands(&app, &run);
  coffer::cli::RegisterAuditCommands(&app, &run);
  coffer::cli::RegisterLdbCommand(&app, &run);
  coffer::cli::RegisterReplicationCommands(&app, &run);
  coffer::cli::RegisterDemoCommand(&app, &run);
  coffer::cli::RegisterWorkloadCommands(&app, &run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return coffer::cli::HandleParseError(app, e);
  }
  return run();
}
