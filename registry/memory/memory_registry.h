// The in-memory registry: etcd v2 keys semantics inside the process.
//
// One global index, createdIndex/modifiedIndex, TTL expiry on the injected
// clock, prevExist/prevIndex/prevValue, refresh, directories, in-order keys
// (20-digit zero-padded), watches with a 1000-event history (kOutOfRange
// beyond it) and expire events that carry prevNode. It is the embedded
// default registry (`mem:`) and the backend of the deterministic unit tests,
// and it passes the same conformance suite as a real etcd.
//
//   leasehold::SimulatedClock clock;
//   auto keys = registry::NewMemoryRegistry({.clock = &clock});
//   keys->Set("/k", "v", {.ttl = absl::Seconds(2)});
//   clock.Advance(absl::Seconds(3));  // "/k" expires; watchers see "expire"
//
// Thread-safety: safe from any number of threads; watchers block on a
// condition variable and wake on writes, expiries and cancels (no polling on
// the real clock).
#ifndef LEASEHOLD_REGISTRY_MEMORY_MEMORY_REGISTRY_H_
#define LEASEHOLD_REGISTRY_MEMORY_MEMORY_REGISTRY_H_

#include <cstddef>
#include <memory>

#include "absl/time/time.h"
#include "registry/clock.h"
#include "registry/keys_api.h"

namespace leasehold::registry {

struct MemoryOptions {
  // Default: RealClock().
  Clock* clock = nullptr;
  // Events kept for watches that start in the past, as etcd keeps 1000.
  size_t history_size = 1000;
  // How often expired keys are swept, as etcd removes them only on a
  // periodic tick (every 500 ms): until the first tick at or after its
  // expiration, an expired key is still read, with a TTL of 0 or less, and
  // still takes writes. Zero (the default): swept at the very moment it
  // expires.
  absl::Duration expiry_sweep_interval = absl::ZeroDuration();
};

std::unique_ptr<KeysApi> NewMemoryRegistry(const MemoryOptions& options = {});

}  // namespace leasehold::registry

#endif  // LEASEHOLD_REGISTRY_MEMORY_MEMORY_REGISTRY_H_
