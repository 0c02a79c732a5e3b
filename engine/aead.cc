// Copyright (c) Coffer authors.

#include "engine/aead.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include <cstring>
#include <memory>

namespace coffer {

namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct KdfFree {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

Status AeadSeal(const SecretKey& key, std::string_view plaintext,
                std::string_view aad, std::string* sealed) {
  sealed->assign(kAeadNonceBytes + plaintext.size() + kAeadTagBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed->data());
  Status s = RandomBytes(out, kAeadNonceBytes);
  if (!s.ok()) return s;
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(),
                         out) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out + kAeadNonceBytes, &len, U(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out + kAeadNonceBytes + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kAeadTagBytes,
                          out + kAeadNonceBytes + plaintext.size()) != 1) {
    return Status::IOError("AES-256-GCM encryption failed in OpenSSL");
  }
  return Status::OK();
}

Status AeadOpen(const SecretKey& key, std::string_view sealed,
                std::string_view aad, std::string* plaintext) {
  if (sealed.size() < kAeadOverhead) {
    return Status::WrongKey("sealed blob is shorter than its nonce and tag");
  }
  const size_t n = sealed.size() - kAeadOverhead;
  plaintext->assign(n, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plaintext->data());
  const unsigned char* in = U(sealed);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(),
                         in) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out, &len, in + kAeadNonceBytes,
                        static_cast<int>(n)) != 1) {
    Wipe(plaintext);
    return Status::IOError("AES-256-GCM decryption failed in OpenSSL");
  }
  unsigned char tag[kAeadTagBytes];
  std::memcpy(tag, in + kAeadNonceBytes + n, kAeadTagBytes);
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kAeadTagBytes,
                          tag) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out + len, &len) != 1) {
    Wipe(plaintext);
    return Status::WrongKey("authentication tag does not verify");
  }
  return Status::OK();
}

Status Hkdf(std::string_view ikm, std::string_view salt, std::string_view info,
            uint8_t* out, size_t out_len) {
  static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return Status::IOError("OpenSSL has no HKDF");
  std::unique_ptr<EVP_KDF_CTX, KdfCtxFree> ctx(EVP_KDF_CTX_new(kdf));
  if (!ctx) return Status::IOError("EVP_KDF_CTX_new failed");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_KEY, const_cast<char*>(ikm.data()), ikm.size()),
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size()),
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size()),
      OSSL_PARAM_construct_end()};
  if (EVP_KDF_derive(ctx.get(), out, out_len, params) != 1) {
    return Status::IOError("HKDF derivation failed in OpenSSL");
  }
  return Status::OK();
}

Status HmacSha256(std::string_view key, std::string_view data,
                  uint8_t out[32]) {
  unsigned int len = 32;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), U(data),
           data.size(), out, &len) == nullptr) {
    return Status::IOError("HMAC-SHA256 failed in OpenSSL");
  }
  return Status::OK();
}

bool ConstantTimeEqual(const void* a, const void* b, size_t n) {
  return CRYPTO_memcmp(a, b, n) == 0;
}

}  // namespace coffer
