/* pvc._walk: the stat walk of a project tree in C, for the scans of `status`, `diff` and `commit`.
 *
 * walk(root, skip_at_root, patterns) lists every regular file under `root` the way pvc/project/scan.py
 * does (same ignore rules, symlinks to regular files followed) and returns two bytes objects: the files
 * sorted by relative path, each as `path NUL size mtime_ns ino ctime_ns` (four little-endian 64-bit
 * integers, of the file a symlink points to), and one byte of flags per file: 1 if any execute bit is set,
 * 2 if it was reached through a symlink. pvc/project/walk.py makes the same
 * records from a Python scan (`stat_records`), so two scans of an untouched tree give equal digests, and
 * pvc/project/scan.py turns these back into the scan's files (`files_from_walk`; pvc/core/capture/walk.py one file at a
 * time, from names() below).
 *
 * It returns None, and the caller falls back to the Python scan (which then reports the problem), for
 * anything that scan treats specially: a symlink to a folder, a broken link, a FIFO, socket or device,
 * a name with a backslash or a newline, a folder it cannot read, or a tree deeper than MAX_DEPTH.
 *
 * `patterns` are .pvcignore lines already split by scan.py: (pattern, folders_only, match_full_path).
 * Only `*` and `?` are special (scan.py never passes a pattern with `[`), with the meaning
 * fnmatch.fnmatchcase gives them: `*` any run of characters, `/` included; `?` one character
 * (one UTF-8 sequence).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 256

typedef struct {
    const char *text;
    size_t len;
    int folders_only;
    int full_path;
} pattern_t;

typedef struct {
    size_t path_off; /* into the arena while walking; replaced by `path` before sorting */
    const char *path;
    size_t path_len;
    size_t dir;      /* index of its folder in `folders` */
    size_t name_at;  /* where its name starts in `path` */
    uint64_t size;
    int64_t mtime_ns;
    uint64_t ino;
    int64_t ctime_ns;
    char executable; /* any x bit: the file mode a version records */
    char symlink;    /* reached through a symbolic link (followed: its target is what is versioned) */
} record_t;

typedef struct {
    char *data;
    size_t len, cap;
} buffer_t;

typedef struct {
    record_t *items;
    size_t len, cap;
} records_t;

typedef struct {
    char *path; /* relative, "" for the root, else ending in '/' */
    int depth;
} dir_t;

typedef struct {
    dir_t *items;
    size_t len, cap;
} stack_t_;

typedef struct {
    char **items; /* relative folder paths, "" or ending in '/' */
    size_t len, cap;
} folders_t;

static int buffer_add(buffer_t *b, const char *s, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n) cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data) return -1;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static size_t utf8_step(const char *s, size_t i, size_t n) {
    i++;
    while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
    return i;
}

/* fnmatch.fnmatchcase for patterns made of literals, `*` and `?` */
static int glob_match(const char *p, size_t pn, const char *s, size_t sn) {
    size_t pi = 0, si = 0, star_p = (size_t)-1, star_s = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '*') {
            star_p = ++pi;
            star_s = si;
        } else if (pi < pn && p[pi] == '?') {
            pi++;
            si = utf8_step(s, si, sn);
        } else if (pi < pn && p[pi] == s[si]) {
            pi++;
            si++;
        } else if (star_p != (size_t)-1) {
            pi = star_p;
            star_s = utf8_step(s, star_s, sn);
            si = star_s;
        } else {
            return 0;
        }
    }
    while (pi < pn && p[pi] == '*') pi++;
    return pi == pn;
}

static int ignored(const pattern_t *pats, Py_ssize_t npats, const char *rel, size_t rel_len, const char *name,
                   size_t name_len, int is_dir) {
    for (Py_ssize_t i = 0; i < npats; i++) {
        if (pats[i].folders_only && !is_dir) continue;
        if (pats[i].full_path ? glob_match(pats[i].text, pats[i].len, rel, rel_len)
                              : glob_match(pats[i].text, pats[i].len, name, name_len))
            return 1;
    }
    return 0;
}

