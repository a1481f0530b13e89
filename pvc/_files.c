/* pvc._files: the file creation loop of `restore` and `clone` in C.
 *
 * write_files(dirfd, files) creates every file of `files`, a sequence of (path, data, mode, chmod) — `path` bytes
 * relative to the folder open as `dirfd`, `data` any contiguous buffer, `mode` the file's permission bits, `chmod`
 * true where the process's umask would strip some of them (so the mode is set again after creation) — each one
 * exclusively (O_CREAT | O_EXCL | O_NOFOLLOW: a file already there, or a symbolic link, is an error), written whole
 * and closed. It returns None when every file was written, else (position, errno) of the first one that failed;
 * files before it stay written, files after it are not touched (the caller removes its staging folder). Given a list
 * `stats`, it appends each written file's (size, mtime_ns, inode, ctime_ns), fstat'ed before its close: what clone's
 * stat cache records, without a stat of every path afterwards.
 *
 * What it saves over the same loop in Python (pvc/core/writefiles.py, used where this is not built): the loop runs
 * without the GIL, so restore's worker threads create files on every core at once instead of taking turns with the
 * interpreter lock around each of the four system calls of every file.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __APPLE__ /* the stat times' names there */
#define st_mtim st_mtimespec
#define st_ctim st_ctimespec
#endif

typedef struct {
    const char *path;
    Py_buffer data;
    mode_t mode;
    int chmod;
} job_t;

/* 0 on success, else errno; with `st`, the file's stat once written (taken before the close, nothing changes it
 * after: what a stat of the path would give) */
static int write_one(int dirfd, const job_t *job, struct stat *st) {
    int fd = openat(dirfd, job->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, job->mode);
    if (fd < 0)
        return errno;
    const char *at = job->data.buf;
    Py_ssize_t left = job->data.len;
    int err = 0;
    while (left > 0) {
        ssize_t n = write(fd, at, (size_t)left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            break;
        }
        if (n == 0) {
            err = EIO;
            break;
        }
        at += n;
        left -= n;
    }
    if (!err && job->chmod && fchmod(fd, job->mode) != 0)
        err = errno;
    if (!err && st != NULL && fstat(fd, st) != 0)
        err = errno;
    if (close(fd) != 0 && !err && errno != EINTR)
        err = errno;
    return err;
}

static PyObject *write_files(PyObject *self, PyObject *args) {
    int dirfd;
    PyObject *given, *stats_out = Py_None;
    if (!PyArg_ParseTuple(args, "iO|O", &dirfd, &given, &stats_out))
        return NULL;
    if (stats_out != Py_None && !PyList_Check(stats_out)) {
        PyErr_SetString(PyExc_TypeError, "write_files: stats must be a list or None");
        return NULL;
    }
    PyObject *files = PySequence_Tuple(given); /* our own copy: the caller may not change it under us */
    if (files == NULL)
        return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(files), ready = 0;
    job_t *jobs = count ? PyMem_Calloc((size_t)count, sizeof(job_t)) : NULL;
    struct stat *stats = count && stats_out != Py_None ? PyMem_Calloc((size_t)count, sizeof(struct stat)) : NULL;
    PyObject *result = NULL;
    if (count && (jobs == NULL || (stats_out != Py_None && stats == NULL))) {
        PyErr_NoMemory();
        goto done;
    }
    for (; ready < count; ready++) {
        PyObject *row = PyTuple_GET_ITEM(files, ready), *path, *data;
        unsigned int mode;
        int chmod;
        if (!PyTuple_Check(row) || !PyArg_ParseTuple(row, "SOIp", &path, &data, &mode, &chmod)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "write_files: each file is (path, data, mode, chmod)");
            goto done;
        }
        if ((size_t)PyBytes_GET_SIZE(path) != strlen(PyBytes_AS_STRING(path))) {
            PyErr_SetString(PyExc_ValueError, "write_files: a path holds a NUL byte");
            goto done;
        }
        if (PyObject_GetBuffer(data, &jobs[ready].data, PyBUF_CONTIG_RO) != 0)
            goto done;
        jobs[ready].path = PyBytes_AS_STRING(path); /* kept alive by `files` */
        jobs[ready].mode = (mode_t)(mode & 07777);
        jobs[ready].chmod = chmod;
    }
    Py_ssize_t failed = -1;
    int err = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        if ((err = write_one(dirfd, &jobs[i], stats ? &stats[i] : NULL)) != 0) {
            failed = i;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    for (Py_ssize_t i = 0; stats != NULL && i < (failed < 0 ? count : failed); i++) {
        /* (size, mtime_ns, inode, ctime_ns) of each file written, in order */
        const struct stat *st = &stats[i];
        PyObject *row = Py_BuildValue(
            "(LLKL)", (long long)st->st_size,
            (long long)st->st_mtim.tv_sec * 1000000000LL + (long long)st->st_mtim.tv_nsec,
            (unsigned long long)st->st_ino,
            (long long)st->st_ctim.tv_sec * 1000000000LL + (long long)st->st_ctim.tv_nsec);
        if (row == NULL || PyList_Append(stats_out, row) != 0) {
            Py_XDECREF(row);
            goto done;
        }
        Py_DECREF(row);
    }
    result = failed < 0 ? Py_NewRef(Py_None) : Py_BuildValue("(ni)", failed, err);
done:
    for (Py_ssize_t i = 0; i < ready; i++)
        PyBuffer_Release(&jobs[i].data);
    PyMem_Free(jobs);
    PyMem_Free(stats);
    Py_DECREF(files);
    return result;
}

static PyMethodDef methods[] = {
    {"write_files", write_files, METH_VARARGS,
     "write_files(dirfd, [(path, data, mode, chmod), ...], stats=None) -> None | (position, errno): create "
     "each file exclusively under dirfd, write it whole, close it; without the GIL. With a list `stats`, "
     "appends (size, mtime_ns, inode, ctime_ns) of each file written, in order."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "pvc._files", NULL, -1, methods};

PyMODINIT_FUNC PyInit__files(void) { return PyModule_Create(&module); }
