// Copyright (c) Coffer authors.
//
// AES-256-CTR over whole buffers at any file offset, through OpenSSL EVP.
//
// RocksDB's default BlockAccessCipherStream makes one virtual call per 16-byte
// block; this one overrides Encrypt/Decrypt to make a single EVP call per
// buffer, which lets AES-NI pipeline. Each stream keeps a small pool of
// EVP contexts with the file key already scheduled, so a call only resets the
// counter block; a context also remembers the file offset its keystream
// stopped at, and a call that continues from there (a log or table file
// being appended to or read in order) skips the reset and the partial-block
// skip, which cost more than the AES itself on a small append.
//
// Thread-safety: Encrypt/Decrypt may be called concurrently (RocksDB reads one
// table file from many threads); each call takes its own context from the
// pool.

#ifndef COFFER_ENGINE_CIPHER_STREAM_H_
#define COFFER_ENGINE_CIPHER_STREAM_H_

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/secure.h"
#include "rocksdb/env_encryption.h"

namespace coffer {

inline constexpr size_t kCtrIvBytes = 16;

class CtrCipherStream final : public rocksdb::BlockAccessCipherStream {
 public:
  // `iv` is the 16-byte counter block of file offset 0; block i of the file
  // uses iv + i (a 128-bit big-endian counter).
  CtrCipherStream(const SecretKey& key, const uint8_t iv[kCtrIvBytes]);
  ~CtrCipherStream() override;
  CtrCipherStream(const CtrCipherStream&) = delete;
  CtrCipherStream& operator=(const CtrCipherStream&) = delete;

  size_t BlockSize() override { return 16; }
  rocksdb::Status Encrypt(uint64_t file_offset, char* data,
                          size_t size) override;
  rocksdb::Status Decrypt(uint64_t file_offset, char* data,
                          size_t size) override;

 protected:
  void AllocateScratch(std::string&) override {}
  rocksdb::Status EncryptBlock(uint64_t block_index, char* data,
                               char* scratch) override;
  rocksdb::Status DecryptBlock(uint64_t block_index, char* data,
                               char* scratch) override;

 private:
  struct CtxFree {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
  };
  using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

  // A context and the file offset its keystream stands at.
  struct Pooled {
    Ctx ctx;
    uint64_t offset = 0;
  };

  // XORs the keystream at `file_offset` into data[0, size).
  rocksdb::Status Apply(uint64_t file_offset, char* data, size_t size);
  // A context, preferably one standing at `file_offset`.
  Pooled Acquire(uint64_t file_offset);
  void Release(Pooled pooled);

  const SecretKey key_;
  uint8_t iv_[kCtrIvBytes];
  std::mutex mu_;
  std::vector<Pooled> pool_;  // guarded by mu_
};

// Counter block for `block_index`: iv + block_index, big-endian, mod 2^128.
void CtrCounterAt(const uint8_t iv[kCtrIvBytes], uint64_t block_index,
                  uint8_t out[kCtrIvBytes]);

}  // namespace coffer

#endif  // COFFER_ENGINE_CIPHER_STREAM_H_
