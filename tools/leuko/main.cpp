// leuko: the command line. `leuko --help` lists the subcommands; each lives in its own file.
// Every error is reported as one line "leuko: <what went wrong>" with exit status 1.
#include <cstdio>
#include <exception>

#include "tensor/check.h"
#include "tools/leuko/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"leuko: a from-scratch C++17/CUDA deep-learning framework for leukemia blood-smear images"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "leuko 0.1.0");
  leuko::cli::register_train(app);
  leuko::cli::register_demo(app);
  leuko::cli::register_gradcheck(app);
  leuko::cli::register_split(app);
  leuko::cli::register_synth(app);
  leuko::cli::register_info(app);
  leuko::cli::register_equivalence(app);
  leuko::cli::register_eval(app);
  leuko::cli::register_predict(app);
  leuko::cli::register_bench(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "leuko: %s\n", e.what());
    return 1;
  }
  return 0;
}
