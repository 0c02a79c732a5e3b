// Copyright (c) Coffer authors.
//
// Micro-benchmarks (Google Benchmark): Coffer's cipher stream against raw
// OpenSSL EVP AES-256-CTR on the same buffers and against the per-block
// baseline (RocksDB's CTR provider over one AES call per 16 bytes); key
// wrapping; replication frame encode/decode (XXH3 checksum); engine Put/Get
// in each file mode. Throughput is reported as bytes/second.
//
// Example:
//   micro_bench --benchmark_filter='Ctr' --benchmark_format=json

#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "bench/workloads.h"
#include "coffer/key_provider.h"
#include "engine/aead.h"
#include "engine/cipher_stream.h"
#include "engine/per_block_cipher.h"
#include "engine/secure.h"
#include "replication/frame.h"
#include "rocksdb/env_encryption.h"

namespace coffer::bench {
namespace {

SecretKey FixedKey() {
  SecretKey key;
  for (size_t i = 0; i < SecretKey::size(); ++i) key.mutable_data()[i] = i * 7 + 1;
  return key;
}

const uint8_t kIv[kCtrIvBytes] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

// Where the RocksDB layer would call it: past the 4 KiB file prefix.
constexpr uint64_t kFileOffset = 4096;

void BM_CtrCipherStream(benchmark::State& state) {
  const size_t size = state.range(0);
  CtrCipherStream stream(FixedKey(), kIv);
  std::vector<char> buf(size, 'x');
  for (auto _ : state) {
    rocksdb::Status s = stream.Encrypt(kFileOffset, buf.data(), size);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * size);
}
BENCHMARK(BM_CtrCipherStream)
    ->Arg(128)->Arg(2 << 10)->Arg(4 << 10)->Arg(16 << 10)->Arg(64 << 10)->Arg(1 << 20);

// What RocksDB asks for on a block-cache miss: a compressed block at an
// offset that is not a multiple of 16 (the counter is set, then the partial
// block skipped), or a WAL record appended right after the previous one.
void BM_CtrCipherStreamUnaligned(benchmark::State& state) {
  const size_t size = state.range(0);
  CtrCipherStream stream(FixedKey(), kIv);
  std::vector<char> buf(size, 'x');
  uint64_t offset = kFileOffset + 5;
  for (auto _ : state) {
    rocksdb::Status s = stream.Encrypt(offset, buf.data(), size);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(buf.data());
    offset += size;  // sequential, like appends to a log
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * size);
}
BENCHMARK(BM_CtrCipherStreamUnaligned)->Arg(128)->Arg(2 << 10)->Arg(4 << 10);

// The ceiling: one EVP_EncryptUpdate on a context initialised once, as
// `openssl speed -evp aes-256-ctr` does.
void BM_OpensslEvpAes256Ctr(benchmark::State& state) {
  const size_t size = state.range(0);
  const SecretKey key = FixedKey();
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CTR", nullptr);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (cipher == nullptr || ctx == nullptr ||
      EVP_EncryptInit_ex2(ctx, cipher, key.data(), kIv, nullptr) != 1) {
    state.SkipWithError("cannot set up AES-256-CTR");
  }
  std::vector<unsigned char> buf(size, 'x');
  for (auto _ : state) {
    int len = 0;
    if (EVP_EncryptUpdate(ctx, buf.data(), &len, buf.data(),
                          static_cast<int>(size)) != 1) {
      state.SkipWithError("EVP_EncryptUpdate failed");
    }
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * size);
  EVP_CIPHER_CTX_free(ctx);
  EVP_CIPHER_free(cipher);
}
BENCHMARK(BM_OpensslEvpAes256Ctr)
    ->Arg(128)->Arg(2 << 10)->Arg(4 << 10)->Arg(16 << 10)->Arg(64 << 10)->Arg(1 << 20);

// The baseline: RocksDB's CTR cipher stream, one OpenSSL call per 16 bytes.
void BM_PerBlockCtr(benchmark::State& state) {
  const size_t size = state.range(0);
  auto provider = rocksdb::EncryptionProvider::NewCTRProvider(
      NewPerBlockAesCipher(FixedKey()));
  std::string prefix(provider->GetPrefixLength(), '\0');
  rocksdb::Status s =
      provider->CreateNewPrefix("bench", prefix.data(), prefix.size());
  rocksdb::Slice prefix_slice(prefix);
  std::unique_ptr<rocksdb::BlockAccessCipherStream> stream;
  if (s.ok()) {
    s = provider->CreateCipherStream("bench", rocksdb::EnvOptions(),
                                     prefix_slice, &stream);
  }
  if (!s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    for (auto _ : state) {
    }
    return;
  }
  std::vector<char> buf(size, 'x');
  for (auto _ : state) {
    s = stream->Encrypt(kFileOffset, buf.data(), size);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * size);
}
BENCHMARK(BM_PerBlockCtr)->Arg(4 << 10)->Arg(64 << 10);

// ---- key wrapping -------------------------------------------------------------

constexpr std::string_view kAad = "bench|tenant|1";

void BM_AeadSeal(benchmark::State& state) {
  const SecretKey kek = FixedKey();
  SecretKey dek;
  if (!SecretKey::Random(&dek).ok()) state.SkipWithError("no randomness");
  std::string sealed;
  for (auto _ : state) {
    if (!AeadSeal(kek, dek.view(), kAad, &sealed).ok()) {
      state.SkipWithError("AeadSeal failed");
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * coffer::kKeyBytes);
}
BENCHMARK(BM_AeadSeal);

void BM_AeadOpen(benchmark::State& state) {
  const SecretKey kek = FixedKey();
  SecretKey dek;
  std::string sealed, opened;
  if (!SecretKey::Random(&dek).ok() || !AeadSeal(kek, dek.view(), kAad, &sealed).ok()) {
    state.SkipWithError("AeadSeal failed");
  }
  for (auto _ : state) {
    if (!AeadOpen(kek, sealed, kAad, &opened).ok()) {
      state.SkipWithError("AeadOpen failed");
    }
  }
  Wipe(&opened);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * coffer::kKeyBytes);
}
BENCHMARK(BM_AeadOpen);

// A FileKeyProvider over a key file in a scratch directory.
class KeyFileFixture {
 public:
  KeyFileFixture() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "coffer-micro-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return;
    dir_ = pattern;
    const std::string path = dir_ + "/master.key";
    if (GenerateKeyFile(path).ok() && NewFileKeyProvider(path, &keys_).ok()) {
      SecretKey dek;
      if (SecretKey::Random(&dek).ok()) dek_ = std::string(dek.view());
    }
  }
  ~KeyFileFixture() {
    Wipe(&dek_);
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  KeyProvider* keys() const { return keys_.get(); }
  const std::string& dek() const { return dek_; }

 private:
  std::string dir_;
  std::shared_ptr<KeyProvider> keys_;
  std::string dek_;
};

void BM_FileKeyProviderWrap(benchmark::State& state) {
  KeyFileFixture f;
  if (f.keys() == nullptr) {
    state.SkipWithError("no key provider");
    for (auto _ : state) {
    }
    return;
  }
  const std::string id = f.keys()->DefaultKeyId();
  std::string wrapped;
  for (auto _ : state) {
    if (!f.keys()->Wrap(id, f.dek(), kAad, &wrapped).ok()) {
      state.SkipWithError("Wrap failed");
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * coffer::kKeyBytes);
}
BENCHMARK(BM_FileKeyProviderWrap);

void BM_FileKeyProviderUnwrap(benchmark::State& state) {
  KeyFileFixture f;
  std::string wrapped, plain;
  if (f.keys() == nullptr ||
      !f.keys()->Wrap(f.keys()->DefaultKeyId(), f.dek(), kAad, &wrapped).ok()) {
    state.SkipWithError("no key provider");
    for (auto _ : state) {
    }
    return;
  }
  const std::string id = f.keys()->DefaultKeyId();
  for (auto _ : state) {
    if (!f.keys()->Unwrap(id, wrapped, kAad, &plain).ok()) {
      state.SkipWithError("Unwrap failed");
    }
  }
  Wipe(&plain);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * coffer::kKeyBytes);
}
BENCHMARK(BM_FileKeyProviderUnwrap);

// ---- replication frames --------------------------------------------------------

void BM_FrameEncode(benchmark::State& state) {
  const std::string payload(state.range(0), 'p');
  std::string frame;
  for (auto _ : state) {
    frame.clear();
    if (!EncodeFrame(payload, &frame).ok()) state.SkipWithError("EncodeFrame failed");
    benchmark::DoNotOptimize(frame.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * payload.size());
}
BENCHMARK(BM_FrameEncode)->Arg(1 << 10)->Arg(64 << 10);

void BM_FrameDecode(benchmark::State& state) {
  const std::string payload(state.range(0), 'p');
  std::string frame, out;
  if (!EncodeFrame(payload, &frame).ok()) state.SkipWithError("EncodeFrame failed");
  FrameDecoder decoder;
  for (auto _ : state) {
    bool have = false;
    decoder.Feed(frame);
    if (!decoder.Next(&out, &have).ok() || !have) {
      state.SkipWithError("FrameDecoder::Next failed");
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * payload.size());
}
BENCHMARK(BM_FrameDecode)->Arg(1 << 10)->Arg(64 << 10);

// ---- engine Put/Get ---------------------------------------------------------

constexpr size_t kValueBytes = 100;
constexpr uint64_t kGetKeys = 50000;  // 5.7 MiB raw: > 4x the 1 MiB cache

// One small cluster with one tenant per mode and purpose, kept for the whole
// run (Google Benchmark calls a function several times) and closed before
// main returns.
struct Engine {
  std::unique_ptr<ScratchCluster> scratch;
  std::unique_ptr<Tenant> tenant;
};

std::map<std::string, Engine>& Engines() {
  static auto* engines = new std::map<std::string, Engine>();
  return *engines;
}

Tenant* EngineFor(Mode mode, bool loaded, benchmark::State& state) {
  const std::string name = std::string(ModeName(mode)) + (loaded ? "/get" : "/put");
  Engine& e = Engines()[name];
  if (e.tenant != nullptr) return e.tenant.get();
  OpenOptions oo;
  oo.block_cache_bytes = 1 << 20;
  Status s = ScratchCluster::Create(
      std::filesystem::temp_directory_path().string(), mode, oo, 1, &e.scratch);
  if (s.ok()) s = e.scratch->cluster()->CreateTenant("bench", TenantOptions());
  if (s.ok()) s = e.scratch->cluster()->GetTenant("bench", &e.tenant);
  if (s.ok() && loaded) {
    std::vector<Tenant*> tenants = {e.tenant.get()};
    s = LoadTenants(tenants, kGetKeys, kValueBytes, 1, 1, "micro_bench load");
  }
  if (!s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    e.tenant.reset();
    return nullptr;
  }
  return e.tenant.get();
}

void BM_EnginePut(benchmark::State& state, Mode mode) {
  Tenant* tenant = EngineFor(mode, false, state);
  if (tenant == nullptr) {
    for (auto _ : state) {
    }
    return;
  }
  Random rng(42);
  ValueGenerator gen(42);
  char key[kKeyLen];
  for (auto _ : state) {
    FormatKey(rng.Uniform(1000000), key);
    if (!tenant->Put(WriteOptions(), std::string_view(key, kKeyLen),
                     gen.Next(kValueBytes)).ok()) {
      state.SkipWithError("Put failed");
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          (kKeyLen + kValueBytes));
}

void BM_EngineGet(benchmark::State& state, Mode mode) {
  Tenant* tenant = EngineFor(mode, true, state);
  if (tenant == nullptr) {
    for (auto _ : state) {
    }
    return;
  }
  Random rng(43);
  char key[kKeyLen];
  std::string value;
  for (auto _ : state) {
    FormatKey(rng.Uniform(kGetKeys), key);
    if (!tenant->Get(ReadOptions(), std::string_view(key, kKeyLen), &value).ok()) {
      state.SkipWithError("Get failed");
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          (kKeyLen + kValueBytes));
}

BENCHMARK_CAPTURE(BM_EnginePut, none, Mode::kNone);
BENCHMARK_CAPTURE(BM_EnginePut, coffer, Mode::kCoffer);
BENCHMARK_CAPTURE(BM_EnginePut, rocksdb_ctr, Mode::kRocksdbCtr);
BENCHMARK_CAPTURE(BM_EngineGet, none, Mode::kNone);
BENCHMARK_CAPTURE(BM_EngineGet, coffer, Mode::kCoffer);
BENCHMARK_CAPTURE(BM_EngineGet, rocksdb_ctr, Mode::kRocksdbCtr);

}  // namespace
}  // namespace coffer::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // Close the engine clusters (and remove their files) while RocksDB is up.
  for (auto& [name, engine] : coffer::bench::Engines()) engine.tenant.reset();
  coffer::bench::Engines().clear();
  return 0;
}
