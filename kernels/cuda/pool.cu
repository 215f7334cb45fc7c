// CUDA pooling kernels. Forward: one thread per output element. Backward: one thread per
// INPUT element, which gathers the gradients of every window that contains it, walking the
// windows in a fixed order (kernels/pool.h's windows_containing). Two threads never write the
// same element, so there are no atomics and every run gives the same bits.
//
// Every kernel is templated on its storage type T, float or __nv_bfloat16 (bf16 activations):
// it loads values into float, computes in float and stores with one rounding (common.cuh's
// load and store<T>). For float both are the identity, so the float32 kernels are unchanged.
//
// And on its memory order L, Nchw or Nhwc (channels_last): L says where each thread's element
// lies, and the loops over a window are the same for both (kernels/pool.h).
//
// And, through L, on its index type I: int32_t when every integer of the pooling fits in it
// (fits_int32: tensors of fewer than 2^31 elements), int64_t otherwise. Why: a GPU has no
// integer divide instruction. A thread divides a dozen times or so to split its flat index into
// plane, row and column and to find its windows; in int64 each division is a software routine
// (some 20 instructions even when both operands fit in 32 bits), enough to make the kernels
// bound by that arithmetic rather than by memory. In int32, dividing by a number fixed at launch
// is a multiply-high, an add and a shift (Divider, kernels/divider.h). Both index types give the
// same integers, and the float operations are the same ones in the same order: the results do
// not depend on I.
#include <cfloat>
#include <climits>

#include "kernels/cuda/common.cuh"
#include "kernels/divider.h"
#include "kernels/pool.h"

