// Copyright (c) Coffer authors.

#include "engine/secure.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstring>

namespace coffer {

SecretKey::~SecretKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

Status SecretKey::FromBytes(std::string_view raw, SecretKey* key) {
  if (raw.size() != kKeyBytes) {
    return Status::InvalidArgument("a key must be exactly 32 bytes, got " +
                                   std::to_string(raw.size()));
  }
  std::memcpy(key->bytes_.data(), raw.data(), kKeyBytes);
  return Status::OK();
}

Status SecretKey::Random(SecretKey* key) {
  return RandomBytes(key->bytes_.data(), kKeyBytes);
}

Status RandomBytes(void* out, size_t n) {
  if (RAND_bytes(static_cast<unsigned char*>(out), static_cast<int>(n)) != 1) {
    return Status::IOError("the OpenSSL random generator failed");
  }
  return Status::OK();
}

void Wipe(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

}  // namespace coffer
