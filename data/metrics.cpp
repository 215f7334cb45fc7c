#include "data/metrics.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "tensor/check.h"

namespace leuko::data {

namespace {

// a / b, or 0 when b is 0 (scikit-learn's zero_division=0).
double ratio(double a, double b) { return b == 0 ? 0.0 : a / b; }

nlohmann::json metrics_json(const ClassMetrics& m) {
  return {{"precision", m.precision}, {"recall", m.recall}, {"f1", m.f1}, {"support", m.support}};
}

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

}  // namespace

ConfusionMatrix::ConfusionMatrix(int64_t num_classes, std::vector<std::string> class_names)
    : n_(num_classes), names_(std::move(class_names)) {
  LEUKO_CHECK(num_classes >= 1, "ConfusionMatrix: ", num_classes, " classes (need at least 1)");
  LEUKO_CHECK(names_.empty() || int64_t(names_.size()) == num_classes, "ConfusionMatrix: ", names_.size(),
              " class names for ", num_classes, " classes");
  if (names_.empty()) {
    for (int64_t c = 0; c < n_; c++) names_.push_back(std::to_string(c));
  }
  counts_.assign(size_t(n_ * n_), 0);
}

void ConfusionMatrix::add(int64_t pred, int64_t target) {
  LEUKO_CHECK(pred >= 0 && pred < n_ && target >= 0 && target < n_, "ConfusionMatrix::add: prediction ", pred,
              " or target ", target, " is outside [0, ", n_, ")");
  counts_[size_t(target * n_ + pred)]++;
}

void ConfusionMatrix::add(const Tensor& preds, const Tensor& targets) {
  LEUKO_CHECK(preds.dtype() == DType::i64 && targets.dtype() == DType::i64,
              "ConfusionMatrix::add: predictions and targets must be int64, got ", dtype_name(preds.dtype()), " and ",
              dtype_name(targets.dtype()));
  LEUKO_CHECK(preds.dim() == 1 && preds.shape() == targets.shape(),
              "ConfusionMatrix::add: predictions ", shape_str(preds.shape()), " and targets ",
              shape_str(targets.shape()), " must be the same (N,) shape");
  // The host copies are what make the GPU case work: counting is a few integers per sample.
  const Tensor p = preds.cpu(), t = targets.cpu();
  const int64_t* pp = p.data<int64_t>();  // (N,)
  const int64_t* tp = t.data<int64_t>();  // (N,)
  for (int64_t i = 0; i < p.numel(); i++) add(pp[i], tp[i]);
}

void ConfusionMatrix::merge(const ConfusionMatrix& other) {
  LEUKO_CHECK(other.n_ == n_, "ConfusionMatrix::merge: ", other.n_, " classes into ", n_);
  for (size_t i = 0; i < counts_.size(); i++) counts_[i] += other.counts_[i];
}

int64_t ConfusionMatrix::count(int64_t target, int64_t pred) const {
  LEUKO_CHECK(pred >= 0 && pred < n_ && target >= 0 && target < n_, "ConfusionMatrix::count: (", target, ", ",
              pred, ") is outside [0, ", n_, ")");
  return counts_[size_t(target * n_ + pred)];
}

int64_t ConfusionMatrix::total() const {
  int64_t s = 0;
  for (int64_t v : counts_) s += v;
  return s;
}

int64_t ConfusionMatrix::support(int64_t c) const {
  int64_t s = 0;
  for (int64_t p = 0; p < n_; p++) s += count(c, p);
  return s;
}

int64_t ConfusionMatrix::predicted(int64_t c) const {
  int64_t s = 0;
  for (int64_t t = 0; t < n_; t++) s += count(t, c);
  return s;
}

double ConfusionMatrix::accuracy() const {
  int64_t right = 0;
  for (int64_t c = 0; c < n_; c++) right += count(c, c);
  return ratio(double(right), double(total()));
}

ClassMetrics ConfusionMatrix::class_metrics(int64_t c) const {
  ClassMetrics m;
  const double tp = double(count(c, c));
  m.support = support(c);
  m.precision = ratio(tp, double(predicted(c)));
  m.recall = ratio(tp, double(m.support));
  m.f1 = ratio(2 * m.precision * m.recall, m.precision + m.recall);
  return m;
}

ClassMetrics ConfusionMatrix::macro_avg() const {
  ClassMetrics a;
  for (int64_t c = 0; c < n_; c++) {
    const ClassMetrics m = class_metrics(c);
    a.precision += m.precision / double(n_);
    a.recall += m.recall / double(n_);
    a.f1 += m.f1 / double(n_);
  }
  a.support = total();
  return a;
}

ClassMetrics ConfusionMatrix::weighted_avg() const {
  ClassMetrics a;
  a.support = total();
  if (a.support == 0) return a;  // nothing counted: every average is 0
  for (int64_t c = 0; c < n_; c++) {
    const ClassMetrics m = class_metrics(c);
    const double w = double(m.support) / double(a.support);
    a.precision += w * m.precision;
    a.recall += w * m.recall;
    a.f1 += w * m.f1;
  }
  return a;
}

BinaryMetrics ConfusionMatrix::binary(int64_t positive) const {
  LEUKO_CHECK(positive >= 0 && positive < n_, "ConfusionMatrix::binary: positive class ", positive,
              " is outside [0, ", n_, ")");
  BinaryMetrics b;
  b.positive = positive;
  b.tp = count(positive, positive);
  b.fp = predicted(positive) - b.tp;
  b.fn = support(positive) - b.tp;
  b.tn = total() - b.tp - b.fp - b.fn;
  const ClassMetrics m = class_metrics(positive);  // one-vs-rest is the positive class's own row
  b.precision = m.precision;
  b.recall = m.recall;
  b.f1 = m.f1;
  b.specificity = ratio(double(b.tn), double(b.tn + b.fp));
  return b;
}

nlohmann::json ConfusionMatrix::to_json() const { return to_json({}, n_ == 2 ? 1 : -1); }

std::string ConfusionMatrix::report(int digits) const { return report({}, -1, digits); }

nlohmann::json ConfusionMatrix::to_json(const std::vector<std::string>& names, int64_t positive) const {
  const std::vector<std::string>& nm = with_names(names);
  nlohmann::json j;
  j["class_names"] = nm;
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t t = 0; t < n_; t++) {
    std::vector<int64_t> row(counts_.begin() + t * n_, counts_.begin() + (t + 1) * n_);
    rows.push_back(row);
  }
  j["confusion_matrix"] = rows;
  j["total"] = total();
  j["accuracy"] = accuracy();
  nlohmann::json per = nlohmann::json::object();
  for (int64_t c = 0; c < n_; c++) per[nm[size_t(c)]] = metrics_json(class_metrics(c));
  j["per_class"] = per;
  j["macro_avg"] = metrics_json(macro_avg());
  j["weighted_avg"] = metrics_json(weighted_avg());
  if (positive >= 0) {
    const BinaryMetrics b = binary(positive);
    j["binary"] = {{"positive", nm[size_t(positive)]}, {"precision", b.precision}, {"recall", b.recall},
                   {"f1", b.f1}, {"specificity", b.specificity}, {"tp", b.tp}, {"fp", b.fp}, {"fn", b.fn},
                   {"tn", b.tn}};
  }
  return j;
}

