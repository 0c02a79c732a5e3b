// Copyright (c) Coffer authors.

#include "tools/demo_certs.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

namespace coffer::cli {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;

Status Fail(const std::string& what) {
  return Status::IOError("cannot make demo certificates: " + what);
}

// Writes PEM output of `write` to `path` with mode `mode`.
template <typename W>
Status WritePem(const std::string& path, mode_t mode, W write) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Fail("open " + path);
  FILE* f = ::fdopen(fd, "w");
  if (f == nullptr) {
    ::close(fd);
    return Fail("open " + path);
  }
  const bool ok = write(f) == 1;
  const bool closed = std::fclose(f) == 0;
  return ok && closed ? Status::OK() : Fail("write " + path);
}

bool AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext =
      X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `name` with `key`, signed by (issuer, issuer_key); self
// signed when issuer is null.
Cert MakeCert(const std::string& name, EVP_PKEY* key, X509* issuer,
              EVP_PKEY* issuer_key, long serial) {
  Cert cert(X509_new());
  if (cert == nullptr) return nullptr;
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 2 * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(
      subject, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  bool ok;
  if (issuer == nullptr) {
    ok = AddExtension(cert.get(), signer, NID_basic_constraints,
                      "critical,CA:TRUE") &&
         AddExtension(cert.get(), signer, NID_key_usage,
                      "critical,keyCertSign,cRLSign");
  } else {
    ok = AddExtension(cert.get(), signer, NID_subject_alt_name,
                      "DNS:" + name + ",IP:127.0.0.1") &&
         AddExtension(cert.get(), signer, NID_ext_key_usage,
                      "serverAuth,clientAuth");
  }
  if (!ok) return nullptr;
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key,
                EVP_sha256()) <= 0) {
    return nullptr;
  }
  return cert;
}

}  // namespace

Status WriteDemoCertificates(const std::string& dir,
                             const std::vector<std::string>& names) {
  Key ca_key(EVP_EC_gen("P-256"));
  if (ca_key == nullptr) return Fail("EC key generation");
  Cert ca = MakeCert("coffer-demo-ca", ca_key.get(), nullptr, nullptr, 1);
  if (ca == nullptr) return Fail("CA certificate");
  Status s = WritePem(dir + "/ca.pem", 0644,
                      [&](FILE* f) { return PEM_write_X509(f, ca.get()); });
  long serial = 2;
  for (const std::string& name : names) {
    if (!s.ok()) break;
    Key key(EVP_EC_gen("P-256"));
    if (key == nullptr) return Fail("EC key generation");
    Cert cert = MakeCert(name, key.get(), ca.get(), ca_key.get(), serial++);
    if (cert == nullptr) return Fail("certificate for " + name);
    s = WritePem(dir + "/" + name + ".pem", 0644,
                 [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
    if (s.ok()) {
      s = WritePem(dir + "/" + name + ".key", 0600, [&](FILE* f) {
        return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0,
                                    nullptr, nullptr);
      });
    }
  }
  return s;
}

}  // namespace coffer::cli
