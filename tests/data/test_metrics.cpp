// Classification metrics (data/metrics.h) on small examples computed by hand with scikit-learn's
// definitions (precision_recall_fscore_support with labels=range(C), zero_division=0;
// classification_report's layout). scikit-learn is not installed for /usr/bin/python3 here, so
// every expected value below is a fraction derived by hand from the listed labels, not taken
// from leuko's output.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "data/metrics.h"
#include "data_helpers.h"

using namespace leuko;
using data::ConfusionMatrix;

namespace {

ConfusionMatrix from_lists(int64_t classes, const std::vector<int64_t>& truth, const std::vector<int64_t>& pred,
                           std::vector<std::string> names = {}) {
  REQUIRE(truth.size() == pred.size());
  ConfusionMatrix m(classes, std::move(names));
  for (size_t i = 0; i < truth.size(); i++) m.add(pred[i], truth[i]);
  return m;
}

// Exact fractions in double: equal to ~1 ulp.
constexpr double kTol = 1e-12;

}  // namespace

TEST_CASE("metrics: three classes, precision differing from recall") {
  //   truth 0 0 0 0 1 1 2 2 2 2
  //   pred  0 0 1 2 1 0 2 2 1 1
  // Matrix (rows: truth):  [2 1 1]  support 4
  //                        [1 1 0]  support 2
  //                        [0 2 2]  support 4
  // column sums (predicted): 3, 4, 3.
  const ConfusionMatrix m = from_lists(3, {0, 0, 0, 0, 1, 1, 2, 2, 2, 2}, {0, 0, 1, 2, 1, 0, 2, 2, 1, 1});
  const std::vector<int64_t> expect_counts{2, 1, 1, 1, 1, 0, 0, 2, 2};
  CHECK(m.counts() == expect_counts);
  CHECK(m.count(0, 2) == 1);
  CHECK(m.count(2, 0) == 0);
  CHECK(m.total() == 10);
  CHECK(m.support(0) == 4);
  CHECK(m.predicted(1) == 4);
  CHECK(m.accuracy() == doctest::Approx(5.0 / 10).epsilon(kTol));

  // class 0: P = 2/3, R = 2/4, F1 = 2PR/(P+R) = 4/7
  // class 1: P = 1/4, R = 1/2, F1 = 1/3
  // class 2: P = 2/3, R = 2/4, F1 = 4/7
  const double P[3] = {2.0 / 3, 1.0 / 4, 2.0 / 3}, R[3] = {0.5, 0.5, 0.5}, F[3] = {4.0 / 7, 1.0 / 3, 4.0 / 7};
  const int64_t S[3] = {4, 2, 4};
  for (int c = 0; c < 3; c++) {
    CAPTURE(c);
    const data::ClassMetrics cm = m.class_metrics(c);
    CHECK(cm.precision == doctest::Approx(P[c]).epsilon(kTol));
    CHECK(cm.recall == doctest::Approx(R[c]).epsilon(kTol));
    CHECK(cm.f1 == doctest::Approx(F[c]).epsilon(kTol));
    CHECK(cm.support == S[c]);
    CHECK(m.precision(c) == cm.precision);
    CHECK(m.recall(c) == cm.recall);
    CHECK(m.f1(c) == cm.f1);
  }
  // macro: P = (2/3 + 1/4 + 2/3) / 3 = 19/36, R = 1/2, F1 = (4/7 + 1/3 + 4/7) / 3 = 31/63
  const data::ClassMetrics macro = m.macro_avg();
  CHECK(macro.precision == doctest::Approx(19.0 / 36).epsilon(kTol));
  CHECK(macro.recall == doctest::Approx(0.5).epsilon(kTol));
  CHECK(macro.f1 == doctest::Approx(31.0 / 63).epsilon(kTol));
  CHECK(macro.support == 10);
  CHECK(m.macro_f1() == macro.f1);
  // weighted by support 4, 2, 4: P = (4 * 2/3 + 2 * 1/4 + 4 * 2/3) / 10 = 7/12, R = 1/2,
  // F1 = (4 * 4/7 + 2 * 1/3 + 4 * 4/7) / 10 = 11/21
  const data::ClassMetrics w = m.weighted_avg();
  CHECK(w.precision == doctest::Approx(7.0 / 12).epsilon(kTol));
  CHECK(w.recall == doctest::Approx(0.5).epsilon(kTol));
  CHECK(w.f1 == doctest::Approx(11.0 / 21).epsilon(kTol));
  // class 1 against the rest: TP 1, FP 3, FN 1, TN 5; specificity 5/8.
  const data::BinaryMetrics b = m.binary(1);
  CHECK(b.tp == 1);
  CHECK(b.fp == 3);
  CHECK(b.fn == 1);
  CHECK(b.tn == 5);
  CHECK(b.precision == doctest::Approx(0.25).epsilon(kTol));
  CHECK(b.recall == doctest::Approx(0.5).epsilon(kTol));
  CHECK(b.f1 == doctest::Approx(1.0 / 3).epsilon(kTol));
  CHECK(b.specificity == doctest::Approx(5.0 / 8).epsilon(kTol));
}

