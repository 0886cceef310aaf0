// Stand-in for the toolkit's <cuda_runtime.h> in the host builds of
// tests/kernel_host (this folder is on no other target's include path): in
// C++ the whole shim (cuda_host.h: kernels, launches and the runtime API), in
// C the runtime API alone (cuda_host_api.h), as the real header gives C code.
#pragma once
#ifdef __cplusplus
#include "cuda_host.h"
#else
#include "cuda_host_api.h"
#endif
