// Copyright (c) Coffer authors.

#include "engine/per_block_cipher.h"

#include <openssl/evp.h>

#include <atomic>
#include <cstdint>

namespace coffer {

namespace {

class PerBlockAesCipher final : public rocksdb::BlockCipher {
 public:
  explicit PerBlockAesCipher(const SecretKey& key)
      : key_(key), id_(next_id_.fetch_add(1) + 1) {}

  static const char* kClassName() { return "CofferPerBlockAes"; }
  const char* Name() const override { return kClassName(); }
  size_t BlockSize() override { return 16; }

  // RocksDB's CTR stream calls this once per 16-byte block, from many
  // threads; each thread keeps its own context for this cipher.
  rocksdb::Status Encrypt(char* data) override {
    struct Cached {
      uint64_t owner = 0;  // id_, never reused (an address could be)
      EVP_CIPHER_CTX* ctx = nullptr;
      ~Cached() { EVP_CIPHER_CTX_free(ctx); }
    };
    thread_local Cached cached;
    if (cached.owner != id_) {
      if (cached.ctx == nullptr) cached.ctx = EVP_CIPHER_CTX_new();
      if (cached.ctx == nullptr ||
          EVP_EncryptInit_ex(cached.ctx, EVP_aes_256_ecb(), nullptr,
                             key_.data(), nullptr) != 1) {
        return rocksdb::Status::IOError("coffer: AES-256-ECB setup failed");
      }
      EVP_CIPHER_CTX_set_padding(cached.ctx, 0);
      cached.owner = id_;
    }
    int len = 0;
    auto* p = reinterpret_cast<unsigned char*>(data);
    if (EVP_EncryptUpdate(cached.ctx, p, &len, p, 16) != 1) {
      return rocksdb::Status::IOError("coffer: AES-256-ECB failed");
    }
    return rocksdb::Status::OK();
  }

  rocksdb::Status Decrypt(char* data) override {
    return rocksdb::Status::NotSupported("CTR mode only encrypts blocks");
  }

 private:
  const SecretKey key_;
  const uint64_t id_;
  static inline std::atomic<uint64_t> next_id_{0};
};

}  // namespace

std::shared_ptr<rocksdb::BlockCipher> NewPerBlockAesCipher(
    const SecretKey& key) {
  return std::make_shared<PerBlockAesCipher>(key);
}

}  // namespace coffer
