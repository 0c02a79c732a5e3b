// Copyright (c) Coffer authors.
//
// KeyProvider: where master keys (key-encryption keys) live. Coffer never
// stores a data key in the clear; it asks the provider to wrap each tenant's
// data key under a master key, and to unwrap it when the tenant opens. The
// interface takes a key id and never hands out a master key, so an HSM or KMS
// can implement it with the key staying inside the device.
//
// Example:
//   std::shared_ptr<coffer::KeyProvider> keys;
//   coffer::Status s = coffer::NewFileKeyProvider("/etc/coffer/master.key", &keys);
//
// Thread-safety: implementations must be safe for concurrent calls.

#ifndef COFFER_INCLUDE_COFFER_KEY_PROVIDER_H_
#define COFFER_INCLUDE_COFFER_KEY_PROVIDER_H_

#include <memory>
#include <string>
#include <string_view>

#include "coffer/status.h"

namespace coffer {

class KeyProvider {
 public:
  virtual ~KeyProvider() = default;

  // The id of the master key that new clusters and tenants use by default.
  virtual std::string DefaultKeyId() const = 0;

  // Encrypts and authenticates `plaintext` (a 32-byte data key) under master
  // key `key_id`, binding `aad` (associated data that must be presented again
  // to unwrap). Writes an opaque blob to *wrapped.
  virtual Status Wrap(std::string_view key_id, std::string_view plaintext,
                      std::string_view aad, std::string* wrapped) = 0;

  // Reverses Wrap. Returns WrongKey when the blob was not wrapped by this key
  // with this `aad` (wrong master key, wrong cluster or tenant, tampering);
  // NotFound when the provider has no key `key_id`. The caller wipes
  // *plaintext after use.
  virtual Status Unwrap(std::string_view key_id, std::string_view wrapped,
                        std::string_view aad, std::string* plaintext) = 0;

  // Absolute path of the file holding the keys, or empty when the keys are not
  // in the file system (HSM, KMS). A cluster refuses a provider whose keys lie
  // inside its data directory.
  virtual std::string Location() const { return {}; }
};

// The built-in provider: one 32-byte master key read from `path` (raw bytes,
// as written by `coffer keygen`). Its key id is a fingerprint of the key,
// "file-" and 16 hex digits, so data wrapped by another key file is told
// apart (WrongKey naming both ids). Refuses a
// file that is not exactly 32 bytes or that is readable or writable by group
// or others (PermissionDenied; fix with chmod 600). The key is held in memory that is
// wiped when the provider is destroyed.
Status NewFileKeyProvider(const std::string& path,
                          std::shared_ptr<KeyProvider>* result);

// Writes a new random 32-byte master key to `path` with mode 0600. Never
// overwrites: AlreadyExists when `path` exists.
Status GenerateKeyFile(const std::string& path);

}  // namespace coffer

#endif  // COFFER_INCLUDE_COFFER_KEY_PROVIDER_H_
