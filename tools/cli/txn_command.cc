// `leasehold txn`: a script from stdin run as one serializable transaction
// (lease/stm.h).
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "lease/stm.h"
#include "registry/clock.h"
#include "tools/cli/command.h"

namespace leasehold::cli {
namespace {

const CommandSpec kTxn = {
    "txn",
    "[--domain DIR] [--timeout DUR] < SCRIPT",
    "Run the script on stdin as one serializable transaction: every write\n"
    "happens together or not at all, and only if every read and guard still\n"
    "holds at the commit (otherwise it runs again). Script lines:\n"
    "  get KEY          print KEY's value\n"
    "  put KEY VALUE    set KEY (VALUE: the rest of the line)\n"
    "  del KEY          delete KEY\n"
    "  if KEY = VALUE   go on only if KEY holds VALUE; else write nothing\n"
    "                   and exit 1\n"
    "Blank lines and lines starting with '#' are skipped. KEYs are relative\n"
    "to the domain. Prints each read (value=, or absent=true) as of the\n"
    "commit, then the commit index. Exit 2 names a bad script line.",
    {{"domain", FlagSpec::kValue, "DIR",
      "the transaction domain (default <prefix>txn/)"},
     {"timeout", FlagSpec::kValue, "DUR",
      "give up after DUR (default: no limit)"}}};

struct Step {
  enum Kind { kGet, kPut, kDel, kIf };
  Kind kind;
  int line;
  std::string key;  // relative to the domain
  std::string value;
};

// One script line: its step, nullopt for a blank line or comment, or
// kInvalidArgument naming the line.
absl::StatusOr<std::optional<Step>> ParseLine(absl::string_view text,
                                              int line) {
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  if (rest.empty() || rest.front() == '#') return std::nullopt;
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", line, " \"", text, "\": ", why));
  };
  // The next space-separated word of `rest`.
  auto word = [&rest]() {
    size_t end = rest.find(' ');
    absl::string_view w = rest.substr(0, end);
    rest = end == absl::string_view::npos ? absl::string_view()
                                          : rest.substr(end + 1);
    return std::string(w);
  };
  const std::string op = word();
  Step step{Step::kGet, line, word(), ""};
  if (step.key.empty()) return bad("missing KEY");
  if (op == "get" || op == "del") {
    step.kind = op == "get" ? Step::kGet : Step::kDel;
    if (!rest.empty())
      return bad(absl::StrCat("\"", op, " KEY\" takes no value"));
  } else if (op == "put") {
    step.kind = Step::kPut;
    step.value = std::string(rest);
  } else if (op == "if") {
    step.kind = Step::kIf;
    if (word() != "=") return bad("expected \"if KEY = VALUE\"");
    step.value = std::string(rest);
  } else {
    return bad(
        absl::StrCat("unknown command \"", op, "\" (use get, put, del or if)"));
  }
  return step;
}

}  // namespace

int RunTxn(Context& ctx, const std::vector<std::string>& words) {
  int exit_code = kExitOk;
  absl::StatusOr<Args> args = ParseCommand(ctx, kTxn, words, 0, &exit_code);
  if (!args.ok()) return exit_code;
  absl::StatusOr<absl::Duration> timeout =
      args->DurationOr("timeout", absl::InfiniteDuration());
  if (!timeout.ok())
    return ctx.Fail(kTxn.name, kExitUsage, timeout.status().message());
  lease::TransactionOptions options;
  options.prefix =
      args->StringOr("domain", absl::StrCat(ctx.global().prefix, "txn/"));
  if (options.prefix.back() != '/') options.prefix.push_back('/');
  options.cancel = &ctx.interrupted();
  options.deadline = RealClock()->Now() + *timeout;

  std::vector<Step> steps;
  std::string text;
  for (int line = 1; std::getline(std::cin, text); ++line) {
    absl::StatusOr<std::optional<Step>> step = ParseLine(text, line);
    if (!step.ok())
      return ctx.Fail(kTxn.name, kExitUsage, step.status().message());
    if (step->has_value()) steps.push_back(**step);
  }
  absl::StatusOr<std::unique_ptr<registry::KeysApi>> keys = ctx.OpenRegistry();
  if (!keys.ok()) return ctx.Fail(kTxn.name, keys.status());

  std::vector<Record> reads;
  absl::StatusOr<lease::TransactionResult> result = lease::RunTransaction(
      keys->get(),
      [&](lease::Transaction& txn) -> absl::Status {
        reads.clear();
        for (const Step& step : steps) {
          const std::string key = options.prefix + step.key;
          switch (step.kind) {
            case Step::kPut:
              txn.Put(key, step.value);
              break;
            case Step::kDel:
              txn.Del(key);
              break;
            case Step::kGet:
            case Step::kIf: {
              absl::StatusOr<std::optional<std::string>> value = txn.Get(key);
              if (!value.ok()) return value.status();
              if (step.kind == Step::kIf) {
                if (*value != step.value) {
                  return absl::FailedPreconditionError(absl::StrCat(
                      "line ", step.line, ": guard failed: ", step.key,
                      value->has_value() ? absl::StrCat(" is \"", **value, "\"")
                                         : std::string(" is absent"),
                      ", not \"", step.value, "\"; nothing written"));
                }
                break;
              }
              Record read;
              read.Add("key", step.key);
              if (value->has_value()) {
                read.Add("value", **value);
              } else {
                read.Add("absent", true);
              }
              reads.push_back(std::move(read));
              break;
            }
          }
        }
        return absl::OkStatus();
      },
      options);
  if (!result.ok()) return ctx.Fail(kTxn.name, result.status());
  for (const Record& read : reads) ctx.out().Print(read);
  ctx.out().Print(Record()
                      .Add("committed", true)
                      .Add("index", result->commit_index)
                      .Add("attempts", result->attempts));
  return kExitOk;
}

}  // namespace leasehold::cli