TEST_CASE("metrics: a class never present and a class never predicted count as 0 (zero_division=0)") {
  //   truth 0 0 1 1 3
  //   pred  0 1 1 1 0
  // class 2: never present, never predicted; class 3: present once, never predicted.
  const ConfusionMatrix m = from_lists(4, {0, 0, 1, 1, 3}, {0, 1, 1, 1, 0});
  CHECK(m.accuracy() == doctest::Approx(3.0 / 5).epsilon(kTol));
  const data::ClassMetrics c0 = m.class_metrics(0), c1 = m.class_metrics(1), c2 = m.class_metrics(2),
                           c3 = m.class_metrics(3);
  CHECK(c0.precision == doctest::Approx(0.5).epsilon(kTol));  // 1 of 2 predicted
  CHECK(c0.recall == doctest::Approx(0.5).epsilon(kTol));     // 1 of 2 present
  CHECK(c1.precision == doctest::Approx(2.0 / 3).epsilon(kTol));
  CHECK(c1.recall == doctest::Approx(1.0).epsilon(kTol));
  CHECK(c1.f1 == doctest::Approx(0.8).epsilon(kTol));
  CHECK(c2.precision == 0.0);
  CHECK(c2.recall == 0.0);
  CHECK(c2.f1 == 0.0);
  CHECK(c2.support == 0);
  CHECK(c3.precision == 0.0);  // 0 / 0 predictions
  CHECK(c3.recall == 0.0);     // 0 / 1
  CHECK(c3.f1 == 0.0);
  CHECK(c3.support == 1);
  // The averages include the absent class 2 (as sklearn with labels=range(4)):
  // macro P = (1/2 + 2/3 + 0 + 0) / 4 = 7/24, R = (1/2 + 1 + 0 + 0) / 4 = 3/8, F1 = (1/2 + 4/5) / 4
  CHECK(m.macro_avg().precision == doctest::Approx(7.0 / 24).epsilon(kTol));
  CHECK(m.macro_avg().recall == doctest::Approx(3.0 / 8).epsilon(kTol));
  CHECK(m.macro_avg().f1 == doctest::Approx(1.3 / 4).epsilon(kTol));
  // weighted by 2, 2, 0, 1: P = (1 + 4/3) / 5 = 7/15, R = (1 + 2) / 5, F1 = (1 + 1.6) / 5
  CHECK(m.weighted_avg().precision == doctest::Approx(7.0 / 15).epsilon(kTol));
  CHECK(m.weighted_avg().recall == doctest::Approx(0.6).epsilon(kTol));
  CHECK(m.weighted_avg().f1 == doctest::Approx(0.52).epsilon(kTol));
  // The absent class as positive: nothing to find and nothing found.
  const data::BinaryMetrics b = m.binary(2);
  CHECK(b.precision == 0.0);
  CHECK(b.recall == 0.0);
  CHECK(b.f1 == 0.0);
  CHECK(b.specificity == doctest::Approx(1.0).epsilon(kTol));  // no false positives among 5 negatives
}