namespace leuko::kernels::cuda {
namespace {

// Whether every integer the kernels compute for p fits in int32_t, as the Divider<int32_t>
// needs: the flat indices of x and out (and of their planes' pixels), the window bounds
// (pool.h: o * s - pad + k, i + pad), an average's divisor (at most kh * kw) and the adaptive
// rule's products (o * size + out - 1 and (i + 1) * out, up to (out + 1) * size + out). An empty
// output takes the general path: the adaptive rule divides by OH and OW.
bool fits_int32(const Pool2d& p) {
  const int64_t m = INT32_MAX;
  if (p.OH < 1 || p.OW < 1) return false;
  return p.planes * p.H * p.W <= m && p.planes * p.OH * p.OW <= m &&        // flat indices
         p.OH * p.sh + p.kh + p.ph <= m && p.OW * p.sw + p.kw + p.pw <= m &&  // window ends
         p.H + p.ph <= m && p.W + p.pw <= m &&                                // windows_containing
         p.kh * p.kw <= m &&                                                  // avg divisor
         (p.OH + 1) * p.H + p.OH <= m && (p.OW + 1) * p.W + p.OW <= m;        // adaptive rule
}

// The geometry in the index type I, with the dividers the kernels need made at launch.
template <typename I> struct Geom {
  I H, W, OH, OW, kh, kw, sh, sw, ph, pw;
  Divider<I> div_W, div_OW;  // a pixel q of x (of out) is row q / W, column q % W (OW)
  Divider<I> div_sh, div_sw;  // windows_containing
  Divider<I> div_H, div_OH;  // the adaptive windows (with div_W, div_OW)
  explicit Geom(const Pool2d& p)
      : H(I(p.H)), W(I(p.W)), OH(I(p.OH)), OW(I(p.OW)), kh(I(p.kh)), kw(I(p.kw)), sh(I(p.sh)), sw(I(p.sw)),
        ph(I(p.ph)), pw(I(p.pw)), div_W(p.W), div_OW(p.OW), div_sh(p.sh), div_sw(p.sw), div_H(p.H), div_OH(p.OH) {}
};

// ---- Window rules ------------------------------------------------------------------------------
// kernels/pool.h's rules (the CPU's), in the index type I and with a Divider for each division:
// the same integers.
template <typename I>
__device__ I avg_window(I o, I size, I k, I s, I pad, bool count_include_pad, I* lo, I* hi) {
  const I start = o * s - pad;
  const I end_padded = (start + k < size + pad) ? start + k : size + pad;
  *lo = start > 0 ? start : 0;
  *hi = end_padded < size ? end_padded : size;
  return count_include_pad ? end_padded - start : *hi - *lo;
}
template <typename I>
__device__ void windows_containing(I i, I out_size, I k, const Divider<I>& s, I pad, I* first, I* last) {
  const I ip = i + pad;
  *first = ip < k ? 0 : s.div(ip - k) + 1;
  const I l = s.div(ip) + 1;
  *last = l < out_size ? l : out_size;
}
template <typename I> __device__ I adaptive_start(I o, I size, const Divider<I>& out) { return out.div(o * size); }
template <typename I> __device__ I adaptive_end(I o, I size, const Divider<I>& out) {
  return out.div((o + 1) * size + out.d - 1);
}
template <typename I>
__device__ void adaptive_windows_containing(I i, const Divider<I>& size, I out, I* first, I* last) {
  *first = size.div(i * out);
  const I l = size.div((i + 1) * out - 1) + 1;
  *last = l < out ? l : out;
}

// ---- Memory orders ----------------------------------------------------------------------------
// A tensor of planes (n, c) of `pixels` pixels each. Plane (n, c) starts at Plane::base(pixels)
// and its pixel q lies q * step further. An L is made for the tensor its threads walk (x in a
// backward, out in a forward): split(i, &q) gives the plane and the pixel q of its element i.
template <typename I> struct Plane {
  I a, b;  // the plane starts at a * pixels + b
  __device__ I base(I pixels) const { return a * pixels + b; }
};

// NCHW: the planes one after another, each contiguous: plane pl = n * C + c starts at
// pl * pixels. Consecutive threads take consecutive pixels of one plane.
template <typename Index> struct Nchw {
  using I = Index;
  static constexpr I step = 1;
  Divider<I> div_hw;  // pixels per plane of the walked tensor
  Nchw(const Pool2d&, int64_t pixels) : div_hw(pixels) {}
  __device__ Plane<I> split(I i, I* q) const {
    I pl;
    div_hw.divmod(i, &pl, q);
    return {pl, 0};
  }
};
// NHWC (channels_last): the C channels of a pixel side by side, so plane (n, c) starts at
// n * pixels * C + c and its pixels are C elements apart. Consecutive threads take consecutive
// channels of one pixel: a warp's loads and stores are consecutive addresses (coalesced).
template <typename Index> struct Nhwc {
  using I = Index;
  I step;             // C
  Divider<I> div_C;   // C
  Divider<I> div_hw;  // pixels per plane of the walked tensor
  Nhwc(const Pool2d& p, int64_t pixels) : step(I(p.C)), div_C(p.C), div_hw(pixels) {}
  __device__ Plane<I> split(I i, I* q) const {
    I pixel, c, n;
    div_C.divmod(i, &pixel, &c);  // pixel = n * pixels + q
    div_hw.divmod(pixel, &n, q);
    return {n * step, c};
  }
};

// ---- Kernels ------------------------------------------------------------------------------------
// Each walks `total` elements (of out in a forward, of x and grad_x in a backward); the grid-
// stride index is int64 and each element's own index arithmetic is in I.

template <typename T, typename L>
__global__ void max_pool2d_forward_kernel(T* out, int64_t* indices, const T* x, int64_t total,
                                          Geom<typename L::I> g, L lay) {
  using I = typename L::I;
  LEUKO_GRID_STRIDE(i, total) {
    I q, oh, ow;
    const Plane<I> pl = lay.split(I(i), &q);
    g.div_OW.divmod(q, &oh, &ow);
    const T* xp = x + pl.base(g.H * g.W);  // plane pl: pixel (h, w) at xp[(h * W + w) * step]
    const I h0 = max(oh * g.sh - g.ph, I(0)), h1 = min(oh * g.sh - g.ph + g.kh, g.H);
    const I w0 = max(ow * g.sw - g.pw, I(0)), w1 = min(ow * g.sw - g.pw + g.kw, g.W);
    float best = -INFINITY;  // the first maximum wins ties, a NaN wins everything (as the CPU)
    I arg = h0 * g.W + w0;
    for (I h = h0; h < h1; h++) {
      for (I w = w0; w < w1; w++) {
        const float v = load(xp[(h * g.W + w) * lay.step]);
        if (v > best || v != v) {
          best = v;
          arg = h * g.W + w;
        }
      }
    }
    out[i] = store<T>(best);  // a value of x: exact in T
    indices[i] = arg;         // in out's order; the value is the pixel within the plane either way
  }
}

template <typename T, typename L>
__global__ void max_pool2d_backward_kernel(T* grad_x, const T* grad_out, const int64_t* indices, int64_t total,
                                           Geom<typename L::I> g, L lay) {
  using I = typename L::I;
  LEUKO_GRID_STRIDE(i, total) {
    I q, h, w;
    const Plane<I> pl = lay.split(I(i), &q);
    g.div_W.divmod(q, &h, &w);
    const I out_base = pl.base(g.OH * g.OW);
    const T* go = grad_out + out_base;       // plane pl of (OH, OW), pixels step apart
    const int64_t* ip = indices + out_base;  // the same
    I oh0, oh1, ow0, ow1;
    windows_containing(h, g.OH, g.kh, g.div_sh, g.ph, &oh0, &oh1);
    windows_containing(w, g.OW, g.kw, g.div_sw, g.pw, &ow0, &ow1);
    const int64_t me = h * g.W + w;
    float acc = 0.f;
    for (I oh = oh0; oh < oh1; oh++) {
      for (I ow = ow0; ow < ow1; ow++) {
        const I o = (oh * g.OW + ow) * lay.step;
        if (ip[o] == me) acc += load(go[o]);  // it was the max
      }
    }
    grad_x[i] = store<T>(acc);
  }
}

template <typename T, typename L>
__global__ void avg_pool2d_forward_kernel(T* out, const T* x, int64_t total, bool count_include_pad,
                                          Geom<typename L::I> g, L lay) {
  using I = typename L::I;
  LEUKO_GRID_STRIDE(i, total) {
    I q, oh, ow;
    const Plane<I> pl = lay.split(I(i), &q);
    g.div_OW.divmod(q, &oh, &ow);
    const T* xp = x + pl.base(g.H * g.W);  // plane pl: pixel (h, w) at xp[(h * W + w) * step]
    I h0, h1, w0, w1;
    const I dh = avg_window(oh, g.H, g.kh, g.sh, g.ph, count_include_pad, &h0, &h1);
    const I dw = avg_window(ow, g.W, g.kw, g.sw, g.pw, count_include_pad, &w0, &w1);
    float sum = 0.f;
    for (I h = h0; h < h1; h++)
      for (I w = w0; w < w1; w++) sum += load(xp[(h * g.W + w) * lay.step]);
    out[i] = store<T>(sum / float(dh * dw));
  }
}

template <typename T, typename L>
__global__ void avg_pool2d_backward_kernel(T* grad_x, const T* grad_out, int64_t total, bool count_include_pad,
                                           Geom<typename L::I> g, L lay) {
  using I = typename L::I;
  LEUKO_GRID_STRIDE(i, total) {
    I q, h, w;
    const Plane<I> pl = lay.split(I(i), &q);
    g.div_W.divmod(q, &h, &w);
    const T* go = grad_out + pl.base(g.OH * g.OW);  // plane pl of (OH, OW), pixels step apart
    I oh0, oh1, ow0, ow1;
    windows_containing(h, g.OH, g.kh, g.div_sh, g.ph, &oh0, &oh1);
    windows_containing(w, g.OW, g.kw, g.div_sw, g.pw, &ow0, &ow1);
    float acc = 0.f;
    for (I oh = oh0; oh < oh1; oh++) {
      I lo, hi;  // the clipped window is not needed here, only its divisor
      const I dh = avg_window(oh, g.H, g.kh, g.sh, g.ph, count_include_pad, &lo, &hi);
      for (I ow = ow0; ow < ow1; ow++) {
        const I dw = avg_window(ow, g.W, g.kw, g.sw, g.pw, count_include_pad, &lo, &hi);
        acc += load(go[(oh * g.OW + ow) * lay.step]) / float(dh * dw);
      }
    }
    grad_x[i] = store<T>(acc);
  }
}

template <typename T, typename L>
__global__ void adaptive_avg_pool2d_forward_kernel(T* out, const T* x, int64_t total, Geom<typename L::I> g, L lay) {
  using I = typename L::I;
  LEUKO_GRID_STRIDE(i, total) {
    I q, oh, ow;
    const Plane<I> pl = lay.split(I(i), &q);
    g.div_OW.divmod(q, &oh, &ow);
    const T* xp = x + pl.base(g.H * g.W);  // plane pl: pixel (h, w) at xp[(h * W + w) * step]
    const I h0 = adaptive_start(oh, g.H, g.div_OH), h1 = adaptive_end(oh, g.H, g.div_OH);
    const I w0 = adaptive_start(ow, g.W, g.div_OW), w1 = adaptive_end(ow, g.W, g.div_OW);
    float sum = 0.f;
    for (I h = h0; h < h1; h++)
      for (I w = w0; w < w1; w++) sum += load(xp[(h * g.W + w) * lay.step]);
    out[i] = store<T>(sum / float((h1 - h0) * (w1 - w0)));
  }
}

template <typename T, typename L>
__global__ void adaptive_avg_pool2d_backward_kernel(T* grad_x, const T* grad_out, int64_t total,
                                                    Geom<typename L::I> g, L lay) {
  using I = typename L::I;
  LEUKO_GRID_STRIDE(i, total) {
    I q, h, w;
    const Plane<I> pl = lay.split(I(i), &q);
    g.div_W.divmod(q, &h, &w);
    const T* go = grad_out + pl.base(g.OH * g.OW);  // plane pl of (OH, OW), pixels step apart
    I oh0, oh1, ow0, ow1;
    adaptive_windows_containing(h, g.div_H, g.OH, &oh0, &oh1);
    adaptive_windows_containing(w, g.div_W, g.OW, &ow0, &ow1);
    float acc = 0.f;
    for (I oh = oh0; oh < oh1; oh++) {
      const I dh = adaptive_end(oh, g.H, g.div_OH) - adaptive_start(oh, g.H, g.div_OH);
      for (I ow = ow0; ow < ow1; ow++) {
        const I dw = adaptive_end(ow, g.W, g.div_OW) - adaptive_start(ow, g.W, g.div_OW);
        acc += load(go[(oh * g.OW + ow) * lay.step]) / float(dh * dw);
      }
    }
    grad_x[i] = store<T>(acc);
  }
}

// adaptive_avg_pool2d's backward to a 1 x 1 output (global average pooling, the networks'
// heads): the whole plane is the one window, so every pixel of plane (n, c) gets
// grad_out[n, c] / (H * W) and there is no window to search. The float is the general kernel's:
// acc = 0, then acc += g / float(dh * dw) with dh * dw = H * W. The `0.f +` stays for that: it
// turns a -0 into +0, as do the general kernel and the CPU's zeroed plane.
template <typename T, typename L>
__global__ void global_avg_pool2d_backward_kernel(T* grad_x, const T* grad_out, int64_t total,
                                                  Geom<typename L::I> g, L lay) {
  using I = typename L::I;
  const float count = float(g.H * g.W);
  // Not unrolled: to unroll, the compiler counts each thread's trips with a 64-bit division, and
  // most threads make one trip.
#pragma unroll 1
  LEUKO_GRID_STRIDE(i, total) {
    I q;
    const Plane<I> pl = lay.split(I(i), &q);  // grad_out: (N, C, 1, 1), plane pl at base(1) in both orders
    grad_x[i] = store<T>(0.f + load(grad_out[pl.base(1)]) / count);
  }
}

// ---- Launches ------------------------------------------------------------------------------------
// launch(g, lay) with I = int32_t where every index fits (fits_int32), else int64_t; lay is L
// made for the walked tensor, of `pixels` pixels per plane. The forwards have a thread per
// output element, the backwards one per input element.
template <template <typename> class L, typename F>
void with_index_type(const Pool2d& p, int64_t pixels, F&& launch) {
  if (fits_int32(p))
    launch(Geom<int32_t>(p), L<int32_t>(p, pixels));
  else
    launch(Geom<int64_t>(p), L<int64_t>(p, pixels));
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <template <typename> class L, typename T>
void launch_max_pool2d_forward(T* out, int64_t* indices, const T* x, const Pool2d& p) {
  const int64_t n = p.planes * p.OH * p.OW;
  if (n == 0) return;
  with_index_type<L>(p, p.OH * p.OW, [&](auto g, auto lay) {
    max_pool2d_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, indices, x, n, g, lay);
  });
}

template <template <typename> class L, typename T>
void launch_max_pool2d_backward(T* grad_x, const T* grad_out, const int64_t* indices, const Pool2d& p) {
  const int64_t n = p.planes * p.H * p.W;
  if (n == 0) return;
  with_index_type<L>(p, p.H * p.W, [&](auto g, auto lay) {
    max_pool2d_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, indices, n, g, lay);
  });
}

template <template <typename> class L, typename T>
void launch_avg_pool2d_forward(T* out, const T* x, const Pool2d& p, bool count_include_pad) {
  const int64_t n = p.planes * p.OH * p.OW;
  if (n == 0) return;
  with_index_type<L>(p, p.OH * p.OW, [&](auto g, auto lay) {
    avg_pool2d_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, x, n, count_include_pad, g, lay);
  });
}

