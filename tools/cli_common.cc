// Copyright (c) Coffer authors.

#include "tools/cli_common.h"

#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <sstream>
#include <utility>

namespace coffer::cli {
namespace {

// Errors are one line, whatever the message holds.
std::string OneLine(std::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

// The subcommands given on the command line, e.g. "tenant create", and the
// innermost of them in *innermost.
std::string CommandPath(const CLI::App& app, const CLI::App** innermost) {
  std::string path;
  const CLI::App* current = &app;
  for (;;) {
    const std::vector<CLI::App*> selected = current->get_subcommands();
    if (selected.empty()) break;
    current = selected.front();
    if (!path.empty()) path += ' ';
    path += current->get_name();
  }
  *innermost = current;
  return path;
}

std::string OsUserName() {
  const passwd* pw = getpwuid(geteuid());
  if (pw != nullptr && pw->pw_name != nullptr) return pw->pw_name;
  return "uid-" + std::to_string(geteuid());
}

// Length of the well-formed UTF-8 sequence that starts `text`, or 0.
size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length;
  uint32_t code_point;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    code_point = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    code_point = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    code_point = lead & 0x07;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i) & 0x3F);
  }
  // Shortest encoding of each length; longer ones are invalid (overlong).
  static constexpr uint32_t kMinCodePoint[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code_point < kMinCodePoint[length] || code_point > 0x10FFFF ||
      (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return 0;
  }
  return length;
}

// Greedy word wrap at 79 columns.
std::string Wrap(std::string_view text) {
  constexpr size_t kHelpWidth = 79;
  std::string out;
  size_t line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t space = text.find(' ', pos);
    const std::string_view word = text.substr(
        pos,
        space == std::string_view::npos ? std::string_view::npos : space - pos);
    pos = space == std::string_view::npos ? text.size() : space + 1;
    if (word.empty()) continue;
    if (line > 0 && line + 1 + word.size() > kHelpWidth) {
      out += '\n';
      line = 0;
    } else if (line > 0) {
      out += ' ';
      ++line;
    }
    out += word;
    line += word.size();
  }
  return out;
}

// Lists subcommands by the first sentence of their description, and wraps
// descriptions and footers.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_subcommand(const CLI::App* sub) const override {
    const std::string& description = sub->get_description();
    std::ostringstream out;
    CLI::detail::format_help(out, sub->get_display_name(true),
                             description.substr(0, description.find(". ")),
                             column_width_);
    return out.str();
  }
  std::string make_description(const CLI::App* app) const override {
    const std::string& description = app->get_description();
    return description.empty() ? "" : Wrap(description) + "\n\n";
  }
  std::string make_footer(const CLI::App* app) const override {
    const std::string& footer = app->get_footer();
    return footer.empty() ? "" : Wrap(footer) + "\n";
  }
};

void AppendEscaped(std::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < text.size()) {
    const uint8_t c = static_cast<uint8_t>(text[i]);
    if (c >= 0x80) {
      const size_t length = Utf8SequenceLength(text.substr(i));
      if (length > 0) {
        out->append(text.substr(i, length));
        i += length;
        continue;
      }
    }
    ++i;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c >= 0x7F) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
}

}  // namespace

void UseHelpFormat(CLI::App* app) {
  app->formatter(std::make_shared<HelpFormatter>());
}

void OnRun(CLI::App* cmd, Runner* slot, Runner run) {
  cmd->callback([slot, run = std::move(run)] { *slot = run; });
}

int HandleParseError(const CLI::App& app, const CLI::ParseError& e) {
  if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
    return app.exit(e);
  }
  const CLI::App* innermost = nullptr;
  const std::string path = CommandPath(app, &innermost);
  std::string message = e.what();
  // CLI11 reports "coffer frobnicate" as a missing subcommand.
  const std::vector<std::string> extra = innermost->remaining();
  if (message == CLI::RequiredError::Subcommand(1).what() && !extra.empty()) {
    message = "unknown subcommand '" + extra.front() + "'";
  }
  // --key-file is required only without --key-dir (see AddClusterArgs).
  if (message == CLI::RequiredError("--key-file").what()) {
    message = "--key-file or --key-dir is required";
  }
  const std::string where = path.empty() ? "" : path + ": ";
  const std::string help =
      path.empty() ? "coffer --help" : "coffer " + path + " --help";
  std::cerr << "coffer: " << where << OneLine(message) << " (see '" << help
            << "')" << std::endl;
  return kExitUsage;
}

void AddClusterArgs(CLI::App* cmd, ClusterArgs* args) {
  cmd->add_option("--data", args->data, "Cluster data directory")
      ->envname("COFFER_DATA")
      ->type_name("DIR")
      ->required();
  CLI::Option* key_file =
      cmd->add_option("--key-file", args->key_file,
                      "Master key file (mode 0600, from 'coffer keygen'); "
                      "required unless --key-dir is given")
          ->envname("COFFER_KEY_FILE")
          ->type_name("PATH")
          ->required();
  // Option callbacks run before requirements are checked: a --key-dir
  // (given or from the environment) lifts the requirement of --key-file.
  CLI::Option* key_dir =
      cmd->add_option("--key-dir", args->key_dir,
                      "Directory of master keys instead of --key-file: "
                      "DIR/<id>.key, 32 bytes each, mode 0600")
          ->envname("COFFER_KEY_DIR")
          ->type_name("DIR")
          ->excludes(key_file)
          ->each([key_file](const std::string&) { key_file->required(false); });
  args->default_key_id = "master";
  cmd->add_option("--default-key-id", args->default_key_id,
                  "With --key-dir: id of the cluster's master key")
      ->type_name("ID")
      ->needs(key_dir)
      ->capture_default_str();
}

