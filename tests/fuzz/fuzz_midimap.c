// fuzz_midimap.c: the MIDI mapping loader on arbitrary bytes: the INI reader,
// targets, kinds, channels, numbers and options; every row read is written back
// the way learn writes it and read again.
#include <stdio.h>

#include "fuzz_file.h"
#include "midi_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".ini");
    static MidiMap m, back;
    TbErr err;
    if (midi_map_load(path, &m, &err)) return 0;
    FILE *f = fopen(path, "w");
    if (!f) abort();
    fprintf(f, "[device]\nmatch = x\n[map]\n");
    for (int i = 0; i < m.n; i++) {
        char row[512];
        midi_binding_format(&m.b[i], row, sizeof row);
        fprintf(f, "%s\n", row);
    }
    fclose(f);
    // What learn writes must read back, row for row.
    if (midi_map_load(path, &back, &err) || back.n != m.n) abort();
    return 0;
}