template <template <typename> class L, typename T>
void launch_avg_pool2d_backward(T* grad_x, const T* grad_out, const Pool2d& p, bool count_include_pad) {
  const int64_t n = p.planes * p.H * p.W;
  if (n == 0) return;
  with_index_type<L>(p, p.H * p.W, [&](auto g, auto lay) {
    avg_pool2d_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, n, count_include_pad, g,
                                                                         lay);
  });
}

template <template <typename> class L, typename T>
void launch_adaptive_avg_pool2d_forward(T* out, const T* x, const Pool2d& p) {
  const int64_t n = p.planes * p.OH * p.OW;
  if (n == 0) return;
  with_index_type<L>(p, p.OH * p.OW, [&](auto g, auto lay) {
    adaptive_avg_pool2d_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, x, n, g, lay);
  });
}

template <template <typename> class L, typename T>
void launch_adaptive_avg_pool2d_backward(T* grad_x, const T* grad_out, const Pool2d& p) {
  const int64_t n = p.planes * p.H * p.W;
  if (n == 0) return;
  const bool global = p.OH == 1 && p.OW == 1;
  with_index_type<L>(p, p.H * p.W, [&](auto g, auto lay) {
    if (global)
      global_avg_pool2d_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, n, g, lay);
    else
      adaptive_avg_pool2d_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, n, g, lay);
  });
}

}  // namespace