std::string ConfusionMatrix::report(const std::vector<std::string>& names, int64_t positive, int digits) const {
  const std::vector<std::string>& nm = with_names(names);
  // The layout of sklearn.metrics.classification_report, column for column.
  const std::string last = "weighted avg";
  int width = int(std::max<size_t>(last.size(), size_t(digits)));
  for (const std::string& n : nm) width = std::max(width, int(n.size()));
  std::string out = format("%*s  %9s %9s %9s %9s\n\n", width, "", "precision", "recall", "f1-score", "support");
  auto row = [&](const std::string& name, const ClassMetrics& m) {
    out += format("%*s  %9.*f %9.*f %9.*f %9lld\n", width, name.c_str(), digits, m.precision, digits, m.recall,
                  digits, m.f1, static_cast<long long>(m.support));
  };
  for (int64_t c = 0; c < n_; c++) row(nm[size_t(c)], class_metrics(c));
  out += "\n";
  out += format("%*s  %9s %9s %9.*f %9lld\n", width, "accuracy", "", "", digits, accuracy(),
                static_cast<long long>(total()));
  row("macro avg", macro_avg());
  row(last, weighted_avg());
  if (positive >= 0) {
    const BinaryMetrics b = binary(positive);
    out += format("\npositive class %s: precision %.*f, recall %.*f, f1 %.*f, specificity %.*f\n",
                  nm[size_t(positive)].c_str(), digits, b.precision, digits, b.recall, digits, b.f1, digits,
                  b.specificity);
  }
  return out + "\n" + matrix_text(nm);
}

const std::vector<std::string>& ConfusionMatrix::with_names(const std::vector<std::string>& names) const {
  LEUKO_CHECK(names.empty() || int64_t(names.size()) == n_, "ConfusionMatrix: ", names.size(), " class names for ",
              n_, " classes");
  return names.empty() ? names_ : names;
}

std::string ConfusionMatrix::matrix_text() const { return matrix_text(names_); }

std::string ConfusionMatrix::matrix_text(const std::vector<std::string>& names) const {
  const std::vector<std::string>& nm = with_names(names);
  // Rows are the true classes, columns the predictions; every column as wide as its name or
  // its largest count.
  int name_width = 4;
  for (const std::string& n : nm) name_width = std::max(name_width, int(n.size()));
  std::vector<int> col(static_cast<size_t>(n_));  // (C,) column widths
  for (int64_t p = 0; p < n_; p++) {
    col[size_t(p)] = int(nm[size_t(p)].size());
    for (int64_t t = 0; t < n_; t++) col[size_t(p)] = std::max(col[size_t(p)], int(std::to_string(count(t, p)).size()));
  }
  std::string out = "confusion matrix (rows: true class, columns: predicted class)\n";
  out += format("%*s", name_width, "");
  for (int64_t p = 0; p < n_; p++) out += format("  %*s", col[size_t(p)], nm[size_t(p)].c_str());
  out += "\n";
  for (int64_t t = 0; t < n_; t++) {
    out += format("%*s", name_width, nm[size_t(t)].c_str());
    for (int64_t p = 0; p < n_; p++) out += format("  %*lld", col[size_t(p)], static_cast<long long>(count(t, p)));
    out += "\n";
  }
  return out;
}

}  // namespace leuko::data
