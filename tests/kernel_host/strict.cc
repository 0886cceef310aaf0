// strict.cc: linked into test_cuda_parity_host and test_cuda_steps_host: any
// problem the emulator reports (a copy of the wrong kind, a write past an
// allocation, a graph that replays onto freed memory, a leak at exit) fails
// the program, whatever its own checks conclude; they know nothing of the
// emulator.
#include "cuda_host_api.h"

namespace {
const int strict_on = (kh_set_strict(1), 0);
}
