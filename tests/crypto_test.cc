// Copyright (c) Coffer authors.
//
// The cipher stream, file prefix, key wrapping and record files, tested
// below the public API.

#include <openssl/evp.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>
#include <vector>

#include "engine/aead.h"
#include "engine/cipher_stream.h"
#include "engine/encryption_provider.h"
#include "engine/record_file.h"
#include "tests/testutil.h"

namespace coffer {
namespace {

// Reference: AES-256-CTR of a whole file from offset 0 in one fresh context.
std::string ReferenceCtr(const SecretKey& key, const uint8_t iv[16],
                         const std::string& plain) {
  std::string out(plain.size(), '\0');
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), nullptr, key.data(), iv);
  EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                    reinterpret_cast<const unsigned char*>(plain.data()),
                    static_cast<int>(plain.size()));
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

TEST(CipherStreamTest, MatchesOneShotCtrAtEveryOffset) {
  SecretKey key;
  ASSERT_OK(SecretKey::Random(&key));
  uint8_t iv[16];
  ASSERT_OK(RandomBytes(iv, sizeof(iv)));
  iv[15] = 0xf0;  // exercise carries out of the low byte
  const std::string plain = test::RandomString(70000);
  const std::string expected = ReferenceCtr(key, iv, plain);
  CtrCipherStream stream(key, iv);
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    size_t off = rng() % plain.size();
    size_t len = std::min<size_t>(rng() % 9000, plain.size() - off);
    std::string buf = plain.substr(off, len);
    ASSERT_TRUE(stream.Encrypt(off, buf.data(), buf.size()).ok());
    ASSERT_EQ(expected.substr(off, len), buf) << "offset " << off;
    ASSERT_TRUE(stream.Decrypt(off, buf.data(), buf.size()).ok());
    ASSERT_EQ(plain.substr(off, len), buf);
  }
}

// Appends and in-order reads continue a pooled context where its keystream
// stopped (no counter reset); interleaved random reads and a second writer
// take other contexts. Every byte matches one-shot CTR.
TEST(CipherStreamTest, SequentialCallsContinueTheKeystream) {
  SecretKey key;
  ASSERT_OK(SecretKey::Random(&key));
  uint8_t iv[16];
  ASSERT_OK(RandomBytes(iv, sizeof(iv)));
  iv[15] = 0xff;  // the first continuation crosses a carry
  const std::string plain = test::RandomString(200000);
  const std::string expected = ReferenceCtr(key, iv, plain);
  CtrCipherStream stream(key, iv);
  std::mt19937 rng(11);
  size_t appended = 0, second = 100000;
  while (appended < 100000) {
    // An odd-sized append, as a log writer makes.
    size_t len = std::min<size_t>(1 + rng() % 300, 100000 - appended);
    std::string buf = plain.substr(appended, len);
    ASSERT_TRUE(stream.Encrypt(appended, buf.data(), buf.size()).ok());
    ASSERT_EQ(expected.substr(appended, len), buf) << "append at " << appended;
    appended += len;
    if (rng() % 4 == 0) {  // a second file region being written
      len = 1 + rng() % 50;
      buf = plain.substr(second, len);
      ASSERT_TRUE(stream.Encrypt(second, buf.data(), buf.size()).ok());
      ASSERT_EQ(expected.substr(second, len), buf) << "at " << second;
      second += len;
    }
    if (rng() % 3 == 0) {  // a random read in between
      const size_t off = rng() % appended;
      len = std::min<size_t>(rng() % 700, appended - off);
      buf = expected.substr(off, len);
      ASSERT_TRUE(stream.Decrypt(off, buf.data(), buf.size()).ok());
      ASSERT_EQ(plain.substr(off, len), buf) << "read at " << off;
    }
  }
}

TEST(CipherStreamTest, CounterCarriesAcrossAllBytes) {
  uint8_t iv[16];
  std::memset(iv, 0xff, sizeof(iv));
  uint8_t out[16];
  CtrCounterAt(iv, 1, out);
  for (uint8_t b : out) EXPECT_EQ(0, b);  // wraps mod 2^128
  std::memset(iv, 0, sizeof(iv));
  CtrCounterAt(iv, 0x0102, out);
  EXPECT_EQ(0x01, out[14]);
  EXPECT_EQ(0x02, out[15]);
}

TEST(CipherStreamTest, ConcurrentCallsOnOneStreamAgree) {
  SecretKey key;
  ASSERT_OK(SecretKey::Random(&key));
  uint8_t iv[16] = {1, 2, 3};
  const std::string plain = test::RandomString(1 << 16);
  const std::string expected = ReferenceCtr(key, iv, plain);
  CtrCipherStream stream(key, iv);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 2000; ++i) {
        size_t off = rng() % plain.size();
        size_t len = std::min<size_t>(rng() % 4096, plain.size() - off);
        std::string buf = plain.substr(off, len);
        if (!stream.Encrypt(off, buf.data(), buf.size()).ok() ||
            buf != expected.substr(off, len)) {
          mismatches++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(0, mismatches.load());
}

class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(SecretKey::Random(&k1_));
    keyring_ = std::make_shared<Keyring>();
    keyring_->Add(1, k1_, true);
  }
  SecretKey k1_;
  std::shared_ptr<Keyring> keyring_;
};

