#include "tensor/tensor.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <type_traits>

#include "kernels/layout.h"
#include "kernels/memory.h"
#include "tensor/allocator.h"
#include "tensor/autograd.h"

namespace leuko {

namespace kc = kernels::cpu;
#if LEUKO_WITH_CUDA
namespace kg = kernels::cuda;
#endif

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Storage::Storage(size_t nbytes, Device dev) : bytes(nbytes), device(dev) {
  ptr = device_alloc(dev, nbytes);
}
Storage::~Storage() { device_free(device, ptr, bytes); }

namespace {

using detail::no_cuda_build;

// Copies bytes between any two devices.
void copy_bytes(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  if (dst_dev == Device::CPU && src_dev == Device::CPU) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if LEUKO_WITH_CUDA
  if (dst_dev == Device::CUDA && src_dev == Device::CPU) kg::copy_to_device(dst, src, bytes);
  else if (dst_dev == Device::CPU) kg::copy_to_host(dst, src, bytes);
  else kg::copy_on_device(dst, src, bytes);
#else
  no_cuda_build();
#endif
}

// out = in converted to out's dtype; both on the same device, same numel.
void convert_into(const Tensor& out, const Tensor& in) {
  const int64_t n = in.numel();
  if (out.dtype() == in.dtype()) {
    copy_bytes(out.device(), out.raw_data(), in.device(), in.raw_data(), in.nbytes());
    return;
  }
  if (in.is_cuda()) {
#if LEUKO_WITH_CUDA
    if (out.dtype() == DType::bf16 && in.dtype() == DType::f32) return kg::convert(out.data<bf16>(), in.data<float>(), n);
    if (out.dtype() == DType::f32 && in.dtype() == DType::bf16) return kg::convert(out.data<float>(), in.data<bf16>(), n);
    LEUKO_FAIL("no CUDA conversion from ", dtype_name(in.dtype()), " to ", dtype_name(out.dtype()),
               " (float64 is CPU-only)");
#else
    no_cuda_build();
#endif
  }
  auto dispatch_src = [&](auto* dst) {
    using D = std::remove_pointer_t<decltype(dst)>;
    switch (in.dtype()) {
      case DType::f32: kc::convert<D, float>(dst, in.data<float>(), n); return;
      case DType::f64: kc::convert<D, double>(dst, in.data<double>(), n); return;
      case DType::bf16:
        if constexpr (!std::is_same_v<D, int64_t>) return kc::convert<D, bf16>(dst, in.data<bf16>(), n);
        break;
      case DType::i64:
        if constexpr (!std::is_same_v<D, bf16>) return kc::convert<D, int64_t>(dst, in.data<int64_t>(), n);
        break;
    }
    LEUKO_FAIL("no conversion from ", dtype_name(in.dtype()), " to ", dtype_name(out.dtype()));
  };
  switch (out.dtype()) {
    case DType::f32: dispatch_src(out.data<float>()); break;
    case DType::f64: dispatch_src(out.data<double>()); break;
    case DType::bf16: dispatch_src(out.data<bf16>()); break;
    case DType::i64: dispatch_src(out.data<int64_t>()); break;
  }
}

}  // namespace

// ---- Factories ------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) LEUKO_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  if (device == Device::CUDA) {
    LEUKO_CHECK(dtype != DType::f64, "float64 tensors live on the CPU only (they exist for gradient checks)");
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device, MemoryFormat format) {
  LEUKO_CHECK(format == MemoryFormat::nchw || shape.size() == 4, "a channels_last tensor must have 4 dimensions ",
              "(N, C, H, W), got ", shape_str(shape));
  Tensor t = empty(shape, dtype, device);
  t.impl().format = format;
  return t;
}

const char* memory_format_name(MemoryFormat f) { return f == MemoryFormat::channels_last ? "channels_last" : "nchw"; }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }
Tensor Tensor::empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device(), t.memory_format()); }
Tensor Tensor::zeros_like(const Tensor& t) {
  Tensor z = empty_like(t);
  z.fill_(0.0);
  return z;
}

namespace {
template <typename V>
Tensor from_host(const std::vector<V>& values, const Shape& shape, DType dtype, Device device) {
  LEUKO_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
              " values for shape ", shape_str(shape));
  Tensor host = Tensor::empty(shape, dtype_of<V>::value, Device::CPU);
  std::memcpy(host.raw_data(), values.data(), values.size() * sizeof(V));
  return host.to(dtype).to(device);
}
}  // namespace

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, DType dtype, Device device) {
  return from_host(values, shape, dtype, device);
}
Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  return from_host(values, shape, dtype, device);
}
Tensor Tensor::from_vector(const std::vector<int64_t>& values, const Shape& shape, Device device) {
  return from_host(values, shape, DType::i64, device);
}

// ---- Properties -----------------------------------------------------------------------------

