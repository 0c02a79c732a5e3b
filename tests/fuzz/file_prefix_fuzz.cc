// Copyright (c) Coffer authors.
//
// Fuzz target: the encrypted-file prefix (engine/encryption_provider.h) as
// RocksDB hands it to the tenant's EncryptionProvider when it opens a file:
// magic, format version, key version, nonce and key check. The keyring holds
// fixed test keys (versions 1 and 2), so a prefix written with them (the
// seeds) opens, and the fuzzer reaches the cipher stream behind it.
// Input: the first 4096 bytes are the prefix, the rest the file's data.
// Invariants: a prefix that opens is one ParseFilePrefix accepts with a key
// version the keyring holds; decrypting the data in two pieces at any split
// equals decrypting it at once; encrypting the result gives the data back.

#include <algorithm>
#include <memory>
#include <string>

#include "engine/encryption_provider.h"
#include "engine/tenant_db.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

std::shared_ptr<coffer::Keyring> FixedKeyring() {
  auto keyring = std::make_shared<coffer::Keyring>();
  keyring->Add(1, coffer::fuzz::MakeKey(coffer::fuzz::kFixedKeyBytes), false);
  keyring->Add(2, coffer::fuzz::MakeKey(coffer::fuzz::kSecondKeyBytes), true);
  return keyring;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  static TenantEncryptionProvider* provider =
      new TenantEncryptionProvider(FixedKeyring(), "'fuzz'");

  const size_t prefix_bytes = std::min(size, kFilePrefixBytes);
  std::string prefix_copy(reinterpret_cast<const char*>(data), prefix_bytes);
  rocksdb::Slice prefix(prefix_copy);
  FilePrefixInfo info;
  const bool parses = ParseFilePrefix(prefix, &info).ok();

  std::unique_ptr<rocksdb::BlockAccessCipherStream> stream;
  rocksdb::Status rs = provider->CreateCipherStream("fuzz-file",
                                                    rocksdb::EnvOptions(),
                                                    prefix, &stream);
  fuzz::Note("CreateCipherStream", FromRocks(rs, "prefix"));
  if (!rs.ok()) return 0;
  FUZZ_CHECK(stream != nullptr);
  const std::string body(reinterpret_cast<const char*>(data) + prefix_bytes,
                         size - prefix_bytes);
  if (prefix_bytes == 0) {
    // A file without even its prefix: no data may be decrypted from it.
    std::string scratch = "x";
    FUZZ_CHECK(!stream->Decrypt(0, scratch.data(), scratch.size()).ok());
    return 0;
  }
  FUZZ_CHECK(parses);
  FUZZ_CHECK(info.key_version == 1 || info.key_version == 2);

  std::string whole = body;
  FUZZ_CHECK(stream->Decrypt(0, whole.data(), whole.size()).ok());
  const size_t split =
      body.empty() ? 0 : static_cast<uint8_t>(body[0]) % (body.size() + 1);
  std::string pieces = body;
  FUZZ_CHECK(stream->Decrypt(0, pieces.data(), split).ok());
  FUZZ_CHECK(
      stream->Decrypt(split, pieces.data() + split, body.size() - split).ok());
  FUZZ_CHECK(pieces == whole);
  FUZZ_CHECK(stream->Encrypt(0, whole.data(), whole.size()).ok());
  FUZZ_CHECK(whole == body);
  return 0;
}