// float32 and bf16 (dev() turns the host's bf16 pointers into the device's __nv_bfloat16), NCHW
// and channels_last (_nhwc).
void max_pool2d_forward(float* out, int64_t* indices, const float* x, const Pool2d& p) {
  launch_max_pool2d_forward<Nchw>(dev(out), indices, dev(x), p);
}
void max_pool2d_forward(bf16* out, int64_t* indices, const bf16* x, const Pool2d& p) {
  launch_max_pool2d_forward<Nchw>(dev(out), indices, dev(x), p);
}
void max_pool2d_forward_nhwc(float* out, int64_t* indices, const float* x, const Pool2d& p) {
  launch_max_pool2d_forward<Nhwc>(dev(out), indices, dev(x), p);
}
void max_pool2d_forward_nhwc(bf16* out, int64_t* indices, const bf16* x, const Pool2d& p) {
  launch_max_pool2d_forward<Nhwc>(dev(out), indices, dev(x), p);
}

void max_pool2d_backward(float* grad_x, const float* grad_out, const int64_t* indices, const Pool2d& p) {
  launch_max_pool2d_backward<Nchw>(dev(grad_x), dev(grad_out), indices, p);
}
void max_pool2d_backward(bf16* grad_x, const bf16* grad_out, const int64_t* indices, const Pool2d& p) {
  launch_max_pool2d_backward<Nchw>(dev(grad_x), dev(grad_out), indices, p);
}
void max_pool2d_backward_nhwc(float* grad_x, const float* grad_out, const int64_t* indices, const Pool2d& p) {
  launch_max_pool2d_backward<Nhwc>(dev(grad_x), dev(grad_out), indices, p);
}
void max_pool2d_backward_nhwc(bf16* grad_x, const bf16* grad_out, const int64_t* indices, const Pool2d& p) {
  launch_max_pool2d_backward<Nhwc>(dev(grad_x), dev(grad_out), indices, p);
}

