// Copyright (c) Coffer authors.
//
// Authenticated encryption and key derivation used for wrapped keys and
// catalog records. All functions are thread-safe.

#ifndef COFFER_ENGINE_AEAD_H_
#define COFFER_ENGINE_AEAD_H_

#include <string>
#include <string_view>

#include "coffer/status.h"
#include "engine/secure.h"

namespace coffer {

// Sealed layout (persistent format, never change): a 12-byte random nonce,
// the AES-256-GCM ciphertext, a 16-byte tag.
inline constexpr size_t kAeadNonceBytes = 12;
inline constexpr size_t kAeadTagBytes = 16;
inline constexpr size_t kAeadOverhead = kAeadNonceBytes + kAeadTagBytes;

// Encrypts `plaintext` under `key`, authenticating `aad` too.
Status AeadSeal(const SecretKey& key, std::string_view plaintext,
                std::string_view aad, std::string* sealed);

// Decrypts and authenticates. WrongKey when the tag does not verify (wrong
// key, different aad, or tampered bytes; they cannot be told apart).
// *plaintext may hold secrets: the caller wipes it.
Status AeadOpen(const SecretKey& key, std::string_view sealed,
                std::string_view aad, std::string* plaintext);

// HKDF-SHA256 (RFC 5869) producing `out_len` bytes into `out`.
Status Hkdf(std::string_view ikm, std::string_view salt, std::string_view info,
            uint8_t* out, size_t out_len);

// HMAC-SHA256 of `data` under `key`; 32 bytes into `out`.
Status HmacSha256(std::string_view key, std::string_view data, uint8_t out[32]);

// Compares in time independent of where the inputs differ.
bool ConstantTimeEqual(const void* a, const void* b, size_t n);

}  // namespace coffer

#endif  // COFFER_ENGINE_AEAD_H_
