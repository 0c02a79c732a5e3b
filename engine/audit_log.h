// Copyright (c) Coffer authors.
//
// AuditLog: the append-only, HMAC-chained audit trail in DATA/AUDIT.
//
// Format (persistent): one JSON object per line, fields in this order:
//   {"seq":N,"time":MICROS,"actor":"..","action":"..","target":"..",
//    "outcome":"..","detail":"..","mac":"<64 hex>"}
// mac = HMAC-SHA256(audit key, previous mac (32 bytes, zero for seq 1) ||
//                   the line up to and excluding ,"mac").
// The audit key is HKDF-SHA256(catalog key, info "coffer audit v1").
//
// The head of the last successful verification (seq and mac) is anchored in
// the sealed cluster record, so truncating the log back past it is detected
// and the anchor itself cannot be edited.
// DATA/AUDIT.pending collects events noticed without the master key (a failed
// open); the next open that has the key appends them to the chain, marked.
//
// Thread-safety: Append, Read and Verify may be called concurrently.

#ifndef COFFER_ENGINE_AUDIT_LOG_H_
#define COFFER_ENGINE_AUDIT_LOG_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "coffer/audit.h"
#include "coffer/status.h"
#include "engine/secure.h"

namespace coffer {

inline constexpr char kAuditFile[] = "AUDIT";
inline constexpr char kAuditPendingFile[] = "AUDIT.pending";

class AuditLog {
 public:
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Opens (creating) DIR/AUDIT, finds the chain's tail, drops a torn last
  // line left by a crash (recording that it did), and folds in pending
  // unauthenticated events.
  static Status Open(const std::string& dir, const SecretKey& catalog_key,
                     std::unique_ptr<AuditLog>* result);

  // Records an event noticed without the master key (nothing to MAC with):
  // appended to DIR/AUDIT.pending, folded into the chain by the next Open.
  static void RecordUnauthenticated(const std::string& dir,
                                    const std::string& actor,
                                    const std::string& action,
                                    const std::string& target,
                                    const std::string& outcome,
                                    const std::string& detail);

  // Appends one entry and fsyncs it.
  Status Append(const std::string& actor, const std::string& action,
                const std::string& target, const std::string& outcome,
                const std::string& detail);

  // Entries with time >= since_unix_micros, in order, without verifying.
  Status Read(uint64_t since_unix_micros, std::vector<AuditEntry>* out) const;

  // Checks the whole chain, and that entry `anchored_seq` (the head of the
  // previous verification, 0 if none) still has mac `anchored_mac` (hex). On
  // success *head_mac is the hex mac of the last entry, the next anchor.
  // Corruption names the first entry that fails. Holds off appends while it
  // runs.
  Status Verify(uint64_t anchored_seq, const std::string& anchored_mac,
                AuditVerification* result, std::string* head_mac);

 private:
  AuditLog() = default;
  Status Mac(const uint8_t prev[32], const std::string& body,
             uint8_t out[32]) const;

  std::string dir_;
  SecretKey audit_key_;
  mutable std::mutex mu_;
  int fd_ = -1;                 // guarded by mu_; O_APPEND
  uint64_t last_seq_ = 0;       // guarded by mu_
  uint8_t last_mac_[32] = {0};  // guarded by mu_
};

// Escapes `text` for a JSON string (no quotes added).
std::string JsonEscape(const std::string& text);

}  // namespace coffer

#endif  // COFFER_ENGINE_AUDIT_LOG_H_
