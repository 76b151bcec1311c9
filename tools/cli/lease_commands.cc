// `leasehold lease …`: fleet-style leases from the command line.
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lease/lease_manager.h"
#include "lease/lease_value.h"
#include "registry/errors.h"
#include "tools/cli/command.h"

namespace leasehold::cli {
namespace {

using lease::Lease;
using lease::LeaseManager;

const FlagSpec kMachine = {"machine", FlagSpec::kValue, "ID",
                           "machine id of the holder"};
const FlagSpec kVersion = {"version", FlagSpec::kValue, "N",
                           "holder's version (default 0)"};
const FlagSpec kTtl = {"ttl", FlagSpec::kValue, "DUR",
                       "lease period, rounded up to whole seconds (e.g. 10s)"};
const FlagSpec kIndex = {"index", FlagSpec::kValue, "N",
                         "the lease's current index"};

const CommandSpec kGet = {
    "lease get",
    "NAME",
    "Print the holder of a lease; exit 1 if nobody holds it.",
    {}};
const CommandSpec kList = {
    "lease list", "", "Print every lease under the prefix.", {}};
const CommandSpec kAcquire = {
    "lease acquire",
    "NAME --machine ID --ttl DUR [--version N]",
    "Take a lease nobody holds; print its index. Exit 1 if it is held.",
    {kMachine, kTtl, kVersion}};
const CommandSpec kRenew = {
    "lease renew",
    "NAME --machine ID --index N --ttl DUR",
    "Extend a lease held by ID at index N; print the new index.\n"
    "Exit 1 if the index no longer matches or the lease is gone.",
    {kMachine, kIndex, kTtl}};
const CommandSpec kSteal = {
    "lease steal",
    "NAME --machine ID --index N --ttl DUR [--version N]",
    "Take a lease over from its holder if it is still at index N.\n"
    "Exit 1 if it moved or vanished.",
    {kMachine, kIndex, kTtl, kVersion}};
const CommandSpec kRelease = {
    "lease release",
    "NAME --machine ID --index N",
    "Give up a lease held by ID at index N.\n"
    "Exit 1 if the index no longer matches or the lease is gone.",
    {kMachine, kIndex}};
const CommandSpec kWatch = {
    "lease watch",
    "NAME",
    "Print every change of a lease (acquired, stolen, released, expired,\n"
    "and renewals that rewrite the value) until interrupted.\n"
    "Renewals by leasehold use etcd's refresh and wake no watcher.",
    {}};

const std::vector<const CommandSpec*> kCommands = {
    &kGet, &kList, &kAcquire, &kRenew, &kSteal, &kRelease, &kWatch};

Record LeaseRecord(const std::string& name, const Lease& lease) {
  Record record;
  record.Add("name", name)
      .Add("machine", lease.machine_id())
      .Add("version", lease.version())
      .Add("index", lease.index())
      .Add("remaining_s", absl::ToDoubleSeconds(lease.time_remaining()));
  return record;
}

// Holds the manager and the registry it reads.
struct Leases {
  std::unique_ptr<registry::KeysApi> keys;
  std::unique_ptr<LeaseManager> manager;
};

absl::StatusOr<Leases> OpenLeases(Context& ctx) {
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys = ctx.OpenRegistry();
  if (!keys.ok()) return keys.status();
  Leases leases;
  leases.keys = *std::move(keys);
  leases.manager = std::make_unique<LeaseManager>(
      leases.keys.get(),
      lease::LeaseManagerOptions{.prefix = ctx.global().prefix});
  return leases;
}

// The lease as ID holds it at index N, for renew and release; an exit code
// when it is not so held.
absl::StatusOr<std::unique_ptr<Lease>> HeldAt(LeaseManager& manager,
                                              const std::string& name,
                                              const Args& args,
                                              int* exit_code) {
  absl::StatusOr<std::string> machine = args.String("machine");
  absl::StatusOr<uint64_t> index = args.Uint("index");
  absl::Status bad = !machine.ok() ? machine.status() : index.status();
  if (!bad.ok()) {
    *exit_code = kExitUsage;
    return bad;
  }
  absl::StatusOr<std::unique_ptr<Lease>> lease = manager.GetLease(name);
  if (!lease.ok()) {
    *exit_code = ExitCodeFor(lease.status());
    return lease.status();
  }
  if (*lease == nullptr) {
    *exit_code = kExitNotHeld;
    return absl::NotFoundError(
        absl::StrCat("lease \"", name, "\": not held by anyone"));
  }
  if ((*lease)->machine_id() != *machine) {
    *exit_code = kExitNotHeld;
    return absl::AbortedError(absl::StrCat("lease \"", name, "\": held by \"",
                                           (*lease)->machine_id(), "\", not \"",
                                           *machine, "\""));
  }
  if ((*lease)->index() != *index) {
    *exit_code = kExitNotHeld;
    return absl::AbortedError(absl::StrCat("lease \"", name, "\": index is ",
                                           (*lease)->index(), ", not ",
                                           *index));
  }
  return lease;
}

// What a change of the lease key means to its holders.
std::string EventName(const registry::Response& event) {
  if (event.action == "expire") return "expired";
  if (event.action == "delete" || event.action == "compareAndDelete")
    return "released";
  if (!event.prev_node.has_value()) return "acquired";
  const bool same_holder =
      lease::DecodeLeaseValue(event.prev_node->value).machine_id ==
      lease::DecodeLeaseValue(event.node.value).machine_id;
  return same_holder ? "renewed" : "stolen";
}

Record EventRecord(const std::string& name, absl::string_view event,
                   absl::string_view raw_value, uint64_t index) {
  const lease::LeaseValue value = lease::DecodeLeaseValue(raw_value);
  Record record;
  record.Add("event", event).Add("name", name).Add("machine", value.machine_id);
  record.Add("version", value.version).Add("index", index);
  return record;
}

// Prints the lease as it is and returns the index to watch from.
absl::StatusOr<uint64_t> PrintCurrent(Context& ctx, registry::KeysApi& keys,
                                      const std::string& key,
                                      const std::string& name,
                                      absl::string_view event) {
  absl::StatusOr<registry::Response> now = keys.Get(key, {.quorum = true});
  if (now.ok()) {
    ctx.out().Print(
        EventRecord(name, event, now->node.value, now->node.modified_index));
    return now->etcd_index + 1;
  }
  std::optional<registry::EtcdError> error =
      registry::GetEtcdError(now.status());
  if (absl::IsNotFound(now.status()) && error.has_value()) {
    ctx.out().Print(Record()
                        .Add("event", "free")
                        .Add("name", name)
                        .Add("index", error->index));
    return error->index + 1;
  }
  return now.status();
}

int RunWatch(Context& ctx, registry::KeysApi& keys, LeaseManager& manager,
             const std::string& name) {
  const std::string key = manager.KeyFor(name);
  absl::StatusOr<uint64_t> next = PrintCurrent(ctx, keys, key, name, "current");
  while (next.ok()) {
    absl::StatusOr<registry::Response> event =
        keys.Watch(key, {.wait_index = *next, .cancel = &ctx.interrupted()});
    if (event.ok()) {
      // Deletes and expiries carry the holder only in prevNode.
      const registry::Node& holder =
          event->node.value.empty() && event->prev_node ? *event->prev_node
                                                        : event->node;
      ctx.out().Print(EventRecord(name, EventName(*event), holder.value,
                                  event->node.modified_index));
      next = event->node.modified_index + 1;
    } else if (absl::IsOutOfRange(event.status())) {
      // Too far behind the registry's event history: say where things are.
      next = PrintCurrent(ctx, keys, key, name, "resync");
    } else {
      next = event.status();
    }
  }
  if (absl::IsCancelled(next.status())) return kExitOk;
  return ctx.Fail(kWatch.name, next.status());
}

int Run(Context& ctx, const CommandSpec& spec,
        const std::vector<std::string>& words) {
  const size_t positional = &spec == &kList ? 0 : 1;
  int exit_code = kExitOk;
  absl::StatusOr<Args> args =
      ParseCommand(ctx, spec, words, positional, &exit_code);
  if (!args.ok()) return exit_code;
  absl::StatusOr<Leases> leases = OpenLeases(ctx);
  if (!leases.ok()) return ctx.Fail(spec.name, leases.status());
  LeaseManager& manager = *leases->manager;
  const std::string name = positional == 1 ? args->positional()[0] : "";
  if (&spec == &kWatch) return RunWatch(ctx, *leases->keys, manager, name);

  if (&spec == &kList) {
    absl::StatusOr<std::vector<std::unique_ptr<Lease>>> all =
        manager.ListLeases();
    if (!all.ok()) return ctx.Fail(spec.name, all.status());
    for (const auto& lease : *all)
      ctx.out().Print(LeaseRecord(lease->name(), *lease));
    return kExitOk;
  }
  if (&spec == &kGet) {
    absl::StatusOr<std::unique_ptr<Lease>> lease = manager.GetLease(name);
    if (!lease.ok()) return ctx.Fail(spec.name, lease.status());
    if (*lease == nullptr) {
      return ctx.Fail(spec.name, kExitNotHeld,
                      absl::StrCat("lease \"", name, "\": not held"));
    }
    ctx.out().Print(LeaseRecord(name, **lease));
    return kExitOk;
  }
  if (&spec == &kAcquire || &spec == &kSteal) {
    absl::StatusOr<std::string> machine = args->String("machine");
    absl::StatusOr<absl::Duration> ttl = args->Duration("ttl");
    absl::StatusOr<uint64_t> version = args->UintOr("version", 0);
    absl::StatusOr<uint64_t> index =
        &spec == &kSteal ? args->Uint("index") : uint64_t{0};
    for (const absl::Status& s :
         {machine.status(), ttl.status(), version.status(), index.status()}) {
      if (!s.ok()) return ctx.Fail(spec.name, kExitUsage, s.message());
    }
    absl::StatusOr<std::unique_ptr<Lease>> lease =
        &spec == &kSteal
            ? manager.StealLease(name, *machine, static_cast<int64_t>(*version),
                                 *ttl, *index)
            : manager.AcquireLease(name, *machine,
                                   static_cast<int64_t>(*version), *ttl);
    if (!lease.ok()) return ctx.Fail(spec.name, lease.status());
    if (*lease == nullptr) {
      return ctx.Fail(
          spec.name, kExitNotHeld,
          absl::StrCat("lease \"", name, "\": not acquired (",
                       &spec == &kSteal ? "it moved past that index or vanished"
                                        : "held by someone else",
                       ")"));
    }
    Record record = LeaseRecord(name, **lease);
    record.Add("fence", (*lease)->fence());
    ctx.out().Print(record);
    return kExitOk;
  }

  absl::StatusOr<std::unique_ptr<Lease>> held =
      HeldAt(manager, name, *args, &exit_code);
  if (!held.ok())
    return ctx.Fail(spec.name, static_cast<ExitCode>(exit_code),
                    held.status().message());
  if (&spec == &kRenew) {
    absl::StatusOr<absl::Duration> ttl = args->Duration("ttl");
    if (!ttl.ok())
      return ctx.Fail(spec.name, kExitUsage, ttl.status().message());
    if (absl::Status s = (*held)->Renew(*ttl); !s.ok())
      return ctx.Fail(spec.name, s);
    ctx.out().Print(LeaseRecord(name, **held));
    return kExitOk;
  }
  if (absl::Status s = (*held)->Release(); !s.ok())
    return ctx.Fail(spec.name, s);
  ctx.out().Print(Record().Add("name", name).Add("released", true));
  return kExitOk;
}

}  // namespace

int RunLease(Context& ctx, const std::vector<std::string>& words) {
  return RunSubcommand(ctx, "lease", kCommands, words, Run);
}

}  // namespace leasehold::cli