static int by_path(const void *a, const void *b) {
    const record_t *x = a, *y = b;
    size_t n = x->path_len < y->path_len ? x->path_len : y->path_len;
    int c = memcmp(x->path, y->path, n);
    if (c) return c;
    return (x->path_len > y->path_len) - (x->path_len < y->path_len);
}

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec; }

/* Phase 1: list the folders (one thread). A file is recorded by path; its stat comes in phase 2.
 * 0: done; 1: fall back to the Python scan; -1: out of memory */
static int list_tree(int rootfd, char **skip, Py_ssize_t nskip, const pattern_t *pats, Py_ssize_t npats,
                     buffer_t *arena, records_t *recs, folders_t *folders) {
    int status = 0;
    stack_t_ stack = {0};
    buffer_t rel = {0};
    stack.items = malloc(sizeof(dir_t) * 16);
    if (!stack.items) return -1;
    stack.cap = 16;
    stack.items[stack.len++] = (dir_t){strdup(""), 0};
    if (!stack.items[0].path) { status = -1; goto done; }

    while (stack.len && status == 0) {
        dir_t dir = stack.items[--stack.len];
        if (folders->len == folders->cap) {
            size_t cap = folders->cap ? folders->cap * 2 : 64;
            char **items = realloc(folders->items, sizeof(char *) * cap);
            if (!items) { free(dir.path); status = -1; break; }
            folders->items = items;
            folders->cap = cap;
        }
        size_t folder = folders->len;
        folders->items[folders->len++] = dir.path; /* freed by the caller */
        int fd = dir.path[0] ? openat(rootfd, dir.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                             : dup(rootfd);
        DIR *listing = fd < 0 ? NULL : fdopendir(fd);
        if (!listing) {
            if (fd >= 0) close(fd);
            status = 1;
            break;
        }
        size_t prefix_len = strlen(dir.path);
        struct dirent *ent;
        errno = 0;
        while (status == 0 && (ent = readdir(listing)) != NULL) {
            const char *name = ent->d_name;
            if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
            size_t name_len = strlen(name);
            if (prefix_len == 0) {
                int skipped = 0;
                for (Py_ssize_t i = 0; i < nskip && !skipped; i++) skipped = strcmp(name, skip[i]) == 0;
                if (skipped) continue;
            }
            rel.len = 0;
            if (buffer_add(&rel, dir.path, prefix_len) || buffer_add(&rel, name, name_len)) { status = -1; break; }
            int type = ent->d_type;
            if (type == DT_UNKNOWN) {
                struct stat st;
                if (fstatat(dirfd(listing), name, &st, AT_SYMLINK_NOFOLLOW) != 0) { status = 1; break; }
                type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : S_ISLNK(st.st_mode) ? DT_LNK : DT_FIFO;
            }
            if (npats && ignored(pats, npats, rel.data, rel.len, name, name_len, type == DT_DIR)) continue;
            if (memchr(name, '\\', name_len) || memchr(name, '\n', name_len)) { status = 1; break; }
            if (type == DT_DIR) {
                if (dir.depth + 1 > MAX_DEPTH) { status = 1; break; }
                char *sub = malloc(rel.len + 2);
                if (!sub) { status = -1; break; }
                memcpy(sub, rel.data, rel.len);
                sub[rel.len] = '/';
                sub[rel.len + 1] = 0;
                if (stack.len == stack.cap) {
                    dir_t *items = realloc(stack.items, sizeof(dir_t) * stack.cap * 2);
                    if (!items) { free(sub); status = -1; break; }
                    stack.items = items;
                    stack.cap *= 2;
                }
                stack.items[stack.len++] = (dir_t){sub, dir.depth + 1};
            } else if (type == DT_REG || type == DT_LNK) {
                if (recs->len == recs->cap) {
                    size_t cap = recs->cap ? recs->cap * 2 : 1024;
                    record_t *items = realloc(recs->items, sizeof(record_t) * cap);
                    if (!items) { status = -1; break; }
                    recs->items = items;
                    recs->cap = cap;
                }
                record_t *r = &recs->items[recs->len++];
                r->path_off = arena->len;
                r->path_len = rel.len;
                r->dir = folder;
                r->name_at = prefix_len;
                if (buffer_add(arena, rel.data, rel.len) || buffer_add(arena, "", 1)) { status = -1; break; }
            } else {
                status = 1; /* FIFO, socket, device */
            }
            errno = 0;
        }
        if (status == 0 && errno != 0) status = 1; /* readdir failed */
        closedir(listing);
    }
done:
    while (stack.len) free(stack.items[--stack.len].path);
    free(stack.items);
    free(rel.data);
    return status;
}

/* Phase 2: stat the files, in several threads: most of the time is the kernel's, per file. */
typedef struct {
    int rootfd;
    char **folders;
    record_t *items;
    size_t len;
    int failed;
} slice_t;

/* Files are listed folder by folder, so a slice opens each of its folders once and stats by name in it,
 * which spares the kernel a path lookup per file. */
static void *stat_slice(void *arg) {
    slice_t *s = arg;
    size_t open_dir = (size_t)-1;
    int fd = -1;
    for (size_t i = 0; i < s->len; i++) {
        record_t *r = &s->items[i];
        if (r->dir != open_dir) {
            if (fd >= 0) close(fd);
            const char *folder = s->folders[r->dir];
            fd = folder[0] ? openat(s->rootfd, folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : dup(s->rootfd);
            open_dir = r->dir;
            if (fd < 0) { s->failed = 1; return NULL; }
        }
        const char *name = r->path + r->name_at;
        struct stat st;
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) { s->failed = 1; break; } /* gone */
        r->symlink = S_ISLNK(st.st_mode) != 0;
        if ((r->symlink && fstatat(fd, name, &st, 0) != 0) || !S_ISREG(st.st_mode)) {
            s->failed = 1; /* a broken link, or no longer a regular file */
            break;
        }
        r->size = (uint64_t)st.st_size;
        r->mtime_ns = ns(st.st_mtim);
        r->ino = (uint64_t)st.st_ino;
        r->ctime_ns = ns(st.st_ctim);
        r->executable = (st.st_mode & 0111) != 0;
    }
    if (fd >= 0) close(fd);
    return NULL;
}

#define MAX_THREADS 8
#define FILES_PER_THREAD 2048

static int stat_all(int rootfd, records_t *recs, char **folders) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t threads = recs->len / FILES_PER_THREAD + 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (cpus > 0 && threads > (size_t)cpus * 2) threads = (size_t)cpus * 2;
    slice_t slices[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    size_t per = (recs->len + threads - 1) / threads;
    for (size_t t = 0; t < threads; t++) {
        size_t from = t * per < recs->len ? t * per : recs->len;
        size_t to = from + per < recs->len ? from + per : recs->len;
        slices[t] = (slice_t){rootfd, folders, recs->items + from, to - from, 0};
        if (t > 0) started[t] = pthread_create(&ids[t], NULL, stat_slice, &slices[t]) == 0;
    }
    stat_slice(&slices[0]);
    int failed = slices[0].failed;
    for (size_t t = 1; t < threads; t++) {
        if (started[t]) pthread_join(ids[t], NULL);
        else stat_slice(&slices[t]); /* no thread: do its share here */
        failed |= slices[t].failed;
    }
    return failed;
}

static int walk_tree(const char *root, char **skip, Py_ssize_t nskip, const pattern_t *pats, Py_ssize_t npats,
                     buffer_t *arena, records_t *recs) {
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) return 1;
    folders_t folders = {0};
    int status = list_tree(rootfd, skip, nskip, pats, npats, arena, recs, &folders);
    if (status == 0) {
        for (size_t i = 0; i < recs->len; i++) recs->items[i].path = arena->data + recs->items[i].path_off;
        status = stat_all(rootfd, recs, folders.items);
    }
    for (size_t i = 0; i < folders.len; i++) free(folders.items[i]);
    free(folders.items);
    close(rootfd);
    return status;
}