TEST_CASE("metrics: an empty matrix gives zeros, not NaN") {
  const ConfusionMatrix m(3);
  CHECK(m.total() == 0);
  CHECK(m.accuracy() == 0.0);
  for (const data::ClassMetrics& a : {m.class_metrics(1), m.macro_avg(), m.weighted_avg()}) {
    CHECK(a.precision == 0.0);
    CHECK(a.recall == 0.0);
    CHECK(a.f1 == 0.0);
  }
  CHECK(m.binary(1).specificity == 0.0);
  CHECK(m.class_names() == std::vector<std::string>{"0", "1", "2"});
}

TEST_CASE("metrics: binary task, malignant positive, and sklearn's classification_report layout") {
  //   truth 1 1 1 0 0 1 0 1
  //   pred  1 0 1 0 1 1 1 1
  // Matrix: benign [1 2], malignant [1 4].
  // benign:    P = 1/2, R = 1/3, F1 = 2/5,  support 3
  // malignant: P = 4/6, R = 4/5, F1 = 8/11, support 5
  const ConfusionMatrix m =
      from_lists(2, {1, 1, 1, 0, 0, 1, 0, 1}, {1, 0, 1, 0, 1, 1, 1, 1}, {"benign", "malignant"});
  const data::BinaryMetrics b = m.binary();  // class 1 by default
  CHECK(b.positive == 1);
  CHECK(b.tp == 4);
  CHECK(b.fp == 2);
  CHECK(b.fn == 1);
  CHECK(b.tn == 1);
  CHECK(b.precision == doctest::Approx(2.0 / 3).epsilon(kTol));
  CHECK(b.recall == doctest::Approx(0.8).epsilon(kTol));
  CHECK(b.f1 == doctest::Approx(8.0 / 11).epsilon(kTol));
  CHECK(b.specificity == doctest::Approx(1.0 / 3).epsilon(kTol));
  CHECK(m.accuracy() == doctest::Approx(5.0 / 8).epsilon(kTol));

  // classification_report(digits=4): names right-aligned to width 12 (len("weighted avg")), then
  // " " + " %9.4f" three times and " %9d". The numbers are the fractions above, rounded:
  //   macro P = (1/2 + 2/3)/2 = 0.58333, R = (1/3 + 4/5)/2 = 0.56667, F1 = (2/5 + 8/11)/2 = 0.56364
  //   weighted P = (3/2 + 10/3)/8 = 0.60417, R = 5/8, F1 = (6/5 + 40/11)/8 = 0.60455
  const std::string expect =
      "              precision    recall  f1-score   support\n"
      "\n"
      "      benign     0.5000    0.3333    0.4000         3\n"
      "   malignant     0.6667    0.8000    0.7273         5\n"
      "\n"
      "    accuracy                         0.6250         8\n"
      "   macro avg     0.5833    0.5667    0.5636         8\n"
      "weighted avg     0.6042    0.6250    0.6045         8\n"
      "\n"
      "confusion matrix (rows: true class, columns: predicted class)\n"
      "           benign  malignant\n"
      "   benign       1          2\n"
      "malignant       1          4\n";
  CHECK(m.report() == expect);
  // With a positive class, one more line after the averages.
  const std::string with_positive = m.report({"B", "M"}, 1);
  CHECK(with_positive.find("positive class M: precision 0.6667, recall 0.8000, f1 0.7273, specificity 0.3333\n") !=
        std::string::npos);
  CHECK(with_positive.find("\n      B  M\n   B  1  2\n   M  1  4\n") != std::string::npos);  // the matrix, names given

  // JSON: the same numbers, and the binary section for two classes.
  const nlohmann::json j = m.to_json();
  CHECK(j["total"] == 8);
  CHECK(j["confusion_matrix"] == nlohmann::json::parse("[[1, 2], [1, 4]]"));
  CHECK(j["class_names"] == nlohmann::json::parse(R"(["benign", "malignant"])"));
  CHECK(j["accuracy"].get<double>() == doctest::Approx(0.625).epsilon(kTol));
  CHECK(j["per_class"]["benign"]["recall"].get<double>() == doctest::Approx(1.0 / 3).epsilon(kTol));
  CHECK(j["per_class"]["malignant"]["support"] == 5);
  CHECK(j["macro_avg"]["f1"].get<double>() == doctest::Approx((0.4 + 8.0 / 11) / 2).epsilon(kTol));
  CHECK(j["weighted_avg"]["precision"].get<double>() == doctest::Approx((1.5 + 10.0 / 3) / 8).epsilon(kTol));
  CHECK(j["binary"]["positive"] == "malignant");
  CHECK(j["binary"]["specificity"].get<double>() == doctest::Approx(1.0 / 3).epsilon(kTol));
  CHECK_FALSE(ConfusionMatrix(3).to_json().contains("binary"));  // only for two classes
  CHECK(ConfusionMatrix(3).to_json({"a", "b", "c"}, 2)["binary"]["positive"] == "c");
}

