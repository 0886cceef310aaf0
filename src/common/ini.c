// ini.c: the INI reader (see ini.h).
#include "ini.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

char *tb_trim(char *p) {
    while (isspace((unsigned char)*p)) p++;
    char *e = p + strlen(p);
    while (e > p && isspace((unsigned char)e[-1])) *--e = 0;
    return p;
}

// A value without its trailing comment (" #..." or " ;...") and quotes.
static char *clean_value(char *v) {
    for (char *c = v; *c; c++)
        if ((*c == '#' || *c == ';') && c > v && isspace((unsigned char)c[-1])) {
            *c = 0;
            break;
        }
    v = tb_trim(v);
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') v[n - 1] = 0, v++;
    return v;
}

// One line (comment-free checks done by the caller). 0, or -1 with err (no prefix).
static int parse_line(char *p, char *section, size_t section_n, IniSectionFn on_section,
                      IniKeyFn on_key, void *user, int lineno, TbErr *err) {
    if (*p == '[') {
        char *e = strchr(p, ']');
        const char *rest = e ? tb_trim(e + 1) : NULL;  // "[train]  # a comment" is fine
        if (!e || (*rest && *rest != '#' && *rest != ';'))
            return tb_fail(err, "bad section header \"%s\"", p);
        *e = 0;
        snprintf(section, section_n, "%s", tb_trim(p + 1));
        return on_section ? on_section(user, section, err) : 0;
    }
    char *eq = strchr(p, '=');
    if (!eq) return tb_fail(err, "expected key = value, got \"%s\"", p);
    *eq = 0;
    return on_key(user, section, tb_trim(p), clean_value(eq + 1), lineno, err);
}

int ini_parse(const char *path, IniSectionFn on_section, IniKeyFn on_key, void *user, TbErr *err) {
    FILE *f = fopen(path, "r");
    if (!f) return tb_fail(err, "%s: %s", path, strerror(errno));
    char line[1024], section[64] = "";
    int lineno = 0, rc = 0;
    TbErr e = {{0}};
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = tb_fail(err, "%s:%d: line too long", path, lineno);
            break;
        }
        char *p = tb_trim(line);
        if (!*p || *p == '#' || *p == ';') continue;
        if (parse_line(p, section, sizeof section, on_section, on_key, user, lineno, &e))
            rc = tb_fail(err, "%s:%d: %s", path, lineno, e.msg);
    }
    if (rc == 0 && ferror(f)) rc = tb_fail(err, "%s: read error", path);
    fclose(f);
    return rc;
}
