// Copyright (c) Coffer authors.

#include "engine/encryption_provider.h"

#include <openssl/crypto.h>

#include <cstring>
#include <mutex>

#include "engine/aead.h"
#include "engine/cipher_stream.h"

namespace coffer {

namespace {

constexpr size_t kVersionOffset = 8;
constexpr size_t kKeyVersionOffset = 12;
constexpr size_t kNonceOffset = 16;
constexpr size_t kNonceBytes = 32;
constexpr size_t kCheckOffset = 48;
constexpr size_t kCheckBytes = 32;
constexpr char kCheckInfo[] = "coffer file check v1";
constexpr char kCtrInfo[] = "coffer file ctr v1";

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  }
  return v;
}

// The key-check MAC over the prefix's first 48 bytes.
Status KeyCheck(const SecretKey& dek, const char* prefix,
                uint8_t out[kCheckBytes]) {
  std::string_view nonce(prefix + kNonceOffset, kNonceBytes);
  SecretKey check_key;
  Status s =
      Hkdf(dek.view(), nonce, kCheckInfo, check_key.mutable_data(), kKeyBytes);
  if (!s.ok()) return s;
  return HmacSha256(check_key.view(), std::string_view(prefix, kCheckOffset),
                    out);
}

// A file that holds no bytes at all, not even its prefix: what a crash right
// after creating a file (before its prefix reached the disk) leaves behind.
// It has no data to decrypt; any attempt to use it for data is an error.
class EmptyFileStream final : public rocksdb::BlockAccessCipherStream {
 public:
  size_t BlockSize() override { return 16; }
  rocksdb::Status Encrypt(uint64_t, char*, size_t size) override {
    return Refuse(size);
  }
  rocksdb::Status Decrypt(uint64_t, char*, size_t size) override {
    return Refuse(size);
  }

 protected:
  void AllocateScratch(std::string&) override {}
  rocksdb::Status EncryptBlock(uint64_t, char*, char*) override {
    return Refuse(1);
  }
  rocksdb::Status DecryptBlock(uint64_t, char*, char*) override {
    return Refuse(1);
  }

 private:
  static rocksdb::Status Refuse(size_t size) {
    if (size == 0) return rocksdb::Status::OK();
    return rocksdb::Status::Corruption(
        "coffer: file lost its encryption prefix (empty file)");
  }
};

rocksdb::Status ToRocks(const Status& s) {
  return rocksdb::Status::IOError("coffer: " + s.ToString());
}

}  // namespace

void Keyring::Add(uint32_t version, const SecretKey& key, bool make_current) {
  std::unique_lock lock(mu_);
  keys_[version] = key;
  if (make_current) current_ = version;
}

bool Keyring::Get(uint32_t version, SecretKey* key) const {
  std::shared_lock lock(mu_);
  auto it = keys_.find(version);
  if (it == keys_.end()) return false;
  *key = it->second;
  return true;
}

void Keyring::Remove(uint32_t version) {
  std::unique_lock lock(mu_);
  keys_.erase(version);
}

uint32_t Keyring::current() const {
  std::shared_lock lock(mu_);
  return current_;
}

TenantEncryptionProvider::TenantEncryptionProvider(
    std::shared_ptr<const Keyring> keyring, std::string label)
    : keyring_(std::move(keyring)), label_(std::move(label)) {}

rocksdb::Status ParseFilePrefix(const rocksdb::Slice& prefix,
                                FilePrefixInfo* info) {
  if (prefix.size() < kFilePrefixBytes) {
    return rocksdb::Status::Corruption(
        "coffer: file is shorter than its 4096-byte encryption prefix");
  }
  if (std::memcmp(prefix.data(), kFileMagic, sizeof(kFileMagic)) != 0) {
    return rocksdb::Status::Corruption(
        "coffer: file has no Coffer encryption prefix (not encrypted by "
        "Coffer, or its first bytes were overwritten)");
  }
  info->format_version = GetU32(prefix.data() + kVersionOffset);
  info->key_version = GetU32(prefix.data() + kKeyVersionOffset);
  if (info->format_version != kFileFormatVersion) {
    return rocksdb::Status::Corruption(
        "coffer: unknown encrypted-file format version " +
        std::to_string(info->format_version));
  }
  return rocksdb::Status::OK();
}

rocksdb::Status TenantEncryptionProvider::CreateNewPrefix(
    const std::string& fname, char* prefix, size_t prefix_length) const {
  if (prefix_length != kFilePrefixBytes) {
    return rocksdb::Status::InvalidArgument("coffer: unexpected prefix length");
  }
  const uint32_t version = keyring_->current();
  SecretKey dek;
  if (version == 0 || !keyring_->Get(version, &dek)) {
    return rocksdb::Status::IOError("coffer: tenant " + label_ +
                                    " has no current data key");
  }
  std::memset(prefix, 0, prefix_length);
  std::memcpy(prefix, kFileMagic, sizeof(kFileMagic));
  PutU32(prefix + kVersionOffset, kFileFormatVersion);
  PutU32(prefix + kKeyVersionOffset, version);
  Status s = RandomBytes(prefix + kNonceOffset, kNonceBytes);
  uint8_t check[kCheckBytes];
  if (s.ok()) s = KeyCheck(dek, prefix, check);
  if (!s.ok()) return ToRocks(s);
  std::memcpy(prefix + kCheckOffset, check, kCheckBytes);
  return rocksdb::Status::OK();
}

rocksdb::Status TenantEncryptionProvider::AddCipher(const std::string&,
                                                    const char*, size_t, bool) {
  return rocksdb::Status::NotSupported(
      "coffer: tenant keys come from the tenant keyring");
}

rocksdb::Status TenantEncryptionProvider::CreateCipherStream(
    const std::string& fname, const rocksdb::EnvOptions&,
    rocksdb::Slice& prefix,
    std::unique_ptr<rocksdb::BlockAccessCipherStream>* result) {
  if (prefix.empty()) {
    result->reset(new EmptyFileStream());
    return rocksdb::Status::OK();
  }
  FilePrefixInfo info;
  rocksdb::Status rs = ParseFilePrefix(prefix, &info);
  if (!rs.ok()) {
    return rocksdb::Status::Corruption(rs.getState(), fname);
  }
  SecretKey dek;
  if (!keyring_->Get(info.key_version, &dek)) {
    return rocksdb::Status::Corruption(
        "coffer: tenant " + label_ + " has no data key version " +
            std::to_string(info.key_version) + " (key destroyed or revoked)",
        fname);
  }
  uint8_t check[kCheckBytes];
  Status s = KeyCheck(dek, prefix.data(), check);
  if (!s.ok()) return ToRocks(s);
  if (!ConstantTimeEqual(check, prefix.data() + kCheckOffset, kCheckBytes)) {
    return rocksdb::Status::Corruption(
        "coffer: key check failed (file belongs to another tenant or key, or "
        "its header was tampered with)",
        fname);
  }
  uint8_t material[kKeyBytes + kCtrIvBytes];
  s = Hkdf(dek.view(),
           std::string_view(prefix.data() + kNonceOffset, kNonceBytes),
           kCtrInfo, material, sizeof(material));
  if (!s.ok()) return ToRocks(s);
  SecretKey file_key;
  std::memcpy(file_key.mutable_data(), material, kKeyBytes);
  result->reset(new CtrCipherStream(file_key, material + kKeyBytes));
  OPENSSL_cleanse(material, sizeof(material));
  return rocksdb::Status::OK();
}

}  // namespace coffer
