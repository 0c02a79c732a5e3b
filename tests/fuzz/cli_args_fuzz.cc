// Copyright (c) Coffer authors.
//
// Fuzz target: the `coffer` command line as the tool parses it, with the
// subcommands that take sizes, counts and times registered as in
// tools/coffer_main.cc (cluster, data, audit, workload: SIZE arguments such
// as "64MiB" through SizeArg/ParseSize, counts through CountArg, --since
// times and ages, tenant prefixes), without running the command; and
// ParseSize on its own. Input: the arguments, one per line.
// Invariants: parsing throws nothing but CLI11's parse errors; a size that
// parses renders as a byte count that parses to the same value, and SizeArg
// rewrites it to that byte count.

#include <cstdlib>
#include <string>
#include <vector>

#include "coffer/cluster.h"
#include "tests/fuzz/fuzz_common.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace {

void CheckSize(std::string text) {
  uint64_t bytes = 0;
  if (!coffer::ParseSize(text, &bytes).ok()) return;
  uint64_t again = 0;
  FUZZ_CHECK(coffer::ParseSize(std::to_string(bytes), &again).ok());
  FUZZ_CHECK(again == bytes);
  FUZZ_CHECK(coffer::cli::SizeArg()(text).empty());
  FUZZ_CHECK(text == std::to_string(bytes));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool env_cleared = [] {
    // Options also read these; the input alone must decide the outcome.
    for (const char* name : {"COFFER_DATA", "COFFER_KEY_FILE", "COFFER_KEY_DIR"})
      ::unsetenv(name);
    return true;
  }();
  (void)env_cleared;
  const std::string input(reinterpret_cast<const char*>(data), size);
  CheckSize(input);

  std::vector<std::string> args = {"coffer"};
  size_t pos = 0;
  while (pos <= input.size() && args.size() < 64) {
    size_t nl = input.find('\n', pos);
    if (nl == std::string::npos) nl = input.size();
    args.push_back(input.substr(pos, nl - pos));
    CheckSize(args.back());
    pos = nl + 1;
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());

  CLI::App app("coffer", "coffer");
  coffer::cli::UseHelpFormat(&app);
  app.require_subcommand(1);
  coffer::cli::Runner run;
  coffer::cli::RegisterClusterCommands(&app, &run);
  coffer::cli::RegisterDataCommands(&app, &run);
  coffer::cli::RegisterAuditCommands(&app, &run);
  coffer::cli::RegisterWorkloadCommands(&app, &run);
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
    coffer::fuzz::Note("parse", coffer::Status::OK());
  } catch (const CLI::ParseError& e) {
    coffer::fuzz::Note("parse", coffer::Status::InvalidArgument(e.what()));
  }
  return 0;
}
