// Tensor: factories, shapes, views, dtype conversions, copies, and the errors of each.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "fixture.h"
#include "tensor/allocator.h"
#include "tensor/device.h"
#include "tensor/tensor.h"

#if LEUKO_WITH_CUDA
#include "tensor/cuda/check_cuda.h"
#endif

using namespace leuko;
using doctest::Contains;

namespace {
uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// The bf16 bit pattern of a one-element conversion through the tensor path.
uint16_t bf16_bits_via_tensor(float f) {
  return Tensor::from_vector(std::vector<float>{f}, {1}).to(DType::bf16).data<bf16>()[0].bits;
}
}  // namespace

TEST_CASE("factories: shape, dtype, device and values") {
  Tensor e = Tensor::empty({2, 3});
  CHECK(e.defined());
  CHECK(e.shape() == Shape{2, 3});
  CHECK(e.dtype() == DType::f32);
  CHECK(e.device() == Device::CPU);
  CHECK_FALSE(e.is_cuda());
  CHECK(e.nbytes() == 24);

  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::i64}) {
    CAPTURE(dtype_name(dt));
    Tensor z = Tensor::zeros({3, 2}, dt), o = Tensor::ones({3, 2}, dt), f = Tensor::full({4}, -3.0, dt);
    CHECK(z.dtype() == dt);
    CHECK(z.nbytes() == 6 * dtype_size(dt));
    CHECK(z.to_double_vector() == std::vector<double>(6, 0.0));
    CHECK(o.to_double_vector() == std::vector<double>(6, 1.0));
    CHECK(f.to_double_vector() == std::vector<double>(4, -3.0));
  }
  CHECK(dtype_size(DType::f32) == 4);
  CHECK(dtype_size(DType::f64) == 8);
  CHECK(dtype_size(DType::bf16) == 2);
  CHECK(dtype_size(DType::i64) == 8);

  // from_vector copies the host values and converts them to the requested dtype.
  Tensor a = Tensor::from_vector(std::vector<float>{1.5f, -2.f, 3.25f, 0.f}, {2, 2});
  CHECK(a.dtype() == DType::f32);
  CHECK(a.to_vector() == std::vector<float>{1.5f, -2.f, 3.25f, 0.f});
  Tensor b = Tensor::from_vector(std::vector<double>{0.1, 0.2}, {2});
  CHECK(b.dtype() == DType::f64);
  CHECK(b.data<double>()[0] == 0.1);  // float64 kept exactly
  Tensor b32 = Tensor::from_vector(std::vector<double>{0.1, 0.2}, {2}, DType::f32);
  CHECK(b32.dtype() == DType::f32);
  CHECK(b32.data<float>()[0] == 0.1f);
  Tensor c = Tensor::from_vector(std::vector<int64_t>{7, -8, int64_t(1) << 60}, {3});
  CHECK(c.dtype() == DType::i64);
  CHECK(c.data<int64_t>()[2] == int64_t(1) << 60);

  // A 0-d scalar: no dimensions, one element.
  Tensor s = Tensor::scalar(2.5);
  CHECK(s.dim() == 0);
  CHECK(s.shape().empty());
  CHECK(s.numel() == 1);
  CHECK(s.item() == 2.5);
  CHECK(Tensor::scalar(4.0, DType::f64).dtype() == DType::f64);

  Tensor el = Tensor::empty_like(c), zl = Tensor::zeros_like(a);
  CHECK(el.shape() == c.shape());
  CHECK(el.dtype() == DType::i64);
  CHECK_FALSE(el.shares_storage(c));
  CHECK(zl.to_vector() == std::vector<float>(4, 0.f));

  // Zero-size tensors are valid and have no values.
  Tensor empty = Tensor::zeros({0, 5});
  CHECK(empty.numel() == 0);
  CHECK(empty.to_vector().empty());

  // CPU storage is 64-byte aligned (a cache line, any SIMD load).
  CHECK(reinterpret_cast<uintptr_t>(Tensor::empty({7}, DType::f64).raw_data()) % 64 == 0);
}

