// Copyright (c) Coffer authors.
//
// The chain hash of a tenant's replication stream: each batch's hash covers
// the previous one, so a replica notices a batch that is missing, repeated
// or out of order even when sequence numbers happen to line up. XXH3-128
// (integrity against bugs and mix-ups; TLS authenticates the stream).
//
// Wire format: 16 bytes, little-endian low then high half. Never change.

#ifndef COFFER_REPLICATION_CHAIN_H_
#define COFFER_REPLICATION_CHAIN_H_

#ifndef XXH_STATIC_LINKING_ONLY
#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#endif
#include <xxhash.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace coffer {

inline std::string ChainHash(std::string_view prev, uint64_t first_seq,
                             uint32_t count, std::string_view data) {
  char header[12];
  for (int i = 0; i < 8; ++i) header[i] = char((first_seq >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) header[8 + i] = char((count >> (8 * i)) & 0xff);
  XXH3_state_t state;
  XXH3_128bits_reset(&state);
  XXH3_128bits_update(&state, prev.data(), prev.size());
  XXH3_128bits_update(&state, header, sizeof(header));
  XXH3_128bits_update(&state, data.data(), data.size());
  XXH128_hash_t h = XXH3_128bits_digest(&state);
  std::string out(16, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = char((h.low64 >> (8 * i)) & 0xff);
    out[8 + i] = char((h.high64 >> (8 * i)) & 0xff);
  }
  return out;
}

// The chain hash a tenant's stream restarts from after a reseed at `seq`.
inline std::string SeedChainHash(uint64_t seq) {
  return ChainHash("seed", seq, 0, "");
}

}  // namespace coffer

#endif  // COFFER_REPLICATION_CHAIN_H_
