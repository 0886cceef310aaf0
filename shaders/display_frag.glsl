#version 330 core
// Camera, reconstruction, error or network-input pane. The camera is sampled through the
// training crop so all three panes show the same region of the scene.
// display.c compiles one program per pane kind (MODE) and filter (BICUBIC):
// a software rasteriser runs both sides of a branch, so choices are made here.
#ifndef MODE
#define MODE 1  // 0 camera, 1 reconstruction, 2 error, 3 network input, 4 atlas
#endif
#ifndef BICUBIC
#define BICUBIC 1  // 1: Catmull-Rom, 0: bilinear
#endif
in vec2 v_uv;
out vec4 frag;

uniform sampler2D u_input;
uniform sampler2D u_recon;
uniform sampler2D u_net;  // what the network is given (an input transform's output)
uniform sampler2D u_atlas;  // the layer atlas (atlas.h), sampled as it is: no filter, no flip
uniform vec4 u_crop;   // camera crop in UV: offset (xy), size (zw)
uniform float u_flip;  // 1: mirror left-right
uniform float u_gain;  // error amplification

// Catmull-Rom in 9 bilinear taps (the 4x4 kernel with the corner taps merged).
// Sharper than bilinear when a 256-pixel image fills a big screen.
vec3 catmull_rom(sampler2D tex, vec2 uv) {
    vec2 size = vec2(textureSize(tex, 0));
    vec2 pos = uv * size;
    vec2 c1 = floor(pos - 0.5) + 0.5;
    vec2 f = pos - c1;
    vec2 w0 = f * (-0.5 + f * (1.0 - 0.5 * f));
    vec2 w1 = 1.0 + f * f * (-2.5 + 1.5 * f);
    vec2 w2 = f * (0.5 + f * (2.0 - 1.5 * f));
    vec2 w3 = f * f * (-0.5 + 0.5 * f);
    vec2 w12 = w1 + w2;
    vec2 t0 = (c1 - 1.0) / size;
    vec2 t3 = (c1 + 2.0) / size;
    vec2 t12 = (c1 + w2 / w12) / size;
    vec3 r = texture(tex, vec2(t0.x, t0.y)).rgb * w0.x * w0.y
           + texture(tex, vec2(t12.x, t0.y)).rgb * w12.x * w0.y
           + texture(tex, vec2(t3.x, t0.y)).rgb * w3.x * w0.y
           + texture(tex, vec2(t0.x, t12.y)).rgb * w0.x * w12.y
           + texture(tex, vec2(t12.x, t12.y)).rgb * w12.x * w12.y
           + texture(tex, vec2(t3.x, t12.y)).rgb * w3.x * w12.y
           + texture(tex, vec2(t0.x, t3.y)).rgb * w0.x * w3.y
           + texture(tex, vec2(t12.x, t3.y)).rgb * w12.x * w3.y
           + texture(tex, vec2(t3.x, t3.y)).rgb * w3.x * w3.y;
    return clamp(r, 0.0, 1.0);  // the negative lobes overshoot at hard edges
}

vec3 fetch(sampler2D tex, vec2 uv) {
#if BICUBIC
    return catmull_rom(tex, uv);
#else
    return texture(tex, uv).rgb;
#endif
}

// Inferno colour map, polynomial fit: black at 0, pale yellow at 1.
vec3 inferno(float t) {
    const vec3 c0 = vec3(0.0002189403691192265, 0.001651004631001012, -0.01948089843709184);
    const vec3 c1 = vec3(0.1065134194856116, 0.5639564367884091, 3.932712388889277);
    const vec3 c2 = vec3(11.60249308247187, -3.972853965665698, -15.9423941062914);
    const vec3 c3 = vec3(-41.70399613139459, 17.43639888205313, 44.35414519872813);
    const vec3 c4 = vec3(77.162935699427, -33.40235894210092, -81.80730925738993);
    const vec3 c5 = vec3(-71.31942824499214, 32.62606426397723, 73.20951985803202);
    const vec3 c6 = vec3(25.13112622477341, -12.24266895238567, -23.07032500287172);
    t = clamp(t, 0.0, 1.0);
    return clamp(c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * (c5 + t * c6))))), 0.0, 1.0);
}

void main() {
    vec2 uv = vec2(mix(v_uv.x, 1.0 - v_uv.x, u_flip), v_uv.y);
#if MODE == 0
    vec3 c = fetch(u_input, u_crop.xy + uv * u_crop.zw);
#elif MODE == 1
    vec3 c = fetch(u_recon, uv);
#elif MODE == 3
    vec3 c = fetch(u_net, uv);
#elif MODE == 4
    vec3 c = texture(u_atlas, v_uv).rgb;
#else
    vec3 d = abs(fetch(u_input, u_crop.xy + uv * u_crop.zw) - fetch(u_recon, uv));
    vec3 c = inferno(u_gain * (d.r + d.g + d.b) / 3.0);
#endif
    frag = vec4(c, 1.0);
}
