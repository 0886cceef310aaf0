// safetensors.h: read and write the safetensors format ourselves:
//   8 bytes little-endian u64 N | N bytes JSON header | raw little-endian data.
// Header: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//          "__metadata__": {"key": "string value", ...}}
// Every malformed case (short file, bad JSON, offsets outside the data, wrong dtype
// size) is an error naming the file and the problem, never a crash.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ST_MAX_NAME 128
#define ST_MAX_DIM 8

typedef struct {
    char name[ST_MAX_NAME];
    char dtype[8];  // "F32", "U8", "I64", ...
    int ndim;
    int64_t shape[ST_MAX_DIM];
    size_t nbytes;
    const uint8_t *data;  // into the file's buffer (valid until st_free)
} StTensor;

typedef struct {
    int n;
    StTensor *t;
    int n_meta;
    char (*meta_key)[128];
    char **meta_val;
    uint8_t *buf;  // whole file
    size_t buf_len;
} StFile;

int st_read(StFile *f, const char *path, TbErr *err);
void st_free(StFile *f);
const StTensor *st_find(const StFile *f, const char *name);
const char *st_meta(const StFile *f, const char *key);  // NULL if absent
// Number of elements of t.
int64_t st_numel(const StTensor *t);

// Writer: add tensors (data is copied when saving, must stay valid until then)
// and metadata, then save atomically (PATH.tmp.PID.XXXXXX, fsync, rename; an
// existing file keeps its mode; temp files of killed saves are removed). A
// symlink at PATH is followed, a device or FIFO written into, never replaced.
typedef struct {
    int n, cap;
    StTensor *t;
    int n_meta;
    char (*meta_key)[128];
    char **meta_val;
} StWriter;

void st_writer_init(StWriter *w);
void st_writer_add(StWriter *w, const char *name, const char *dtype, int ndim,
                   const int64_t *shape, const void *data);
void st_writer_meta(StWriter *w, const char *key, const char *value);
int st_writer_save(StWriter *w, const char *path, TbErr *err);
void st_writer_free(StWriter *w);

#ifdef __cplusplus
}
#endif
