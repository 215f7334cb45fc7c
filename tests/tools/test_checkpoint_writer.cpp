// The checkpoint writer (tools/leuko/checkpoint_writer.h): a write queued in the background holds
// the values of the moment it was asked for, writes land in order, an error comes back from
// wait() naming the file, and nothing queued is lost when the writer goes away.
#include <doctest/doctest.h>

#include <filesystem>

#include "tensor/safetensors.h"
#include "tools/leuko/checkpoint_writer.h"
#include "tools/run_helpers.h"

namespace leuko::test {

namespace {

// A (4, 1000) tensor of `value`, big enough that its write is not instant.
NamedTensors weights(double value) {
  Tensor w = Tensor::empty({4, 1000});  // (4, 1000)
  w.fill_(value);
  return {{"w", w}};
}

double first_value(const std::string& path) { return load_safetensors(path).find("w").to_vector().at(0); }

}  // namespace

TEST_CASE("checkpoint writer: the values of the moment, in order, errors at wait, nothing lost") {
  const std::string dir = scratch_dir("writer", "files");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/last.safetensors";

  SUBCASE("a background write copies the tensors first: changing them after save() changes nothing") {
    cli::CheckpointWriter writer;
    NamedTensors t = weights(1.0);
    writer.save(path, t, {{"leuko.epoch", "1"}});
    t[0].second.fill_(2.0);  // the next optimizer step, in place
    writer.wait();
    CHECK(first_value(path) == 1.0);
    CHECK(load_safetensors(path).metadata.at("leuko.epoch") == "1");
  }
  SUBCASE("writes to one file land in the order asked for: the last one stays") {
    cli::CheckpointWriter writer;
    for (int i = 1; i <= 5; i++) writer.save(path, weights(double(i)), {});
    writer.wait();
    CHECK(first_value(path) == 5.0);
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  }
  SUBCASE("a write in line (background false) is on disk when save() returns, after the queued ones") {
    cli::CheckpointWriter writer;
    writer.save(path, weights(3.0), {});
    writer.save(path, weights(4.0), {}, /*background=*/false);
    CHECK(first_value(path) == 4.0);
  }
  SUBCASE("a failed write is thrown by the next wait(), naming the file; the writer goes on") {
    cli::CheckpointWriter writer;
    const std::string nowhere = dir + "/no-such-folder/best.safetensors";
    writer.save(nowhere, weights(1.0), {});
    writer.save(path, weights(6.0), {});
    const std::string expected = nowhere + ": cannot write";
    CHECK_THROWS_WITH_AS(writer.wait(), doctest::Contains(expected.c_str()), Error);
    CHECK_NOTHROW(writer.wait());  // reported once
    CHECK(first_value(path) == 6.0);  // the write after it still landed
  }
  SUBCASE("the writer's end waits for what is queued") {
    {
      cli::CheckpointWriter writer;
      writer.save(path, weights(7.0), {});
    }
    CHECK(first_value(path) == 7.0);
  }
}

}  // namespace leuko::test
