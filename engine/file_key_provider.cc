// Copyright (c) Coffer authors.
//
// The built-in KeyProvider: one master key in a file of 32 raw bytes.

#include <fcntl.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "coffer/cluster.h"
#include "coffer/key_provider.h"
#include "engine/aead.h"
#include "engine/secure.h"

namespace coffer {

namespace {

std::string Errno() { return std::strerror(errno); }

// The key id is a fingerprint of the key: "file-" and 16 hex digits of
// SHA-256("coffer master key id v1" || key). It names the key in the catalog
// (so a wrong key file is told apart from a tampered catalog, and rotation
// knows which key wraps what) without revealing anything usable about it.
std::string FingerprintId(const SecretKey& key) {
  std::string input = "coffer master key id v1";
  input.append(key.view());
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
         digest);
  Wipe(&input);
  static const char kHex[] = "0123456789abcdef";
  std::string id = "file-";
  for (int i = 0; i < 8; ++i) {
    id += kHex[digest[i] >> 4];
    id += kHex[digest[i] & 15];
  }
  return id;
}

class FileKeyProvider final : public KeyProvider {
 public:
  FileKeyProvider(std::string location, const SecretKey& key)
      : location_(std::move(location)), key_(key), id_(FingerprintId(key)) {}

  std::string DefaultKeyId() const override { return id_; }

  Status Wrap(std::string_view key_id, std::string_view plaintext,
              std::string_view aad, std::string* wrapped) override {
    Status s = CheckId(key_id);
    if (!s.ok()) return s;
    return AeadSeal(key_, plaintext, aad, wrapped);
  }

  Status Unwrap(std::string_view key_id, std::string_view wrapped,
                std::string_view aad, std::string* plaintext) override {
    Status s = CheckId(key_id);
    if (!s.ok()) return s;
    s = AeadOpen(key_, wrapped, aad, plaintext);
    if (s.IsWrongKey()) {
      return Status::WrongKey("master key file " + location_ +
                              " does not match (key check failed)");
    }
    return s;
  }

  std::string Location() const override { return location_; }

 private:
  Status CheckId(std::string_view key_id) const {
    if (key_id != id_) {
      return Status::WrongKey("master key file " + location_ + " holds key " +
                              id_ + ", not the key " + std::string(key_id) +
                              " this data was wrapped with");
    }
    return Status::OK();
  }

  const std::string location_;
  const SecretKey key_;
  const std::string id_;
};

// Reads and checks a 32-byte key file.
Status LoadKeyFile(const std::string& path, SecretKey* key) {
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer (it is
  // then refused below as not a regular file); no effect on a regular file.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) {
      return Status::NotFound("key file " + path + " does not exist");
    }
    return Status::IOError("cannot open key file " + path + ": " + Errno());
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    std::string err = Errno();
    ::close(fd);
    return Status::IOError("cannot stat key file " + path + ": " + err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument("key file " + path +
                                   " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", st.st_mode & 07777);
    return Status::PermissionDenied("key file " + path +
                                    " is accessible by group or others (mode " +
                                    mode + "); run: chmod 600 " + path);
  }
  if (st.st_size != static_cast<off_t>(kKeyBytes)) {
    ::close(fd);
    return Status::InvalidArgument(
        "key file " + path + " must hold exactly 32 bytes, it holds " +
        std::to_string(st.st_size) + " (create one with: coffer keygen)");
  }
  std::string raw(kKeyBytes, '\0');
  ssize_t n = ::read(fd, raw.data(), raw.size());
  std::string err = Errno();
  ::close(fd);
  if (n != static_cast<ssize_t>(kKeyBytes)) {
    Wipe(&raw);
    return Status::IOError("cannot read key file " + path + ": " + err);
  }
  Status s = SecretKey::FromBytes(raw, key);
  Wipe(&raw);
  return s;
}

std::string RealPath(const std::string& path) {
  char resolved[PATH_MAX];
  return ::realpath(path.c_str(), resolved) != nullptr ? resolved : path;
}

// Keys in files <dir>/<id>.key, read on every use.
class DirectoryKeyProvider final : public KeyProvider {
 public:
  DirectoryKeyProvider(std::string dir, std::string default_id)
      : dir_(std::move(dir)), default_id_(std::move(default_id)) {}

  std::string DefaultKeyId() const override { return default_id_; }

  bool HasKey(std::string_view key_id) const override {
    SecretKey key;
    return Load(key_id, &key).ok();
  }

  Status Wrap(std::string_view key_id, std::string_view plaintext,
              std::string_view aad, std::string* wrapped) override {
    SecretKey key;
    Status s = Load(key_id, &key);
    if (!s.ok()) return s;
    return AeadSeal(key, plaintext, aad, wrapped);
  }

