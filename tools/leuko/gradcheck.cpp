// `leuko gradcheck [OP...]`: the gradient checks the tests run, per op: the largest relative
// error between the analytic backward and float64 central differences, and pass or fail.
// Exits non-zero if any case fails or an OP is unknown.
#include <cstdio>
#include <map>
#include <set>

#include "layers/gradcheck/cases.h"
#include "tools/leuko/commands.h"

namespace leuko::cli {

namespace {
int run_gradcheck(const std::vector<std::string>& ops, bool verbose) {
  std::vector<GradcheckCase> cases = all_gradcheck_cases();
  std::set<std::string> known;
  for (const auto& c : cases) known.insert(c.op);
  for (const auto& op : ops) {
    if (!known.count(op)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw Error("gradcheck: unknown op '" + op + "' (known: " + list + ")");
    }
  }
  struct Row {
    int cases = 0, failed = 0;
    double worst = 0;
    std::string where;
  };
  std::map<std::string, Row> rows;
  std::vector<std::string> order;
  for (auto& c : cases) {
    if (!ops.empty() && std::find(ops.begin(), ops.end(), c.op) == ops.end()) continue;
    GradcheckOptions opt;
    opt.rtol = c.rtol;
    GradcheckResult r = gradcheck(c.f, c.inputs, opt);
    if (!rows.count(c.op)) order.push_back(c.op);
    Row& row = rows[c.op];
    row.cases++;
    if (!r.ok) row.failed++;
    if (r.max_rel_error >= row.worst) {
      row.worst = r.max_rel_error;
      row.where = c.name + ": " + r.worst;
    }
    if (verbose || !r.ok) {
      std::printf("  %-22s %-48s %10.2e  %s\n", c.op.c_str(), c.name.c_str(), r.max_rel_error, r.ok ? "pass" : "FAIL");
      if (!r.ok) std::printf("      worst element: %s\n", r.worst.c_str());
    }
  }
  std::printf("%-22s %6s %14s  %s\n", "op", "cases", "max rel error", "result");
  int failed = 0;
  for (const auto& op : order) {
    const Row& row = rows[op];
    failed += row.failed;
    std::printf("%-22s %6d %14.2e  %s\n", op.c_str(), row.cases, row.worst, row.failed ? "FAIL" : "pass");
  }
  std::printf("%d case(s) failed (float64, central differences, eps 1e-6)\n", failed);
  return failed == 0 ? 0 : 1;
}
}  // namespace

void register_gradcheck(CLI::App& app) {
  auto* cmd = app.add_subcommand("gradcheck", "Check every op's backward against finite differences");
  static std::vector<std::string> ops;
  static bool verbose = false;
  cmd->add_option("OP", ops, "Ops to check (default: all)");
  cmd->add_flag("-v,--verbose", verbose, "Print every case, not only failures");
  cmd->callback([] {
    const int rc = run_gradcheck(ops, verbose);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace leuko::cli
