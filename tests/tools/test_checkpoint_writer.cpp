// The checkpoint writer (tools/leuko/checkpoint_writer.h): a write queued in the background holds
// the values of the moment it was asked for, writes land in order, a queued last.safetensors
// gives way to a newer one (behind what was asked for before it), the queue is bounded, an error
// comes back from wait() or check() naming the file, and nothing queued is lost when the writer
// goes away.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

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
  SUBCASE("a queued last.safetensors is dropped for a newer one, behind the best asked for before it") {
    cli::CheckpointWriter writer;
    const std::string best = dir + "/best.safetensors";
    writer.hold(true);  // a slow disk: nothing starts
    writer.save(best, weights(1.0), {}, true, /*latest_only=*/false);
    writer.save(path, weights(1.0), {}, true, /*latest_only=*/true);
    CHECK(writer.queued() == 2);
    writer.save(path, weights(2.0), {}, true, /*latest_only=*/true);  // epoch 2: no new best
    CHECK(writer.queued() == 2);  // epoch 1's last dropped; best 1, then last 2
    writer.hold(false);
    writer.wait();
    CHECK(first_value(best) == 1.0);
    CHECK(first_value(path) == 2.0);
    // Writes without latest_only are never dropped: each lands, in order.
    writer.hold(true);
    writer.save(best, weights(3.0), {});
    writer.save(best, weights(4.0), {});
    CHECK(writer.queued() == 2);
    writer.hold(false);
    writer.wait();
    CHECK(first_value(best) == 4.0);
  }
  SUBCASE("save() waits for a place when kMaxQueued writes are queued, and check() reports an error without waiting") {
    cli::CheckpointWriter writer;
    writer.hold(true);
    for (size_t i = 0; i < cli::CheckpointWriter::kMaxQueued; i++) writer.save(path, weights(double(i)), {});
    CHECK(writer.queued() == cli::CheckpointWriter::kMaxQueued);
    // A third save blocks until the held writer starts one: release it from another thread.
    std::thread release([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      writer.hold(false);
    });
    writer.save(path, weights(9.0), {});
    release.join();
    CHECK(writer.queued() <= cli::CheckpointWriter::kMaxQueued);
    CHECK_NOTHROW(writer.check());
    writer.save(dir + "/no-such-folder/best.safetensors", weights(1.0), {});
    CHECK_THROWS_AS(writer.wait(), Error);
  }
  SUBCASE("check() throws a failed write's error without waiting for the queue") {
    cli::CheckpointWriter writer;
    const std::string nowhere = dir + "/no-such-folder/last.safetensors";
    writer.save(nowhere, weights(1.0), {});
    // The write fails on the writer's thread; check() reports it once it has.
    bool thrown = false;
    for (int i = 0; i < 200 && !thrown; i++) {
      try {
        writer.check();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      } catch (const Error& e) {
        thrown = std::string(e.what()).find(nowhere) != std::string::npos;
      }
    }
    CHECK(thrown);
    CHECK_NOTHROW(writer.wait());  // reported once
  }
  SUBCASE("the host copies of a finished or dropped write are reused by the next save, with its values") {
    cli::CheckpointWriter writer;
    const size_t bytes = 4 * 1000 * sizeof(float);
    writer.save(path, weights(1.0), {});
    for (int i = 0; i < 500 && writer.spare_bytes() == 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(writer.spare_bytes() == bytes);  // written, and its copy kept
    writer.hold(true);
    writer.save(path, weights(2.0), {}, true, /*latest_only=*/true);  // into the kept copy
    CHECK(writer.spare_bytes() == 0);
    writer.save(path, weights(3.0), {}, true, /*latest_only=*/true);  // a new copy; the queued one is dropped
    CHECK(writer.spare_bytes() == bytes);                             // and kept
    writer.save(dir + "/best.safetensors", weights(4.0), {});          // into the dropped one's copy
    CHECK(writer.spare_bytes() == 0);
    writer.hold(false);
    writer.wait();
    CHECK(writer.spare_bytes() == 0);  // wait() gives the copies back
    CHECK(first_value(path) == 3.0);   // the reused copies hold the values of their own save
    CHECK(first_value(dir + "/best.safetensors") == 4.0);
  }
  SUBCASE("at most two checkpoints' worth of host copies are kept") {
    cli::CheckpointWriter writer;
    const size_t bytes = 4 * 1000 * sizeof(float);  // each save's copy: the largest asked for
    writer.hold(true);
    writer.save(dir + "/a.safetensors", weights(1.0), {});
    writer.save(dir + "/b.safetensors", weights(2.0), {});
    // A third copy while two wait: save() blocks for a place until the writer is let go.
    std::thread release([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      writer.hold(false);
    });
    writer.save(dir + "/c.safetensors", weights(3.0), {});
    release.join();
    // Three copies were in use at once; once all are written, two are kept.
    for (int i = 0; i < 500 && (writer.queued() > 0 || writer.spare_bytes() < 2 * bytes); i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the last write's copy is kept by now
    CHECK(writer.spare_bytes() == 2 * bytes);
    writer.wait();
    CHECK(first_value(dir + "/c.safetensors") == 3.0);
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
