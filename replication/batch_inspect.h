// Copyright (c) Coffer authors.
//
// Reads what a shipped write batch holds without applying it: its commit
// stamp, its operation count, and which column families it touches. Used by
// the shipper (commit times) and by the replica (validation before apply).

#ifndef COFFER_REPLICATION_BATCH_INSPECT_H_
#define COFFER_REPLICATION_BATCH_INSPECT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "coffer/status.h"
#include "replication/proto/replication.pb.h"

namespace coffer {

class TenantDb;

// RocksDB's write batch header: the sequence (8 bytes), then the count (4).
inline constexpr size_t kWriteBatchHeaderBytes = 12;

// Appends the records of write batch `next` to the representation `*rep` and
// adds its count to `*rep`'s header: two batches whose sequence numbers
// follow each other become one that consumes the same ones, in the same
// order (the replica applies them as RocksDB would have). InvalidArgument
// when either is shorter than a header or the count would pass 2^32 - 1;
// nothing changes then.
Status AppendBatch(std::string* rep, std::string_view next);

struct BatchSummary {
  uint32_t count = 0;          // operations (sequence numbers consumed)
  uint64_t commit_micros = 0;  // 0 when the batch carries no commit stamp
  uint32_t max_column_family = 0;
  // Writes one of the per-cluster replication records (position, fork
  // point) in the system column family: a former replica's log holds them;
  // they are never copied to another cluster (see FilterReplicationRecords).
  bool touches_replication_records = false;
  bool system_range_delete = false;  // a range deletion in the system family
};

// Corruption naming what is wrong for a batch that does not parse, holds an
// operation a replica does not apply (merge, two-phase markers, blob index),
// or whose header count disagrees with its operations.
Status InspectBatch(const std::string& data, BatchSummary* summary);

// True for the per-cluster replication records of the system column family
// (position, fork point), which are never copied to another cluster.
bool IsReplicationRecord(std::string_view key);

// The replica's position record in the system column family.
inline constexpr char kReplicaPositionKey[] = "coffer.replica.position";
// A promoted cluster's fork point (replpb::ForkPoint), per tenant.
inline constexpr char kForkPointKey[] = "coffer.fork";

// Reads tenant `tenant`'s replica position record from `db`. OK with
// *found = false when it has none; Corruption naming the tenant when it does
// not parse.
Status ReadReplicaPosition(const TenantDb& db, const std::string& tenant,
                           replpb::TenantPosition* position, bool* found);

}  // namespace coffer

#endif  // COFFER_REPLICATION_BATCH_INSPECT_H_
