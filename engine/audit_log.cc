// Copyright (c) Coffer authors.

#include "engine/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "engine/aead.h"
#include "engine/clock.h"
#include "engine/record_file.h"

namespace coffer {

namespace {

constexpr char kAuditInfo[] = "coffer audit v1";
constexpr char kMacField[] = ",\"mac\":\"";
constexpr char kUnauthenticated[] = "[unauthenticated] ";

std::string Hex(const uint8_t* p, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
  return out;
}

bool Unhex(std::string_view hex, uint8_t* out, size_t n) {
  if (hex.size() != 2 * n) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < n; ++i) {
    int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::string Body(const AuditEntry& e) {
  return "{\"seq\":" + std::to_string(e.seq) +
         ",\"time\":" + std::to_string(e.unix_micros) + ",\"actor\":\"" +
         JsonEscape(e.actor) + "\",\"action\":\"" + JsonEscape(e.action) +
         "\",\"target\":\"" + JsonEscape(e.target) + "\",\"outcome\":\"" +
         JsonEscape(e.outcome) + "\",\"detail\":\"" + JsonEscape(e.detail) +
         "\"";
}

// Parses the fields of a line written by Body(); false if malformed.
class LineParser {
 public:
  explicit LineParser(std::string_view s) : s_(s) {}

  bool Parse(AuditEntry* e) {
    return Literal("{") && Key("seq") && Number(&e->seq) && Literal(",") &&
           Key("time") && Number(&e->unix_micros) && Literal(",") &&
           Key("actor") && String(&e->actor) && Literal(",") && Key("action") &&
           String(&e->action) && Literal(",") && Key("target") &&
           String(&e->target) && Literal(",") && Key("outcome") &&
           String(&e->outcome) && Literal(",") && Key("detail") &&
           String(&e->detail) && pos_ == s_.size();
  }

 private:
  bool Literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }
  bool Key(std::string_view name) {
    return Literal("\"") && Literal(name) && Literal("\":");
  }
  bool Number(uint64_t* v) {
    size_t start = pos_;
    *v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9' &&
           pos_ - start < 20) {
      *v = *v * 10 + static_cast<uint64_t>(s_[pos_++] - '0');
    }
    return pos_ > start;
  }
  bool String(std::string* out) {
    if (!Literal("\"")) return false;
    out->clear();
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (c != '\\') {
        *out += c;
        continue;
      }
      if (pos_ >= s_.size()) return false;
      char esc = s_[pos_++];
      switch (esc) {
        case '"':
          *out += '"';
          break;
        case '\\':
          *out += '\\';
          break;
        case 'n':
          *out += '\n';
          break;
        case 't':
          *out += '\t';
          break;
        case 'u': {
          uint8_t b[2];
          if (!Unhex(s_.substr(pos_, 4), b, 2) || b[0] != 0) return false;
          *out += static_cast<char>(b[1]);
          pos_ += 4;
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// Splits a line into its entry and mac.
bool ParseLine(std::string_view line, AuditEntry* e, std::string_view* body,
               uint8_t mac[32]) {
  size_t at = line.rfind(kMacField);
  if (at == std::string_view::npos) return false;
  *body = line.substr(0, at);
  std::string_view rest = line.substr(at + sizeof(kMacField) - 1);
  if (rest.size() != 64 + 2 || rest.substr(64) != "\"}") return false;
  if (!Unhex(rest.substr(0, 64), mac, 32)) return false;
  return LineParser(*body).Parse(e);
}

Status ReadWhole(const std::string& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path);
    return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  }
  out->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return Status::IOError("cannot read " + path + ": " +
                             std::strerror(errno));
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return Status::OK();
}

}  // namespace

std::string JsonEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u >= 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

Status AuditLog::Mac(const uint8_t prev[32], const std::string& body,
                     uint8_t out[32]) const {
  std::string input(reinterpret_cast<const char*>(prev), 32);
  input += body;
  return HmacSha256(audit_key_.view(), input, out);
}

Status AuditLog::Open(const std::string& dir, const SecretKey& catalog_key,
                      std::unique_ptr<AuditLog>* result) {
  std::unique_ptr<AuditLog> log(new AuditLog());
  log->dir_ = dir;
  Status s = Hkdf(catalog_key.view(), "", kAuditInfo,
                  log->audit_key_.mutable_data(), kKeyBytes);
  if (!s.ok()) return s;
  const std::string path = dir + "/" + kAuditFile;
  std::string bytes;
  s = ReadWhole(path, &bytes);
  if (!s.ok() && !s.IsNotFound()) return s;
  size_t torn = 0;
  bool damaged = false;
  if (!bytes.empty() && bytes.back() != '\n') {
    size_t keep = bytes.rfind('\n');
    keep = keep == std::string::npos ? 0 : keep + 1;
    torn = bytes.size() - keep;
    bytes.resize(keep);
    if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0) {
      return Status::IOError("cannot drop the torn tail of " + path + ": " +
                             std::strerror(errno));
    }
  }
  if (!bytes.empty()) {
    // The last line's start; a log of one empty line has no line before.
    size_t start = bytes.size() < 2 ? std::string::npos
                                    : bytes.rfind('\n', bytes.size() - 2);
    start = start == std::string::npos ? 0 : start + 1;
    std::string_view line(bytes.data() + start, bytes.size() - 1 - start);
    AuditEntry e;
    std::string_view body;
    if (ParseLine(line, &e, &body, log->last_mac_)) {
      log->last_seq_ = e.seq;
    } else {
      // Damaged: the cluster still opens (so the damage can be inspected
      // and verified), and the chain continues after the entries' count
      // from a zero mac; VerifyAudit reports the damaged entry.
      log->last_seq_ =
          static_cast<uint64_t>(std::count(bytes.begin(), bytes.end(), '\n'));
      std::memset(log->last_mac_, 0, sizeof(log->last_mac_));
      damaged = true;
    }
  }
  log->fd_ =
      ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (log->fd_ < 0) {
    return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  }
  if (damaged) {
    s = log->Append("coffer", "audit.damaged", "audit", "Corruption",
                    "the last entry does not parse; the chain restarts here "
                    "and 'coffer audit verify' reports the damaged entry");
    if (!s.ok()) return s;
  }
  if (torn > 0) {
    s = log->Append("coffer", "audit.repair", "audit", "ok",
                    "dropped a torn last entry of " + std::to_string(torn) +
                        " bytes left by a crash");
    if (!s.ok()) return s;
  }
  // Fold in events recorded without the key.
  const std::string pending = dir + "/" + kAuditPendingFile;
  std::string lines;
  if (ReadWhole(pending, &lines).ok()) {
    size_t pos = 0;
    while (pos < lines.size()) {
      size_t nl = lines.find('\n', pos);
      if (nl == std::string::npos) break;  // torn: dropped
      AuditEntry e;
      if (LineParser(std::string_view(lines).substr(pos, nl - pos)).Parse(&e)) {
        s = log->Append(e.actor, e.action, e.target, e.outcome,
                        kUnauthenticated + e.detail + " (at " +
                            std::to_string(e.unix_micros) + ")");
        if (!s.ok()) return s;
      }
      pos = nl + 1;
    }
    ::unlink(pending.c_str());
  }
  *result = std::move(log);
  return Status::OK();
}

void AuditLog::RecordUnauthenticated(const std::string& dir,
                                     const std::string& actor,
                                     const std::string& action,
                                     const std::string& target,
                                     const std::string& outcome,
                                     const std::string& detail) {
  AuditEntry e{0, NowMicros(), actor, action, target, outcome, detail};
  std::string line = Body(e) + "\n";
  const std::string path = dir + "/" + kAuditPendingFile;
  int fd =
      ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;  // best effort: the directory may not be writable
  ssize_t n = ::write(fd, line.data(), line.size());
  (void)n;
  ::fsync(fd);
  ::close(fd);
}

Status AuditLog::Append(const std::string& actor, const std::string& action,
                        const std::string& target, const std::string& outcome,
                        const std::string& detail) {
  std::lock_guard<std::mutex> lock(mu_);
  AuditEntry e{last_seq_ + 1, NowMicros(), actor, action,
               target,        outcome,     detail};
  const std::string body = Body(e);
  uint8_t mac[32];
  Status s = Mac(last_mac_, body, mac);
  if (!s.ok()) return s;
  const std::string line = body + kMacField + Hex(mac, 32) + "\"}\n";
  struct stat st;
  if (::fstat(fd_, &st) != 0) {
    return Status::IOError("cannot stat " + dir_ + "/" + kAuditFile + ": " +
                           std::strerror(errno));
  }
  ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size()) || ::fdatasync(fd_) != 0) {
    const std::string err = std::strerror(errno);
    // Take the partial entry back, so the chain stays intact for the next.
    if (::ftruncate(fd_, st.st_size) != 0) {
      return Status::IOError("cannot append to " + dir_ + "/" + kAuditFile +
                             " (" + err + ") nor undo the partial entry");
    }
    return Status::IOError("cannot append to " + dir_ + "/" + kAuditFile +
                           ": " + err);
  }
  last_seq_ = e.seq;
  std::memcpy(last_mac_, mac, 32);
  return Status::OK();
}

