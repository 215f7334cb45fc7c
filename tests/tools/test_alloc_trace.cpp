// LEUKO_ALLOC_TRACE and leuko_alloc_replay, end to end: a real `leuko bench` run on the CPU
// writes its trace, every line of which parses and every free of which matches a live
// allocation; the replay through the GPU allocator's policy then reports a peak of live blocks
// equal to the exact peak (the policy splits blocks, so it counts what was asked for).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "tools/run_helpers.h"

using namespace leuko;

namespace {

// "  caching allocator, live blocks:    123.4 MiB (peak)" -> 123.4
double number_after(const std::string& text, const std::string& label) {
  const size_t at = text.find(label);
  REQUIRE_MESSAGE(at != std::string::npos, "no '" << label << "' in:\n" << text);
  return std::stod(text.substr(at + label.size()));
}

}  // namespace

TEST_CASE("LEUKO_ALLOC_TRACE records a run; leuko_alloc_replay counts its peak exactly") {
  const std::string dir = test::scratch_dir("alloc-trace", "run");  // removed at exit
  std::filesystem::create_directories(dir);
  const std::string trace = dir + "/trace.txt", log = dir + "/bench.log", replay = dir + "/replay.txt";
  const std::string bench = "LEUKO_ALLOC_TRACE=" + trace + " " + std::string(LEUKO_BINARY) +
                            " bench --model resnet18 --device cpu --input 32 --batch 4 --warmup 1 --steps 1"
                            " --windows 1 > " + log + " 2>&1";
  INFO(bench);
  REQUIRE_MESSAGE(std::system(bench.c_str()) == 0, test::read_file(log));

  // Each line: "a cpu <bytes> <address>" or "f cpu <address>"; a free names a live address.
  std::ifstream in(trace);
  REQUIRE(in.good());
  std::set<std::string> live;
  size_t allocs = 0, frees = 0;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string op, device, address;
    size_t bytes = 0;
    words >> op >> device;
    INFO(line);
    REQUIRE(device == "cpu");  // a CPU run allocates nothing on the GPU
    if (op == "a") {
      REQUIRE(bool(words >> bytes >> address));
      REQUIRE(live.insert(address).second);  // not live twice
      allocs++;
    } else {
      REQUIRE(op == "f");
      REQUIRE(bool(words >> address));
      REQUIRE(live.erase(address) == 1);
      frees++;
    }
  }
  MESSAGE(allocs << " allocations, " << frees << " frees, " << live.size() << " live at exit");
  CHECK(allocs > 100);  // weights, activations, gradients of a few steps
  CHECK(frees > 50);

  const std::string cmd = std::string(LEUKO_ALLOC_REPLAY_BINARY) + " " + trace + " cpu > " + replay + " 2>&1";
  INFO(cmd);
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::string out = test::read_file(replay);
  INFO(out);
  const double exact = number_after(out, "live bytes at the peak, exactly:");
  const double blocks = number_after(out, "caching allocator, live blocks:");
  const double held = number_after(out, "caching allocator, segments held:");
  CHECK(exact > 1.0);  // MiB: ResNet-18's weights alone are 43 MiB
  CHECK(blocks == exact);
  CHECK(held >= blocks);

  // Bad use: a clear message, a failing status.
  CHECK(std::system((std::string(LEUKO_ALLOC_REPLAY_BINARY) + " > /dev/null 2>&1").c_str()) != 0);
  const std::string missing = std::string(LEUKO_ALLOC_REPLAY_BINARY) + " " + dir + "/none.txt cpu > " + replay + " 2>&1";
  CHECK(std::system(missing.c_str()) != 0);
  CHECK(test::read_file(replay).find("cannot read '" + dir + "/none.txt'") != std::string::npos);
  std::ofstream(dir + "/bad.txt") << "a cpu 12\n";
  const std::string bad = std::string(LEUKO_ALLOC_REPLAY_BINARY) + " " + dir + "/bad.txt cpu > " + replay + " 2>&1";
  CHECK(std::system(bad.c_str()) != 0);
  CHECK(test::read_file(replay).find("bad.txt:1: not a trace line: 'a cpu 12'") != std::string::npos);
}
