// Copyright (c) Coffer authors.
//
// Benchmark baseline only: an AES-256 rocksdb::BlockCipher that makes one
// OpenSSL call per 16-byte block, as a user plugging OpenSSL into RocksDB's
// built-in CTR provider would. Coffer's own cipher stream is measured
// against it (bench/). Never used for real data.

#ifndef COFFER_ENGINE_PER_BLOCK_CIPHER_H_
#define COFFER_ENGINE_PER_BLOCK_CIPHER_H_

#include <memory>

#include "engine/secure.h"
#include "rocksdb/env_encryption.h"

namespace coffer {

std::shared_ptr<rocksdb::BlockCipher> NewPerBlockAesCipher(
    const SecretKey& key);

}  // namespace coffer

#endif  // COFFER_ENGINE_PER_BLOCK_CIPHER_H_
