// Copyright (c) Coffer authors.
//
// Fuzz target: InspectBatch (replication/batch_inspect.h), the check a
// replica runs on a shipped RocksDB write batch before applying it (and the
// shipper on its own log). Input: a write batch representation.
// Invariant: an accepted batch, joined to itself in the replica's grouped
// form (one header whose count is the sum, then the second batch's records),
// is accepted with the same summary and the count doubled, as the replica's
// grouped apply relies on.

#include <string>

#include "replication/batch_inspect.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  const std::string rep(reinterpret_cast<const char*>(data), size);
  BatchSummary summary;
  if (!InspectBatch(rep, &summary).ok()) return 0;
  FUZZ_CHECK(rep.size() >= 12);
  if (summary.count == 0 || summary.count > (1u << 30)) return 0;

  // What the replica builds for consecutive batches of one tenant.
  std::string joined = rep;
  joined.append(rep, 12, std::string::npos);
  const uint32_t count = summary.count * 2;
  for (int i = 0; i < 4; ++i) joined[8 + i] = char((count >> (8 * i)) & 0xff);
  BatchSummary both;
  FUZZ_CHECK(InspectBatch(joined, &both).ok());
  FUZZ_CHECK(both.count == count);
  FUZZ_CHECK(both.max_column_family == summary.max_column_family);
  FUZZ_CHECK(both.touches_replication_records ==
             summary.touches_replication_records);
  FUZZ_CHECK(both.system_range_delete == summary.system_range_delete);
  return 0;
}
