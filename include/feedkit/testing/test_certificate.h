// SPDX-License-Identifier: Apache-2.0
//
// feedkit/testing/test_certificate.h
//
// make_test_certificate() writes a fresh self-signed certificate and its key
// (RSA 2048, valid one day, CN=localhost, subjectAltName DNS:localhost and
// IP:127.0.0.1) into a directory by running the `openssl` command-line tool,
// so wss:// tests need no checked-in key material. A client that trusts
// `cert_file` (as its CA file) accepts a FaultyWsServer serving it; a client
// that trusts another certificate refuses it.
//
// Blocks while openssl runs (about 0.1–1 s). Starts a process; reads no clock.
//
// Thread safety: thread-safe for distinct directories.
//
// Example:
//   auto cert = feedkit::testing::make_test_certificate(dir).value();
//   auto server = FaultyWsServer::start({.tls = true, .cert_file =
//   cert.cert_file,
//                                        .key_file = cert.key_file}).value();
//   options.ca_file = cert.cert_file;  // the client trusts it
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace feedkit::testing {

struct TestCertificate {
  std::string cert_file;  // PEM certificate (self-signed; also the CA to trust)
  std::string key_file;   // PEM private key, unencrypted
};

// Creates `dir` if needed and writes `dir`/cert.pem and `dir`/key.pem
// (replacing them). Returns their paths, or kUnavailable if the directory
// cannot be made or openssl fails (for example, is not installed).
absl::StatusOr<TestCertificate> make_test_certificate(std::string dir);

}  // namespace feedkit::testing