TEST_CASE("factories: errors") {
  CHECK_THROWS_WITH_AS(Tensor::empty({2, -1}), Contains("negative dimension in shape [2, -1]"), Error);
  CHECK_THROWS_WITH_AS(Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}),
                       Contains("from_vector: 3 values for shape [2, 2]"), Error);
  Tensor undefined;
  CHECK_FALSE(undefined.defined());
  CHECK_THROWS_WITH_AS(undefined.shape(), Contains("use of an undefined tensor"), Error);
  CHECK(to_string(undefined) == "Tensor(undefined)");
}

TEST_CASE("shape, numel, size with negative dims") {
  Tensor t = Tensor::zeros({2, 3, 4});
  CHECK(t.dim() == 3);
  CHECK(t.numel() == 24);
  CHECK(t.size(0) == 2);
  CHECK(t.size(2) == 4);
  CHECK(t.size(-1) == 4);
  CHECK(t.size(-3) == 2);
  CHECK_THROWS_WITH_AS(t.size(3), Contains("dimension 3 out of range for a tensor of shape [2, 3, 4]"), Error);
  CHECK_THROWS_WITH_AS(t.size(-4), Contains("out of range"), Error);
  CHECK_THROWS_WITH_AS(Tensor::scalar(1).size(0), Contains("out of range"), Error);
  CHECK(shape_numel({}) == 1);
  CHECK(shape_numel({3, 0, 2}) == 0);
  CHECK(shape_str({}) == "[]");
  CHECK(shape_str({5}) == "[5]");
  CHECK(shape_str({2, 3, 4}) == "[2, 3, 4]");
}

TEST_CASE("views share storage: reshape and flatten") {
  Tensor t = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor r = t.reshape({3, 2});
  CHECK(r.shape() == Shape{3, 2});
  CHECK(r.shares_storage(t));
  CHECK(r.raw_data() == t.raw_data());
  CHECK(r.to_vector() == t.to_vector());  // row-major: the same order
  // A write through one handle is seen through the other.
  r.data<float>()[5] = 50.f;
  CHECK(t.data<float>()[5] == 50.f);
  r.fill_(7.0);
  CHECK(t.to_vector() == std::vector<float>(6, 7.f));

  // -1 is inferred from the other dimensions.
  CHECK(t.reshape({-1}).shape() == Shape{6});
  CHECK(t.reshape({3, -1}).shape() == Shape{3, 2});
  CHECK(t.reshape({-1, 1, 2}).shape() == Shape{3, 1, 2});
  CHECK(t.reshape({1, 6, 1}).shape() == Shape{1, 6, 1});
  CHECK(Tensor::zeros({0, 4}).reshape({-1, 2}).shape() == Shape{0, 2});
  CHECK(Tensor::scalar(3).reshape({1, 1}).shape() == Shape{1, 1});
  CHECK(Tensor::zeros({1, 1}).reshape({}).dim() == 0);

  CHECK_THROWS_WITH_AS(t.reshape({4, 2}), Contains("reshape: cannot view [2, 3] (6 elements) as [4, 2]"), Error);
  CHECK_THROWS_WITH_AS(t.reshape({-1, -1}), Contains("reshape: more than one -1 in [-1, -1]"), Error);
  CHECK_THROWS_WITH_AS(t.reshape({4, -1}), Contains("reshape: cannot view [2, 3] as [4, -1]"), Error);
  CHECK_THROWS_WITH_AS(t.reshape({-2, -3}), Contains("reshape: negative size in [-2, -3]"), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({0, 4}).reshape({0, -1}), Contains("cannot view"), Error);

  Tensor x = Tensor::zeros({2, 3, 4, 5});
  CHECK(x.flatten().shape() == Shape{2, 60});
  CHECK(x.flatten(0).shape() == Shape{120});
  CHECK(x.flatten(2).shape() == Shape{2, 3, 20});
  CHECK(x.flatten(-1).shape() == Shape{2, 3, 4, 5});
  CHECK(x.flatten(-2).shape() == Shape{2, 3, 20});
  CHECK(Tensor::scalar(1).flatten(0).shape() == Shape{1});  // as torch.flatten of a 0-d tensor
  CHECK(Tensor::zeros({7}).flatten(0).shape() == Shape{7});
  CHECK(x.flatten().shares_storage(x));
  CHECK_THROWS_WITH_AS(x.flatten(4), Contains("flatten: start_dim out of range for [2, 3, 4, 5]"), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({7}).flatten(1), Contains("flatten: start_dim out of range for [7]"), Error);
  CHECK_THROWS_WITH_AS(x.flatten(-5), Contains("flatten: start_dim out of range"), Error);
}