static void put_u64(char *out, uint64_t v) {
    for (int i = 0; i < 8; i++) out[i] = (char)((v >> (8 * i)) & 0xFF);
}

static PyObject *walk(PyObject *self, PyObject *args) {
    PyObject *root_obj, *skip_obj, *pats_obj;
    if (!PyArg_ParseTuple(args, "O&O!O!", PyUnicode_FSConverter, &root_obj, &PyTuple_Type, &skip_obj,
                          &PyTuple_Type, &pats_obj))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t nskip = PyTuple_GET_SIZE(skip_obj), npats = PyTuple_GET_SIZE(pats_obj);
    char **skip = PyMem_Calloc(nskip + 1, sizeof(char *));
    pattern_t *pats = PyMem_Calloc(npats + 1, sizeof(pattern_t));
    buffer_t arena = {0};
    records_t recs = {0};
    if (!skip || !pats) { PyErr_NoMemory(); goto out; }
    for (Py_ssize_t i = 0; i < nskip; i++) {
        PyObject *item = PyTuple_GET_ITEM(skip_obj, i);
        if (!PyBytes_Check(item)) { PyErr_SetString(PyExc_TypeError, "skip_at_root: bytes expected"); goto out; }
        skip[i] = PyBytes_AS_STRING(item);
    }
    for (Py_ssize_t i = 0; i < npats; i++) {
        PyObject *item = PyTuple_GET_ITEM(pats_obj, i);
        char *text;
        Py_ssize_t len;
        int folders_only, full_path;
        if (!PyArg_ParseTuple(item, "y#pp", &text, &len, &folders_only, &full_path)) goto out;
        pats[i] = (pattern_t){text, (size_t)len, folders_only, full_path};
    }
    int status;
    const char *root = PyBytes_AS_STRING(root_obj);
    Py_BEGIN_ALLOW_THREADS
    status = walk_tree(root, skip, nskip, pats, npats, &arena, &recs);
    if (status == 0) qsort(recs.items, recs.len, sizeof(record_t), by_path);
    Py_END_ALLOW_THREADS
    if (status < 0) { PyErr_NoMemory(); goto out; }
    if (status > 0) { result = Py_NewRef(Py_None); goto out; }
    size_t total = 0;
    for (size_t i = 0; i < recs.len; i++) total += recs.items[i].path_len + 1 + 32;
    PyObject *records = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    PyObject *flags = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)recs.len);
    if (!records || !flags) { Py_XDECREF(records); Py_XDECREF(flags); goto out; }
    char *p = PyBytes_AS_STRING(records), *x = PyBytes_AS_STRING(flags);
    for (size_t i = 0; i < recs.len; i++) {
        record_t *r = &recs.items[i];
        memcpy(p, r->path, r->path_len);
        p += r->path_len;
        *p++ = 0;
        put_u64(p, r->size);
        put_u64(p + 8, (uint64_t)r->mtime_ns);
        put_u64(p + 16, r->ino);
        put_u64(p + 24, (uint64_t)r->ctime_ns);
        p += 32;
        x[i] = (char)(r->executable | (r->symlink << 1));
    }
    result = PyTuple_Pack(2, records, flags);
    Py_DECREF(records);
    Py_DECREF(flags);
