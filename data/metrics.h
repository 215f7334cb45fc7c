// Classification metrics from a confusion matrix, with scikit-learn's definitions.
//
// The matrix counts (true class, predicted class) pairs: row t, column p, as
// sklearn.metrics.confusion_matrix. Per class c, with TP = M[c][c], FP = column c minus TP,
// FN = row c minus TP:
//   precision = TP / (TP + FP)     recall = TP / (TP + FN)     F1 = 2 P R / (P + R)
//   support   = TP + FN            (how many samples truly are c)
// A ratio whose denominator is 0 (a class never predicted, never present) is 0, as scikit-learn's
// zero_division=0. The averages run over all num_classes classes, present or not (as sklearn with
// labels=range(C)):
//   macro     the plain mean of the per-class values
//   weighted  the mean weighted by support
//   accuracy  trace / total
// The binary metrics treat one class as positive and all others as negative (for the binary
// task: index 1, malignant): precision, recall (sensitivity) and F1 of that class, as sklearn's
// average="binary", plus specificity (the recall of the negatives).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace leuko::data {

struct ClassMetrics {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

struct BinaryMetrics {
  int64_t positive = 1;  // the positive class
  double precision = 0, recall = 0, f1 = 0, specificity = 0;
  int64_t tp = 0, fp = 0, fn = 0, tn = 0;
};

class ConfusionMatrix {
 public:
  ConfusionMatrix() = default;
  // Class names default to "0", "1", ...; when given there must be num_classes of them.
  explicit ConfusionMatrix(int64_t num_classes, std::vector<std::string> class_names = {});

  // Counts one sample. Both indices must be in [0, num_classes).
  void add(int64_t pred, int64_t target);
  // Counts int64 (N,) predictions against int64 (N,) targets, on any device.
  void add(const Tensor& preds, const Tensor& targets);
  // Adds another matrix of the same classes (batches evaluated apart).
  void merge(const ConfusionMatrix& other);

  int64_t num_classes() const { return n_; }
  const std::vector<std::string>& class_names() const { return names_; }
  // Samples of true class `target` predicted as `pred`.
  int64_t count(int64_t target, int64_t pred) const;
  const std::vector<int64_t>& counts() const { return counts_; }  // (C, C) row-major, [target][pred]
  int64_t total() const;
  int64_t support(int64_t c) const;    // row sum: samples of true class c
  int64_t predicted(int64_t c) const;  // column sum: samples predicted as c

  double accuracy() const;
  ClassMetrics class_metrics(int64_t c) const;
  ClassMetrics macro_avg() const;     // support: the total
  ClassMetrics weighted_avg() const;  // support: the total
  BinaryMetrics binary(int64_t positive = 1) const;
  // Shorthands: class_metrics(c).precision, ..., macro_avg().f1.
  double precision(int64_t c) const { return class_metrics(c).precision; }
  double recall(int64_t c) const { return class_metrics(c).recall; }
  double f1(int64_t c) const { return class_metrics(c).f1; }
  double macro_precision() const { return macro_avg().precision; }
  double macro_recall() const { return macro_avg().recall; }
  double macro_f1() const { return macro_avg().f1; }

  // {"class_names", "confusion_matrix" (rows: true class), "total", "accuracy",
  //  "per_class": {name: {precision, recall, f1, support}}, "macro_avg", "weighted_avg",
  //  and, for two classes, "binary" with class 1 positive}.
  nlohmann::json to_json() const;
  // sklearn's classification_report (precision, recall, f1-score, support per class, then the
  // accuracy, macro avg and weighted avg rows), followed by the confusion matrix with the class
  // names on both axes.
  std::string report(int digits = 4) const;
  // The same with `names` in place of the matrix's own class names (empty: its own), and the
  // binary metrics of class `positive` (-1: none): in the JSON as "binary", in the report as a
  // line after the averages.
  nlohmann::json to_json(const std::vector<std::string>& names, int64_t positive) const;
  std::string report(const std::vector<std::string>& names, int64_t positive, int digits = 4) const;
  // Only the confusion matrix part of report().
  std::string matrix_text() const;
  std::string matrix_text(const std::vector<std::string>& names) const;

 private:
  int64_t n_ = 0;
  std::vector<std::string> names_;
  std::vector<int64_t> counts_;  // (C, C)

  // `names` when given (checked: one per class), else the matrix's own.
  const std::vector<std::string>& with_names(const std::vector<std::string>& names) const;
};

}  // namespace leuko::data
