// world.h: the worlds a show plays: the .safetensors files of [world] dir,
// numbered 1, 2, ... in name order. The world action loads one into a slot
// (its transform comes along) and the run loop cross-fades to it.
#pragma once
#include <stddef.h>

#include "trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

// The path of world n (1-based) of dir into path. 0, or -1 with err (no such
// folder, no world n: says how many there are).
int world_path(const char *dir, int n, char *path, size_t pn, TbErr *err);
// World n of dir into slot (1..TB_SLOTS) of t; the live network is untouched
// but for its input transform, which becomes the world's. The path read goes
// to path. 0, or -1 with err (a file of another architecture, an unknown transform).
int world_load(Trainer *t, const char *dir, int n, int slot, char *path, size_t pn, TbErr *err);

#ifdef __cplusplus
}
#endif