out:
    free(arena.data);
    free(recs.items);
    PyMem_Free(skip);
    PyMem_Free(pats);
    Py_DECREF(root_obj);
    return result;
}

/* The stat records of walk() read back: names(records) -> (names, at, newest) | None, every path as a str in order,
 * `at` the offset in `records` of each file's four integers (one uint64 a file, in the machine's byte order, as
 * memoryview.cast("Q") reads them), and the newest of the mtimes and ctimes (INT64_MIN for none); None when a name
 * is not UTF-8 (the Python scan then reports it). */
static uint64_t get_u64(const char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | (unsigned char)p[i];
    return v;
}

static PyObject *names(PyObject *self, PyObject *args) {
    Py_buffer rec;
    if (!PyArg_ParseTuple(args, "y*", &rec)) return NULL;
    PyObject *list = NULL, *at = NULL, *result = NULL;
    const char *data = rec.buf;
    size_t total = (size_t)rec.len, count = 0;
    for (size_t p = 0; p < total; count++) { /* count the records, checking their shape */
        const char *nul = memchr(data + p, 0, total - p);
        if (!nul || (size_t)(nul - data) + 1 + 32 > total) {
            PyErr_SetString(PyExc_ValueError, "records: truncated");
            goto out;
        }
        p = (size_t)(nul - data) + 1 + 32;
    }
    list = PyList_New((Py_ssize_t)count);
    at = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * 8));
    if (!list || !at) goto out;
    char *offsets = PyBytes_AS_STRING(at);
    int64_t newest = INT64_MIN;
    size_t p = 0;
    for (size_t i = 0; i < count; i++) {
        const char *path = data + p;
        size_t len = strlen(path);
        p += len + 1;
        PyObject *name = PyUnicode_DecodeUTF8(path, (Py_ssize_t)len, NULL);
        if (!name) {
            PyErr_Clear();
            result = Py_NewRef(Py_None);
            goto out;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, name);
        uint64_t here = (uint64_t)p;
        memcpy(offsets + 8 * i, &here, sizeof(here));
        int64_t mtime = (int64_t)get_u64(data + p + 8), ctime = (int64_t)get_u64(data + p + 24);
        if (mtime > newest) newest = mtime;
        if (ctime > newest) newest = ctime;
        p += 32;
    }
    result = Py_BuildValue("(OOL)", list, at, (long long)newest);
