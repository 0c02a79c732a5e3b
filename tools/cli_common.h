// Copyright (c) Coffer authors.
//
// Helpers shared by the `coffer` subcommands: the --data and master-key
// options, opening a cluster, SIZE and number arguments, one-line error reports
// and JSON output.
//
// Exit codes of every command: 0 success, 1 the operation failed, 2 usage
// error (reported by CLI11 before any command runs).

#ifndef COFFER_TOOLS_CLI_COMMON_H_
#define COFFER_TOOLS_CLI_COMMON_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "coffer/cluster.h"
#include "coffer/key_provider.h"
#include "coffer/replication.h"
#include "coffer/status.h"

namespace coffer::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// The action of the subcommand given on the command line; set while parsing,
// run after parsing succeeded.
using Runner = std::function<int()>;

// Help layout for `app` and the subcommands added to it afterwards: lists
// show each subcommand's first sentence; descriptions are wrapped.
void UseHelpFormat(CLI::App* app);

// Makes `cmd` store `run` in *slot when it is the subcommand that was given.
void OnRun(CLI::App* cmd, Runner* slot, Runner run);

// Reports a parse error (or prints the requested help) and returns the exit
// code: 0 for --help, kExitUsage otherwise.
int HandleParseError(const CLI::App& app, const CLI::ParseError& e);

struct ClusterArgs {
  std::string data;
  std::string key_file;        // one master key file, or
  std::string key_dir;         // a directory of DIR/<id>.key master keys
  std::string default_key_id;  // with key_dir: the cluster's key id
};

// Adds the required --data option and the master key: --key-file, or
// --key-dir with --default-key-id (or COFFER_DATA, COFFER_KEY_FILE and
// COFFER_KEY_DIR from the environment). Exactly one of --key-file and
// --key-dir must be given; otherwise parsing fails with a usage error.
void AddClusterArgs(CLI::App* cmd, ClusterArgs* args);

// The key provider args name: NewFileKeyProvider(key_file), or
// NewDirectoryKeyProvider(key_dir, default_key_id).
Status OpenKeyProvider(const ClusterArgs& args,
                       std::shared_ptr<KeyProvider>* keys);

// Run-time options for a cluster opened by the tool; principal is the OS
// user.
OpenOptions ToolOpenOptions();

// Opens the cluster in args.data with the keys of OpenKeyProvider(args).
Status OpenCluster(const ClusterArgs& args, std::unique_ptr<Cluster>* cluster);

// Adds --tls-cert, --tls-key and --tls-ca (PEM files; the certificate's
// common name is the cluster id). With `required`, all three must be given;
// otherwise they are required together once one is.
void AddTlsArgs(CLI::App* cmd, TlsFiles* files, bool required);

// Checks a SIZE argument with coffer::ParseSize and rewrites it as a byte
// count, so it can be bound to a uint64_t. Bad input is a usage error.
CLI::Validator SizeArg();
// Accepts only decimal digits (CLI11 alone takes "-1" and octal "010").
CLI::Validator CountArg();

// Prints "coffer: <command>: <status>" as one line on stderr; returns 1.
int Fail(std::string_view command, const Status& status);
// Prints "coffer: <command>: <message>" as one line on stderr; returns 1.
int FailWith(std::string_view command, std::string_view message);

// `text` as a JSON string literal, quotes included. Control characters,
// quote and backslash are escaped; bytes that are not well-formed UTF-8 are
// written as \u00XX (the code point of the byte value).
std::string JsonString(std::string_view text);
// `text` escaped as inside JsonString, without quotes: printable on one line.
std::string EscapeForLine(std::string_view text);

// Builds one JSON object, field by field.
class JsonObject {
 public:
  JsonObject& AddString(std::string_view name, std::string_view value);
  JsonObject& AddNumber(std::string_view name, uint64_t value);
  JsonObject& AddBool(std::string_view name, bool value);
  // `json` must already be valid JSON.
  JsonObject& AddRaw(std::string_view name, std::string_view json);
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void AddName(std::string_view name);
  std::string body_;
};

// Prints "label:" padded to 16 columns, then value and a newline.
void PrintField(std::string_view label, std::string_view value);

// "65536 (64.0 KiB)"-style rendering of a byte count.
std::string FormatBytes(uint64_t bytes);
// "2024-05-01T12:00:00Z" for a time in microseconds since the Unix epoch.
std::string FormatUnixMicros(uint64_t micros);
// "2024-05-01T12:00:00.123456Z": the same with the microseconds.
std::string FormatUnixMicrosExact(uint64_t micros);
// "45s", "12m", "3h 5m", "2d 4h": a duration in microseconds, roughly.
std::string FormatAge(uint64_t micros);
// Microseconds since the Unix epoch, now.
uint64_t NowUnixMicros();

}  // namespace coffer::cli

#endif  // COFFER_TOOLS_CLI_COMMON_H_
