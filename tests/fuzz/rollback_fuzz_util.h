// Copyright (c) Coffer authors.
//
// Shared by the rollback fuzz targets: the rollback file layout (see
// RollbackHeader in replication/proto/replication.proto) built from parts.

#ifndef COFFER_TESTS_FUZZ_ROLLBACK_FUZZ_UTIL_H_
#define COFFER_TESTS_FUZZ_ROLLBACK_FUZZ_UTIL_H_

#include <cstdint>
#include <string>

#include "replication/batch_inspect.h"
#include "replication/proto/replication.pb.h"

namespace coffer::fuzz {

inline void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(char((v >> (8 * i)) & 0xff));
}

// "CofferRB", version 1, header length, header.
inline std::string RollbackFileHead(const std::string& header) {
  std::string out("CofferRB", 8);
  PutU32(&out, 1);
  PutU32(&out, static_cast<uint32_t>(header.size()));
  out += header;
  return out;
}

// What `coffer rollback export` does with an entry: a batch is parsed
// record by record.
inline void VisitRollbackEntry(const replpb::RollbackEntry& e) {
  if (e.batch().empty()) return;
  BatchSummary summary;
  (void)InspectBatch(e.batch(), &summary);
}

}  // namespace coffer::fuzz

#endif  // COFFER_TESTS_FUZZ_ROLLBACK_FUZZ_UTIL_H_