int64_t Tensor::size(int64_t d) const {
  const int64_t r = dim();
  if (d < 0) d += r;
  LEUKO_CHECK(d >= 0 && d < r, "dimension ", d, " out of range for a tensor of shape ", shape_str(shape()));
  return shape()[size_t(d)];
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype())) + shape_str(shape()) + (is_channels_last() ? " channels_last" : "") +
         " on " + device_name(device());
}

void* Tensor::raw_data() const {
  const TensorImpl& t = impl();
  return static_cast<char*>(t.storage->ptr) + t.offset * int64_t(dtype_size(t.dtype));
}

bool Tensor::shares_storage(const Tensor& other) const {
  return defined() && other.defined() && impl().storage == other.impl().storage;
}

// ---- Copies and conversions -----------------------------------------------------------------

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor out = empty(shape(), dtype(), device, memory_format());
  copy_bytes(device, out.raw_data(), this->device(), raw_data(), nbytes());
  if (autograd::needs_record({*this})) {
    const Device from = this->device();
    autograd::record(out, "to_device", {*this}, [from](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g.to(from)};
    });
  }
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  Tensor out = empty(shape(), dtype, device(), memory_format());  // element by element: the order is kept
  convert_into(out, *this);
  if (autograd::needs_record({*this})) {
    const DType from = this->dtype();
    autograd::record(out, "to_dtype", {*this}, [from](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g.to(from)};
    });
  }
  return out;
}

Tensor Tensor::to(MemoryFormat format) const {
  if (format == memory_format()) return *this;
  LEUKO_CHECK(dim() == 4, "to(", memory_format_name(format), "): needs a 4-D (N, C, H, W) tensor, got ",
              shape_str(shape()));
  Tensor out = empty(shape(), dtype(), device(), format);
  const int64_t N = size(0), C = size(1), HW = size(2) * size(3);
  const bool nhwc = format == MemoryFormat::channels_last;
  if (is_cuda()) {
#if LEUKO_WITH_CUDA
    if (dtype() == DType::f32) {
      if (nhwc) kg::to_nhwc(out.data<float>(), data<float>(), N, C, HW);
      else kg::to_nchw(out.data<float>(), data<float>(), N, C, HW);
    } else if (dtype() == DType::bf16) {
      if (nhwc) kg::to_nhwc(out.data<bf16>(), data<bf16>(), N, C, HW);
      else kg::to_nchw(out.data<bf16>(), data<bf16>(), N, C, HW);
    } else if (dtype() == DType::i64) {  // a channels_last max pooling's argmax indices, read back
      if (nhwc) kg::to_nhwc(out.data<int64_t>(), data<int64_t>(), N, C, HW);
      else kg::to_nchw(out.data<int64_t>(), data<int64_t>(), N, C, HW);
    } else {
      LEUKO_FAIL("to(", memory_format_name(format), "): no CUDA transpose for ", dtype_name(dtype()));
    }
#else
    no_cuda_build();
#endif
  } else {
    auto run = [&](auto* o, const auto* i) {
      if (nhwc) kc::to_nhwc(o, i, N, C, HW);
      else kc::to_nchw(o, i, N, C, HW);
    };
    switch (dtype()) {
      case DType::f32: run(out.data<float>(), data<float>()); break;
      case DType::f64: run(out.data<double>(), data<double>()); break;
      case DType::bf16: run(out.data<bf16>(), data<bf16>()); break;
      case DType::i64: run(out.data<int64_t>(), data<int64_t>()); break;
    }
  }
  if (autograd::needs_record({*this})) {
    const MemoryFormat from = memory_format();
    autograd::record(out, "to_memory_format", {*this}, [from](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g.to(from)};
    });
  }
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device(), memory_format());
  copy_bytes(device(), out.raw_data(), device(), raw_data(), nbytes());
  if (autograd::needs_record({*this})) {
    autograd::record(out, "clone", {*this}, [](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g};
    });
  }
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = this->impl().storage;
  impl->offset = this->impl().offset;
  impl->shape = shape();
  impl->dtype = dtype();
  impl->format = memory_format();
  return Tensor(std::move(impl));
}

void Tensor::copy_(const Tensor& src) {
  LEUKO_CHECK(src.shape() == shape(), "copy_: source shape ", shape_str(src.shape()), " differs from ",
              shape_str(shape()));
  LEUKO_CHECK(src.dtype() == dtype(), "copy_: source is ", dtype_name(src.dtype()), ", destination ",
              dtype_name(dtype()));
  // The bytes are copied in this tensor's memory order.
  const Tensor from = src.memory_format() == memory_format() ? src : src.detach().to(memory_format());
  copy_bytes(device(), raw_data(), from.device(), from.raw_data(), nbytes());
}

