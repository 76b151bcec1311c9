#include "registry/keys_api.h"

namespace leasehold::registry {

bool operator==(const Node& a, const Node& b) {
  return a.key == b.key && a.value == b.value && a.dir == b.dir &&
         a.created_index == b.created_index &&
         a.modified_index == b.modified_index && a.ttl == b.ttl &&
         a.expiration == b.expiration && a.nodes == b.nodes;
}

}  // namespace leasehold::registry
