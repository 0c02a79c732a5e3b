// Copyright (c) Coffer authors.
//
// Fuzz target: a replication message (replpb::Envelope, the payload of one
// frame) and what the receiving side parses out of it before acting on it:
// a batch's tenant id and write batch (InspectBatch, as the replica runs it
// before applying), a tenant event's id and catalog body. Input: the frame
// payload (the frame checksum is left out so the fuzzer works on the message
// itself).
// Invariants: an accepted write batch holds at least two bytes per operation
// it counts after its 12-byte header; a parsed message serializes to bytes
// that parse to a message serializing to the same bytes.

#include <string>

#include "coffer/cluster.h"
#include "engine/proto/catalog.pb.h"
#include "replication/batch_inspect.h"
#include "replication/proto/replication.pb.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  replpb::Envelope message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return 0;

  if (message.has_batch()) {
    const replpb::Batch& b = message.batch();
    BatchSummary summary;
    if (ValidateId("tenant", b.tenant()).ok() &&
        InspectBatch(b.data(), &summary).ok()) {
      FUZZ_CHECK(b.data().size() >= 12);
      FUZZ_CHECK(uint64_t{summary.count} * 2 <= b.data().size() - 12);
    }
  } else if (message.has_tenant_event()) {
    const replpb::TenantEvent& e = message.tenant_event();
    catalogpb::TenantBody body;
    if (ValidateId("tenant", e.tenant()).ok() &&
        body.ParseFromString(e.tenant_body())) {
      const std::string again = body.SerializeAsString();
      catalogpb::TenantBody copy;
      FUZZ_CHECK(copy.ParseFromString(again));
      FUZZ_CHECK(copy.tenant_id() == body.tenant_id());
    }
  }

  const std::string once = message.SerializeAsString();
  replpb::Envelope again;
  FUZZ_CHECK(again.ParseFromString(once));
  FUZZ_CHECK(again.SerializeAsString() == once);
  return 0;
}
