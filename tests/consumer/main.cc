// Uses only installed headers and the installed libraries (found through
// find_package(leasehold) or pkg-config; see run.cmake).
#include <iostream>

#include "registry/open.h"

int main() {
  auto keys = leasehold::registry::Open("mem:");
  if (!keys.ok()) {
    std::cerr << keys.status() << "\n";
    return 1;
  }
  auto set = (*keys)->Set("/consumer/hello", "world", {.prev_exist = false});
  auto get = (*keys)->Get("/consumer/hello", {});
  if (!set.ok() || !get.ok() || get->node.value != "world") {
    std::cerr << "round trip failed: " << set.status() << " " << get.status()
              << "\n";
    return 1;
  }
  std::cout << "consumer ok: " << get->node.key << " = " << get->node.value
            << "\n";
  return 0;
}
