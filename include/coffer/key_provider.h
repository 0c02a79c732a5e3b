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
//   coffer::Status s = coffer::NewFileKeyProvider("/etc/coffer/master.key",
//   &keys);
//
// Thread-safety: implementations must be safe for concurrent calls.

#ifndef COFFER_INCLUDE_COFFER_KEY_PROVIDER_H_
#define COFFER_INCLUDE_COFFER_KEY_PROVIDER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

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
  // with this `aad` (wrong master key, wrong cluster or tenant, tampering),
  // and, for a provider that holds a single key, when `key_id` names another
  // key; NotFound when a provider holding several keys has no key `key_id`.
  // The caller wipes *plaintext after use.
  virtual Status Unwrap(std::string_view key_id, std::string_view wrapped,
                        std::string_view aad, std::string* plaintext) = 0;

  // Whether the provider can wrap and unwrap with `key_id` right now. A key
  // that is deleted, disabled or unreachable in the HSM/KMS answers false;
  // tenants wrapped by it go offline (KeyRevoked) until it is back.
  virtual bool HasKey(std::string_view key_id) const {
    return key_id == DefaultKeyId();
  }

  // Absolute path of the file or directory holding the keys, or empty when
  // the keys are not in the file system (HSM, KMS).
  virtual std::string Location() const { return {}; }
  // Every such path (a composite provider has several). A cluster refuses a
  // provider whose keys lie inside its data directory.
  virtual std::vector<std::string> Locations() const {
    std::string l = Location();
    if (l.empty()) return {};
    return {l};
  }
};

// The built-in provider: one 32-byte master key read from `path` (raw bytes,
// as written by `coffer keygen`). Its key id is a fingerprint of the key,
// "file-" and 16 hex digits, so data wrapped by another key file is told
// apart (WrongKey naming both ids). Refuses a
// file that is not exactly 32 bytes or that is readable or writable by group
// or others (PermissionDenied; fix with chmod 600). The key is held in memory
// that is wiped when the provider is destroyed.
Status NewFileKeyProvider(const std::string& path,
                          std::shared_ptr<KeyProvider>* result);

// A provider holding one master key per file in directory `dir`: key id K is
// the file `dir`/K.key (K matching [a-z0-9][a-z0-9_-]{0,62}), 32 raw bytes,
// same permission rules as above. Files are read on every use, so removing or
// chmod-ing a key file makes that key unavailable at once, as revoking it in
// an HSM would. `default_key_id` names the key new clusters use.
// Tenants may name any key of the directory as their own master key
// ("bring your own key"; TenantOptions::master_key_id).
Status NewDirectoryKeyProvider(const std::string& dir,
                               const std::string& default_key_id,
                               std::shared_ptr<KeyProvider>* result);

// Several providers as one: each call goes to the first provider that
// HasKey(key_id). DefaultKeyId() is the first provider's. Used to hold the
// old and the new master key during a master-key rotation.
std::shared_ptr<KeyProvider> NewCompositeKeyProvider(
    std::vector<std::shared_ptr<KeyProvider>> providers);

// Writes a new random 32-byte master key to `path` with mode 0600. Never
// overwrites: AlreadyExists when `path` exists.
Status GenerateKeyFile(const std::string& path);

}  // namespace coffer

#endif  // COFFER_INCLUDE_COFFER_KEY_PROVIDER_H_