void avg_pool2d_forward(float* out, const float* x, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_forward<Nchw>(dev(out), dev(x), p, count_include_pad);
}
void avg_pool2d_forward(bf16* out, const bf16* x, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_forward<Nchw>(dev(out), dev(x), p, count_include_pad);
}
void avg_pool2d_forward_nhwc(float* out, const float* x, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_forward<Nhwc>(dev(out), dev(x), p, count_include_pad);
}
void avg_pool2d_forward_nhwc(bf16* out, const bf16* x, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_forward<Nhwc>(dev(out), dev(x), p, count_include_pad);
}

void avg_pool2d_backward(float* grad_x, const float* grad_out, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_backward<Nchw>(dev(grad_x), dev(grad_out), p, count_include_pad);
}
void avg_pool2d_backward(bf16* grad_x, const bf16* grad_out, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_backward<Nchw>(dev(grad_x), dev(grad_out), p, count_include_pad);
}
void avg_pool2d_backward_nhwc(float* grad_x, const float* grad_out, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_backward<Nhwc>(dev(grad_x), dev(grad_out), p, count_include_pad);
}
void avg_pool2d_backward_nhwc(bf16* grad_x, const bf16* grad_out, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_backward<Nhwc>(dev(grad_x), dev(grad_out), p, count_include_pad);
}

