// leasehold-demo: a short, self-contained tour of the keys API on the
// embedded `mem:` registry (or any registry URI given as the argument):
// create-if-absent, compare-and-swap, a TTL key expiring, and a watcher that
// sees every change. Exit status 0 when every step behaved as etcd would.
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "registry/errors.h"
#include "registry/open.h"

namespace {

using leasehold::registry::KeysApi;
using leasehold::registry::Response;

bool Check(bool ok, const std::string& what) {
  std::cout << (ok ? "  ok    " : "  FAIL  ") << what << "\n";
  return ok;
}

int Run(KeysApi& keys, const std::string& prefix) {
  bool ok = true;
  const std::string unit = prefix + "/unit";
  auto created = keys.Set(unit, "machine-a",
                          {.prev_exist = false, .ttl = absl::Seconds(2)});
  ok &= Check(created.ok(),
              absl::StrCat("machine-a creates ", unit, " with a 2 s TTL: ",
                           created.ok() ? created->action
                                        : created.status().ToString()));
  if (!created.ok()) return 1;
  const uint64_t index = created->node.modified_index;

  auto second = keys.Set(unit, "machine-b", {.prev_exist = false});
  ok &= Check(absl::IsAlreadyExists(second.status()),
              absl::StrCat("machine-b cannot create it too: ",
                           second.status().ToString()));

  auto swapped = keys.Set(unit, "machine-b", {.prev_index = index + 1000});
  ok &= Check(absl::IsAborted(swapped.status()),
              absl::StrCat("a swap at a stale index fails: ",
                           swapped.status().ToString()));

  auto refreshed =
      keys.Set(unit, "",
               {.prev_index = index, .ttl = absl::Seconds(1), .refresh = true});
  ok &= Check(refreshed.ok(),
              "machine-a refreshes its TTL at its own index (1 s now)");

  std::cout << "  ...   waiting for the key to expire (about a second)\n";
  auto event = keys.Watch(
      unit,
      {.wait_index = refreshed.ok() ? refreshed->node.modified_index + 1 : 0,
       .deadline = absl::InfiniteFuture()});
  ok &= Check(
      event.ok() && event->action == "expire" && event->prev_node &&
          event->prev_node->value == "machine-a",
      absl::StrCat("a watcher sees it expire: ",
                   event.ok() ? event->action : event.status().ToString()));

  auto taken = keys.Set(unit, "machine-b",
                        {.prev_exist = false, .ttl = absl::Seconds(2)});
  ok &= Check(taken.ok() && taken->node.modified_index > index,
              "machine-b takes it over at a higher index");
  std::cout << (ok ? "demo: every step behaved as etcd v2 does\n"
                   : "demo: FAILED\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string uri = argc > 1 ? argv[1] : "mem:";
  auto keys = leasehold::registry::Open(uri);
  if (!keys.ok()) {
    std::cerr << "leasehold-demo: " << keys.status() << "\n";
    return 2;
  }
  std::cout << "leasehold-demo on " << uri << "\n";
  return Run(**keys, "/leasehold-demo");
}