out:
    Py_XDECREF(list);
    Py_XDECREF(at);
    PyBuffer_Release(&rec);
    return result;
}

/* compare(records, at, paths, sizes, mtimes, inodes, ctimes, cutoff) -> (changed, gone) | None: the walk's records
 * (with `at` from names()) against the stat cache's columns (pvc/store/statcache.py), merged in path order: the
 * positions of the walked files the columns do not vouch for (absent, another stat, or modified at or after `cutoff`),
 * and the positions in the columns of the paths the walk did not find. `paths` is the columns' paths as one
 * NUL-separated UTF-8 string, the other four buffers of 64-bit integers in the machine's order, one a path. None when
 * the paths are not strictly sorted or the columns not of one length: the caller then compares in Python. */
static int append_index(PyObject *list, Py_ssize_t i) {
    PyObject *n = PyLong_FromSsize_t(i);
    if (!n) return -1;
    int r = PyList_Append(list, n);
    Py_DECREF(n);
    return r;
}

/* The next column path from *pos (its length in *len), or NULL when it does not come strictly after `prev`. */
static const char *next_path(const char *blob, size_t blob_len, size_t *pos, const char *prev, size_t prev_len,
                             size_t *len) {
    const char *path = blob + *pos;
    const char *end = memchr(path, 0, blob_len - *pos);
    *len = end ? (size_t)(end - path) : blob_len - *pos;
    *pos += *len + 1;
    if (prev) { /* strictly after the one before, in the walk's (byte) order */
        size_t n = prev_len < *len ? prev_len : *len;
        int c = memcmp(prev, path, n);
        if (c > 0 || (c == 0 && prev_len >= *len)) return NULL;
    }
    return path;
}

