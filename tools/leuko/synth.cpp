// `leuko synth --out DIR [--per-class 60] [--size 224] [--seed 1] [--format jpg|png]`: writes the
// synthetic blood-smear dataset (data/synth.h) in the leukemia data's folder layout, so every
// other command can be tried without the real images.
#include <cstdio>

#include "data/synth.h"
#include "tools/leuko/commands.h"

namespace leuko::cli {

namespace {
void run_synth(const std::string& out, const data::SynthOptions& o) {
  const int64_t total = 4 * int64_t(o.per_class);
  std::printf("synth: %lld images (4 classes x %d), %dx%d %s, seed %llu -> %s\n", static_cast<long long>(total),
              o.per_class, o.size, o.size, o.format == "png" ? "PNG" : "JPEG", static_cast<unsigned long long>(o.seed),
              out.c_str());
  int last_decile = 0;
  const int64_t n = data::write_synth_dataset(out, o, [&](int64_t done, int64_t all) {
    const int decile = int(done * 10 / all);  // a line every tenth of the way
    if (decile > last_decile) {
      last_decile = decile;
      std::printf("  %lld/%lld\n", static_cast<long long>(done), static_cast<long long>(all));
      std::fflush(stdout);
    }
  });
  std::printf("wrote %lld images to %s (%s/: Benign, Early, Pre, Pro)\n", static_cast<long long>(n), out.c_str(),
              out.c_str());
}
}  // namespace

void register_synth(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "Write a synthetic blood-smear dataset (4 classes) in the leukemia layout");
  static std::string out;
  static data::SynthOptions o;
  cmd->add_option("--out", out, "Folder to write (created; class subfolders inside)")->required();
  cmd->add_option("--per-class", o.per_class, "Images per class")->check(CLI::Range(1, 1000000));
  cmd->add_option("--size", o.size, "Image side in pixels")->check(CLI::Range(16, 4096));
  cmd->add_option("--seed", o.seed, "Seed: the same seed writes the same files");
  cmd->add_option("--format", o.format, "jpg (as the real data) or png")->check(CLI::IsMember({"jpg", "png"}));
  cmd->add_option("--quality", o.quality, "JPEG quality")->check(CLI::Range(1, 100));
  cmd->callback([] { run_synth(out, o); });
}

}  // namespace leuko::cli
