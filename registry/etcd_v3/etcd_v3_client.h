// The etcd v3 API behind KeysApi: the same keys, leases and watches as the
// v2 client (registry/etcd/etcd_client.h), for etcd 3.4 and later without
// --enable-v2 (etcd 3.6 has no v2 API at all). It speaks etcd's v3 JSON
// gateway (/v3/kv/…, /v3/lease/…, /v3/watch) over the v2 client's
// transport: pooled keep-alive connections, failover, TLS, the
// outcome-unknown rule for lost writes, cancellable watches.
//
//   registry::EtcdOptions options;
//   options.endpoints = {"http://127.0.0.1:2379"};
//   auto keys = registry::NewEtcdV3Client(options);   // or Open("etcd3://…")
//
// How v2's model maps onto v3:
// - indexes are revisions: createdIndex = create_revision, modifiedIndex =
//   mod_revision, X-Etcd-Index = the answer header's revision;
// - a key with a TTL is a key attached to a v3 lease of its own, granted
//   with that TTL; Get reports the lease's remaining TTL (one
//   /v3/lease/timetolive per leased key; for the children of a listing only
//   when GetOptions::child_ttls asks, several requests in flight at once)
//   and an expiration computed from it on the client's clock;
// - prevExist, prevIndex and prevValue are compares of one transaction,
//   which also refuses a key under a key (104) and a key over keys (102);
// - a refresh is a keep-alive of the key's lease followed by a compare that
//   the key still carries that lease (and meets the guards): the key's
//   index does NOT move and no watcher wakes. When the lease's TTL is not
//   the one asked, or the key has none, the key is re-put with a new lease
//   (its index moves, as in v2). A key whose lease is gone is not found;
// - in-order keys are "<dir>/<20 random digits>", unique, ordered by their
//   createdIndex (not by name);
// - directories are key prefixes: one exists while keys are under it, its
//   indexes are its oldest key's createdIndex, and it cannot be created
//   empty (Set with dir=true is kInvalidArgument);
// - watch history is etcd's revision history: a watch from a compacted
//   revision is kOutOfRange (etcd v2's 401).
// What v3 cannot give exactly: a plain set of an existing key keeps its
// createdIndex; watch events are "set" or "delete" (a TTL's expiry is a
// delete); prevNode carries no TTL; a non-recursive watch of a key sees the
// recursive delete of its directory as the key's own delete; etcd raises a
// lease TTL below its minimum (1.5 × the election timeout, rounded up to
// whole seconds: 2 s by default) to that minimum and reports it.
// v2 and v3 keys live apart: a v2 client and a v3 client on the same
// cluster do not see each other's keys.
//
// Thread-safety: one client may be used from any number of threads at once.
#ifndef LEASEHOLD_REGISTRY_ETCD_V3_ETCD_V3_CLIENT_H_
#define LEASEHOLD_REGISTRY_ETCD_V3_ETCD_V3_CLIENT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "registry/etcd/etcd_client.h"
#include "registry/keys_api.h"

namespace leasehold::registry {

// What an etcd3:// URI asks for (registry/open.h): the v2 client's options,
// as a type of its own so that a RegistryConfig tells the two APIs apart.
struct EtcdV3Options : EtcdOptions {};

// The options of NewEtcdClient, validated alike (kInvalidArgument naming
// the bad option), with the same meaning except for these two:
// - username and password (or password_file) authenticate with etcd v3's
//   auth: /v3/auth/authenticate gives a token that every request then
//   carries in its Authorization header. etcd drops tokens (a simple token
//   after --auth-token-ttl without use, every token on a member restart or
//   an auth change); a request whose token etcd rejects authenticates once
//   more and is sent once more, a write too: etcd rejects a token before
//   it applies anything. Concurrent requests share one authentication.
//   etcd refusing the password is kUnauthenticated naming the user, a
//   missing permission kPermissionDenied; the password is never in a
//   message. A user given to a cluster without auth is no error.
// - auto_sync_interval refreshes the endpoints from
//   /v3/cluster/member/list.
absl::StatusOr<std::unique_ptr<KeysApi>> NewEtcdV3Client(EtcdOptions options);

}  // namespace leasehold::registry

#endif  // LEASEHOLD_REGISTRY_ETCD_V3_ETCD_V3_CLIENT_H_