void Tensor::fill_(double value) {
  const int64_t n = numel();
  if (is_cuda()) {
#if LEUKO_WITH_CUDA
    if (dtype() == DType::f32) return kg::fill(data<float>(), n, float(value));
    if (dtype() == DType::bf16) return kg::fill(data<bf16>(), n, float(value));
    // Rounded to the nearest integer, as the CPU fill does.
    if (dtype() == DType::i64) return kg::fill(data<int64_t>(), n, int64_t(std::llround(value)));
    LEUKO_FAIL("fill_: no CUDA fill for ", dtype_name(dtype()), " (fill on the CPU and copy)");
#else
    no_cuda_build();
#endif
  }
  switch (dtype()) {
    case DType::f32: kc::fill(data<float>(), n, value); break;
    case DType::f64: kc::fill(data<double>(), n, value); break;
    case DType::bf16: kc::fill(data<bf16>(), n, value); break;
    case DType::i64: kc::fill(data<int64_t>(), n, value); break;
  }
}

std::vector<double> Tensor::to_double_vector() const {
  Tensor host = detach().to(MemoryFormat::nchw).to(Device::CPU).to(DType::f64);
  const double* p = host.data<double>();
  return std::vector<double>(p, p + host.numel());
}

std::vector<float> Tensor::to_vector() const {
  Tensor host = detach().to(MemoryFormat::nchw).to(Device::CPU).to(DType::f32);
  const float* p = host.data<float>();
  return std::vector<float>(p, p + host.numel());
}

double Tensor::item() const {
  LEUKO_CHECK(numel() == 1, "item() needs a one-element tensor, got shape ", shape_str(shape()));
  return to_double_vector()[0];
}

// ---- Views ----------------------------------------------------------------------------------

Tensor Tensor::reshape(const Shape& new_shape) const {
  // A channels_last tensor's elements are not in the order its shape reads, unless its planes
  // are single pixels: then both orders agree.
  if (is_channels_last() && size(2) * size(3) != 1) return to(MemoryFormat::nchw).reshape(new_shape);
  Shape s = new_shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == -1) {
      LEUKO_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(new_shape));
      infer = int64_t(i);
    } else {
      LEUKO_CHECK(s[i] >= 0, "reshape: negative size in ", shape_str(new_shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    LEUKO_CHECK(known > 0 && numel() % known == 0, "reshape: cannot view ", shape_str(shape()), " as ",
                shape_str(new_shape));
    s[size_t(infer)] = numel() / known;
  }
  LEUKO_CHECK(shape_numel(s) == numel(), "reshape: cannot view ", shape_str(shape()), " (", numel(),
              " elements) as ", shape_str(new_shape));
  Tensor out = detach();
  out.impl().shape = s;
  out.impl().format = MemoryFormat::nchw;
  if (autograd::needs_record({*this})) {
    Shape old = shape();
    autograd::record(out, "reshape", {*this}, [old](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g.reshape(old)};
    });
  }
  return out;
}

Tensor Tensor::flatten(int64_t start_dim) const {
  const int64_t r = dim();
  if (start_dim < 0) start_dim += r;
  // As torch.flatten: start_dim names an existing dimension (a 0-d tensor flattens to [1]).
  LEUKO_CHECK(start_dim >= 0 && (start_dim < r || start_dim == 0), "flatten: start_dim out of range for ",
              shape_str(shape()));
  Shape s(shape().begin(), shape().begin() + start_dim);
  int64_t rest = 1;
  for (int64_t i = start_dim; i < r; i++) rest *= shape()[size_t(i)];
  s.push_back(rest);
  return reshape(s);
}

// ---- Autograd -------------------------------------------------------------------------------

Tensor& Tensor::set_requires_grad(bool on) {
  LEUKO_CHECK(is_leaf(), "set_requires_grad on a tensor computed by '", grad_fn()->name,
              "': only leaves (parameters, inputs) can be marked");
  LEUKO_CHECK(!on || dtype() != DType::bf16, "bfloat16 tensors cannot require grad: keep float32 masters");
  impl().requires_grad = on;
  return *this;
}

void Tensor::set_grad(const Tensor& g) {
  if (g.defined()) {
    LEUKO_CHECK(g.shape() == shape(), "set_grad: gradient shape ", shape_str(g.shape()), " differs from ",
                shape_str(shape()));
  }
  impl().grad = g.impl_ptr();
}

void Tensor::zero_grad() { impl().grad.reset(); }

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  autograd::backward(*this, grad, retain_graph);
}

// ---- Printing -------------------------------------------------------------------------------

std::string to_string(const Tensor& t, int max_values) {
  if (!t.defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(" << t.describe();
  if (t.requires_grad()) os << ", requires_grad";
  if (t.grad_fn()) os << ", grad_fn=" << t.grad_fn()->name;
  os << ") [";
  std::vector<double> v = t.to_double_vector();
  for (size_t i = 0; i < v.size() && int(i) < max_values; i++) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v[i]);
    os << (i ? ", " : "") << buf;
  }
  if (int64_t(v.size()) > max_values) os << ", ... (" << v.size() << " values)";
  os << "]";
  return os.str();
}

}  // namespace leuko
