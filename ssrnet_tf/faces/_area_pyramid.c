/* Area ("box filter") downscaling of one float32 image to many sizes at once.
 *
 * MTCNN's image pyramid (ssrnet_tf.faces.area_pyramid) area-resizes the
 * normalised image to ten sizes. OpenCV's INTER_AREA reads the whole image
 * once per size and spends ~0.75 ms on each of them for a 640x480 frame.
 * Here every size is made in two passes:
 *
 *   1. vertical, all sizes in one sweep over the source rows: each source
 *      row is added, with its overlap weight, to the one or two destination
 *      rows of every size that it overlaps (contiguous rows of W * C floats,
 *      which the compiler vectorises);
 *   2. horizontal, per size, on the already short rows.
 *
 * Destination pixel i of a side of n_src -> n_dst pixels covers the source
 * interval [i * n_src / n_dst, (i + 1) * n_src / n_dst] and is the mean of
 * the source over it, each source pixel weighted by the length of its
 * overlap, as OpenCV's INTER_AREA and TensorFlow's AREA resize compute it
 * for downscaling. Sums are float32, as OpenCV's.
 *
 * Only the Python C API (buffer protocol) is used: no NumPy headers at
 * build time. The caller passes the source, one float32 scratch buffer per
 * size (rows x W * C, zeroed here) and one destination per size.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define AREA_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define AREA_TARGET_CLONES
#endif

/* out[k] += weight * row[k] for k < n. */
AREA_TARGET_CLONES
static void add_scaled(float *restrict out, const float *restrict row, float weight, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; ++k) {
        out[k] += weight * row[k];
    }
}

/* Overlap of source pixel s (covering [s, s + 1]) with destination pixel d
 * of a side of n_src -> n_dst pixels, divided by the destination's extent. */
static double overlap_weight(Py_ssize_t s, Py_ssize_t d, Py_ssize_t n_src, Py_ssize_t n_dst) {
    const double scale = (double)n_src / (double)n_dst;
    const double start = (double)d * scale, end = (double)(d + 1) * scale;
    const double low = start > (double)s ? start : (double)s;
    const double high = end < (double)(s + 1) ? end : (double)(s + 1);
    return high > low ? (high - low) / scale : 0.0;
}

typedef struct {
    Py_buffer scratch, dst;
    Py_ssize_t rows, cols;
} Level;

static void release_levels(Level *levels, Py_ssize_t count) {
    for (Py_ssize_t i = 0; i < count; ++i) {
        if (levels[i].scratch.obj != NULL) PyBuffer_Release(&levels[i].scratch);
        if (levels[i].dst.obj != NULL) PyBuffer_Release(&levels[i].dst);
    }
    PyMem_Free(levels);
}

