// The readers-writers contention test, on any registry: `contenders`
// RWMutex contenders, each with its own session, queue in a known order
// behind a writer that holds the lock, a mix of readers and writers. Once
// it unlocks, every contender records when it is in and out. The log must
// show: never a writer alongside anyone; each run of consecutive readers
// in at once (each waits for the others of its run before leaving); and
// FIFO order: a writer in only after everyone queued ahead of it is out, a
// reader only after every writer ahead of it is out.
#ifndef LEASEHOLD_TESTS_LEASE_RW_CONTENTION_H_
#define LEASEHOLD_TESTS_LEASE_RW_CONTENTION_H_

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lease/keeper.h"
#include "lease/rw_mutex.h"
#include "lease/session.h"
#include "registry/keys_api.h"
#include "tests/lease/lock_test_util.h"

namespace leasehold::lease::testing {

struct RWContentionResult {
  std::vector<std::string> violations;  // empty when all went right
  int most_readers = 0;                 // the most readers in at once
  int writers = 0;
  int done = 0;  // contenders that got in and out
};

// Whether contender i of the run is a writer: about a third are, in runs
// of readers of varied length.
inline bool IsWriter(int i) { return i % 7 == 0 || i % 5 == 3; }

inline RWContentionResult RunReadersWriters(registry::KeysApi* keys,
                                            Clock* clock,
                                            const std::string& prefix,
                                            int contenders,
                                            absl::Duration ttl) {
  KeeperOptions keeper_options;
  keeper_options.clock = clock;
  keeper_options.workers = 4;
  Keeper keeper(keeper_options);
  SessionOptions options;
  options.ttl = ttl;
  options.clock = clock;
  options.keeper = &keeper;
  options.prefix = prefix;
  const std::string dir = absl::StrCat(prefix, "lock/table");

  RWContentionResult result;
  std::mutex mu;  // guards the log below and result
  int readers_in = 0, writers_in = 0;
  std::vector<bool> in(contenders, false), out(contenders, false);
  auto violation = [&](std::string what) {
    result.violations.push_back(std::move(what));
  };
  // The first and one-past-last contender of i's run of readers.
  auto run_of = [&](int i) {
    int first = i, last = i + 1;
    while (first > 0 && !IsWriter(first - 1)) --first;
    while (last < contenders && !IsWriter(last)) ++last;
    return std::make_pair(first, last);
  };
  auto enter = [&](int i) {
    std::lock_guard<std::mutex> lock(mu);
    for (int j = 0; j < i; ++j) {
      if ((IsWriter(i) || IsWriter(j)) && !out[j]) {
        violation(absl::StrCat(IsWriter(i) ? "writer " : "reader ", i,
                               " in before ", j, " was out"));
      }
    }
    if (writers_in > 0 || (IsWriter(i) && readers_in > 0)) {
      violation(absl::StrCat(i, " in alongside ", writers_in, " writers and ",
                             readers_in, " readers"));
    }
    in[i] = true;
    if (IsWriter(i)) {
      ++writers_in;
    } else {
      result.most_readers = std::max(result.most_readers, ++readers_in);
    }
  };
  auto leave = [&](int i) {
    std::lock_guard<std::mutex> lock(mu);
    out[i] = true;
    --(IsWriter(i) ? writers_in : readers_in);
    ++result.done;
  };

  absl::StatusOr<std::unique_ptr<Session>> blocker_session =
      Session::Create(keys, options);
  if (!blocker_session.ok()) {
    result.violations.push_back(blocker_session.status().ToString());
    return result;
  }
  RWMutex blocker(blocker_session->get(), "table");
  if (absl::Status s = blocker.Lock(); !s.ok()) {
    result.violations.push_back(s.ToString());
    return result;
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < contenders; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<std::unique_ptr<Session>> session =
          Session::Create(keys, options);
      absl::Status status = session.status();
      if (status.ok()) {
        RWMutex mutex(session->get(), "table");
        status = IsWriter(i) ? mutex.Lock() : mutex.RLock();
        if (status.ok()) {
          enter(i);
          if (!IsWriter(i)) {
            // Readers of one run are in together.
            const auto [first, last] = run_of(i);
            if (!Eventually([&] {
                  std::lock_guard<std::mutex> lock(mu);
                  return std::all_of(in.begin() + first, in.begin() + last,
                                     [](bool b) { return b; });
                })) {
              std::lock_guard<std::mutex> lock(mu);
              violation(absl::StrCat("reader ", i, ": readers ", first, "..",
                                     last - 1, " never all in together"));
            }
          }
          leave(i);
          status = IsWriter(i) ? mutex.Unlock() : mutex.RUnlock();
        }
        if (status.ok()) status = (*session)->Close();
      }
      if (!status.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        violation(absl::StrCat(i, ": ", status.ToString()));
      }
    });
    // Queued in order: contender i's key is the (i+2)th.
    if (!Eventually([&] { return KeysUnder(keys, dir).size() == i + 2u; })) {
      std::lock_guard<std::mutex> lock(mu);
      violation(absl::StrCat(i, " never queued"));
      break;
    }
  }
  if (absl::Status s = blocker.Unlock(); !s.ok()) {
    std::lock_guard<std::mutex> lock(mu);
    violation(s.ToString());
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < contenders; ++i) result.writers += IsWriter(i);
  (*blocker_session)->Close().IgnoreError();
  keeper.Stop();
  return result;
}

}  // namespace leasehold::lease::testing

#endif  // LEASEHOLD_TESTS_LEASE_RW_CONTENTION_H_
