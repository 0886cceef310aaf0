// Stand-in for the toolkit's <cuda_runtime.h> in the host build of the kernels
// (tests/kernel_host only: this folder is on no other target's include path).
#pragma once
#include "cuda_host.h"
