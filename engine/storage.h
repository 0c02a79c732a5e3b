// Copyright (c) Coffer authors.
//
// The file system under every tenant's encryption and under Coffer's own
// catalog records: one process-wide seam, so tests can put a fault-injecting
// FileSystem (failed writes, fsyncs, renames and reads, a full disk, a power
// cut) beneath the whole engine. Production code never changes it.
//
// Covered: tenant databases (encrypted, plaintext and CTR benchmark modes),
// the tools' tenant file system (tenant_fs.h), and record_file.h (CLUSTER,
// tenants/<id>/TENANT, replication's small records, directory fsyncs). Not
// covered: the audit trail (engine/audit_log.cc), the directory lock and
// replication's streamed files (reseed chunks, rollback exports), which use
// POSIX calls directly.
//
// Internal: include/coffer/ never exposes RocksDB types.

#ifndef COFFER_ENGINE_STORAGE_H_
#define COFFER_ENGINE_STORAGE_H_

#include <memory>

#include "rocksdb/file_system.h"

namespace coffer {

// The FileSystem the engine stores files on. Default:
// rocksdb::FileSystem::Default(). Thread-safe.
std::shared_ptr<rocksdb::FileSystem> BaseFileSystem();

// Replaces the base FileSystem for everything opened afterwards; null
// restores the default. Tenants already open keep the one they opened with,
// so set it before Cluster::Create/Open and reset it after the cluster is
// destroyed. Tests only.
void SetBaseFileSystemForTesting(std::shared_ptr<rocksdb::FileSystem> fs);

}  // namespace coffer

#endif  // COFFER_ENGINE_STORAGE_H_