TEST_CASE("copies do not share storage; detach does") {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3});
  Tensor c = t.clone();
  CHECK_FALSE(c.shares_storage(t));
  CHECK(c.to_vector() == t.to_vector());
  c.fill_(0.0);
  CHECK(t.to_vector() == std::vector<float>{1, 2, 3});
  Tensor d = t.detach();
  CHECK(d.shares_storage(t));
  CHECK_FALSE(d.requires_grad());
  // to() to the same device or dtype is the tensor itself (no copy).
  CHECK(t.to(DType::f32).shares_storage(t));
  CHECK(t.to(Device::CPU).shares_storage(t));
  CHECK(t.cpu().shares_storage(t));
  CHECK_FALSE(t.to(DType::f64).shares_storage(t));
  CHECK_FALSE(Tensor().shares_storage(t));
}

TEST_CASE("dtype conversions between float types") {
  // float32 -> float64 is exact; float64 -> float32 rounds to nearest.
  Tensor d = Tensor::from_vector(std::vector<double>{0.1, -1e-3, 3.0}, {3});
  Tensor f = d.to(DType::f32);
  CHECK(f.dtype() == DType::f32);
  CHECK(f.data<float>()[0] == 0.1f);
  CHECK(f.data<float>()[1] == -1e-3f);
  CHECK(f.data<float>()[2] == 3.0f);
  Tensor back = f.to(DType::f64);
  CHECK(back.data<double>()[0] == double(0.1f));

  // bf16 holds float32's exponent and 8 significant bits: small integers and powers of two
  // survive exactly, 1/3 becomes its nearest bf16.
  Tensor h = Tensor::from_vector(std::vector<float>{1.f, -256.f, 0.5f, 1.f / 3.f}, {4}).to(DType::bf16);
  CHECK(h.dtype() == DType::bf16);
  CHECK(h.nbytes() == 8);
  const std::vector<float> hv = h.to_vector();
  CHECK(hv[0] == 1.f);
  CHECK(hv[1] == -256.f);
  CHECK(hv[2] == 0.5f);
  CHECK(hv[3] == float_of(0x3EAB0000u));  // 1/3 = 0x3EAAAAAB rounds up to 0x3EAB
  CHECK(h.to(DType::f64).to_double_vector()[3] == double(float_of(0x3EAB0000u)));
}

TEST_CASE("bf16 rounding: round to nearest even, NaN stays NaN") {
  // Hand-worked cases: bf16 keeps the upper 16 bits of a float32; the lower 16 decide the
  // rounding, 0x8000 being exactly half an ulp.
  CHECK(float_to_bf16(1.0f).bits == 0x3F80);
  CHECK(float_to_bf16(float_of(0x3F808000u)).bits == 0x3F80);  // tie, 0x3F80 is even: down
  CHECK(float_to_bf16(float_of(0x3F818000u)).bits == 0x3F82);  // tie, 0x3F81 is odd: up
  CHECK(float_to_bf16(float_of(0x3F808001u)).bits == 0x3F81);  // above the tie: up
  CHECK(float_to_bf16(float_of(0x3F807FFFu)).bits == 0x3F80);  // below the tie: down
  CHECK(float_to_bf16(float_of(0xBF818000u)).bits == 0xBF82);  // negative: same rule
  CHECK(float_to_bf16(float_of(0x3F80FFFFu)).bits == 0x3F81);
  CHECK(float_to_bf16(float_of(0x3FFFFFFFu)).bits == 0x4000);  // the carry reaches the exponent
  CHECK(float_to_bf16(float_of(0x7F7FFFFFu)).bits == 0x7F80);  // float32's largest: infinity
  CHECK(float_to_bf16(INFINITY).bits == 0x7F80);
  CHECK(float_to_bf16(-INFINITY).bits == 0xFF80);
  CHECK(float_to_bf16(-0.0f).bits == 0x8000);
  CHECK(bf16_to_float(bf16{0x3F81}) == float_of(0x3F810000u));
  CHECK(bits_of(bf16_to_float(bf16{0x8000})) == 0x80000000u);

  // NaN stays NaN, including a signalling NaN whose payload sits in the low 16 bits only
  // (dropping those bits would leave 0x7F80: infinity).
  for (uint32_t nan_bits : {0x7FC00000u, 0x7F800001u, 0xFFC00000u, 0x7FFFFFFFu, 0xFF800001u}) {
    CAPTURE(nan_bits);
    const uint16_t b = float_to_bf16(float_of(nan_bits)).bits;
    CHECK(std::isnan(bf16_to_float(bf16{b})));
    CHECK(std::isnan(Tensor::from_vector(std::vector<float>{float_of(nan_bits)}, {1}).to(DType::bf16).to_vector()[0]));
  }

  // The tensor path uses the same conversion.
  CHECK(bf16_bits_via_tensor(float_of(0x3F818000u)) == 0x3F82);
  CHECK(bf16_bits_via_tensor(float_of(0x3F808000u)) == 0x3F80);
}

