#version 330 core
// One pane: a quad covering the viewport, made from gl_VertexID (no buffer).
// v_uv is (0,0) at the pane's top-left, matching images stored top row first.
out vec2 v_uv;

void main() {
    vec2 p = vec2(float(gl_VertexID & 1), float(gl_VertexID >> 1));  // strip: 00 10 01 11
    v_uv = vec2(p.x, 1.0 - p.y);
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