  Status Unwrap(std::string_view key_id, std::string_view wrapped,
                std::string_view aad, std::string* plaintext) override {
    SecretKey key;
    Status s = Load(key_id, &key);
    if (!s.ok()) return s;
    s = AeadOpen(key, wrapped, aad, plaintext);
    if (s.IsWrongKey()) {
      return Status::WrongKey("master key '" + std::string(key_id) + "' in " +
                              dir_ + " does not match (key check failed)");
    }
    return s;
  }

  std::string Location() const override { return dir_; }

 private:
  Status Load(std::string_view key_id, SecretKey* key) const {
    Status s = ValidateId("master key", key_id);
    if (!s.ok()) return s;
    s = LoadKeyFile(dir_ + "/" + std::string(key_id) + ".key", key);
    if (s.IsNotFound()) {
      return Status::NotFound("master key '" + std::string(key_id) +
                              "' is not available in " + dir_);
    }
    return s;
  }

  const std::string dir_;
  const std::string default_id_;
};

class CompositeKeyProvider final : public KeyProvider {
 public:
  explicit CompositeKeyProvider(
      std::vector<std::shared_ptr<KeyProvider>> providers)
      : providers_(std::move(providers)) {}

  std::string DefaultKeyId() const override {
    return providers_.empty() ? std::string() : providers_[0]->DefaultKeyId();
  }

  bool HasKey(std::string_view key_id) const override {
    return Find(key_id) != nullptr;
  }

  Status Wrap(std::string_view key_id, std::string_view plaintext,
              std::string_view aad, std::string* wrapped) override {
    KeyProvider* p = Find(key_id);
    if (p == nullptr) return Missing(key_id);
    return p->Wrap(key_id, plaintext, aad, wrapped);
  }

  Status Unwrap(std::string_view key_id, std::string_view wrapped,
                std::string_view aad, std::string* plaintext) override {
    KeyProvider* p = Find(key_id);
    if (p == nullptr) return Missing(key_id);
    return p->Unwrap(key_id, wrapped, aad, plaintext);
  }

  std::vector<std::string> Locations() const override {
    std::vector<std::string> out;
    for (const auto& p : providers_) {
      for (std::string& l : p->Locations()) out.push_back(std::move(l));
    }
    return out;
  }

 private:
  KeyProvider* Find(std::string_view key_id) const {
    for (const auto& p : providers_) {
      if (p->HasKey(key_id)) return p.get();
    }
    return nullptr;
  }
  static Status Missing(std::string_view key_id) {
    return Status::NotFound("none of the given master keys is key " +
                            std::string(key_id));
  }

  std::vector<std::shared_ptr<KeyProvider>> providers_;
};

}  // namespace

Status NewFileKeyProvider(const std::string& path,
                          std::shared_ptr<KeyProvider>* result) {
  SecretKey key;
  Status s = LoadKeyFile(path, &key);
  if (!s.ok()) return s;
  *result = std::make_shared<FileKeyProvider>(RealPath(path), key);
  return Status::OK();
}

Status NewDirectoryKeyProvider(const std::string& dir,
                               const std::string& default_key_id,
                               std::shared_ptr<KeyProvider>* result) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::NotFound("key directory " + dir + " does not exist");
  }
  auto p =
      std::make_shared<DirectoryKeyProvider>(RealPath(dir), default_key_id);
  SecretKey key;
  Status s = LoadKeyFile(dir + "/" + default_key_id + ".key", &key);
  if (s.ok()) s = ValidateId("master key", default_key_id);
  if (!s.ok()) return s;
  *result = std::move(p);
  return Status::OK();
}

std::shared_ptr<KeyProvider> NewCompositeKeyProvider(
    std::vector<std::shared_ptr<KeyProvider>> providers) {
  return std::make_shared<CompositeKeyProvider>(std::move(providers));
}

Status GenerateKeyFile(const std::string& path) {
  SecretKey key;
  Status s = SecretKey::Random(&key);
  if (!s.ok()) return s;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::AlreadyExists("key file " + path +
                                   " already exists; refusing to overwrite");
    }
    return Status::IOError("cannot create key file " + path + ": " + Errno());
  }
  // The umask cannot widen 0600, but an inherited ACL default might: be sure.
  bool ok =
      ::fchmod(fd, 0600) == 0 &&
      ::write(fd, key.data(), kKeyBytes) == static_cast<ssize_t>(kKeyBytes) &&
      ::fsync(fd) == 0;
  std::string err = Errno();
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return Status::IOError("cannot write key file " + path + ": " + err);
  }
  return Status::OK();
}

}  // namespace coffer