TEST_F(ProviderTest, PrefixRoundTripsAndNoncesDiffer) {
  TenantEncryptionProvider p(keyring_, "'t'");
  std::string a(kFilePrefixBytes, '\0'), b(kFilePrefixBytes, '\0');
  ASSERT_TRUE(p.CreateNewPrefix("f", a.data(), a.size()).ok());
  ASSERT_TRUE(p.CreateNewPrefix("f", b.data(), b.size()).ok());
  EXPECT_NE(a.substr(16, 32), b.substr(16, 32)) << "nonce reused";
  FilePrefixInfo info;
  ASSERT_TRUE(ParseFilePrefix(a, &info).ok());
  EXPECT_EQ(1u, info.key_version);

  rocksdb::Slice sa(a), sb(b);
  std::unique_ptr<rocksdb::BlockAccessCipherStream> ca, cb;
  ASSERT_TRUE(p.CreateCipherStream("f", {}, sa, &ca).ok());
  ASSERT_TRUE(p.CreateCipherStream("f", {}, sb, &cb).ok());
  std::string x(64, 'x'), y(64, 'x');
  ASSERT_TRUE(ca->Encrypt(0, x.data(), x.size()).ok());
  ASSERT_TRUE(cb->Encrypt(0, y.data(), y.size()).ok());
  EXPECT_NE(x, y) << "two files share a keystream";
  EXPECT_NE(std::string(64, 'x'), x);
}

TEST_F(ProviderTest, WrongKeyAndTamperedHeaderAreRefused) {
  TenantEncryptionProvider p(keyring_, "'t'");
  std::string prefix(kFilePrefixBytes, '\0');
  ASSERT_TRUE(p.CreateNewPrefix("f", prefix.data(), prefix.size()).ok());

  auto other = std::make_shared<Keyring>();
  SecretKey k2;
  ASSERT_OK(SecretKey::Random(&k2));
  other->Add(1, k2, true);
  TenantEncryptionProvider q(other, "'u'");
  rocksdb::Slice s(prefix);
  std::unique_ptr<rocksdb::BlockAccessCipherStream> stream;
  rocksdb::Status rs = q.CreateCipherStream("f", {}, s, &stream);
  EXPECT_TRUE(rs.IsCorruption()) << rs.ToString();
  EXPECT_NE(std::string::npos, rs.ToString().find("key check failed"));

  for (size_t pos : {0u, 9u, 13u, 20u, 50u}) {
    std::string bad = prefix;
    bad[pos] ^= 0x01;
    rocksdb::Slice bs(bad);
    EXPECT_FALSE(p.CreateCipherStream("f", {}, bs, &stream).ok())
        << "flip at byte " << pos << " accepted";
  }
  std::string missing = prefix;
  missing[12] = 7;  // key version 7 is not in the keyring
  rocksdb::Slice ms(missing);
  rs = p.CreateCipherStream("f", {}, ms, &stream);
  EXPECT_NE(std::string::npos, rs.ToString().find("no data key version 7"));
  rocksdb::Slice shortp(prefix.data(), 100);
  EXPECT_TRUE(p.CreateCipherStream("f", {}, shortp, &stream).IsCorruption());
}

TEST(AeadTest, BindsKeyAndAssociatedData) {
  SecretKey k, other;
  ASSERT_OK(SecretKey::Random(&k));
  ASSERT_OK(SecretKey::Random(&other));
  std::string sealed, plain;
  ASSERT_OK(AeadSeal(k, "secret", "aad", &sealed));
  EXPECT_EQ(std::string::npos, sealed.find("secret"));
  ASSERT_OK(AeadOpen(k, sealed, "aad", &plain));
  EXPECT_EQ("secret", plain);
  EXPECT_TRUE(AeadOpen(other, sealed, "aad", &plain).IsWrongKey());
  EXPECT_TRUE(AeadOpen(k, sealed, "other", &plain).IsWrongKey());
  sealed[14] ^= 1;
  EXPECT_TRUE(AeadOpen(k, sealed, "aad", &plain).IsWrongKey());
  EXPECT_TRUE(AeadOpen(k, "short", "aad", &plain).IsWrongKey());
}

TEST(RecordFileTest, DetectsEveryFlipAndTruncation) {
  test::TempDir dir;
  const std::string path = dir.Sub("REC");
  ASSERT_OK(WriteRecordFile(path, "payload-bytes"));
  std::string out;
  ASSERT_OK(ReadRecordFile(path, &out));
  EXPECT_EQ("payload-bytes", out);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x20;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
    EXPECT_TRUE(ReadRecordFile(path, &out).IsCorruption()) << "byte " << i;
  }
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        << bytes.substr(0, n);
    EXPECT_TRUE(ReadRecordFile(path, &out).IsCorruption()) << "length " << n;
  }
  EXPECT_TRUE(ReadRecordFile(dir.Sub("absent"), &out).IsNotFound());
}

}  // namespace
}  // namespace coffer
