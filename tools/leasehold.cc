// leasehold: leases, locks and leader election on etcd v2, from the shell.
//
//   leasehold [--registry URI] [--prefix P] [-o text|json] COMMAND [ARGS…]
//
// Exit codes: 0 ok, 1 not acquired / not held / lost, 2 usage or invalid
// input, 3 registry unavailable.
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tools/cli/command.h"

namespace leasehold::cli {
namespace {

struct TopCommand {
  const char* name;
  const char* summary;
  int (*run)(Context&, const std::vector<std::string>&);
};

const TopCommand kTopCommands[] = {
    {"lease",
     "get, list, acquire, renew, steal, release and watch fleet-style leases",
     RunLease},
    {"lock",
     "wait for a lock, run a command while holding it, pass its status on",
     RunLock},
    {"elect", "campaign for leadership, run a command while leader", RunElect},
    {"leader", "print the current leader of an election", RunLeader},
    {"observe", "print each new leader of an election until interrupted",
     RunObserve},
    {"barrier",
     "hold, release or wait for a barrier; enter a double barrier around a "
     "command",
     RunBarrier},
    {"txn",
     "run a script of gets, puts, deletes and guards as one atomic "
     "transaction",
     RunTxn},
    {"sim",
     "the scheduler simulation, on mem: unless --registry; ends with a safety "
     "verdict",
     RunSim},
    {"agent",
     "one scheduler agent of the simulation, for a run across processes",
     RunAgent},
};

constexpr char kGlobalUsage[] =
    "usage: leasehold [--registry URI] [--prefix P] [-o text|json] COMMAND "
    "[ARGS...]\n"
    "\n"
    "global flags:\n"
    "  --registry URI   mem:, etcd://host:port[,host:port...][?options] or "
    "etcd+https://...\n"
    "                   (default: $LEASEHOLD_REGISTRY, else "
    "etcd://127.0.0.1:2379)\n"
    "                   credentials: "
    "?username=U&password-file=PATH, or no username in\n"
    "                   the URI and $LEASEHOLD_USERNAME + $LEASEHOLD_PASSWORD "
    "(password= on\n"
    "                   a command line is visible to other users in ps)\n"
    "  --prefix P       key prefix (default /leasehold/; fleet's is "
    "/_coreos.com/fleet/)\n"
    "  -o text|json     output format (default text)\n"
    "\n"
    "exit codes: 0 ok, 1 not acquired / not held / lost, 2 usage, 3 registry "
    "unavailable\n"
    "\n"
    "commands (each takes --help):\n";

void PrintUsage(std::ostream& out) {
  out << kGlobalUsage;
  for (const TopCommand& command : kTopCommands) {
    out << "  " << command.name
        << std::string(10 - std::string(command.name).size(), ' ')
        << command.summary << "\n";
  }
}

// SIGINT and SIGTERM are taken by a thread of their own, so that commands
// see them as a cancel (and `lock` can forward them) instead of dying with
// their lock held. Blocked before any other thread starts.
class SignalWatcher {
 public:
  explicit SignalWatcher(Context& ctx) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR1);  // our own "stop watching"
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this, &ctx] {
      int signal = 0;
      while (sigwait(&set_, &signal) == 0 && signal != SIGUSR1)
        ctx.Interrupt(signal);
    });
  }
  ~SignalWatcher() {
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }

 private:
  sigset_t set_;
  std::thread thread_;
};

int Main(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  GlobalOptions global;
  size_t i = 0;
  for (; i < words.size() && absl::StartsWith(words[i], "-"); ++i) {
    const std::string& word = words[i];
    if (word == "--help" || word == "-h") {
      PrintUsage(std::cout);
      return kExitOk;
    }
    std::string flag = word;
    std::string value;
    if (const size_t eq = word.find('='); eq != std::string::npos) {
      flag = word.substr(0, eq);
      value = word.substr(eq + 1);
    } else if (word == "--registry" || word == "--prefix" || word == "-o") {
      if (i + 1 >= words.size()) {
        std::cerr << "leasehold: flag " << word << " needs a value\n";
        return kExitUsage;
      }
      value = words[++i];
    }
    if (flag == "--registry") {
      global.registry = value;
    } else if (flag == "--prefix") {
      global.prefix = value;
    } else if (flag == "-o" || flag == "--output") {
      if (value != "text" && value != "json") {
        std::cerr << "leasehold: -o \"" << value << "\": use text or json\n";
        return kExitUsage;
      }
      global.json = value == "json";
    } else {
      std::cerr << "leasehold: unknown flag \"" << word << "\"\n";
      PrintUsage(std::cerr);
      return kExitUsage;
    }
  }
  if (i == words.size()) {
    std::cerr << "leasehold: missing command\n";
    PrintUsage(std::cerr);
    return kExitUsage;
  }
  const std::string command = words[i];
  const std::vector<std::string> rest(words.begin() + i + 1, words.end());
  for (const TopCommand& top : kTopCommands) {
    if (command == top.name) {
      Context ctx(global, std::cout, std::cerr);
      SignalWatcher signals(ctx);
      return top.run(ctx, rest);
    }
  }
  std::cerr << "leasehold: unknown command \"" << command << "\"\n";
  PrintUsage(std::cerr);
  return kExitUsage;
}

}  // namespace
}  // namespace leasehold::cli

int main(int argc, char** argv) { return leasehold::cli::Main(argc, argv); }
