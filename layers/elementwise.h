// Differentiable elementwise ops: arithmetic with broadcasting, scalar forms, exp, log, and
// the broadcast of a bias over channels.
#pragma once

#include "tensor/tensor.h"

namespace leuko {

// Every op takes bf16 too (computed in float32, the output rounded to bf16 once; no bf16
// kernels, none of these is on a network's hot path).
// Memory order (tensor/tensor.h MemoryFormat): the unary and scalar ops keep their input's; a
// binary op of two same-shape operands of one order keeps it, and otherwise (broadcasting, mixed
// orders) computes on NCHW copies and returns a 4-D result as channels_last when an operand was.

// a op b with numpy/PyTorch broadcasting: shapes are right-aligned, and each dimension must
// be equal or 1 in one of them. Gradients are summed back to each input's shape.
// Dtypes as PyTorch's promotion: equal ones, or bf16 with a wider float type, which is the
// result's (bf16 + float32 is float32).
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

// Scalar forms.
Tensor add(const Tensor& x, double s);
Tensor sub(const Tensor& x, double s);
Tensor rsub(double s, const Tensor& x);  // s - x
Tensor mul(const Tensor& x, double s);
Tensor div(const Tensor& x, double s);
Tensor rdiv(double s, const Tensor& x);  // s / x
Tensor affine(const Tensor& x, double alpha, double beta);  // alpha * x + beta

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);

// out[n, c, ...] = x[n, c, ...] + bias[c]   x: (N, C, ...), bias: (C,)
// The bias of a convolution or a linear layer; its gradient sums over N and the spatial dims.
// A bf16 x with a float32 bias (a parameter) gives bf16, as the layers under bf16 activations.
// A channels_last x is computed as NCHW (C is dim 1) and the output is channels_last.
Tensor bias_add(const Tensor& x, const Tensor& bias);

// The result shape of broadcasting a against b; throws naming `op` when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& x, double s) { return add(x, s); }
inline Tensor operator+(double s, const Tensor& x) { return add(x, s); }
inline Tensor operator-(const Tensor& x, double s) { return sub(x, s); }
inline Tensor operator-(double s, const Tensor& x) { return rsub(s, x); }
inline Tensor operator*(const Tensor& x, double s) { return mul(x, s); }
inline Tensor operator*(double s, const Tensor& x) { return mul(x, s); }
inline Tensor operator/(const Tensor& x, double s) { return div(x, s); }
inline Tensor operator/(double s, const Tensor& x) { return rdiv(s, x); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace leuko
