// CPU GEMM: cache blocking and register blocking, no assembly.
//
// The loop nest walks C in panels of kNc columns and K in slices of kKc. For each (slice,
// panel) it packs op(B)'s block into a contiguous (kc, nc) buffer, so the inner loop reads B
// along rows whatever its transposition, then each thread takes 4 rows of C at a time and, for
// every k, adds a(i, k) * B[k, :] to the 4 rows' partial sums: one load of B feeds 4 fused
// multiply-adds, and the compiler vectorises the loop over columns. The partial sums of each
// K slice are added to C at the slice's end (blocked summation, for accuracy).
#include <algorithm>
#include <vector>

#include "kernels/matmul.h"

namespace leuko::kernels::cpu {

namespace {
constexpr int64_t kNc = 256;  // columns of C per panel: 4 rows x 256 floats stay in L1
constexpr int64_t kKc = 256;  // depth of a packed B block: 256 x 256 floats stay in L2
constexpr int64_t kMr = 4;    // rows of C updated together
}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  // C = beta * C first (beta == 0: overwrite, never read).
#pragma omp parallel for if (M * N > (1 << 15))
  for (int64_t i = 0; i < M; i++) {
    T* c = C + i * ldc;
    if (beta == T(0)) std::fill(c, c + N, T(0));
    else if (beta != T(1)) for (int64_t j = 0; j < N; j++) c[j] *= beta;
  }
  if (K == 0 || alpha == T(0)) return;

  auto a_at = [&](int64_t i, int64_t k) { return trans_a ? A[k * lda + i] : A[i * lda + k]; };
  std::vector<T> packed(size_t(kKc * kNc));  // (kc, nc) block of op(B)
  for (int64_t j0 = 0; j0 < N; j0 += kNc) {
    const int64_t nc = std::min(kNc, N - j0);
    for (int64_t k0 = 0; k0 < K; k0 += kKc) {
      const int64_t kc = std::min(kKc, K - k0);
      T* bp = packed.data();
#pragma omp parallel for if (kc * nc > (1 << 14))
      for (int64_t k = 0; k < kc; k++) {
        for (int64_t j = 0; j < nc; j++) {
          bp[k * nc + j] = trans_b ? B[(j0 + j) * ldb + (k0 + k)] : B[(k0 + k) * ldb + (j0 + j)];
        }
      }
      const int64_t row_blocks = (M + kMr - 1) / kMr;
#pragma omp parallel for schedule(static) if (M * nc * kc > (1 << 16))
      for (int64_t rb = 0; rb < row_blocks; rb++) {
        const int64_t i0 = rb * kMr, rows = std::min(kMr, M - i0);
        // This slice's sums go to a zeroed buffer first, then to C, scaled by alpha once: each
        // output is then a sum of K / kKc partial sums of at most kKc terms, not one running
        // sum of K terms, so the float32 rounding error grows with kKc + K / kKc instead of K
        // (ResNet-18's deep layers sum 4608 terms).
        T acc[kMr][kNc];  // (rows, nc) partial sums of this k-slice
        for (int64_t r = 0; r < rows; r++) std::fill(acc[r], acc[r] + nc, T(0));
        if (rows == kMr) {
          for (int64_t k = 0; k < kc; k++) {
            const T a0 = a_at(i0 + 0, k0 + k), a1 = a_at(i0 + 1, k0 + k);
            const T a2 = a_at(i0 + 2, k0 + k), a3 = a_at(i0 + 3, k0 + k);
            const T* b = bp + k * nc;
#pragma omp simd
            for (int64_t j = 0; j < nc; j++) {
              acc[0][j] += a0 * b[j];
              acc[1][j] += a1 * b[j];
              acc[2][j] += a2 * b[j];
              acc[3][j] += a3 * b[j];
            }
          }
        } else {  // the last rows, fewer than kMr
          for (int64_t r = 0; r < rows; r++) {
            for (int64_t k = 0; k < kc; k++) {
              const T a = a_at(i0 + r, k0 + k);
              const T* b = bp + k * nc;
#pragma omp simd
              for (int64_t j = 0; j < nc; j++) acc[r][j] += a * b[j];
            }
          }
        }
        for (int64_t r = 0; r < rows; r++) {
          T* c = C + (i0 + r) * ldc + j0;
#pragma omp simd
          for (int64_t j = 0; j < nc; j++) c[j] += alpha * acc[r][j];
        }
      }
    }
  }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                          int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

}  // namespace leuko::kernels::cpu