TEST_CASE("bf16 conversions agree with PyTorch bit for bit (NaN: NaN-ness only)") {
  // tests/fixtures/safetensors_bf16.safetensors: PyTorch's float32 -> bf16 and
  // float64 -> bf16 of values at and around the ties, subnormals, infinities and NaNs.
  // NaNs compare only as NaN: implementations pick different NaN bit patterns (PyTorch 0xFFFF
  // or 0x7FC0, CUDA 0x7FFF), all of them NaN.
  test::Fixture fx = test::load_fixture("safetensors_bf16");
  for (const char* src : {"f32", "f64"}) {
    CAPTURE(src);
    Tensor in = fx.file.find(src);
    Tensor want = fx.file.find(std::string(src) + "_to_bf16");
    REQUIRE(in.defined());
    REQUIRE(want.defined());
    REQUIRE(want.dtype() == DType::bf16);
    Tensor got = in.to(DType::bf16);
    REQUIRE(got.numel() == want.numel());
    const bf16* g = got.data<bf16>();
    const bf16* w = want.data<bf16>();
    for (int64_t i = 0; i < got.numel(); i++) {
      CAPTURE(i);
      if (std::isnan(bf16_to_float(w[i]))) {
        CHECK(std::isnan(bf16_to_float(g[i])));
      } else {
        CHECK(g[i].bits == w[i].bits);
      }
    }
    // bf16 -> float32 is exact: the bits move up by 16.
    const std::vector<float> back = want.to_vector();
    for (int64_t i = 0; i < want.numel(); i++) {
      if (!std::isnan(back[size_t(i)])) CHECK(bits_of(back[size_t(i)]) == uint32_t(w[i].bits) << 16);
    }
  }
}

TEST_CASE("int64 conversions") {
  // Integer -> float: exact while the value fits the significand.
  Tensor i = Tensor::from_vector(std::vector<int64_t>{-3, 0, 7, int64_t(1) << 40}, {4});
  CHECK(i.to(DType::f64).to_double_vector() == std::vector<double>{-3, 0, 7, double(int64_t(1) << 40)});
  CHECK(i.to(DType::f32).to_vector() == std::vector<float>{-3, 0, 7, float(int64_t(1) << 40)});
  // Float -> integer rounds to the nearest integer, halves away from zero (std::llround).
  // PyTorch truncates toward zero instead; leuko rounds so that a label or index computed in
  // floating point (2.9999999) is the integer it stands for.
  Tensor f = Tensor::from_vector(std::vector<double>{2.0, -5.0, 2.4, 2.6, -2.6, 2.5, -2.5, 2.9999999}, {8});
  Tensor fi = f.to(DType::i64);
  CHECK(fi.dtype() == DType::i64);
  const int64_t* p = fi.data<int64_t>();
  CHECK(std::vector<int64_t>(p, p + 8) == std::vector<int64_t>{2, -5, 2, 3, -3, 3, -3, 3});
  CHECK(Tensor::from_vector(std::vector<float>{1e10f}, {1}).to(DType::i64).data<int64_t>()[0] == 10000000000LL);
  // fill_ on int64 uses the same rounding.
  Tensor l = Tensor::zeros({2}, DType::i64);
  l.fill_(4.0);
  CHECK(l.data<int64_t>()[1] == 4);
  // int64 <-> bf16 has no conversion (bf16 is a storage type for float data).
  CHECK_THROWS_WITH_AS(i.to(DType::bf16), Contains("no conversion from int64 to bfloat16"), Error);
  CHECK_THROWS_WITH_AS(i.to(DType::f32).to(DType::bf16).to(DType::i64),
                       Contains("no conversion from bfloat16 to int64"), Error);
  // int64 values beyond 2^53 keep every bit when copied (not converted).
  Tensor big = Tensor::from_vector(std::vector<int64_t>{(int64_t(1) << 53) + 1}, {1});
  CHECK(big.clone().data<int64_t>()[0] == (int64_t(1) << 53) + 1);
}

