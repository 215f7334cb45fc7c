// Default training recipes: what `leuko train --model M` uses for every setting not given on
// the command line. Each is meant to train its network from random initialisation on the
// leukemia images (no pretrained weights can be fetched here); docs/RECIPES.md says what each
// was measured to reach.
#pragma once

#include "tools/leuko/run_config.h"

namespace leuko::cli {

// The recipe of `model` (any name make_net knows).
RunConfig default_recipe(const std::string& model);

}  // namespace leuko::cli
