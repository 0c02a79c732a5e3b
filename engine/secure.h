// Copyright (c) Coffer authors.
//
// Secret key material: fixed-size buffers wiped with OPENSSL_cleanse when they
// die, and the process's source of randomness.

#ifndef COFFER_ENGINE_SECURE_H_
#define COFFER_ENGINE_SECURE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "coffer/status.h"

namespace coffer {

inline constexpr size_t kKeyBytes = 32;

// A 256-bit key. Copyable (each copy wiped on destruction); never printed.
class SecretKey {
 public:
  SecretKey() { bytes_.fill(0); }
  SecretKey(const SecretKey& other) = default;
  SecretKey& operator=(const SecretKey& other) = default;
  ~SecretKey();

  // InvalidArgument unless `raw` is exactly 32 bytes.
  static Status FromBytes(std::string_view raw, SecretKey* key);
  // A fresh key from the OpenSSL CSPRNG.
  static Status Random(SecretKey* key);

  const uint8_t* data() const { return bytes_.data(); }
  uint8_t* mutable_data() { return bytes_.data(); }
  static constexpr size_t size() { return kKeyBytes; }
  std::string_view view() const {
    return {reinterpret_cast<const char*>(bytes_.data()), kKeyBytes};
  }

 private:
  std::array<uint8_t, kKeyBytes> bytes_;
};

// Fills `out` with `n` bytes from the OpenSSL CSPRNG.
Status RandomBytes(void* out, size_t n);

// Overwrites the string's bytes before it is released.
void Wipe(std::string* s);

}  // namespace coffer

#endif  // COFFER_ENGINE_SECURE_H_
