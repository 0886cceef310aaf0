// snapshot.h: weight snapshots in a folder, saved and restored live: timestamped
// ones (the S and L keys): snap-YYYYmmdd-HHMMSS.safetensors, newest by name; and
// the numbered slots' files (actions slot_write / slot_read): slot-N.safetensors.
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

// Slot i (1..TB_SLOTS, held in memory by the trainer) to dir/slot-i.safetensors
// (dir created if missing), with its optimizer state and step, as checkpoint_save
// writes a trainer. The live network is untouched. The path goes to path.
int snapshot_slot_write(const char *dir, Trainer *t, int i, char *path, size_t n, TbErr *err);
// dir/slot-i.safetensors into slot i (any checkpoint of the same architecture
// would do); the live network is untouched. The path goes to path.
int snapshot_slot_read(const char *dir, Trainer *t, int i, char *path, size_t n, TbErr *err);
// Any checkpoint file into slot i (a world: world.h). The transform the file
// names becomes the live one (t->tf, t->tf_from_file), as --load does.
int snapshot_slot_read_file(const char *path, Trainer *t, int i, TbErr *err);

#ifdef __cplusplus
}
#endif
