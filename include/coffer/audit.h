// Copyright (c) Coffer authors.
//
// The audit trail: who did what to a cluster, and when. Every administrative
// and security event (cluster creation, tenant create/drop, quota changes,
// key rotation, revocation and restore, failed key checks) is appended to
// DATA/AUDIT with the time, the actor (OpenOptions::principal: the OS user or
// the embedding application's declared principal), the action, the target
// and the outcome. It never holds user keys, values or key material.
//
// Entries are chained with HMAC-SHA256 under a key derived from the cluster's
// catalog key (itself wrapped by the master key), so verification detects an
// edited, reordered, inserted or removed entry; and, once a head has been
// verified, truncation back past that head.
//
// Example:
//   std::vector<coffer::AuditEntry> entries;
//   coffer::Status s = cluster->ReadAudit(/*since_unix_micros=*/0, &entries);
//   coffer::AuditVerification v;
//   s = cluster->VerifyAudit(&v);  // Corruption names the first bad entry

#ifndef COFFER_INCLUDE_COFFER_AUDIT_H_
#define COFFER_INCLUDE_COFFER_AUDIT_H_

#include <cstdint>
#include <string>

namespace coffer {

struct AuditEntry {
  uint64_t seq = 0;          // 1, 2, 3, ... without gaps
  uint64_t unix_micros = 0;  // wall-clock time of the event
  std::string actor;         // principal that acted
  std::string action;        // e.g. "tenant.create", "key.revoke"
  std::string target;        // e.g. "tenant:acme", "cluster:c1"
  std::string outcome;       // "ok" or the error code name
  std::string detail;        // short free text; never key material
};

struct AuditVerification {
  uint64_t entries = 0;          // entries checked
  uint64_t head_seq = 0;         // last entry's sequence number
  uint64_t anchored_seq = 0;     // head recorded by the previous verification
  uint64_t unauthenticated = 0;  // events recorded without the master key
                                 // (e.g. failed opens), folded in later
};

}  // namespace coffer

#endif  // COFFER_INCLUDE_COFFER_AUDIT_H_
