// Copyright (c) Coffer authors.
//
// A tenant's encrypted RocksDB FileSystem for tools (RocksDB's ldb, sst_dump
// and db_bench through the plugin, `coffer ldb`), built from the data
// directory and a key provider without opening the cluster.

#ifndef COFFER_ENGINE_TENANT_FS_H_
#define COFFER_ENGINE_TENANT_FS_H_

#include <memory>
#include <string>

#include "coffer/key_provider.h"
#include "coffer/status.h"
#include "rocksdb/file_system.h"

namespace coffer {

// Unwraps the tenant's data keys and returns a FileSystem that reads and
// writes its files encrypted, and the tenant's database directory. Writes
// nothing. KeyRevoked for a revoked tenant; WrongKey for a wrong master key.
Status OpenTenantFileSystem(const std::string& data_dir,
                            std::shared_ptr<KeyProvider> keys,
                            const std::string& tenant,
                            std::shared_ptr<rocksdb::FileSystem>* fs,
                            std::string* db_dir);

}  // namespace coffer

#endif  // COFFER_ENGINE_TENANT_FS_H_
