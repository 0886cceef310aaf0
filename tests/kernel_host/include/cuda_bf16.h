// Stand-in for <cuda_bf16.h> in the host builds of tests/kernel_host: the
// bfloat16 storage type and the conversions the kernels call, with the bits
// of CUDA's (cuda_bf16.hpp's host path): float -> bfloat16 rounds to nearest,
// ties to even, and any NaN becomes the canonical 0x7fff; bfloat16 -> float
// is exact (the 16 bits on top, zeros below). No arithmetic on the type: the
// kernels load to float, compute, and store.
#pragma once
#include <stdint.h>
#include <string.h>

typedef struct __nv_bfloat16 {
    unsigned short __x;
} __nv_bfloat16;

static inline __nv_bfloat16 __float2bfloat16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    __nv_bfloat16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) r.__x = 0x7fffu;
    else r.__x = (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    return r;
}
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
static inline float __bfloat162float(__nv_bfloat16 h) {
    uint32_t u = (uint32_t)h.__x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
