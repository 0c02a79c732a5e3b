// Copyright (c) Coffer authors.
//
// Fuzz target: the audit log DATA/AUDIT and DATA/AUDIT.pending
// (engine/audit_log.h) as a cluster open reads them (tail repair, last
// entry, pending events), then `coffer audit show` (Read) and
// `coffer audit verify` (Verify). The audit key derives from a fixed test
// catalog key, so a log written with it (the seeds) verifies.
// Input: the AUDIT file; if it holds the line "--pending--\n", what follows
// that line is AUDIT.pending instead.
// Invariants: after Open the log takes an append; a log that verifies
// verifies again when anchored at its own head, and its head mac is 64 hex
// digits.

#include <memory>
#include <string>
#include <vector>

#include "engine/audit_log.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  static const SecretKey catalog_key = fuzz::MakeKey(fuzz::kFixedKeyBytes);
  static const std::string dir = [] {
    const std::string d = fuzz::ScratchDir() + "/audit";
    fuzz::MakeDirOrDie(d);
    return d;
  }();

  std::string_view audit(reinterpret_cast<const char*>(data), size);
  std::string_view pending;
  constexpr std::string_view kSplit = "--pending--\n";
  const size_t at = audit.find(kSplit);
  const bool has_pending = at != std::string_view::npos;
  if (has_pending) {
    pending = audit.substr(at + kSplit.size());
    audit = audit.substr(0, at);
  }
  const std::string pending_path = dir + "/" + kAuditPendingFile;
  fuzz::WriteFileOrDie(dir + "/" + kAuditFile, audit);
  if (has_pending) {
    fuzz::WriteFileOrDie(pending_path, pending);
  } else {
    ::unlink(pending_path.c_str());
  }

  std::unique_ptr<AuditLog> log;
  const Status opened = AuditLog::Open(dir, catalog_key, &log);
  fuzz::Note("AuditLog::Open", opened);
  if (!opened.ok()) return 0;
  std::vector<AuditEntry> entries;
  FUZZ_CHECK(log->Read(0, &entries).ok());
  AuditVerification result;
  std::string head;
  const Status verified = log->Verify(0, "", &result, &head);
  fuzz::Note("AuditLog::Verify", verified);
  if (verified.ok()) {
    FUZZ_CHECK(head.size() == (result.entries == 0 ? 0u : 64u));
    AuditVerification again;
    std::string head_again;
    FUZZ_CHECK(
        log->Verify(result.entries, head, &again, &head_again).ok());
    FUZZ_CHECK(head_again == head);
  }
  FUZZ_CHECK(log->Append("fuzz", "fuzz.check", "audit", "ok", "").ok());
  return 0;
}