TEST_CASE("to_vector, item, copy_, fill_") {
  Tensor d = Tensor::from_vector(std::vector<double>{0.1, 2.5}, {2});
  CHECK(d.to_vector() == std::vector<float>{0.1f, 2.5f});
  CHECK(d.to_double_vector() == std::vector<double>{0.1, 2.5});
  CHECK(Tensor::full({1, 1}, -4.5, DType::bf16).item() == -4.5);
  CHECK(Tensor::full({1}, 9, DType::i64).item() == 9.0);
  CHECK_THROWS_WITH_AS(d.item(), Contains("item() needs a one-element tensor, got shape [2]"), Error);

  Tensor dst = Tensor::zeros({2, 2});
  Tensor src = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  dst.copy_(src);
  CHECK(dst.to_vector() == src.to_vector());
  CHECK_FALSE(dst.shares_storage(src));
  // copy_ into a view writes the viewed storage.
  Tensor base = Tensor::zeros({4});
  base.reshape({2, 2}).copy_(src);
  CHECK(base.to_vector() == std::vector<float>{1, 2, 3, 4});
  CHECK_THROWS_WITH_AS(dst.copy_(Tensor::zeros({4})), Contains("copy_: source shape [4] differs from [2, 2]"), Error);
  CHECK_THROWS_WITH_AS(dst.copy_(Tensor::zeros({2, 2}, DType::f64)),
                       Contains("copy_: source is float64, destination float32"), Error);

  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    Tensor t = Tensor::empty({3}, dt);
    t.fill_(-0.75);
    CHECK(t.to_double_vector() == std::vector<double>(3, -0.75));
  }
  Tensor e = Tensor::empty({0});
  e.fill_(1.0);  // nothing to fill
  CHECK(e.numel() == 0);
}

TEST_CASE("typed access checks the dtype") {
  Tensor t = Tensor::zeros({2});
  CHECK(t.data<float>() != nullptr);
  CHECK_THROWS_WITH_AS(t.data<double>(), Contains("tensor holds float32, accessed as float64"), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({1}, DType::i64).data<bf16>(), Contains("holds int64, accessed as bfloat16"),
                       Error);
}

TEST_CASE("describe and to_string") {
  CHECK(Tensor::zeros({2, 3}).describe() == "float32[2, 3] on cpu");
  CHECK(Tensor::zeros({}, DType::bf16).describe() == "bfloat16[] on cpu");
  CHECK(Tensor::zeros({4}, DType::f64).describe() == "float64[4] on cpu");
  CHECK(Tensor::zeros({0, 1}, DType::i64).describe() == "int64[0, 1] on cpu");
  CHECK(to_string(Tensor::from_vector(std::vector<float>{1.5f, -2.f}, {2})) == "Tensor(float32[2] on cpu) [1.5, -2]");
  CHECK(to_string(Tensor::zeros({20}), 2) == "Tensor(float32[20] on cpu) [0, 0, ... (20 values)]");
  Tensor g = Tensor::zeros({1}).set_requires_grad();
  CHECK(to_string(g) == "Tensor(float32[1] on cpu, requires_grad) [0]");
}

