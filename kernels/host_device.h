// LEUKO_HOST_DEVICE marks small inline functions that the CPU and the CUDA kernels share (a
// window rule, a hash), so both backends compute them from one definition.
#pragma once

#ifdef __CUDACC__
#define LEUKO_HOST_DEVICE __host__ __device__
#else
#define LEUKO_HOST_DEVICE
#endif