static PyObject *compare(PyObject *self, PyObject *args) {
    Py_buffer rec, at, paths, sizes, mtimes, inodes, ctimes;
    long long cutoff;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*L", &rec, &at, &paths, &sizes, &mtimes, &inodes, &ctimes, &cutoff))
        return NULL;
    PyObject *changed = PyList_New(0), *gone = PyList_New(0), *result = NULL;
    const char *blob = paths.buf, *data = rec.buf, *prev = NULL;
    size_t blob_len = (size_t)paths.len, m = 0, k = 0, pos = 0, prev_len = 0;
    size_t count = (size_t)at.len / 8, start = 0;
    if (!changed || !gone) goto out;
    if (blob_len) {
        m = 1;
        for (const char *c = memchr(blob, 0, blob_len); c; c = memchr(c + 1, 0, blob_len - (size_t)(c + 1 - blob)))
            m++;
    }
    if ((size_t)sizes.len != 8 * m || (size_t)mtimes.len != 8 * m || (size_t)inodes.len != 8 * m ||
        (size_t)ctimes.len != 8 * m)
        goto unsure;
    for (size_t i = 0; i < count; i++) {
        uint64_t here;
        memcpy(&here, (const char *)at.buf + 8 * i, sizeof(here));
        size_t stat_at = (size_t)here;
        if ((size_t)rec.len < 32 || stat_at > (size_t)rec.len - 32 || stat_at < start + 1 || data[stat_at - 1] != 0) {
            PyErr_SetString(PyExc_ValueError, "records: offsets do not match");
            goto out;
        }
        const char *path = data + start, *stats = data + stat_at;
        size_t len = stat_at - 1 - start;
        start = stat_at + 32;
        int matched = 0;
        while (k < m) { /* the columns' paths before this one are gone; an equal one is compared */
            size_t clen, was = pos;
            const char *cpath = next_path(blob, blob_len, &pos, prev, prev_len, &clen);
            if (!cpath) goto unsure;
            size_t n = len < clen ? len : clen;
            int c = memcmp(cpath, path, n);
            if (c == 0) c = (clen > len) - (clen < len);
            if (c > 0) { /* the next cached path comes after this one: this one is not cached */
                pos = was;
                break;
            }
            prev = cpath;
            prev_len = clen;
            k++;
            if (c < 0) {
                if (append_index(gone, (Py_ssize_t)(k - 1))) goto out;
                continue;
            }
            uint64_t size, ino;
            int64_t mtime, ctime, now = (int64_t)get_u64(stats + 8);
            memcpy(&size, (const char *)sizes.buf + 8 * (k - 1), 8);
            memcpy(&mtime, (const char *)mtimes.buf + 8 * (k - 1), 8);
            memcpy(&ino, (const char *)inodes.buf + 8 * (k - 1), 8);
            memcpy(&ctime, (const char *)ctimes.buf + 8 * (k - 1), 8);
            int64_t changed_at = (int64_t)get_u64(stats + 24); /* its ctime: settled too, as its mtime */
            matched = now < cutoff && changed_at < cutoff && size == get_u64(stats) && mtime == now &&
                      ino == get_u64(stats + 16) && ctime == changed_at;
            break;
        }
        if (!matched && append_index(changed, (Py_ssize_t)i)) goto out;
    }
    if (start != (size_t)rec.len) {
        PyErr_SetString(PyExc_ValueError, "records: offsets do not match");
        goto out;
    }
    for (; k < m; k++) {
        size_t clen;
        const char *cpath = next_path(blob, blob_len, &pos, prev, prev_len, &clen);
        if (!cpath) goto unsure;
        prev = cpath;
        prev_len = clen;
        if (append_index(gone, (Py_ssize_t)k)) goto out;
    }
    result = PyTuple_Pack(2, changed, gone);
    goto out;
unsure:
    PyErr_Clear();
    result = Py_NewRef(Py_None);
out:
    Py_XDECREF(changed);
    Py_XDECREF(gone);
    PyBuffer_Release(&rec);
    PyBuffer_Release(&at);
    PyBuffer_Release(&paths);
    PyBuffer_Release(&sizes);
    PyBuffer_Release(&mtimes);
    PyBuffer_Release(&inodes);
    PyBuffer_Release(&ctimes);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS,
     "walk(root, skip_at_root, patterns) -> (records, flags) | None: the sorted stat records of every file "
     "under root, and one byte per file: 1 if any execute bit is set, 2 if reached through a symlink."},
    {"names", names, METH_VARARGS,
     "names(records) -> (names, at, newest) | None: the walked paths as str, where each file's integers start, and "
     "the newest mtime or ctime (see the comment above the function)."},
    {"compare", compare, METH_VARARGS,
     "compare(records, at, paths, sizes, mtimes, inodes, ctimes, cutoff) -> (changed, gone) | None: the walk's "
     "records merged with the stat cache's columns (see the comment above the function)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "pvc._walk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
