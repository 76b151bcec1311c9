// The value stored in a lease key, in fleet's format.
//
// fleet writes {"MachineID":"…","Version":N}; older fleet engines wrote the
// bare machine id. leasehold adds a "Token" member, unique per grant, that
// lets a holder recognise its own write when a response was lost; fleet's
// reader ignores members it does not know.
//
//   std::string v = EncodeLeaseValue({"m1", 2, "9f2c…-7"});
//   // {"MachineID":"m1","Version":2,"Token":"9f2c…-7"}
//   LeaseValue legacy = DecodeLeaseValue("m1");  // machine_id "m1", version 0
//
// Thread-safety: free functions without shared state.
#ifndef LEASEHOLD_LEASE_LEASE_VALUE_H_
#define LEASEHOLD_LEASE_LEASE_VALUE_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace leasehold::lease {

struct LeaseValue {
  std::string machine_id;
  int64_t version = 0;
  // Empty in values written by fleet.
  std::string token;
};

std::string EncodeLeaseValue(const LeaseValue& value);

// Reads a value as fleet does: a JSON object whose MachineID (a string) and
// Version (an integer) are optional; anything else - not JSON, not an
// object, or those members of another type - is a bare machine id at
// version 0. Never fails.
LeaseValue DecodeLeaseValue(absl::string_view text);

}  // namespace leasehold::lease

#endif  // LEASEHOLD_LEASE_LEASE_VALUE_H_
