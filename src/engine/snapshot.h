// snapshot.h: numbered weight snapshots in a folder, saved and restored live
// (the S and L keys): snap-YYYYmmdd-HHMMSS.safetensors, newest by name.
#pragma once
#include <stddef.h>

#include "trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

// Save the trainer (with optimizer state) into dir (created if missing). The
// path written goes to path (n bytes). 0, or -1 with err.
int snapshot_save(const char *dir, Trainer *t, char *path, size_t n, TbErr *err);
// Load the newest snapshot in dir. The path read goes to path. 0, or -1 with
// err ("no snapshot in DIR/ yet" when there is none).
int snapshot_load_newest(const char *dir, Trainer *t, char *path, size_t n, TbErr *err);

#ifdef __cplusplus
}
#endif