Status AuditLog::Read(uint64_t since, std::vector<AuditEntry>* out) const {
  std::string bytes;
  Status s = ReadWhole(dir_ + "/" + kAuditFile, &bytes);
  if (!s.ok()) return s;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t nl = bytes.find('\n', pos);
    if (nl == std::string::npos) break;
    AuditEntry e;
    std::string_view body;
    uint8_t mac[32];
    if (!ParseLine(std::string_view(bytes).substr(pos, nl - pos), &e, &body,
                   mac)) {
      // Shown, not hidden: the reader sees where the damage is.
      e = AuditEntry();
      e.action = "audit.unreadable";
      e.outcome = "Corruption";
      e.detail = "the entry at byte " + std::to_string(pos) +
                 " does not parse (run audit verify)";
      out->push_back(std::move(e));
      pos = nl + 1;
      continue;
    }
    if (e.unix_micros >= since) out->push_back(std::move(e));
    pos = nl + 1;
  }
  return Status::OK();
}

Status AuditLog::Verify(uint64_t anchored_seq, const std::string& anchored_mac,
                        AuditVerification* result, std::string* head_mac) {
  std::lock_guard<std::mutex> lock(mu_);  // no appends while verifying
  const std::string path = dir_ + "/" + kAuditFile;
  std::string bytes;
  Status s = ReadWhole(path, &bytes);
  if (s.IsNotFound())
    bytes.clear();
  else if (!s.ok())
    return s;
  *result = AuditVerification();
  uint8_t prev[32] = {0};
  std::vector<std::string> macs;  // hex mac by seq - 1
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t nl = bytes.find('\n', pos);
    const uint64_t expect = result->entries + 1;
    if (nl == std::string::npos) {
      return Status::Corruption(path + ": entry " + std::to_string(expect) +
                                " is torn (no end of line)");
    }
    AuditEntry e;
    std::string_view body;
    uint8_t mac[32], want[32];
    if (!ParseLine(std::string_view(bytes).substr(pos, nl - pos), &e, &body,
                   mac)) {
      return Status::Corruption(path + ": entry " + std::to_string(expect) +
                                " does not parse (edited?)");
    }
    if (e.seq != expect) {
      return Status::Corruption(path + ": entry " + std::to_string(expect) +
                                " carries sequence " + std::to_string(e.seq) +
                                " (entries removed, inserted or reordered)");
    }
    s = Mac(prev, std::string(body), want);
    if (!s.ok()) return s;
    if (!ConstantTimeEqual(mac, want, 32)) {
      return Status::Corruption(path + ": entry " + std::to_string(expect) +
                                " fails its chained HMAC (edited, or an entry "
                                "before it was changed)");
    }
    if (e.detail.rfind(kUnauthenticated, 0) == 0) result->unauthenticated++;
    std::memcpy(prev, mac, 32);
    macs.push_back(Hex(mac, 32));
    result->entries++;
    pos = nl + 1;
  }
  result->head_seq = result->entries;

  // The head anchored by the previous verification must still be there.
  result->anchored_seq = anchored_seq;
  if (anchored_seq > result->entries) {
    return Status::Corruption(
        path + " was truncated: entry " + std::to_string(anchored_seq) +
        " was verified before, the log now ends at entry " +
        std::to_string(result->entries));
  }
  if (anchored_seq > 0 && macs[anchored_seq - 1] != anchored_mac) {
    return Status::Corruption(path + ": entry " + std::to_string(anchored_seq) +
                              " differs from the one verified before "
                              "(log replaced)");
  }
  *head_mac = macs.empty() ? std::string() : macs.back();
  return Status::OK();
}

}  // namespace coffer
