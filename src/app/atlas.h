// atlas.h: the layer atlas, one picture of every activation of the network,
// made on the CPU from host copies of the activations (Backend.get_activation)
// and shown as a texture like the reconstruction (on CUDA with interop it is
// drawn on the GPU from the same geometry and op: atlas_gpu.h). Top row: the encoder's
// layers, then the bottleneck twice as large; bottom row: the decoder's
// layers, then the reconstruction and, while a bottleneck channel is solo,
// what the decoder makes of that channel alone. A layer is a near-square grid
// of one tile per channel (1-pixel grey gaps), each tile through the inferno
// colour map, normalised by its own channel's min and max: channels differ in
// scale by orders of magnitude, and per layer most of them would be black. A
// flat channel (max = min) is drawn black. `focus` draws one layer alone.
#pragma once
#include <stdint.h>

#include "backend.h"
#include "model.h"
#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ATLAS_GAP_RGB 90   // between tiles (r = g = b: not a colour of the map)
#define ATLAS_BG_RGB 24    // between layers and in a grid's unused cells
#define ATLAS_BN_SCALE 2   // the bottleneck's tiles, in pixels per activation
#define ATLAS_TILE_MAX 128  // a larger tile is shrunk to fit (nearest value)
#define ATLAS_IMAGE_MAX 512 // likewise the reconstruction and the solo view

// One block of the picture: activation `act` (model.h), at x, y, w x h.
// Tiled: `ch` tiles of tw x th pixels in cols x rows, each from sw x sh
// values (scale pixels per value; 1 also when shrunk); act = n_layers is the
// reconstruction and act = -1 the solo view, drawn as RGB images.
typedef struct {
    int act, x, y, w, h;
    int ch, cols, rows, tw, th, sw, sh, scale;
} AtlasBlock;

#define ATLAS_MAX_BLOCKS (TB_MAX_LAYERS + 2)

// The blocks and the picture's size for focus (-1: every layer; i in
// 1..n_layers-1: activation i alone) and solo (1: room for the solo view).
// Returns the number of blocks.
int atlas_geometry(const Model *m, int focus, int solo, AtlasBlock *b, int *w, int *h);
// Every activation of sample 0 into acts (act_total floats, activation i at
// act_off[i], NCHW). Waits for the device.
void atlas_read(Backend *be, const Model *m, float *acts);
// The picture (w*h*3 bytes from atlas_geometry) from the activations; solo_rgb
// (the training size, RGB8) or NULL for none.
void atlas_draw(const Model *m, int focus, const float *acts, const uint8_t *solo_rgb, uint8_t *out);
// The pieces atlas_draw is made of, for the GPU's picture (atlas_gpu.c): the
// colour map; block b as the tile op's geometry (ops.h: the reconstruction,
// act n_layers, as its image mode); an RGB8 picture (the solo view, the
// training size) into block b of a picture of bpp 3 or 4 bytes a pixel.
void atlas_lut(uint8_t lut[256][3]);
void atlas_tile_geom(const Model *m, const AtlasBlock *b, TileGeom *g);
void atlas_draw_rgb(const AtlasBlock *b, const uint8_t *rgb, uint8_t *out, size_t pitch, int bpp);
// The decoder's picture of the bottleneck code with only channels c to
// c + n - 1 kept (code: act_n[n_enc] floats, NCHW; scratch of the same size).
void atlas_solo(Backend *be, const Model *m, const float *code, int c, int n, float *scratch, uint8_t *rgb);
// Largest picture of this model (bytes), for buffers made once.
size_t atlas_max_bytes(const Model *m);

#ifdef __cplusplus
}
#endif
