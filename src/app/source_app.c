// source_app.c: registers the app's source kinds (video files through libav,
// image folders, V4L2 cameras) with the registry in src/io/source.c.
#include "app_sources.h"
#include "v4l2.h"

static Source *open_avfile(const char *arg, const SourceOpts *o, TbErr *err) {
    return source_open_avfile(arg, err);
}

static Source *open_imgdir(const char *arg, const SourceOpts *o, TbErr *err) {
    return source_open_imgdir(arg, err);
}

static Source *open_camera(const char *arg, const SourceOpts *o, TbErr *err) {
    CameraOpts co = {.width = o->width,
                     .height = o->height,
                     .fps = o->fps,
                     .lock_exposure = o->lock_exposure,
                     .lock_white_balance = o->lock_white_balance};
    return source_open_camera(arg, &co, err);
}

void app_register_sources(void) {
    static int done;
    if (done) return;
    done = 1;
    static const SourceKind kinds[] = {
        {"file", NULL, open_avfile},
        {"dir", NULL, open_imgdir},
        {"camera", NULL, open_camera},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) source_register(&kinds[i]);
}
