// train_y4m.c: the engine API alone, in one page. Train tabula's default
// autoencoder online on a Y4M clip, one step per frame, and print how well it
// reconstructs what it sees. Nothing here needs a window, a camera or a GPU.
//
//   ./train_y4m CLIP.y4m [frames] [out.safetensors]
#include <stdio.h>
#include <stdlib.h>

#include "checkpoint.h"
#include "source.h"
#include "trainer.h"

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: %s CLIP.y4m [frames] [out.safetensors]\n", argv[0]), 2;
    long frames = argc > 2 ? atol(argv[2]) : 60;
    TbErr err = {{0}};

    // 1. A source of RGB8 frames (any size: the trainer fits them).
    Source *src = source_open_y4m(argv[1], &err);
    if (!src) return fprintf(stderr, "%s\n", err.msg), 2;

    // 2. A trainer: the default network at 64x64, SGD with momentum and clipping.
    TrainerConfig c = {.spec = model_spec_default(64, 64), .backend = "cpu", .ring = 8,
                       .max_batch = 1, .seed = 1};
    c.hyper = (Hyper){.optimizer = OPT_SGD, .lr = 2.0f, .momentum = 0.9f, .clip = 0.1f};
    Trainer t;
    if (trainer_init(&t, &c, &err)) return fprintf(stderr, "%s\n", err.msg), 2;

    // 3. Online: each frame goes into the ring, then one gradient step on it.
    uint8_t *rgb = malloc((size_t)src->width * src->height * 3);
    StepStats st[TB_STATS_RING];
    for (long f = 0; f < frames; f++) {
        int w = src->width, h = src->height;  // the size of the frame read() returns
        if (src->read(src, rgb, &err) < 0) return fprintf(stderr, "%s\n", err.msg), 2;
        trainer_push_frame(&t, rgb, w, h);
        trainer_train(&t, 1, 0);
        int n = trainer_read_stats(&t, st);  // waits for the device; cheap on the CPU
        if (n && (f % 10 == 0 || f == frames - 1))
            printf("frame %3ld  loss %.5f  grad norm %.4f\n", f, st[n - 1].loss, st[n - 1].grad_norm);
    }

    // 4. The weights, loadable by tabula --load and by PyTorch's safetensors.
    if (argc > 3 && checkpoint_save(argv[3], &t, 1, &err)) fprintf(stderr, "%s\n", err.msg);
    free(rgb);
    trainer_free(&t);
    source_close(src);
    return 0;
}
