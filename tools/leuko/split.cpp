// `leuko split --data DIR [--task binary|subtype] [--seed 42] [--json] [--out FILE]`: the seeded,
// stratified train / validation / test split of an image folder (data/split.h), as a table of
// per-class counts like the one in the leukemia data's README. Only lists the files: nothing is
// decoded. --json prints the split file instead of the table; --out writes it (atomically).
#include <cstdio>

#include "data/split.h"
#include "tools/leuko/commands.h"

namespace leuko::cli {

namespace {

void print_row(const std::string& name, const data::SplitCounts& c) {
  std::printf("%-14s %7lld %7lld %7lld %7lld\n", name.c_str(), static_cast<long long>(c.train),
              static_cast<long long>(c.val), static_cast<long long>(c.test), static_cast<long long>(c.total()));
}

void add(data::SplitCounts& to, const data::SplitCounts& c) {
  to.train += c.train;
  to.val += c.val;
  to.test += c.test;
}

void run_split(const std::string& dir, const std::string& task_text, uint64_t seed, bool json, const std::string& out) {
  const data::Task task = data::parse_task(task_text);
  const data::FolderListing listing = data::list_image_folder(dir);
  const data::Split split = data::make_split(listing, task, seed);
  if (!out.empty()) data::save_split(out, split);
  if (json) {
    std::fputs(data::split_to_json(split).c_str(), stdout);
    return;
  }
  std::printf("%s: %lld images, task %s, seed %llu (train 80%%, the held-out 20%% halved into val and test)\n\n",
              dir.c_str(), static_cast<long long>(listing.total()), data::task_name(task),
              static_cast<unsigned long long>(seed));
  std::printf("%-14s %7s %7s %7s %7s\n", "class", "train", "val", "test", "total");
  // Per folder, then per label of the task (the binary task merges the malignant folders).
  const data::LabelMap labels = data::make_labels(listing.folders, task);
  std::vector<data::SplitCounts> per_label(labels.class_names.size());
  data::SplitCounts all;
  for (size_t f = 0; f < split.folders.size(); f++) {
    const data::SplitCounts c = split.folder_counts(split.folders[f]);
    print_row(split.folders[f], c);
    add(per_label[size_t(labels.folder_label[f])], c);
    add(all, c);
  }
  if (task == data::Task::binary) {
    std::printf("\n");
    for (size_t l = 0; l < per_label.size(); l++) print_row(labels.class_names[l] + " (" + std::to_string(l) + ")", per_label[l]);
  }
  print_row("all", all);
  if (!out.empty()) std::printf("\nwrote the split to %s\n", out.c_str());
}

}  // namespace

void register_split(CLI::App& app) {
  auto* cmd = app.add_subcommand("split", "Show (or save) the seeded stratified train/val/test split of an image folder");
  static std::string dir, task = "binary", out;
  static uint64_t seed = 42;
  static bool json = false;
  cmd->add_option("--data", dir, "Image folder: one subfolder of images per class")->required();
  cmd->add_option("--task", task, "binary (Benign against the rest) or subtype (one class per folder)")
      ->check(CLI::IsMember({"binary", "subtype"}));
  cmd->add_option("--seed", seed, "Seed of the per-class shuffles");
  cmd->add_flag("--json", json, "Print the split file (JSON) instead of the table");
  cmd->add_option("--out", out, "Also write the split file (JSON) here");
  cmd->callback([] { run_split(dir, task, seed, json, out); });
}

}  // namespace leuko::cli
