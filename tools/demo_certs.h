// Copyright (c) Coffer authors.
//
// A throwaway CA and certificates for the demo's replication pair, made with
// the OpenSSL library (the demo must not depend on the openssl command or on
// where the source tree is). Never use them for real clusters; tests and
// operators' drills use tools/gen_test_certs.sh.

#ifndef COFFER_TOOLS_DEMO_CERTS_H_
#define COFFER_TOOLS_DEMO_CERTS_H_

#include <string>
#include <vector>

#include "coffer/status.h"

namespace coffer::cli {

// Writes DIR/ca.pem and, per name, DIR/<name>.pem and DIR/<name>.key (mode
// 0600): ECDSA P-256, common name and DNS name = the name, IP 127.0.0.1,
// valid for two days.
Status WriteDemoCertificates(const std::string& dir,
                             const std::vector<std::string>& names);

}  // namespace coffer::cli

#endif  // COFFER_TOOLS_DEMO_CERTS_H_
