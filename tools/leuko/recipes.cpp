#include "tools/leuko/recipes.h"

namespace leuko::cli {

RunConfig default_recipe(const std::string& model) {
  RunConfig c;
  c.model = model;
  // Common ground for training from scratch on ~2,600 images: AdamW with a cosine schedule
  // after a short linear warm-up, flips and quarter turns (cells have no up), label smoothing,
  // and loss weights against the 15% benign minority. The best epoch is chosen by the
  // validation F1 of the malignant class.
  c.optimizer = "adamw";
  c.schedule = "cosine";
  c.warmup_epochs = 3;
  c.augment = "flips";
  c.label_smoothing = 0.1;
  c.class_weights = true;
  c.best_metric = "f1";
  c.batch = 32;
  if (model == "alexnet" || model == "alexnet_lrn") {
    // No batch norm and 57M parameters: a small learning rate keeps Adam from blowing up the
    // first layers, and more epochs make up for it.
    c.epochs = 60;
    c.lr = 1e-4;
    c.weight_decay = 5e-4;
    c.batch = 64;
  } else if (model == "vgg16") {
    c.epochs = 50;
    c.lr = 5e-5;
    c.weight_decay = 5e-4;
    c.warmup_epochs = 5;
  } else if (model == "vgg16_bn") {
    c.epochs = 40;
    c.lr = 3e-4;
    c.weight_decay = 5e-4;
  } else if (model == "resnet18") {
    c.epochs = 30;
    c.lr = 1e-3;
    c.weight_decay = 0.05;
  } else if (model == "resnet50") {
    c.epochs = 50;
    c.lr = 1e-3;
    c.weight_decay = 0.05;
  } else if (model == "googlenet") {
    c.epochs = 50;
    c.lr = 1e-3;
    c.weight_decay = 0.01;
  } else if (model == "inception_v3") {
    c.epochs = 40;
    c.lr = 1e-3;
    c.weight_decay = 0.01;
    c.input = 299;
  }
  return c;
}

}  // namespace leuko::cli
