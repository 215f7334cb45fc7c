// The subcommands of the `leuko` command line, one file each. Each register_* function adds its
// subcommand, options and callback to the app.
#pragma once

#include <CLI/CLI.hpp>

namespace leuko::cli {

void register_demo(CLI::App& app);
void register_gradcheck(CLI::App& app);
void register_split(CLI::App& app);
void register_synth(CLI::App& app);
void register_info(CLI::App& app);
void register_equivalence(CLI::App& app);
void register_eval(CLI::App& app);
void register_predict(CLI::App& app);
void register_bench(CLI::App& app);
void register_train(CLI::App& app);

}  // namespace leuko::cli