TEST_CASE("metrics: counting from int64 tensors, merging, and bad arguments") {
  ConfusionMatrix m(3, {"a", "b", "c"});
  m.add(Tensor::from_vector(std::vector<int64_t>{0, 2, 2, 1}, {4}), Tensor::from_vector(std::vector<int64_t>{0, 2, 1, 1}, {4}));
  CHECK(m.count(0, 0) == 1);
  CHECK(m.count(2, 2) == 1);
  CHECK(m.count(1, 2) == 1);  // truth 1 predicted 2
  CHECK(m.count(1, 1) == 1);
  CHECK(m.total() == 4);
  ConfusionMatrix other(3);
  other.add(1, 0);
  m.merge(other);
  CHECK(m.count(0, 1) == 1);
  CHECK(m.total() == 5);

  using test::check_error;
  check_error([&] { m.add(3, 0); }, {"ConfusionMatrix::add", "3", "[0, 3)"});
  check_error([&] { m.add(0, -1); }, {"ConfusionMatrix::add", "-1"});
  check_error([&] { m.add(Tensor::zeros({3}), Tensor::from_vector(std::vector<int64_t>{0, 1, 2}, {3})); },
              {"ConfusionMatrix::add", "int64", "float32"});
  check_error([&] {
    m.add(Tensor::from_vector(std::vector<int64_t>{0, 1}, {2}), Tensor::from_vector(std::vector<int64_t>{0, 1, 2}, {3}));
  }, {"ConfusionMatrix::add", "[2]", "[3]"});
  check_error([&] { m.add(Tensor::from_vector(std::vector<int64_t>{0, 5}, {2}), Tensor::from_vector(std::vector<int64_t>{0, 1}, {2})); },
              {"ConfusionMatrix::add", "5"});
  check_error([&] { ConfusionMatrix(0); }, {"ConfusionMatrix", "0 classes"});
  check_error([&] { ConfusionMatrix(2, {"x"}); }, {"ConfusionMatrix", "1 class names for 2 classes"});
  check_error([&] { m.merge(ConfusionMatrix(2)); }, {"ConfusionMatrix::merge", "2 classes into 3"});
  check_error([&] { m.binary(3); }, {"ConfusionMatrix::binary", "positive class 3"});
  check_error([&] { m.report({"x", "y"}, -1); }, {"2 class names for 3 classes"});
}
