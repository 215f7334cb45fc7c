// Tensor: a shape, an element type, a device and a reference to shared storage.
//
// A Tensor is a cheap handle (one shared_ptr); copies of the handle share the same data.
// Data are always contiguous and row-major (NCHW for images, as PyTorch), with one exception:
// a 4-D tensor may be channels_last, its shape still (N, C, H, W) but its elements stored in
// (N, H, W, C) order, as PyTorch's channels_last (the layout of cuDNN's fastest bf16
// convolutions; see channels_last_activations() in tensor/device.h). Views of the same
// storage (reshape, flatten) share it and differ only in shape. Tensors that require grad
// record the op that made them (grad_fn), and backward() sends gradients back to the
// leaves' .grad (see tensor/autograd.h).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "tensor/check.h"
#include "tensor/dtype.h"

namespace leuko {

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"

struct Node;

// The order of a 4-D tensor's elements in memory. nchw: row-major in its shape (every tensor
// but a channels_last one). channels_last: shape (N, C, H, W) stored as (N, H, W, C).
enum class MemoryFormat : uint8_t { nchw, channels_last };
const char* memory_format_name(MemoryFormat f);  // "nchw", "channels_last"

// Bytes on one device, freed through the allocator when the last view is gone.
struct Storage {
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device = Device::CPU;
  Storage(size_t nbytes, Device dev);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements, into storage
  Shape shape;
  DType dtype = DType::f32;
  MemoryFormat format = MemoryFormat::nchw;  // channels_last only for 4-D tensors
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient of a leaf
  std::shared_ptr<Node> grad_fn;     // the op that made this tensor (null for leaves)
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- Factories --------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::CPU);
  // A 4-D tensor in the given memory order (channels_last: stored (N, H, W, C)).
  static Tensor empty(const Shape& shape, DType dtype, Device device, MemoryFormat format);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::CPU);
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::CPU);
  // Copies host values (converted to dtype) into a new tensor on `device`.
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            DType dtype = DType::f32, Device device = Device::CPU);
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape,
                            DType dtype = DType::f64, Device device = Device::CPU);
  static Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape, Device device = Device::CPU);
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::CPU);
  static Tensor empty_like(const Tensor& t);  // same shape, dtype, device and memory format
  static Tensor zeros_like(const Tensor& t);

  // ---- Properties -------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return int64_t(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device; }
  bool is_cuda() const { return device() == Device::CUDA; }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  MemoryFormat memory_format() const { return impl().format; }
  bool is_channels_last() const { return impl().format == MemoryFormat::channels_last; }
  std::string describe() const;  // "float32[2, 3] on cpu", "bfloat16[2, 3, 4, 4] channels_last on cuda"

  // Typed pointer to the first element (host or device memory); checks the dtype.
  template <typename T>
  T* data() const {
    LEUKO_CHECK(dtype_of<T>::value == dtype(), "tensor holds ", dtype_name(dtype()),
                ", accessed as ", dtype_name(dtype_of<T>::value));
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;

  // ---- Copies and conversions (not recorded by autograd unless noted) ----------------------
  Tensor to(Device device) const;  // differentiable
  Tensor to(DType dtype) const;    // differentiable between float types
  // The same values in the given memory order (a transposing copy, or *this when it already is);
  // differentiable. channels_last needs a 4-D tensor.
  Tensor to(MemoryFormat format) const;
  Tensor cpu() const { return to(Device::CPU); }
  Tensor cuda() const { return to(Device::CUDA); }
  Tensor clone() const;   // a new contiguous copy, same device and dtype; differentiable
  Tensor detach() const;  // same storage, no history, requires_grad false
  void copy_(const Tensor& src);  // in place, any device to any device, same shape and dtype
  void fill_(double value);       // in place
  std::vector<float> to_vector() const;    // all values, converted to float, on the host, NCHW order
  std::vector<double> to_double_vector() const;
  double item() const;  // the value of a one-element tensor

  // ---- Views (share storage) --------------------------------------------------------------
  // One dimension may be -1; differentiable. A channels_last tensor is copied to NCHW first
  // (the new shape reads its elements in NCHW order), unless its H and W are 1 (then both
  // orders are the same, and the view is free).
  Tensor reshape(const Shape& shape) const;
  Tensor flatten(int64_t start_dim = 1) const;  // dims from start_dim merged into one
  bool shares_storage(const Tensor& other) const;

  // ---- Autograd ---------------------------------------------------------------------------
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool on = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  Tensor grad() const { return Tensor(impl().grad); }  // undefined until backward reaches it
  void set_grad(const Tensor& g);
  void zero_grad();  // drops the gradient (set to none, as PyTorch's default)
  // Back-propagates from this tensor. A scalar needs no `grad`; any other shape must be given
  // the upstream gradient. Frees the graph as it goes unless retain_graph.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  TensorImpl& impl() const {
    LEUKO_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Prints shape, dtype, device and (up to `max_values`) values: for the demo and debugging.
std::string to_string(const Tensor& t, int max_values = 16);

}  // namespace leuko