Status OpenKeyProvider(const ClusterArgs& args,
                       std::shared_ptr<KeyProvider>* keys) {
  if (!args.key_dir.empty()) {
    return NewDirectoryKeyProvider(args.key_dir, args.default_key_id, keys);
  }
  return NewFileKeyProvider(args.key_file, keys);
}

OpenOptions ToolOpenOptions() {
  OpenOptions options;
  options.principal = OsUserName();
  return options;
}

Status OpenCluster(const ClusterArgs& args, std::unique_ptr<Cluster>* cluster) {
  std::shared_ptr<KeyProvider> keys;
  Status s = OpenKeyProvider(args, &keys);
  if (!s.ok()) return s;
  return Cluster::Open(args.data, ToolOpenOptions(), std::move(keys), cluster);
}

void AddTlsArgs(CLI::App* cmd, TlsFiles* files, bool required) {
  CLI::Option* cert =
      cmd->add_option("--tls-cert", files->cert_file,
                      "PEM certificate of this cluster (common name = its "
                      "cluster id)")
          ->check(CLI::ExistingFile);
  CLI::Option* key =
      cmd->add_option("--tls-key", files->key_file,
                      "PEM private key of that certificate")
          ->check(CLI::ExistingFile);
  CLI::Option* ca =
      cmd->add_option("--tls-ca", files->ca_file,
                      "PEM certificate of the CA that signs the peer's "
                      "certificate")
          ->check(CLI::ExistingFile);
  if (required) {
    cert->required();
    key->required();
    ca->required();
  } else {
    cert->needs(key)->needs(ca);
    key->needs(cert)->needs(ca);
    ca->needs(cert)->needs(key);
  }
}

CLI::Validator SizeArg() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        uint64_t bytes = 0;
        Status s = ParseSize(text, &bytes);
        if (!s.ok()) return s.message();
        text = std::to_string(bytes);
        return {};
      },
      "");
}

CLI::Validator CountArg() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        uint64_t value = 0;
        const char* end = text.data() + text.size();
        auto [ptr, ec] = std::from_chars(text.data(), end, value);
        if (text.empty() || ec != std::errc() || ptr != end) {
          return "'" + text + "' is not a non-negative decimal number";
        }
        text = std::to_string(value);
        return {};
      },
      "");
}

int Fail(std::string_view command, const Status& status) {
  return FailWith(command, status.ToString());
}

int FailWith(std::string_view command, std::string_view message) {
  std::cerr << "coffer: " << command << ": " << OneLine(message) << std::endl;
  return kExitFailed;
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  AppendEscaped(text, &out);
  out.push_back('"');
  return out;
}

std::string EscapeForLine(std::string_view text) {
  std::string out;
  AppendEscaped(text, &out);
  return out;
}

void JsonObject::AddName(std::string_view name) {
  if (!body_.empty()) body_ += ",";
  body_ += JsonString(name);
  body_ += ":";
}

JsonObject& JsonObject::AddString(std::string_view name,
                                  std::string_view value) {
  AddName(name);
  body_ += JsonString(value);
  return *this;
}

JsonObject& JsonObject::AddNumber(std::string_view name, uint64_t value) {
  AddName(name);
  body_ += std::to_string(value);
  return *this;
}

JsonObject& JsonObject::AddBool(std::string_view name, bool value) {
  AddName(name);
  body_ += value ? "true" : "false";
  return *this;
}

JsonObject& JsonObject::AddRaw(std::string_view name, std::string_view json) {
  AddName(name);
  body_ += json;
  return *this;
}

void PrintField(std::string_view label, std::string_view value) {
  std::printf("%-15s %.*s\n", std::string(label).append(":").c_str(),
              static_cast<int>(value.size()), value.data());
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", value, kUnits[unit]);
  return buf;
}

std::string FormatUnixMicros(uint64_t micros) {
  const time_t seconds = static_cast<time_t>(micros / 1000000);
  tm utc{};
  if (gmtime_r(&seconds, &utc) == nullptr) return std::to_string(micros);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

std::string FormatUnixMicrosExact(uint64_t micros) {
  std::string text = FormatUnixMicros(micros);
  if (text.empty() || text.back() != 'Z') return text;
  char fraction[16];
  std::snprintf(fraction, sizeof(fraction), ".%06llu",
                static_cast<unsigned long long>(micros % 1000000));
  text.insert(text.size() - 1, fraction);
  return text;
}

std::string FormatAge(uint64_t micros) {
  const uint64_t s = micros / 1000000;
  const auto two = [](uint64_t a, const char* ua, uint64_t b, const char* ub) {
    std::string out = std::to_string(a) + ua;
    if (b != 0) out += " " + std::to_string(b) + ub;
    return out;
  };
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return two(s / 60, "m", s % 60, "s");
  if (s < 86400) return two(s / 3600, "h", s / 60 % 60, "m");
  return two(s / 86400, "d", s / 3600 % 24, "h");
}

uint64_t NowUnixMicros() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace coffer::cli
