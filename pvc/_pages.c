/* pvc._pages: the entries of pvc's paged maps (pvc/store/pages.py) read from their msgpack bytes, for `diff`.
 *
 * A diff between two versions reads every page that differs; after a change spread over a project (1% of the
 * items of 20,000) that is every page, and building their model objects (pvc/store/model.py) costs far more
 * than the diff itself. An entry whose value has the same bytes on both sides has the same value, so only
 * the entries whose bytes differ need to be decoded; this module finds them without building anything:
 *
 * changed(kind, a, b) -> [(key, page_a, value_a, page_b, value_b)] | None
 *     `a` and `b`: the pages (bytes, first key, entry count) of two maps of `kind` ("files" or "items") that
 *     the other map does not share, in map order. Every key whose value bytes differ, or that one side
 *     lacks, in key order, with the index of its page on each side and its value's msgpack bytes (-1 and
 *     None on the side that lacks it). A value holding a NaN is always returned (NaN is not equal to
 *     itself, so Python decides whether it changed).
 * entries(kind, data, first, count) -> {key: value bytes} | None
 *     One page's entries.
 * table(kind, data, first, count, next) -> bytes | None
 *     For the build from a change (pvc/core/capture/delta.py): one page checked as `entries` checks it, and
 *     where each entry lies in its bytes (key offset and length, value offset and length: 4 native uint64 an
 *     entry), no object made an entry; None also when `next`, the first key of the page after it, is not after
 *     its last. `find`, `key_at` and `prefixed` search a page by its table.
 * runs(kind, entries, page_min, page_avg, page_max) -> ([(first key, page bytes, count)], rest)
 *     For the same build: `entries`, in key order, each element a (key, value bytes) pair or a run of a page's
 *     entries (page bytes, table, lo, hi), spliced as the bytes they are; cut where pvc.store.pages cuts a map
 *     (after a key whose crc32 is 0 modulo `page_avg` once a page holds `page_min` entries, or at `page_max`),
 *     each closed run encoded as model.Page.encode encodes it; `rest`: the entries after the last closed run, as
 *     such elements (their run is decided by the keys after them).
 * one_page(kind, entries) -> (first key, page bytes, count)
 *     All of `entries` (as `runs` takes them) as one page (the last run of a map, which the map's end closes).
 * objects(data, start, count) -> offsets | None
 *     For the stat cache (pvc/store/statcache.py), which slices a few of its entries' infos out of one long
 *     msgpack array: where each of `count` msgpack objects read one after another from `start` begins, and where
 *     the last ends (count + 1 unsigned 64-bit integers, in the machine's order); None where one of them is not what
 *     msgpack.unpackb(raw=False, strict_map_key=False) decodes, or the bytes end first.
 * row_find(data, base, lo, hi, row_size, key) -> offset | None
 *     For the pack index files (pvc/store/local/packindex.py): a binary search of the rows lo..hi (each `row_size`
 *     bytes, from byte `base` of `data`, sorted by their first len(key) bytes) for the one that starts with `key`;
 *     the byte offset of that row, or None. A row range that does not lie inside `data` is a ValueError.
 *
 * `changed`, `entries` and `table` return None, and the caller decodes the pages in Python instead (which then reports the problem, or
 * accepts what this module was unsure of), for anything that is not what pvc writes: every check that
 * pvc.store.model's `Page.decode` and pvc.store.pages' `_page` make is made here, and a page accepted here
 * is one they accept, with the same entries. Stricter here (None) on what they would accept but pvc never
 * writes: map keys out of canonical order or repeated, a page's keys not ascending from one page to the
 * next, an item's `companions` that is neither absent, nil nor a list, msgpack ext types, nesting deeper
 * than MAX_DEPTH, a map key that is a list or a map.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 64

#define OK 0
#define ODD (-1) /* not what pvc writes: the caller decodes in Python */

enum { T_NIL, T_BOOL, T_INT, T_FLOAT, T_STR, T_BIN, T_ARR, T_MAP };

typedef struct {
    const unsigned char *p;
    Py_ssize_t n, at;
    int nan; /* a NaN float was read */
} reader_t;

typedef struct {
    int type;
    int negative;             /* T_INT */
    uint64_t len;             /* T_STR, T_BIN: bytes; T_ARR, T_MAP: elements */
    const unsigned char *data; /* T_STR, T_BIN */
} head_t;

