// Copyright (c) Coffer authors.

#include "engine/cipher_stream.h"

#include <openssl/crypto.h>

#include <climits>
#include <cstring>

namespace coffer {

namespace {

// Fetched once: an implicit fetch on every init costs ~10% throughput.
EVP_CIPHER* Aes256Ctr() {
  static EVP_CIPHER* const cipher =
      EVP_CIPHER_fetch(nullptr, "AES-256-CTR", nullptr);
  return cipher;
}

constexpr size_t kMaxPooledContexts = 16;

}  // namespace

void CtrCounterAt(const uint8_t iv[kCtrIvBytes], uint64_t block_index,
                  uint8_t out[kCtrIvBytes]) {
  std::memcpy(out, iv, kCtrIvBytes);
  uint64_t carry = block_index;
  for (int i = kCtrIvBytes - 1; i >= 0 && carry != 0; --i) {
    uint64_t sum = static_cast<uint64_t>(out[i]) + (carry & 0xff);
    out[i] = static_cast<uint8_t>(sum);
    carry = (carry >> 8) + (sum >> 8);
  }
}

CtrCipherStream::CtrCipherStream(const SecretKey& key,
                                 const uint8_t iv[kCtrIvBytes])
    : key_(key) {
  std::memcpy(iv_, iv, kCtrIvBytes);
}

CtrCipherStream::~CtrCipherStream() { OPENSSL_cleanse(iv_, sizeof(iv_)); }

CtrCipherStream::Pooled CtrCipherStream::Acquire(uint64_t file_offset) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pool_.empty()) {
      size_t pick = pool_.size() - 1;
      for (size_t i = 0; i < pool_.size(); ++i) {
        if (pool_[i].offset == file_offset) {
          pick = i;
          break;
        }
      }
      Pooled p = std::move(pool_[pick]);
      pool_[pick] = std::move(pool_.back());
      pool_.pop_back();
      return p;
    }
  }
  Pooled p;
  p.ctx.reset(EVP_CIPHER_CTX_new());
  if (p.ctx && Aes256Ctr() != nullptr &&
      EVP_EncryptInit_ex2(p.ctx.get(), Aes256Ctr(), key_.data(), iv_,
                          nullptr) == 1) {
    p.offset = 0;  // the counter block of offset 0
    return p;
  }
  p.ctx.reset();
  return p;
}

void CtrCipherStream::Release(Pooled pooled) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pool_.size() < kMaxPooledContexts) pool_.push_back(std::move(pooled));
}

rocksdb::Status CtrCipherStream::Apply(uint64_t file_offset, char* data,
                                       size_t size) {
  if (size == 0) return rocksdb::Status::OK();
  Pooled pooled = Acquire(file_offset);
  EVP_CIPHER_CTX* ctx = pooled.ctx.get();
  if (ctx == nullptr) {
    return rocksdb::Status::IOError("coffer: cannot set up AES-256-CTR");
  }
  bool ok = true;
  int len = 0;
  size_t skip = 0;
  if (pooled.offset != file_offset) {
    // Only the counter changes; the key schedule stays in the context.
    uint8_t counter[kCtrIvBytes];
    CtrCounterAt(iv_, file_offset / 16, counter);
    ok = EVP_EncryptInit_ex2(ctx, nullptr, nullptr, counter, nullptr) == 1;
    skip = file_offset % 16;
  }
  // (A context standing at file_offset carries its counter and the rest of
  // its partial block.)
  if (ok && skip != 0) {
    unsigned char discard[16] = {0};
    ok = EVP_EncryptUpdate(ctx, discard, &len, discard,
                           static_cast<int>(skip)) == 1;
  }
  auto* p = reinterpret_cast<unsigned char*>(data);
  const uint64_t end = file_offset + size;
  while (ok && size > 0) {
    const int chunk = static_cast<int>(size > (1u << 30) ? (1u << 30) : size);
    ok = EVP_EncryptUpdate(ctx, p, &len, p, chunk) == 1;
    p += chunk;
    size -= static_cast<size_t>(chunk);
  }
  if (!ok) return rocksdb::Status::IOError("coffer: AES-256-CTR failed");
  pooled.offset = end;
  Release(std::move(pooled));
  return rocksdb::Status::OK();
}

rocksdb::Status CtrCipherStream::Encrypt(uint64_t file_offset, char* data,
                                         size_t size) {
  return Apply(file_offset, data, size);
}

rocksdb::Status CtrCipherStream::Decrypt(uint64_t file_offset, char* data,
                                         size_t size) {
  return Apply(file_offset, data, size);
}

rocksdb::Status CtrCipherStream::EncryptBlock(uint64_t block_index, char* data,
                                              char*) {
  return Apply(block_index * 16, data, 16);
}

rocksdb::Status CtrCipherStream::DecryptBlock(uint64_t block_index, char* data,
                                              char*) {
  return Apply(block_index * 16, data, 16);
}

}  // namespace coffer
