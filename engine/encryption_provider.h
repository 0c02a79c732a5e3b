// Copyright (c) Coffer authors.
//
// The RocksDB EncryptionProvider that encrypts every file of one tenant.
//
// File prefix (persistent format; never change a byte's meaning, bump
// kFileFormatVersion instead). 4096 bytes so data stays page-aligned:
//   [0, 8)    magic "CofferF\x01"
//   [8, 12)   format version, little-endian u32 (1)
//   [12, 16)  data-key version, little-endian u32
//   [16, 48)  nonce, 32 random bytes, fresh for every file
//   [48, 80)  key check: HMAC-SHA256(HKDF(dek, nonce, "coffer file check v1"),
//             bytes [0, 48))
//   [80, 4096) zero
// File key and initial counter: HKDF-SHA256(dek, salt = nonce,
// info = "coffer file ctr v1") -> 32-byte AES-256 key || 16-byte counter block.
// Because every file (including a reused name) gets a fresh nonce, no two
// files share a keystream.

#ifndef COFFER_ENGINE_ENCRYPTION_PROVIDER_H_
#define COFFER_ENGINE_ENCRYPTION_PROVIDER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>

#include "engine/secure.h"
#include "rocksdb/env_encryption.h"

namespace coffer {

inline constexpr size_t kFilePrefixBytes = 4096;
inline constexpr uint32_t kFileFormatVersion = 1;
inline constexpr char kFileMagic[8] = {'C', 'o', 'f', 'f', 'e', 'r', 'F', 1};

// The data keys of one tenant, by version. Thread-safe.
class Keyring {
 public:
  Keyring() = default;
  Keyring(const Keyring&) = delete;
  Keyring& operator=(const Keyring&) = delete;

  // Adds (or replaces) version `version`; if `make_current`, new files use it.
  void Add(uint32_t version, const SecretKey& key, bool make_current);
  // False when the keyring has no such version.
  bool Get(uint32_t version, SecretKey* key) const;
  // Forgets (and wipes) a version no file needs any more.
  void Remove(uint32_t version);
  // The version new files are written with; 0 when the keyring is empty.
  uint32_t current() const;

 private:
  mutable std::shared_mutex mu_;
  std::map<uint32_t, SecretKey> keys_;  // guarded by mu_
  uint32_t current_ = 0;                // guarded by mu_
};

class TenantEncryptionProvider final : public rocksdb::EncryptionProvider {
 public:
  // `label` names the tenant in error messages.
  TenantEncryptionProvider(std::shared_ptr<const Keyring> keyring,
                           std::string label);

  static const char* kClassName() { return "CofferTenantEncryption"; }
  const char* Name() const override { return kClassName(); }

  size_t GetPrefixLength() const override { return kFilePrefixBytes; }
  rocksdb::Status CreateNewPrefix(const std::string& fname, char* prefix,
                                  size_t prefix_length) const override;
  // Keys come from the Keyring; always NotSupported.
  rocksdb::Status AddCipher(const std::string& descriptor, const char* cipher,
                            size_t len, bool for_write) override;
  rocksdb::Status CreateCipherStream(
      const std::string& fname, const rocksdb::EnvOptions& options,
      rocksdb::Slice& prefix,
      std::unique_ptr<rocksdb::BlockAccessCipherStream>* result) override;

 private:
  std::shared_ptr<const Keyring> keyring_;
  std::string label_;
};

// Parsed fixed fields of a file prefix.
struct FilePrefixInfo {
  uint32_t format_version = 0;
  uint32_t key_version = 0;
};

// Checks magic and format of a file prefix without any key. Corruption when
// it is not a Coffer file prefix.
rocksdb::Status ParseFilePrefix(const rocksdb::Slice& prefix,
                                FilePrefixInfo* info);

}  // namespace coffer

#endif  // COFFER_ENGINE_ENCRYPTION_PROVIDER_H_
