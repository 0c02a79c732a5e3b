// Copyright (c) Coffer authors.
//
// Audit subcommands: audit show, audit verify.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/audit.h"
#include "coffer/cluster.h"
#include "tools/cli_common.h"
#include "tools/commands.h"

namespace coffer::cli {
namespace {

constexpr uint64_t kMicrosPerSecond = 1000000;

bool ParseDigits(std::string_view text, uint64_t* value) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  return !text.empty() && ec == std::errc() && ptr == end;
}

// "2026-11-29T10:00:00Z", optionally with up to six fractional digits.
bool ParseIsoUtc(std::string_view text, uint64_t* micros) {
  constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd";
  if (text.size() < kShape.size() + 1 || text.back() != 'Z') return false;
  for (size_t i = 0; i < kShape.size(); ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(text[i])) != 0;
    if (kShape[i] == 'd' ? !digit : text[i] != kShape[i]) return false;
  }
  const auto field = [&](size_t pos, size_t len) {
    uint64_t v = 0;
    ParseDigits(text.substr(pos, len), &v);
    return static_cast<int>(v);
  };
  tm t{};
  t.tm_year = field(0, 4) - 1900;
  t.tm_mon = field(5, 2) - 1;
  t.tm_mday = field(8, 2);
  t.tm_hour = field(11, 2);
  t.tm_min = field(14, 2);
  t.tm_sec = field(17, 2);
  if (t.tm_mon > 11 || t.tm_mday < 1 || t.tm_mday > 31 || t.tm_hour > 23 ||
      t.tm_min > 59 || t.tm_sec > 59) {
    return false;
  }
  uint64_t fraction = 0;
  std::string_view rest =
      text.substr(kShape.size(), text.size() - 1 - kShape.size());
  if (!rest.empty()) {
    if (rest[0] != '.' || rest.size() < 2 || rest.size() > 7 ||
        !ParseDigits(rest.substr(1), &fraction)) {
      return false;
    }
    for (size_t i = rest.size() - 1; i < 6; ++i) fraction *= 10;
  }
  const int day = t.tm_mday;
  const time_t seconds = timegm(&t);
  if (seconds < 0 || t.tm_mday != day) return false;  // e.g. February 30
  *micros = static_cast<uint64_t>(seconds) * kMicrosPerSecond + fraction;
  return true;
}

// "10m", "2h", "3d" (also "30s", "1w"): that long before `now`.
bool ParseAge(std::string_view text, uint64_t now, uint64_t* micros) {
  static constexpr std::string_view kUnits = "smhdw";
  static constexpr uint64_t kSeconds[] = {1, 60, 3600, 86400, 7 * 86400};
  const size_t u = text.empty() ? kUnits.npos : kUnits.find(text.back());
  if (u == kUnits.npos) return false;
  const uint64_t unit = kSeconds[u];
  uint64_t count = 0;
  if (!ParseDigits(text.substr(0, text.size() - 1), &count)) return false;
  const uint64_t max = UINT64_MAX / kMicrosPerSecond / unit;
  const uint64_t age =
      std::min(count, max) * unit * kMicrosPerSecond;  // saturates
  *micros = now > age ? now - age : 0;
  return true;
}

// --since T: rewritten to microseconds since the Unix epoch.
CLI::Validator SinceArg() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        uint64_t micros = 0;
        uint64_t seconds = 0;
        if (ParseDigits(text, &seconds)) {
          if (seconds > UINT64_MAX / kMicrosPerSecond) {
            return "'" + text + "' is too far in the future";
          }
          micros = seconds * kMicrosPerSecond;
        } else if (!ParseIsoUtc(text, &micros) &&
                   !ParseAge(text, NowUnixMicros(), &micros)) {
          return "'" + text +
                 "' is not a time: give ISO-8601 UTC (2026-11-29T10:00:00Z), "
                 "unix seconds, or an age (10m, 2h, 3d)";
        }
        text = std::to_string(micros);
        return {};
      },
      "");
}

struct AuditArgs {
  ClusterArgs cluster;
  uint64_t since = 0;
  bool json = false;
};