TEST_CASE("float64 is rejected on the GPU, before any GPU is needed") {
  // The dtype check comes first, so the message is the same with or without a GPU and in a
  // CPU-only build.
  CHECK_THROWS_WITH_AS(Tensor::empty({2}, DType::f64, Device::CUDA), Contains("float64 tensors live on the CPU only"),
                       Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({2, 2}, DType::f64, Device::CUDA), Contains("CPU only"), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({2}, DType::f64).cuda(), Contains("float64 tensors live on the CPU only"), Error);
}

TEST_CASE("without a usable GPU, CUDA requests fail with a one-line reason") {
  if (cuda_available()) {
    // This machine has a GPU: the no-GPU path cannot be reached here (tests/gpu/ covers the GPU).
    CHECK(cuda_status().find("compute") != std::string::npos);
    return;
  }
#if LEUKO_WITH_CUDA
  // A CUDA build on a machine without a GPU: the reason is the probe's.
  const std::string why = cuda_status();
  CHECK(why.find("no usable CUDA GPU") != std::string::npos);
  CHECK_THROWS_WITH_AS(Tensor::empty({2}, DType::f32, Device::CUDA), Contains(why.c_str()), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({2}).cuda(), Contains(why.c_str()), Error);
#else
  // A CPU-only build says so.
  CHECK(cuda_status().find("CPU-only build") != std::string::npos);
  CHECK_THROWS_WITH_AS(Tensor::empty({2}, DType::f32, Device::CUDA), Contains("CPU-only build"), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({2}).cuda(), Contains("CPU-only build"), Error);
  CHECK_THROWS_WITH_AS(memory_stats(Device::CUDA), Contains("CPU-only build"), Error);
#endif
  CHECK_THROWS_WITH_AS(require_cuda("the GPU test"),
                       Contains(("the GPU test needs a CUDA GPU: " + cuda_status()).c_str()), Error);
  cuda_synchronize();  // a no-op without a GPU
  empty_cuda_cache();  // likewise
}

#if LEUKO_WITH_CUDA
TEST_CASE("a device allocation failed in cuBLAS or cuDNN is OutOfMemory; other failures are plain errors") {
  // What the trainer's and the bench's smaller-batch search and conv2d's no-workspace fallback
  // catch (no GPU needed: only the mapping from a library's status to the exception).
  CHECK_THROWS_AS(cuda::throw_cublas_error(CUBLAS_STATUS_ALLOC_FAILED, "cublasGemmEx(...)", "f.cpp", 1), OutOfMemory);
  CHECK_THROWS_AS(cuda::throw_cudnn_error(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED,
                                          "cudnnConvolutionForward(...)", "f.cpp", 2),
                  OutOfMemory);
  CHECK_THROWS_AS(cuda::throw_cuda_error(cudaErrorMemoryAllocation, "cudaMalloc(...)", "f.cpp", 3), OutOfMemory);
  for (auto thrower :
       {+[] { cuda::throw_cublas_error(CUBLAS_STATUS_INVALID_VALUE, "cublasGemmEx(...)", "f.cpp", 4); },
        +[] { cuda::throw_cudnn_error(CUDNN_STATUS_BAD_PARAM, "cudnnConvolutionForward(...)", "f.cpp", 5); }}) {
    bool plain = false;
    try {
      thrower();
    } catch (const OutOfMemory&) {
    } catch (const Error& e) {
      plain = std::string(e.what()).find(" failed: ") != std::string::npos;
    }
    CHECK(plain);
  }
}
#endif

TEST_CASE("precision setting") {
  CHECK(precision() == Precision::fp32);  // strict float32 by default
  CHECK(parse_precision("tf32") == Precision::tf32);
  CHECK(parse_precision("bf16") == Precision::bf16);
  CHECK(parse_precision("fp32") == Precision::fp32);
  CHECK(std::string(precision_name(Precision::tf32)) == "tf32");
  CHECK_THROWS_WITH_AS(parse_precision("fp16"), Contains("'fp16' is not one of fp32, tf32, bf16"), Error);
  set_precision(Precision::tf32);
  CHECK(precision() == Precision::tf32);
  set_precision(Precision::fp32);
}

TEST_CASE("error messages carry the source location below the project root") {
  try {
    Tensor::zeros({2}).size(5);
    FAIL("no error thrown");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("(tensor/tensor.cpp:") != std::string::npos);
    CHECK(what.find("/work/") == std::string::npos);
  }
}