void adaptive_avg_pool2d_forward(float* out, const float* x, const Pool2d& p) {
  launch_adaptive_avg_pool2d_forward<Nchw>(dev(out), dev(x), p);
}
void adaptive_avg_pool2d_forward(bf16* out, const bf16* x, const Pool2d& p) {
  launch_adaptive_avg_pool2d_forward<Nchw>(dev(out), dev(x), p);
}
void adaptive_avg_pool2d_forward_nhwc(float* out, const float* x, const Pool2d& p) {
  launch_adaptive_avg_pool2d_forward<Nhwc>(dev(out), dev(x), p);
}
void adaptive_avg_pool2d_forward_nhwc(bf16* out, const bf16* x, const Pool2d& p) {
  launch_adaptive_avg_pool2d_forward<Nhwc>(dev(out), dev(x), p);
}

void adaptive_avg_pool2d_backward(float* grad_x, const float* grad_out, const Pool2d& p) {
  launch_adaptive_avg_pool2d_backward<Nchw>(dev(grad_x), dev(grad_out), p);
}
void adaptive_avg_pool2d_backward(bf16* grad_x, const bf16* grad_out, const Pool2d& p) {
  launch_adaptive_avg_pool2d_backward<Nchw>(dev(grad_x), dev(grad_out), p);
}
void adaptive_avg_pool2d_backward_nhwc(float* grad_x, const float* grad_out, const Pool2d& p) {
  launch_adaptive_avg_pool2d_backward<Nhwc>(dev(grad_x), dev(grad_out), p);
}
void adaptive_avg_pool2d_backward_nhwc(bf16* grad_x, const bf16* grad_out, const Pool2d& p) {
  launch_adaptive_avg_pool2d_backward<Nhwc>(dev(grad_x), dev(grad_out), p);
}

}  // namespace leuko::kernels::cuda