void RegisterShow(CLI::App* audit, Runner* run) {
  auto args = std::make_shared<AuditArgs>();
  CLI::App* cmd = audit->add_subcommand(
      "show",
      "Prints the audit trail. One line per entry, oldest first: sequence "
      "number, time (ISO-8601 UTC with microseconds), actor, action, target, "
      "outcome and detail. Entries are shown as stored; 'coffer audit "
      "verify' checks that none was altered.");
  AddClusterArgs(cmd, &args->cluster);
  cmd->add_option("--since", args->since,
                  "Only entries at or after T: ISO-8601 UTC "
                  "(2026-11-29T10:00:00Z), unix seconds, or an age such as "
                  "10m, 2h, 3d")
      ->transform(SinceArg())
      ->type_name("T");
  cmd->add_flag("--json", args->json,
                "Print a JSON array of {\"seq\", \"time\", \"unix_micros\", "
                "\"actor\", \"action\", \"target\", \"outcome\", \"detail\"}");
  OnRun(cmd, run, [args] {
    std::unique_ptr<Cluster> cluster;
    std::vector<AuditEntry> entries;
    Status s = OpenCluster(args->cluster, &cluster);
    if (s.ok()) s = cluster->ReadAudit(args->since, &entries);
    if (!s.ok()) return Fail("audit show", s);
    if (args->json) {
      std::string list;
      for (const AuditEntry& e : entries) {
        list += (list.empty() ? "" : ",") +
                JsonObject()
                    .AddNumber("seq", e.seq)
                    .AddString("time", FormatUnixMicrosExact(e.unix_micros))
                    .AddNumber("unix_micros", e.unix_micros)
                    .AddString("actor", e.actor)
                    .AddString("action", e.action)
                    .AddString("target", e.target)
                    .AddString("outcome", e.outcome)
                    .AddString("detail", e.detail)
                    .str();
      }
      std::printf("[%s]\n", list.c_str());
      return kExitOk;
    }
    // Columns as wide as their widest entry.
    std::vector<std::vector<std::string>> rows;
    std::vector<size_t> width(6, 0);
    for (const AuditEntry& e : entries) {
      rows.push_back({std::to_string(e.seq),
                      FormatUnixMicrosExact(e.unix_micros),
                      EscapeForLine(e.actor), EscapeForLine(e.action),
                      EscapeForLine(e.target), EscapeForLine(e.outcome),
                      EscapeForLine(e.detail)});
      for (size_t i = 0; i < width.size(); ++i) {
        width[i] = std::max(width[i], rows.back()[i].size());
      }
    }
    for (const auto& row : rows) {
      std::string line(width[0] - row[0].size(), ' ');
      line += row[0];
      for (size_t i = 1; i < width.size(); ++i) {
        line += "  " + row[i] + std::string(width[i] - row[i].size(), ' ');
      }
      line += "  " + row[6];
      while (!line.empty() && line.back() == ' ') line.pop_back();
      std::printf("%s\n", line.c_str());
    }
    return kExitOk;
  });
}

void RegisterVerify(CLI::App* audit, Runner* run) {
  auto args = std::make_shared<AuditArgs>();
  CLI::App* cmd = audit->add_subcommand(
      "verify",
      "Checks that the audit trail is intact. Verifies the HMAC chain of "
      "every entry and that the head verified last time is still there, so "
      "an edited, inserted, removed or reordered entry, or a truncated log, "
      "is found; then anchors the new head. Exits 1 with Corruption naming "
      "the first bad entry.");
  AddClusterArgs(cmd, &args->cluster);
  cmd->add_flag("--json", args->json, "Print one JSON object");
  OnRun(cmd, run, [args] {
    std::unique_ptr<Cluster> cluster;
    AuditVerification v;
    Status s = OpenCluster(args->cluster, &cluster);
    if (s.ok()) s = cluster->VerifyAudit(&v);
    if (!s.ok()) return Fail("audit verify", s);
    if (args->json) {
      std::printf("%s\n", JsonObject()
                              .AddBool("verified", true)
                              .AddNumber("entries", v.entries)
                              .AddNumber("head_seq", v.head_seq)
                              .AddNumber("anchored_seq", v.anchored_seq)
                              .AddNumber("unauthenticated", v.unauthenticated)
                              .str()
                              .c_str());
      return kExitOk;
    }
    std::printf(
        "audit log verified: %llu entries, head seq %llu (anchored at %llu), "
        "%llu unauthenticated\n",
        static_cast<unsigned long long>(v.entries),
        static_cast<unsigned long long>(v.head_seq),
        static_cast<unsigned long long>(v.anchored_seq),
        static_cast<unsigned long long>(v.unauthenticated));
    return kExitOk;
  });
}

}  // namespace

void RegisterAuditCommands(CLI::App* app, Runner* run) {
  CLI::App* audit = app->add_subcommand(
      "audit",
      "Shows and verifies the audit trail. Every administrative and security "
      "event (tenant create and drop, quota changes, key rotation, "
      "revocation, failed key checks) is recorded in DATA/AUDIT with its "
      "time, actor and outcome, chained with HMAC-SHA256.");
  audit->require_subcommand(1);
  RegisterShow(audit, run);
  RegisterVerify(audit, run);
}

}  // namespace coffer::cli