static uint64_t big_endian(const unsigned char *p, int k) {
    uint64_t v = 0;
    for (int i = 0; i < k; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Strict UTF-8 as Python decodes it (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
static int utf8_ok(const unsigned char *s, uint64_t n) {
    uint64_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            for (i++; i + 8 <= n; i += 8) { /* ASCII, 8 bytes at a time */
                uint64_t word;
                memcpy(&word, s + i, 8);
                if (word & 0x8080808080808080ull)
                    break;
            }
            while (i < n && s[i] < 0x80)
                i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            if (n - i < 2 || (s[i + 1] & 0xc0) != 0x80)
                return 0;
            i += 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            if (n - i < 3 || (s[i + 1] & 0xc0) != 0x80 || (s[i + 2] & 0xc0) != 0x80)
                return 0;
            if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0))
                return 0;
            i += 3;
        } else if (c >= 0xf0 && c <= 0xf4) {
            if (n - i < 4 || (s[i + 1] & 0xc0) != 0x80 || (s[i + 2] & 0xc0) != 0x80 || (s[i + 3] & 0xc0) != 0x80)
                return 0;
            if ((c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90))
                return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* What pvc.store.model.check_part_path accepts: not empty, no NUL or backslash, no leading or trailing `/`,
 * no empty, `.` or `..` part. (Bytes of UTF-8: these ASCII bytes occur in no multi-byte sequence.) */
static int safe_path(const unsigned char *s, uint64_t n) {
    if (n == 0 || s[0] == '/' || s[n - 1] == '/')
        return 0;
    uint64_t start = 0;
    for (uint64_t i = 0; i <= n; i++) {
        if (i < n && (s[i] == 0 || s[i] == '\\'))
            return 0;
        if (i == n || s[i] == '/') {
            uint64_t len = i - start;
            if (len == 0 || (len == 1 && s[start] == '.') || (len == 2 && s[start] == '.' && s[start + 1] == '.'))
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

/* The next object's header. Scalars, strings and binaries are read whole; for a list or a map only the
 * header, and `len` is its number of elements. */
static inline int read_head(reader_t *r, head_t *h) {
    if (r->at >= r->n)
        return ODD;
    unsigned char c = r->p[r->at++];
    Py_ssize_t left;
    int k = 0;
    memset(h, 0, sizeof(*h)); /* every field defined whatever the type read */
    if (c <= 0x7f || c >= 0xe0) {
        h->type = T_INT;
        h->negative = c >= 0xe0;
        return OK;
    }
    if (c >= 0x80 && c <= 0x8f) {
        h->type = T_MAP;
        h->len = c & 0x0f;
        goto container;
    }
    if (c >= 0x90 && c <= 0x9f) {
        h->type = T_ARR;
        h->len = c & 0x0f;
        goto container;
    }
    if (c >= 0xa0 && c <= 0xbf) {
        h->type = T_STR;
        h->len = c & 0x1f;
        goto bytes;
    }
    switch (c) {
    case 0xc0:
        h->type = T_NIL;
        return OK;
    case 0xc2:
    case 0xc3:
        h->type = T_BOOL;
        return OK;
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        k = 1 << (c - 0xcc);
        if (r->n - r->at < k)
            return ODD;
        r->at += k;
        h->type = T_INT;
        return OK;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3:
        k = 1 << (c - 0xd0);
        if (r->n - r->at < k)
            return ODD;
        h->negative = (r->p[r->at] & 0x80) != 0;
        r->at += k;
        h->type = T_INT;
        return OK;
    case 0xca: {
        if (r->n - r->at < 4)
            return ODD;
        uint64_t bits = big_endian(r->p + r->at, 4);
        if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu))
            r->nan = 1;
        r->at += 4;
        h->type = T_FLOAT;
        return OK;
    }
    case 0xcb: {
        if (r->n - r->at < 8)
            return ODD;
        uint64_t bits = big_endian(r->p + r->at, 8);
        if ((bits & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (bits & 0x000fffffffffffffull))
            r->nan = 1;
        r->at += 8;
        h->type = T_FLOAT;
        return OK;
    }
    case 0xd9: case 0xda: case 0xdb:
        k = 1 << (c - 0xd9);
        h->type = T_STR;
        break;
    case 0xc4: case 0xc5: case 0xc6:
        k = 1 << (c - 0xc4);
        h->type = T_BIN;
        break;
    case 0xdc: case 0xdd:
        k = 2 << (c - 0xdc);
        h->type = T_ARR;
        break;
    case 0xde: case 0xdf:
        k = 2 << (c - 0xde);
        h->type = T_MAP;
        break;
    default: /* 0xc1 (never used) and the ext types */
        return ODD;
    }
    if (r->n - r->at < k)
        return ODD;
    h->len = big_endian(r->p + r->at, k);
    r->at += k;
    if (h->type == T_ARR || h->type == T_MAP)
        goto container;
bytes:
    left = r->n - r->at;
    if (h->len > (uint64_t)left)
        return ODD;
    h->data = r->p + r->at;
    r->at += (Py_ssize_t)h->len;
    if (h->type == T_STR && !utf8_ok(h->data, h->len))
        return ODD;
    return OK;
container:
    left = r->n - r->at; /* every element takes a byte at least: a longer count is damage */
    if (h->len > (uint64_t)left || (h->type == T_MAP && h->len > (uint64_t)left / 2))
        return ODD;
    return OK;
}

static int skip_rest(reader_t *r, const head_t *h, int depth);

/* One whole object of any kind msgpack.unpackb(raw=False, strict_map_key=False) decodes (see the top). */
static int skip(reader_t *r, int depth) {
    head_t h;
    if (read_head(r, &h))
        return ODD;
    return skip_rest(r, &h, depth);
}

static int skip_rest(reader_t *r, const head_t *h, int depth) {
    if (h->type != T_ARR && h->type != T_MAP)
        return OK;
    if (depth >= MAX_DEPTH)
        return ODD;
    for (uint64_t i = 0; i < h->len; i++) {
        if (h->type == T_MAP) {
            head_t key;
            if (read_head(r, &key) || key.type == T_ARR || key.type == T_MAP)
                return ODD;
        }
        if (skip(r, depth + 1))
            return ODD;
    }
    return OK;
}

static int compare(const unsigned char *a, Py_ssize_t la, const unsigned char *b, Py_ssize_t lb) {
    int c = memcmp(a, b, la < lb ? (size_t)la : (size_t)lb);
    return c ? c : (la > lb) - (la < lb);
}

static inline int is(const head_t *h, const char *text) {
    size_t n = strlen(text);
    return h->len == n && memcmp(h->data, text, n) == 0;
}

/* A list of safe paths (an item's companions and media_files). */
static int path_list(reader_t *r, const head_t *h) {
    if (h->type != T_ARR)
        return ODD;
    for (uint64_t i = 0; i < h->len; i++) {
        head_t path;
        if (read_head(r, &path) || path.type != T_STR || !safe_path(path.data, path.len))
            return ODD;
    }
    return OK;
}

enum { K_OTHER, K_KIND, K_PATH, K_META, K_ANNOTATION, K_PATHS, K_PROBLEMS };

/* Which of ItemEntry's fields a key of its map names. */
static int item_key(const head_t *key) {
    switch (key->len) {
    case 3:
        return is(key, "ann") ? K_PATH : K_OTHER;
    case 4:
        return is(key, "kind") ? K_KIND : is(key, "meta") ? K_META : K_OTHER;
    case 5:
        return is(key, "media") ? K_PATH : K_OTHER;
    case 8:
        return is(key, "problems") ? K_PROBLEMS : K_OTHER;
    case 10:
        return is(key, "annotation") ? K_ANNOTATION : is(key, "companions") ? K_PATHS : K_OTHER;
    case 11:
        return is(key, "media_files") ? K_PATHS : K_OTHER;
    default:
        return K_OTHER;
    }
}

/* An ItemEntry as pvc writes it (what ItemEntry.decode accepts, keys in canonical order). */
static int item_value(reader_t *r) {
    head_t map, prev = {0}, key, value;
    int kind = 0, meta = 0;
    if (read_head(r, &map) || map.type != T_MAP)
        return ODD;
    for (uint64_t i = 0; i < map.len; i++) {
        if (read_head(r, &key) || key.type != T_STR)
            return ODD;
        if (i && compare(prev.data, (Py_ssize_t)prev.len, key.data, (Py_ssize_t)key.len) >= 0)
            return ODD;
        prev = key;
        if (read_head(r, &value))
            return ODD;
        switch (item_key(&key)) {
        case K_KIND:
            if (value.type != T_STR)
                return ODD;
            kind = 1;
            break;
        case K_PATH: /* media, ann */
            if (value.type != T_NIL && (value.type != T_STR || !safe_path(value.data, value.len)))
                return ODD;
            break;
        case K_META:
            if (value.type != T_MAP || skip_rest(r, &value, 2))
                return ODD;
            meta = 1;
            break;
        case K_ANNOTATION:
            if ((value.type != T_NIL && value.type != T_MAP) || skip_rest(r, &value, 2))
                return ODD;
            break;
        case K_PATHS: /* companions, media_files */
            if (value.type != T_NIL && path_list(r, &value))
                return ODD;
            break;
        case K_PROBLEMS:
            if (value.type != T_NIL) {
                if (value.type != T_ARR)
                    return ODD;
                for (uint64_t j = 0; j < value.len; j++) {
                    head_t text;
                    if (read_head(r, &text) || text.type != T_STR)
                        return ODD;
                }
            }
            break;
        default:
            if (skip_rest(r, &value, 2))
                return ODD;
        }
    }
    return kind && meta ? OK : ODD;
}

/* A FileValue: [32-byte id, size >= 0, mode]. */
static int file_value(reader_t *r) {
    head_t list, id, size, mode;
    if (read_head(r, &list) || list.type != T_ARR || list.len != 3)
        return ODD;
    if (read_head(r, &id) || id.type != T_BIN || id.len != 32)
        return ODD;
    if (read_head(r, &size) || size.type != T_INT || size.negative)
        return ODD;
    if (read_head(r, &mode) || mode.type != T_INT)
        return ODD;
    return OK;
}

/* The entries of a run of pages, one at a time, checked as they are read. */
typedef struct {
    PyObject *pages; /* a fast sequence of (bytes, first key, count) */
    Py_ssize_t npages, page; /* page: index of the page being read, -1 before the first */
    int items;               /* kind: 0 files, 1 items */
    reader_t r;
    int open, in_entries;
    uint64_t map_left, entries_left, count, expect;
    int seen_entries, seen_kind, seen_type;
    const char *first;
    Py_ssize_t first_len;
    /* the current entry; its value is read (checked) only when asked for: `pending` until then */
    const unsigned char *key, *value;
    Py_ssize_t key_len, value_len;
    int nan, has_key, pending;
} cursor_t;

static int open_page(cursor_t *c) {
    PyObject *spec = PyTuple_GET_ITEM(c->pages, c->page);
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 3 || !PyBytes_Check(PyTuple_GET_ITEM(spec, 0))
        || !PyUnicode_Check(PyTuple_GET_ITEM(spec, 1)) || !PyLong_Check(PyTuple_GET_ITEM(spec, 2)))
        return ODD;
    PyObject *data = PyTuple_GET_ITEM(spec, 0);
    c->first = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(spec, 1), &c->first_len);
    long long expect = PyLong_AsLongLong(PyTuple_GET_ITEM(spec, 2));
    if (c->first == NULL || (expect == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return ODD;
    }
    if (expect < 0)
        return ODD;
    c->expect = (uint64_t)expect;
    c->r.p = (const unsigned char *)PyBytes_AS_STRING(data);
    c->r.n = PyBytes_GET_SIZE(data);
    c->r.at = 0;
    head_t map;
    if (read_head(&c->r, &map) || map.type != T_MAP)
        return ODD;
    c->map_left = map.len;
    c->open = 1;
    c->in_entries = 0;
    c->count = 0;
    c->seen_entries = c->seen_kind = c->seen_type = 0;
    return OK;
}

/* The top-level fields of a page other than its entries: `kind` must be the expected kind, `type` "page". */
static int page_field(cursor_t *c) {
    head_t key, value;
    if (read_head(&c->r, &key) || key.type != T_STR)
        return ODD;
    if (is(&key, "entries")) {
        if (c->seen_entries || read_head(&c->r, &value) || value.type != T_ARR)
            return ODD;
        c->seen_entries = 1;
        c->in_entries = 1;
        c->entries_left = value.len;
        return OK;
    }
    if (is(&key, "kind") || is(&key, "type")) {
        int *seen = is(&key, "kind") ? &c->seen_kind : &c->seen_type;
        const char *want = seen == &c->seen_type ? "page" : c->items ? "items" : "files";
        if (*seen || read_head(&c->r, &value) || value.type != T_STR || !is(&value, want))
            return ODD;
        *seen = 1;
        return OK;
    }
    return skip(&c->r, 1);
}

/* The page's end: everything read, nothing after it, as many entries as its reference says. */
static int close_page(cursor_t *c) {
    c->open = 0;
    if (c->r.at != c->r.n || !c->seen_entries || !c->seen_kind || !c->seen_type || c->count != c->expect)
        return ODD;
    return OK;
}

static int read_entry(cursor_t *c) {
    head_t pair, key;
    reader_t *r = &c->r;
    if (read_head(r, &pair) || pair.type != T_ARR || pair.len != 2)
        return ODD;
    if (read_head(r, &key) || key.type != T_STR)
        return ODD;
    if (!c->items && !safe_path(key.data, key.len))
        return ODD;
    if (c->has_key && compare(c->key, c->key_len, key.data, (Py_ssize_t)key.len) >= 0)
        return ODD; /* out of order or repeated, in the page or from one page to the next */
    if (c->count == 0 && compare(key.data, (Py_ssize_t)key.len, (const unsigned char *)c->first, c->first_len) != 0)
        return ODD; /* not the first key its reference names */
    c->key = key.data;
    c->key_len = (Py_ssize_t)key.len;
    c->has_key = 1;
    c->pending = 1;
    c->count++;
    return OK;
}

/* Read and check the current entry's value. */
static int take_value(cursor_t *c) {
    if (!c->pending)
        return OK;
    reader_t *r = &c->r;
    Py_ssize_t start = r->at;
    r->nan = 0;
    if (c->items ? item_value(r) : file_value(r))
        return ODD;
    c->value = r->p + start;
    c->value_len = r->at - start;
    c->nan = r->nan;
    c->pending = 0;
    return OK;
}

/* Whether the current entry's value has the bytes of `other`'s (read and checked): then it is that value, as
 * msgpack is prefix-free, and it is taken without being read again. */
static int same_value(cursor_t *c, const cursor_t *other) {
    reader_t *r = &c->r;
    if (!c->pending || r->n - r->at < other->value_len || memcmp(r->p + r->at, other->value, (size_t)other->value_len))
        return 0;
    c->value = r->p + r->at;
    c->value_len = other->value_len;
    c->nan = other->nan;
    r->at += other->value_len;
    c->pending = 0;
    return 1;
}

/* 1: an entry is current (its value pending); 0: no more; ODD. */
static int advance(cursor_t *c) {
    if (take_value(c))
        return ODD;
    for (;;) {
        if (c->open && c->in_entries) {
            if (c->entries_left) {
                c->entries_left--;
                return read_entry(c) ? ODD : 1;
            }
            c->in_entries = 0;
            continue;
        }
        if (c->open && c->map_left) {
            c->map_left--;
            if (page_field(c))
                return ODD;
            continue;
        }
        if (c->open && close_page(c))
            return ODD;
        if (c->page + 1 >= c->npages)
            return 0;
        c->page++;
        if (open_page(c))
            return ODD;
    }
}

static int kind_of(PyObject *kind) {
    if (!PyUnicode_Check(kind))
        return -1;
    if (PyUnicode_CompareWithASCIIString(kind, "files") == 0)
        return 0;
    if (PyUnicode_CompareWithASCIIString(kind, "items") == 0)
        return 1;
    return -1;
}

static int start(cursor_t *c, PyObject *pages, int items) {
    memset(c, 0, sizeof(*c));
    c->pages = PySequence_Tuple(pages); /* our own copy: the caller cannot change the pages under the cursor */
    if (c->pages == NULL)
        return -1;
    c->npages = PyTuple_GET_SIZE(c->pages);
    c->page = -1;
    c->items = items;
    return 0;
}

static PyObject *side(const cursor_t *c, int present) {
    if (!present)
        return Py_BuildValue("(nO)", (Py_ssize_t)-1, Py_None);
    return Py_BuildValue("(ny#)", c->page, (const char *)c->value, c->value_len);
}

static int emit(PyObject *out, const cursor_t *named, const cursor_t *a, int in_a, const cursor_t *b, int in_b) {
    PyObject *key = PyUnicode_DecodeUTF8((const char *)named->key, named->key_len, "strict");
    PyObject *sa = key ? side(a, in_a) : NULL;
    PyObject *sb = sa ? side(b, in_b) : NULL;
    PyObject *row = sb ? PyTuple_Pack(5, key, PyTuple_GET_ITEM(sa, 0), PyTuple_GET_ITEM(sa, 1),
                                      PyTuple_GET_ITEM(sb, 0), PyTuple_GET_ITEM(sb, 1)) : NULL;
    int failed = row == NULL || PyList_Append(out, row) < 0;
    Py_XDECREF(key);
    Py_XDECREF(sa);
    Py_XDECREF(sb);
    Py_XDECREF(row);
    return failed ? -1 : 0;
}

static PyObject *changed(PyObject *self, PyObject *args) {
    PyObject *kind, *pages_a, *pages_b;
    if (!PyArg_ParseTuple(args, "OOO", &kind, &pages_a, &pages_b))
        return NULL;
    int items = kind_of(kind);
    if (items < 0)
        Py_RETURN_NONE;
    cursor_t a, b;
    if (start(&a, pages_a, items) < 0)
        return NULL;
    if (start(&b, pages_b, items) < 0) {
        Py_DECREF(a.pages);
        return NULL;
    }
    PyObject *out = PyList_New(0);
    int odd = 0, failed = out == NULL;
    int more_a = failed ? 0 : advance(&a), more_b = failed ? 0 : advance(&b);
    while (!failed && !odd) {
        if (more_a == ODD || more_b == ODD) {
            odd = 1;
            break;
        }
        if (!more_a && !more_b)
            break;
        int order = !more_a ? 1 : !more_b ? -1 : compare(a.key, a.key_len, b.key, b.key_len);
        /* nothing is read further once an entry was odd or an exception is set */
        if (order < 0) {
            odd = take_value(&a);
            failed = !odd && emit(out, &a, &a, 1, &b, 0) < 0;
            if (!odd && !failed)
                more_a = advance(&a);
        } else if (order > 0) {
            odd = take_value(&b);
            failed = !odd && emit(out, &b, &a, 0, &b, 1) < 0;
            if (!odd && !failed)
                more_b = advance(&b);
        } else {
            odd = take_value(&a);
            if (!odd && !same_value(&b, &a)) {
                odd = take_value(&b);
                failed = !odd && emit(out, &a, &a, 1, &b, 1) < 0;
            } else if (!odd && a.nan) {
                failed = emit(out, &a, &a, 1, &b, 1) < 0;
            }
            if (!odd && !failed) {
                more_a = advance(&a);
                more_b = advance(&b);
            }
        }
    }
    Py_DECREF(a.pages);
    Py_DECREF(b.pages);
    if (failed) {
        Py_XDECREF(out);
        return NULL;
    }
    if (odd) {
        Py_DECREF(out);
        Py_RETURN_NONE;
    }
    return out;
}

/* A cursor on one page (`table`); the list it reads, which the caller releases with the cursor's pages,
 * or NULL with an exception set. */
static PyObject *page_cursor(cursor_t *c, PyObject *data, PyObject *first, PyObject *count, int items) {
    PyObject *spec = Py_BuildValue("[(OOO)]", data, first, count);
    if (spec != NULL && start(c, spec, items) < 0)
        Py_CLEAR(spec);
    return spec;
}

/* One page's entries as a table of where they lie in its bytes: 4 native uint64 an entry (key offset, key length,
 * value offset, value length), each entry checked as `entries` checks it, no object made an entry. None for anything
 * unusual, for a page of no entries, and when `next` (the first key of the page after it, or None) is not after the
 * page's last key. */
static PyObject *table(PyObject *self, PyObject *args) {
    PyObject *kind, *data, *first, *count, *next;
    if (!PyArg_ParseTuple(args, "OO!OOO", &kind, &PyBytes_Type, &data, &first, &count, &next))
        return NULL;
    int items = kind_of(kind);
    Py_ssize_t n = PyLong_Check(count) ? PyLong_AsSsize_t(count) : -1;
    if (n == -1 && PyErr_Occurred())
        PyErr_Clear();
    if (items < 0 || n <= 0 || n > PyBytes_GET_SIZE(data) || (next != Py_None && !PyUnicode_Check(next)))
        Py_RETURN_NONE; /* (every entry takes a few bytes: a count larger than the page is a lie) */
    Py_ssize_t next_len = 0;
    const char *next_text = next == Py_None ? NULL : PyUnicode_AsUTF8AndSize(next, &next_len);
    if (next != Py_None && next_text == NULL)
        return NULL;
    cursor_t c;
    PyObject *spec = page_cursor(&c, data, first, count, items);
    if (spec == NULL)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * 4 * (Py_ssize_t)sizeof(uint64_t));
    const unsigned char *base = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t i = 0;
    int more = out == NULL ? 0 : advance(&c);
    while (more == 1) {
        if (take_value(&c) || i >= n) {
            more = ODD;
            break;
        }
        uint64_t at[4] = {(uint64_t)(c.key - base), (uint64_t)c.key_len, (uint64_t)(c.value - base),
                          (uint64_t)c.value_len};
        memcpy(PyBytes_AS_STRING(out) + i * (Py_ssize_t)sizeof(at), at, sizeof(at));
        i++;
        more = advance(&c);
    }
    int after = i == n && (next_text == NULL
                           || compare(c.key, c.key_len, (const unsigned char *)next_text, next_len) < 0);
    Py_DECREF(c.pages);
    Py_DECREF(spec);
    if (out == NULL)
        return NULL;
    if (more == ODD || !after) {
        Py_DECREF(out);
        Py_RETURN_NONE;
    }
    return out;
}

/* A page's bytes and its `table`, read entry by entry; every offset checked against the bytes (a table that is not
 * the page's gives a ValueError, never a read outside it). */
typedef struct {
    const unsigned char *data;
    Py_ssize_t size, n;
    const char *table;
} view_t;

static int view_of(PyObject *data, PyObject *table, view_t *v) {
    if (!PyBytes_Check(data) || !PyBytes_Check(table) || PyBytes_GET_SIZE(table) % (4 * sizeof(uint64_t))) {
        PyErr_SetString(PyExc_TypeError, "a page's bytes and its table (pvc._pages.table)");
        return -1;
    }
    v->data = (const unsigned char *)PyBytes_AS_STRING(data);
    v->size = PyBytes_GET_SIZE(data);
    v->table = PyBytes_AS_STRING(table);
    v->n = PyBytes_GET_SIZE(table) / (Py_ssize_t)(4 * sizeof(uint64_t));
    return 0;
}

typedef struct {
    const unsigned char *key, *value;
    Py_ssize_t key_len, value_len;
} span_t;

static int view_entry(const view_t *v, Py_ssize_t i, span_t *e) {
    uint64_t at[4], size = (uint64_t)v->size;
    memcpy(at, v->table + i * (Py_ssize_t)sizeof(at), sizeof(at));
    if (at[0] > size || at[1] > size - at[0] || at[2] > size || at[3] > size - at[2]) {
        PyErr_SetString(PyExc_ValueError, "a table that is not this page's");
        return -1;
    }
    e->key = v->data + at[0];
    e->key_len = (Py_ssize_t)at[1];
    e->value = v->data + at[2];
    e->value_len = (Py_ssize_t)at[3];
    return 0;
}

/* The position of the first entry whose key is not before `key` (n: none); -2 on an error. */
static Py_ssize_t view_find(const view_t *v, const unsigned char *key, Py_ssize_t key_len) {
    Py_ssize_t lo = 0, hi = v->n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        span_t e;
        if (view_entry(v, mid, &e) < 0)
            return -2;
        if (compare(e.key, e.key_len, key, key_len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The arguments (data, table, key) of `find` and `prefixed`, and where `key` is or would be; -1 on an error. */
static Py_ssize_t searched(PyObject *args, view_t *v, const char **key, Py_ssize_t *key_len) {
    PyObject *data, *tab;
    if (!PyArg_ParseTuple(args, "OOs#", &data, &tab, key, key_len) || view_of(data, tab, v) < 0)
        return -1;
    Py_ssize_t at = view_find(v, (const unsigned char *)*key, *key_len);
    return at == -2 ? -1 : at;
}

static PyObject *find(PyObject *self, PyObject *args) {
    const char *key;
    Py_ssize_t key_len;
    view_t v;
    span_t e;
    Py_ssize_t at = searched(args, &v, &key, &key_len);
    if (at < 0 || (at < v.n && view_entry(&v, at, &e) < 0))
        return NULL;
    if (at < v.n && compare(e.key, e.key_len, (const unsigned char *)key, key_len) == 0)
        return Py_BuildValue("(ny#)", at, (const char *)e.value, e.value_len);
    return Py_BuildValue("(nO)", at, Py_None);
}

static PyObject *key_at(PyObject *self, PyObject *args) {
    PyObject *data, *tab;
    Py_ssize_t at;
    view_t v;
    span_t e;
    if (!PyArg_ParseTuple(args, "OOn", &data, &tab, &at) || view_of(data, tab, &v) < 0)
        return NULL;
    if (at < 0 || at >= v.n)
        Py_RETURN_NONE;
    if (view_entry(&v, at, &e) < 0)
        return NULL;
    return PyUnicode_DecodeUTF8((const char *)e.key, e.key_len, "strict");
}

static PyObject *prefixed(PyObject *self, PyObject *args) {
    const char *prefix;
    Py_ssize_t prefix_len;
    view_t v;
    Py_ssize_t at = searched(args, &v, &prefix, &prefix_len);
    if (at < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    int ended = 0;
    for (; out != NULL && at < v.n; at++) {
        span_t e;
        if (view_entry(&v, at, &e) < 0) {
            Py_CLEAR(out);
            break;
        }
        if (e.key_len < prefix_len || memcmp(e.key, prefix, (size_t)prefix_len) != 0) {
            ended = 1;
            break;
        }
        PyObject *key = PyUnicode_DecodeUTF8((const char *)e.key, e.key_len, "strict");
        if (key == NULL || PyList_Append(out, key) < 0) {
            Py_XDECREF(key);
            Py_CLEAR(out);
            break;
        }
        Py_DECREF(key);
    }
    if (out == NULL)
        return NULL;
    return Py_BuildValue("(NO)", out, ended ? Py_True : Py_False);
}

/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32), for where a page ends. */
static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc32_of(const unsigned char *p, Py_ssize_t n) {
    uint32_t c = 0xffffffffu;
    for (Py_ssize_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* msgpack's smallest header for a str (fix, 8, 16 or 32 bit) or an array (fix, 16 or 32 bit). */
static Py_ssize_t str_header(unsigned char *out, Py_ssize_t n) {
    if (n < 32) { out[0] = (unsigned char)(0xa0 | n); return 1; }
    if (n < 256) { out[0] = 0xd9; out[1] = (unsigned char)n; return 2; }
    if (n < 65536) { out[0] = 0xda; out[1] = (unsigned char)(n >> 8); out[2] = (unsigned char)n; return 3; }
    out[0] = 0xdb;
    for (int k = 0; k < 4; k++) out[1 + k] = (unsigned char)((uint64_t)n >> (24 - 8 * k));
    return 5;
}

static Py_ssize_t array_header(unsigned char *out, Py_ssize_t n) {
    if (n < 16) { out[0] = (unsigned char)(0x90 | n); return 1; }
    if (n < 65536) { out[0] = 0xdc; out[1] = (unsigned char)(n >> 8); out[2] = (unsigned char)n; return 3; }
    out[0] = 0xdd;
    for (int k = 0; k < 4; k++) out[1 + k] = (unsigned char)((uint64_t)n >> (24 - 8 * k));
    return 5;
}

/* The entries `runs` and `one_page` take, one after another: each element of their list is a (key, value bytes)
 * pair, or (page bytes, table, lo, hi), the entries lo..hi of a page read with `table` (spliced as the bytes they
 * are: no object is made an entry). `src` and `at`: the element an entry comes from, and its place in that page. */
typedef struct {
    const unsigned char *key, *value;
    Py_ssize_t key_len, value_len, src, at;
} flat_t;

static int slice_of(PyObject *el, view_t *v, Py_ssize_t *lo, Py_ssize_t *hi) {
    if (view_of(PyTuple_GET_ITEM(el, 0), PyTuple_GET_ITEM(el, 1), v) < 0)
        return -1;
    *lo = PyLong_AsSsize_t(PyTuple_GET_ITEM(el, 2));
    *hi = PyLong_AsSsize_t(PyTuple_GET_ITEM(el, 3));
    if (PyErr_Occurred())
        return -1;
    if (*lo < 0 || *hi > v->n || *lo > *hi) {
        PyErr_SetString(PyExc_ValueError, "a run of entries outside its page");
        return -1;
    }
    return 0;
}

static flat_t *flatten(PyObject *list, Py_ssize_t *count) {
    Py_ssize_t total = 0, size = PyList_GET_SIZE(list);
    for (int pass = 0; pass < 2; pass++) {
        flat_t *out = NULL;
        if (pass) {
            out = PyMem_Malloc(sizeof(flat_t) * (size_t)(total ? total : 1));
            if (out == NULL) {
                PyErr_NoMemory();
                return NULL;
            }
        }
        Py_ssize_t n = 0;
        for (Py_ssize_t s = 0; s < size; s++) {
            PyObject *el = PyList_GET_ITEM(list, s);
            Py_ssize_t parts = PyTuple_Check(el) ? PyTuple_GET_SIZE(el) : 0;
            if (parts == 2 && PyUnicode_Check(PyTuple_GET_ITEM(el, 0)) && PyBytes_Check(PyTuple_GET_ITEM(el, 1))) {
                if (pass) {
                    flat_t *f = &out[n];
                    f->key = (const unsigned char *)PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(el, 0), &f->key_len);
                    if (f->key == NULL) {
                        PyMem_Free(out);
                        return NULL;
                    }
                    f->value = (const unsigned char *)PyBytes_AS_STRING(PyTuple_GET_ITEM(el, 1));
                    f->value_len = PyBytes_GET_SIZE(PyTuple_GET_ITEM(el, 1));
                    f->src = s;
                    f->at = 0;
                }
                n++;
            } else if (parts == 4) {
                view_t v;
                Py_ssize_t lo, hi;
                if (slice_of(el, &v, &lo, &hi) < 0) {
                    PyMem_Free(out);
                    return NULL;
                }
                for (Py_ssize_t i = lo; pass && i < hi; i++) {
                    span_t e;
                    if (view_entry(&v, i, &e) < 0) {
                        PyMem_Free(out);
                        return NULL;
                    }
                    out[n + i - lo] = (flat_t){e.key, e.value, e.key_len, e.value_len, s, i};
                }
                n += hi - lo;
            } else {
                PyMem_Free(out);
                PyErr_SetString(PyExc_TypeError, "entries: (str, bytes) pairs or (page bytes, table, lo, hi) runs");
                return NULL;
            }
        }
        if (pass) {
            *count = n;
            return out;
        }
        total = n;
    }
    return NULL; /* not reached */
}

/* One page of entries[lo:hi], as (first key, bytes, count). */
static PyObject *encode_page(const flat_t *flat, Py_ssize_t lo, Py_ssize_t hi, const char *kind) {
    static const char entries_key[] = "\x83\xa7" "entries";
    Py_ssize_t kind_len = (Py_ssize_t)strlen(kind);
    Py_ssize_t size = (Py_ssize_t)sizeof(entries_key) - 1 + 5 + 6 + 5 + kind_len + 5 + 5;
    for (Py_ssize_t i = lo; i < hi; i++)
        size += 1 + 5 + flat[i].key_len + flat[i].value_len;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL)
        return NULL;
    unsigned char *w = (unsigned char *)PyBytes_AS_STRING(out), *start = w;
    memcpy(w, entries_key, sizeof(entries_key) - 1);
    w += sizeof(entries_key) - 1;
    w += array_header(w, hi - lo);
    for (Py_ssize_t i = lo; i < hi; i++) {
        *w++ = 0x92;
        w += str_header(w, flat[i].key_len);
        memcpy(w, flat[i].key, (size_t)flat[i].key_len);
        w += flat[i].key_len;
        memcpy(w, flat[i].value, (size_t)flat[i].value_len);
        w += flat[i].value_len;
    }
    *w++ = 0xa4; memcpy(w, "kind", 4); w += 4;
    w += str_header(w, kind_len);
    memcpy(w, kind, kind_len);
    w += kind_len;
    *w++ = 0xa4; memcpy(w, "type", 4); w += 4;
    *w++ = 0xa4; memcpy(w, "page", 4); w += 4;
    if (_PyBytes_Resize(&out, w - start) < 0)
        return NULL;
    PyObject *first = PyUnicode_DecodeUTF8((const char *)flat[lo].key, flat[lo].key_len, "strict");
    if (first == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    return Py_BuildValue("(NNn)", first, out, hi - lo);
}

/* The elements of `list` that hold entries from `from` on: whole pairs, and the runs of a page cut to what is left. */
static PyObject *rest_of(PyObject *list, const flat_t *flat, Py_ssize_t from, Py_ssize_t n) {
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = from; out != NULL && i < n;) {
        PyObject *el = PyList_GET_ITEM(list, flat[i].src), *part;
        Py_ssize_t j = i + 1;
        if (PyTuple_GET_SIZE(el) == 2) {
            part = Py_NewRef(el);
        } else {
            while (j < n && flat[j].src == flat[i].src)
                j++;
            part = Py_BuildValue("(OOnn)", PyTuple_GET_ITEM(el, 0), PyTuple_GET_ITEM(el, 1), flat[i].at,
                                 flat[j - 1].at + 1);
        }
        if (part == NULL || PyList_Append(out, part) < 0)
            Py_CLEAR(out);
        Py_XDECREF(part);
        i = j;
    }
    return out;
}

static PyObject *cut(const char *kind, PyObject *list, Py_ssize_t page_min, Py_ssize_t page_avg, Py_ssize_t page_max,
                     int whole) {
    if (page_avg <= 0 || page_max <= 0) {
        PyErr_SetString(PyExc_ValueError, "page sizes must be positive");
        return NULL;
    }
    Py_ssize_t n = 0;
    flat_t *flat = flatten(list, &n);
    if (flat == NULL)
        return NULL;
    if (whole) { /* one page of them all: it closes at n exactly */
        if (n == 0) {
            PyMem_Free(flat);
            PyErr_SetString(PyExc_ValueError, "a page holds one entry at least");
            return NULL;
        }
        page_min = page_max = n;
        page_avg = 1;
    }
    PyObject *out = PyList_New(0);
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        Py_ssize_t count = i + 1 - start;
        int closes = count >= page_max;
        if (!closes && count >= page_min)
            closes = crc32_of(flat[i].key, flat[i].key_len) % (uint32_t)page_avg == 0;
        if (closes) {
            PyObject *run = encode_page(flat, start, i + 1, kind);
            if (run == NULL || PyList_Append(out, run) < 0)
                Py_CLEAR(out);
            Py_XDECREF(run);
            start = i + 1;
        }
    }
    PyObject *result = NULL;
    if (out != NULL && whole) {
        result = PyList_GET_SIZE(out) == 1 ? Py_NewRef(PyList_GET_ITEM(out, 0)) : NULL;
        if (result == NULL)
            PyErr_SetString(PyExc_RuntimeError, "one page expected");
        Py_DECREF(out);
    } else if (out != NULL) {
        PyObject *rest = rest_of(list, flat, start, n);
        result = rest == NULL ? NULL : Py_BuildValue("(NN)", out, rest);
        if (rest == NULL)
            Py_DECREF(out);
    }
    PyMem_Free(flat);
    return result;
}

static PyObject *runs(PyObject *self, PyObject *args) {
    PyObject *kind, *entries;
    Py_ssize_t page_min, page_avg, page_max;
    if (!PyArg_ParseTuple(args, "UO!nnn", &kind, &PyList_Type, &entries, &page_min, &page_avg, &page_max))
        return NULL;
    const char *kind_text = PyUnicode_AsUTF8(kind);
    return kind_text == NULL ? NULL : cut(kind_text, entries, page_min, page_avg, page_max, 0);
}

/* `runs`' encoding of one page holding all of `entries` (the last run of a map, which its end closes). */
static PyObject *one_page(PyObject *self, PyObject *args) {
    PyObject *kind, *entries;
    if (!PyArg_ParseTuple(args, "UO!", &kind, &PyList_Type, &entries))
        return NULL;
    const char *kind_text = PyUnicode_AsUTF8(kind);
    return kind_text == NULL ? NULL : cut(kind_text, entries, 0, 1, 1, 1);
}

static PyObject *objects(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t from, count;
    if (!PyArg_ParseTuple(args, "y*nn", &buf, &from, &count))
        return NULL;
    PyObject *out = NULL;
    if (from < 0 || count < 0 || from > buf.len || count > buf.len - from) { /* every object takes a byte at least */
        out = Py_NewRef(Py_None);
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, (count + 1) * (Py_ssize_t)sizeof(uint64_t));
    if (out == NULL)
        goto done;
    char *at = PyBytes_AS_STRING(out);
    reader_t r = {buf.buf, buf.len, from, 0};
    for (Py_ssize_t i = 0; i <= count; i++) {
        uint64_t here = (uint64_t)r.at;
        memcpy(at + i * (Py_ssize_t)sizeof(uint64_t), &here, sizeof(here));
        if (i < count && skip(&r, 0)) {
            Py_SETREF(out, Py_NewRef(Py_None));
            break;
        }
    }
done:
    PyBuffer_Release(&buf);
    return out;
}

static PyObject *row_find(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t base, lo, hi, row, key_len;
    const char *key;
    if (!PyArg_ParseTuple(args, "y*nnnny#", &buf, &base, &lo, &hi, &row, &key, &key_len))
        return NULL;
    PyObject *out = NULL;
    if (base < 0 || lo < 0 || hi < lo || row <= 0 || key_len > row || key_len <= 0 ||
        hi > (buf.len - base) / row || base > buf.len) {
        PyErr_SetString(PyExc_ValueError, "row_find: rows outside the data");
        goto done;
    }
    const unsigned char *rows = (const unsigned char *)buf.buf + base;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        int c = memcmp(rows + mid * row, key, (size_t)key_len);
        if (c < 0)
            lo = mid + 1;
        else if (c > 0)
            hi = mid;
        else {
            out = PyLong_FromSsize_t(base + mid * row);
            goto done;
        }
    }
    out = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&buf);
    return out;
}

static PyMethodDef methods[] = {
    {"changed", changed, METH_VARARGS,
     "changed(kind, a, b) -> [(key, page_a, value_a, page_b, value_b)] | None: the entries whose value bytes "
     "differ between two runs of pages (bytes, first key, count), in key order; None for anything unusual."},
    {"objects", objects, METH_VARARGS,
     "objects(data, start, count) -> offsets | None: where each of `count` msgpack objects read one after another "
     "from `start` begins, and where the last ends (count + 1 native uint64); None for anything unusual."},
    {"find", find, METH_VARARGS,
     "find(data, table, key) -> (position, value bytes | None): where `key` is or would be in a page read with "
     "`table`, and its value's bytes when it is there."},
    {"key_at", key_at, METH_VARARGS,
     "key_at(data, table, position) -> key | None: the key of a page's entry at `position` (None: no such entry)."},
    {"one_page", one_page, METH_VARARGS,
     "one_page(kind, entries) -> (first key, page bytes, count): all of `entries` as one page, as `runs` encodes."},
    {"prefixed", prefixed, METH_VARARGS,
     "prefixed(data, table, prefix) -> ([key], ended): a page's keys that start with `prefix`, in order; ended: a "
     "key after them does not (False: they run to the page's end)."},
    {"runs", runs, METH_VARARGS,
     "runs(kind, entries, page_min, page_avg, page_max) -> ([(first key, page bytes, count)], rest): entries "
     "((key, value bytes) pairs, or (page bytes, table, lo, hi) runs of a page's entries) cut into pages as "
     "pvc.store.pages cuts a map, each closed run encoded as a page; rest: the entries of the run still open, as "
     "such elements."},
    {"row_find", row_find, METH_VARARGS,
     "row_find(data, base, lo, hi, row_size, key) -> offset | None: the byte offset of the row among rows lo..hi "
     "(row_size bytes each from `base`, sorted) that starts with `key`, or None."},
    {"table", table, METH_VARARGS,
     "table(kind, data, first, count, next) -> bytes | None: where each entry of one page lies in its bytes "
     "(4 native uint64 an entry: key offset and length, value offset and length), checked as `entries` checks "
     "them; None for anything unusual, no entries, or a last key not before `next` (None: no page after it)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "pvc._pages", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pages(void) {
    crc_init();
    return PyModule_Create(&module);
}
