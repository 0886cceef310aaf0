// reduce.h: the one blocked reduction of the CPU ops (loss.c's MSE, optim.c's
// gradient norm). [0, n) is cut into blocks whose size depends on n only; each
// block is summed in double by `block` (in parallel when n is large), then the
// block sums are added in order. So the result has the same bits whatever the
// thread count, and save/load and the PyTorch fixture test stay bit-exact.
#pragma once
#include <stddef.h>

// Sum of the elements lo..hi-1 of whatever ctx describes (may also write
// per-element outputs, as the MSE gradient does).
typedef double (*BlockSumFn)(const void *ctx, size_t lo, size_t hi);

// Sum of block(ctx, lo, hi) over the blocks of [0, n); 0 for n == 0.
double block_sum(size_t n, BlockSumFn block, const void *ctx);