static int writable_float_buffer(PyObject *object, Py_buffer *view, Py_ssize_t floats, const char *what) {
    if (PyObject_GetBuffer(object, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len != floats * (Py_ssize_t)sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd float32 values, got %zd bytes", what, floats, view->len);
        return -1;
    }
    return 0;
}

/* area_levels(src, height, width, channels, [(rows, cols, scratch, dst), ...]) */
static PyObject *area_levels(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *src_object, *level_list;
    Py_ssize_t height, width, channels;
    if (!PyArg_ParseTuple(args, "OnnnO!", &src_object, &height, &width, &channels, &PyList_Type, &level_list)) {
        return NULL;
    }
    if (height <= 0 || width <= 0 || channels <= 0) {
        PyErr_SetString(PyExc_ValueError, "height, width and channels must be positive");
        return NULL;
    }
    Py_buffer src;
    if (PyObject_GetBuffer(src_object, &src, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    const Py_ssize_t row_floats = width * channels;
    if (src.len != height * row_floats * (Py_ssize_t)sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "src: expected %zd float32 values, got %zd bytes", height * row_floats, src.len);
        PyBuffer_Release(&src);
        return NULL;
    }
    const Py_ssize_t count = PyList_GET_SIZE(level_list);
    Level *levels = PyMem_Calloc(count > 0 ? (size_t)count : 1, sizeof(Level));
    if (levels == NULL) {
        PyBuffer_Release(&src);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < count; ++i) {
        PyObject *scratch_object, *dst_object;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(level_list, i), "nnOO", &levels[i].rows, &levels[i].cols,
                              &scratch_object, &dst_object)) {
            goto fail;
        }
        if (levels[i].rows < 1 || levels[i].rows > height || levels[i].cols < 1 || levels[i].cols > width) {
            PyErr_Format(PyExc_ValueError, "level %zd: %zd x %zd is not a downscale of %zd x %zd", i, levels[i].rows,
                         levels[i].cols, height, width);
            goto fail;
        }
        if (writable_float_buffer(scratch_object, &levels[i].scratch, levels[i].rows * row_floats, "scratch") < 0 ||
            writable_float_buffer(dst_object, &levels[i].dst, levels[i].rows * levels[i].cols * channels, "dst") < 0) {
            goto fail;
        }
    }

    const float *image = (const float *)src.buf;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    /* 1. Vertical: every source row into the destination rows it overlaps. */
    for (Py_ssize_t i = 0; i < count; ++i) memset(levels[i].scratch.buf, 0, (size_t)levels[i].scratch.len);
    for (Py_ssize_t r = 0; r < height; ++r) {
        const float *row = image + r * row_floats;
        for (Py_ssize_t i = 0; i < count; ++i) {
            const Py_ssize_t rows = levels[i].rows;
            const Py_ssize_t first = (Py_ssize_t)floor((double)r * (double)rows / (double)height);
            float *scratch = (float *)levels[i].scratch.buf;
            for (Py_ssize_t d = first; d < rows && d <= first + 1; ++d) {
                const double weight = overlap_weight(r, d, height, rows);
                if (weight > 0.0) add_scaled(scratch + d * row_floats, row, (float)weight, row_floats);
            }
        }
    }
    /* 2. Horizontal, per size, on its short rows: taps[first[d] .. first[d + 1])
     *    are the source columns and weights of destination column d. */
    for (Py_ssize_t i = 0; i < count && !failed; ++i) {
        const Py_ssize_t rows = levels[i].rows, cols = levels[i].cols;
        const Py_ssize_t max_taps = (Py_ssize_t)ceil((double)width / (double)cols) + 2;
        Py_ssize_t *tap_start = malloc((size_t)(cols + 1) * sizeof(Py_ssize_t));
        Py_ssize_t *tap_column = malloc((size_t)(cols * max_taps) * sizeof(Py_ssize_t));
        float *tap_weight = malloc((size_t)(cols * max_taps) * sizeof(float));
        if (tap_start == NULL || tap_column == NULL || tap_weight == NULL) {
            failed = 1;
        } else {
            Py_ssize_t taps = 0;
            for (Py_ssize_t d = 0; d < cols; ++d) {
                tap_start[d] = taps;
                const Py_ssize_t first = (Py_ssize_t)floor((double)d * (double)width / (double)cols);
                for (Py_ssize_t s = first; s < width && s <= first + max_taps - 1; ++s) {
                    const double weight = overlap_weight(s, d, width, cols);
                    if (weight > 0.0) {
                        tap_column[taps] = s * channels;
                        tap_weight[taps++] = (float)weight;
                    }
                }
            }
            tap_start[cols] = taps;
            const float *scratch = (const float *)levels[i].scratch.buf;
            float *dst = (float *)levels[i].dst.buf;
            for (Py_ssize_t y = 0; y < rows; ++y) {
                const float *in = scratch + y * row_floats;
                float *out = dst + y * cols * channels;
                if (channels == 3) {  /* the pyramid's case: sums in registers */
                    for (Py_ssize_t d = 0; d < cols; ++d, out += 3) {
                        float sum0 = 0.0f, sum1 = 0.0f, sum2 = 0.0f;
                        for (Py_ssize_t t = tap_start[d]; t < tap_start[d + 1]; ++t) {
                            const float *pixel = in + tap_column[t];
                            const float weight = tap_weight[t];
                            sum0 += weight * pixel[0];
                            sum1 += weight * pixel[1];
                            sum2 += weight * pixel[2];
                        }
                        out[0] = sum0;
                        out[1] = sum1;
                        out[2] = sum2;
                    }
                    continue;
                }
                for (Py_ssize_t d = 0; d < cols; ++d, out += channels) {
                    for (Py_ssize_t c = 0; c < channels; ++c) out[c] = 0.0f;
                    for (Py_ssize_t t = tap_start[d]; t < tap_start[d + 1]; ++t) {
                        const float *pixel = in + tap_column[t];
                        for (Py_ssize_t c = 0; c < channels; ++c) out[c] += tap_weight[t] * pixel[c];
                    }
                }
            }
        }
        free(tap_start);
        free(tap_column);
        free(tap_weight);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&src);
    release_levels(levels, count);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;

fail:
    PyBuffer_Release(&src);
    release_levels(levels, count);
    return NULL;
}

static PyMethodDef methods[] = {
    {"area_levels", area_levels, METH_VARARGS,
     "area_levels(src, height, width, channels, [(rows, cols, scratch, dst), ...]): area-downscales a C-contiguous "
     "float32 image into each dst (rows x cols x channels float32); scratch: rows x width x channels float32."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_area_pyramid",
                                    "Area downscaling of one float32 image to many sizes (MTCNN's pyramid).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__area_pyramid(void) { return PyModule_Create(&module); }
