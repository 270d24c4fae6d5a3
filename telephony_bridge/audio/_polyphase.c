/* The resampler's polyphase FIR inner loops, compiled (optional: resample.py falls back to numpy).

Why: on the hot path a 20 ms caller frame (160 samples, 8k -> 24k) and a 100 ms model delta
(2,400 samples, 24k -> 8k) are small, and numpy's per-call overhead, BLAS's packing and the strided
window copy cost more than the multiply-adds themselves (bench/README.md, issue 22). One call here
does what resample.py's `_upsample_block` / `_downsample_block` do, with G.711 folded in through the
caller's own tables.

Same output, bit for bit, as the numpy path: every coefficient is a multiple of 2**-24 and every
input an int16, so every product and partial sum is exact in float64 whatever the order of the sums
(resample.py's docstring); rounding is half to even, then saturation, as `to_pcm16` does.

State stays in the caller's float64 buffer (`Resampler._buffer`): its first `history` doubles are
the previous input; the input is written after them, and the history moved to the front after. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* One build, two instruction sets on x86-64 Linux: the loader picks the AVX2+FMA clone where the
   CPU has it (4 multiply-adds an instruction), the baseline elsewhere. FMA rounds once instead of
   twice, which changes nothing here: the products and sums are exact either way. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define KERNEL __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KERNEL
#endif

/* Four lanes of doubles: GCC's and Clang's vector extension (an AVX register in the x86-64-v3
   clone, two SSE2 registers in the baseline); plain loops elsewhere. Each lane is its own sum, so
   this is the source's order of operations, not a reordering. */
#if defined(__GNUC__)
typedef double lanes __attribute__((vector_size(4 * sizeof(double))));

static inline lanes
load_lanes(const double *p)
{
    lanes v;
    memcpy(&v, p, sizeof v); /* unaligned load */
    return v;
}
#define FMA_LANES(acc, h, p) ((acc) += (h) * load_lanes(p))
#endif

/* Round half to even by the 1.5 * 2**52 trick (the default rounding mode does the work; valid for
   |x| < 2**51, and a resampled int16 stays far below), then saturate to int16. */
static inline int16_t
to_int16(double x)
{
    const double magic = 6755399441055744.0;
    double r = (x + magic) - magic;
    if (r > 32767.0) return 32767;
    if (r < -32768.0) return -32768;
    return (int16_t)r;
}

static inline void
put_le16(char *out, Py_ssize_t i, int16_t v)
{
    uint16_t u = (uint16_t)v;
    out[2 * i] = (char)(u & 0xFF);
    out[2 * i + 1] = (char)(u >> 8);
}

/* Input samples as doubles into buf[0..n): PCM16 little-endian (the host's order, which the
   module's import checks; copied to int16s first so the conversion vectorizes whatever the input's
   alignment), or G.711 codes through `table` (256 int16s). */
KERNEL static void
load_input(double *buf, const unsigned char *in, Py_ssize_t n, const int16_t *table)
{
    if (table != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) buf[i] = (double)table[in[i]];
        return;
    }
    int16_t chunk[256];
    for (Py_ssize_t start = 0; start < n; start += 256) {
        Py_ssize_t len = n - start < 256 ? n - start : 256;
        memcpy(chunk, in + 2 * start, (size_t)len * sizeof(int16_t));
        for (Py_ssize_t i = 0; i < len; i++) buf[start + i] = (double)chunk[i];
    }
}

/* sums[l] = sum_k h[k * h_step] * x[k + l] for the WIDE lanes l (four vectors: one coefficient
   loaded per four multiply-adds), or for the four lanes of sum4 (the tails). */
#define WIDE 32

static inline void
sum_wide(double sums[WIDE], const double *h, Py_ssize_t h_step, const double *x, Py_ssize_t len)
{
#if defined(__GNUC__)
    lanes a[WIDE / 4];
    for (int v = 0; v < WIDE / 4; v++) a[v] = (lanes){0.0, 0.0, 0.0, 0.0};
    for (Py_ssize_t k = 0; k < len; k++) {
        double c = h[k * h_step];
        for (int v = 0; v < WIDE / 4; v++) FMA_LANES(a[v], c, x + k + 4 * v);
    }
    memcpy(sums, a, sizeof a);
#else
    for (int l = 0; l < WIDE; l++) {
        double acc = 0.0;
        for (Py_ssize_t k = 0; k < len; k++) acc += h[k * h_step] * x[k + l];
        sums[l] = acc;
    }
#endif
}

static inline void
sum4(double sums[4], const double *h, Py_ssize_t h_step, const double *x, Py_ssize_t len)
{
#if defined(__GNUC__)
    lanes acc = {0.0, 0.0, 0.0, 0.0};
    for (Py_ssize_t k = 0; k < len; k++) FMA_LANES(acc, h[k * h_step], x + k);
    memcpy(sums, &acc, sizeof acc);
#else
    for (int l = 0; l < 4; l++) {
        double acc = 0.0;
        for (Py_ssize_t k = 0; k < len; k++) acc += h[k * h_step] * x[k + l];
        sums[l] = acc;
    }
#endif
}

/* out[i * factor + p] = sum_k bank[p][k] * buf[i + k]: WIDE (then four, then one) consecutive
   inputs at a time, one lane each, so the loop vectorizes with no reordering of any sum. */
KERNEL static void
upsample_kernel(const double *buf, Py_ssize_t n, const double *bank, Py_ssize_t branch_len, Py_ssize_t factor,
                char *out)
{
    for (Py_ssize_t p = 0; p < factor; p++) {
        const double *h = bank + p * branch_len;
        Py_ssize_t i = 0;
        for (; i + WIDE <= n; i += WIDE) {
            double acc[WIDE];
            sum_wide(acc, h, 1, buf + i, branch_len);
            for (int j = 0; j < WIDE; j++) put_le16(out, (i + j) * factor + p, to_int16(acc[j]));
        }
        for (; i + 4 <= n; i += 4) {
            double acc[4];
            sum4(acc, h, 1, buf + i, branch_len);
            for (int j = 0; j < 4; j++) put_le16(out, (i + j) * factor + p, to_int16(acc[j]));
        }
        for (; i < n; i++) {
            double acc = 0.0;
            for (Py_ssize_t k = 0; k < branch_len; k++) acc += h[k] * buf[i + k];
            put_le16(out, i * factor + p, to_int16(acc));
        }
    }
}

/* out[j] = sum_t taps[t] * buf[skip + j * factor + t]. Consecutive outputs read inputs `factor`
   apart, so the input is first split into its `factor` phases (phase[r][m] = buf[skip + r + factor
   * m]); then, with t = factor * q + r, out[j] = sum_r sum_q taps[factor * q + r] * phase[r][j + q]:
   WIDE consecutive outputs at a time, one lane each, as upsampling does. `scratch` holds
   factor * phase_length(count, span / factor) doubles. */
static inline Py_ssize_t
phase_length(Py_ssize_t count, Py_ssize_t branch_len)
{
    /* The inputs the outputs need, then zeros the last group of lanes may read past them. */
    return count + branch_len - 1 + WIDE;
}

KERNEL static void
downsample_kernel(const double *buf, Py_ssize_t count, Py_ssize_t skip, const double *taps, Py_ssize_t span,
                  Py_ssize_t factor, double *scratch, char *out, const uint8_t *encode)
{
    Py_ssize_t branch_len = span / factor, phase_len = phase_length(count, branch_len), used = count + branch_len - 1;
    const double *x = buf + skip;
    if (factor == 3) { /* 24k -> 8k, the hot path: one pass over the input instead of three */
        double *p0 = scratch, *p1 = scratch + phase_len, *p2 = scratch + 2 * phase_len;
        for (Py_ssize_t m = 0; m < used; m++) {
            p0[m] = x[3 * m];
            p1[m] = x[3 * m + 1];
            p2[m] = x[3 * m + 2];
        }
    } else {
        for (Py_ssize_t r = 0; r < factor; r++) {
            for (Py_ssize_t m = 0; m < used; m++) scratch[r * phase_len + m] = x[factor * m + r];
        }
    }
    for (Py_ssize_t r = 0; r < factor; r++) {
        for (Py_ssize_t m = used; m < phase_len; m++) scratch[r * phase_len + m] = 0.0;
    }
    Py_ssize_t j = 0;
    for (; j < count; j += WIDE) {
        double acc[WIDE] = {0.0}, part[WIDE];
        for (Py_ssize_t r = 0; r < factor; r++) {
            sum_wide(part, taps + r, factor, scratch + r * phase_len + j, branch_len);
            for (int l = 0; l < WIDE; l++) acc[l] += part[l];
        }
        for (int l = 0; l < WIDE && j + l < count; l++) {
            int16_t v = to_int16(acc[l]);
            if (encode != NULL) {
                out[j + l] = (char)encode[(uint16_t)v];
            } else {
                put_le16(out, j + l, v);
            }
        }
    }
}

/* The buffers of one call, released together. */
typedef struct {
    Py_buffer state, input, coefficients, table;
    int have_table;
} Buffers;

static void
release(Buffers *b)
{
    if (b->state.obj) PyBuffer_Release(&b->state);
    if (b->input.obj) PyBuffer_Release(&b->input);
    if (b->coefficients.obj) PyBuffer_Release(&b->coefficients);
    if (b->table.obj) PyBuffer_Release(&b->table);
}

/* Borrow and check every buffer; on error, a Python exception is set and the caller releases. */
static int
borrow(PyObject *const *args, Buffers *b, Py_ssize_t history, Py_ssize_t min_coefficients, Py_ssize_t table_bytes)
{
    if (PyObject_GetBuffer(args[0], &b->state, PyBUF_WRITABLE) < 0) return -1;
    if (PyObject_GetBuffer(args[2], &b->input, PyBUF_SIMPLE) < 0) return -1;
    if (PyObject_GetBuffer(args[3], &b->coefficients, PyBUF_SIMPLE) < 0) return -1;
    b->have_table = args[5] != Py_None;
    if (b->have_table && PyObject_GetBuffer(args[5], &b->table, PyBUF_SIMPLE) < 0) return -1;
    if (b->coefficients.len < (Py_ssize_t)sizeof(double) * min_coefficients) {
        PyErr_SetString(PyExc_ValueError, "coefficients shorter than the filter");
        return -1;
    }
    if (b->have_table && b->table.len != table_bytes) {
        PyErr_Format(PyExc_ValueError, "a G.711 table must be %zd bytes, got %zd", table_bytes, b->table.len);
        return -1;
    }
    return 0;
}

static int
check_room(const Buffers *b, Py_ssize_t history, Py_ssize_t n)
{
    if ((Py_ssize_t)sizeof(double) * (history + n) > b->state.len) {
        PyErr_SetString(PyExc_ValueError, "input longer than the state buffer's block");
        return -1;
    }
    return 0;
}

/* The argument count, and `history` (args[1]) and `factor` (args[4]), which both functions take. */
static int
read_sizes(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t expected, const char *name, Py_ssize_t *history,
           Py_ssize_t *factor)
{
    if (nargs != expected) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments", name, expected);
        return -1;
    }
    *history = PyLong_AsSsize_t(args[1]);
    *factor = PyLong_AsSsize_t(args[4]);
    if ((*history == -1 || *factor == -1) && PyErr_Occurred()) return -1;
    if (*factor < 1 || *history < 0) {
        PyErr_SetString(PyExc_ValueError, "factor must be at least 1 and history not negative");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(upsample_doc,
"upsample(state, history, samples, bank, factor, decode_table) -> bytes\n\n"
"One block of an integer-factor polyphase interpolator: `state` the float64 history buffer\n"
"(history doubles, then room for the block), `samples` PCM16 LE (or G.711 codes when\n"
"`decode_table`, 256 int16, is not None), `bank` float64 factor x branch_len (branch_len =\n"
"history + 1). Returns len(samples) * factor PCM16 LE samples.");

static PyObject *
upsample(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t history, factor;
    if (read_sizes(args, nargs, 6, "upsample", &history, &factor) < 0) return NULL;
    Py_ssize_t branch_len = history + 1;
    Buffers b = {0};
    PyObject *result = NULL;
    if (borrow(args, &b, history, factor * branch_len, 256 * (Py_ssize_t)sizeof(int16_t)) < 0) goto done;
    Py_ssize_t n = b.have_table ? b.input.len : b.input.len / 2;
    if (!b.have_table && b.input.len % 2) {
        PyErr_SetString(PyExc_ValueError, "PCM16 input must have an even number of bytes");
        goto done;
    }
    if (check_room(&b, history, n) < 0) goto done;
    result = PyBytes_FromStringAndSize(NULL, n * factor * 2);
    if (result == NULL) goto done;
    double *buf = (double *)b.state.buf;
    load_input(buf + history, (const unsigned char *)b.input.buf, n, b.have_table ? (const int16_t *)b.table.buf : NULL);
    upsample_kernel(buf, n, (const double *)b.coefficients.buf, branch_len, factor, PyBytes_AS_STRING(result));
    memmove(buf, buf + n, sizeof(double) * history);
done:
    release(&b);
    return result;
}

PyDoc_STRVAR(downsample_doc,
"downsample(state, history, samples, taps, factor, encode_table, skip) -> (bytes, skip)\n\n"
"One block of an integer-factor polyphase decimator: `state` as for upsample, `samples` PCM16 LE,\n"
"`taps` float64 of history + 1, `skip` the input samples still due before the next output. Returns\n"
"the outputs completed (PCM16 LE, or G.711 codes when `encode_table`, 65,536 bytes indexed by the\n"
"sample's bit pattern, is not None) and the new skip.");

static PyObject *
downsample(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t history, factor;
    if (read_sizes(args, nargs, 7, "downsample", &history, &factor) < 0) return NULL;
    Py_ssize_t skip = PyLong_AsSsize_t(args[6]);
    if (skip == -1 && PyErr_Occurred()) return NULL;
    if (skip < 0) {
        PyErr_SetString(PyExc_ValueError, "skip must not be negative");
        return NULL;
    }
    Py_ssize_t span = history + 1;
    Buffers b = {0};
    PyObject *out = NULL, *result = NULL;
    double *scratch = NULL;
    if (borrow(args, &b, history, span, 65536) < 0) goto done;
    if (b.input.len % 2) {
        PyErr_SetString(PyExc_ValueError, "PCM16 input must have an even number of bytes");
        goto done;
    }
    Py_ssize_t n = b.input.len / 2;
    if (check_room(&b, history, n) < 0) goto done;
    Py_ssize_t count = skip >= n ? 0 : (n - 1 - skip) / factor + 1;
    out = PyBytes_FromStringAndSize(NULL, count * (b.have_table ? 1 : 2));
    if (out == NULL) goto done;
    if (span % factor) {
        PyErr_SetString(PyExc_ValueError, "the taps must span a whole number of phases");
        goto done;
    }
    double *buf = (double *)b.state.buf;
    load_input(buf + history, (const unsigned char *)b.input.buf, n, NULL);
    if (count) {
        scratch = PyMem_Malloc(sizeof(double) * factor * phase_length(count, span / factor));
        if (scratch == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        downsample_kernel(buf, count, skip, (const double *)b.coefficients.buf, span, factor, scratch,
                          PyBytes_AS_STRING(out), b.have_table ? (const uint8_t *)b.table.buf : NULL);
    }
    memmove(buf, buf + n, sizeof(double) * history);
    result = Py_BuildValue("(On)", out, skip + factor * count - n);
done:
    PyMem_Free(scratch);
    Py_XDECREF(out);
    release(&b);
    return result;
}

static PyMethodDef methods[] = {
    {"upsample", (PyCFunction)(void (*)(void))upsample, METH_FASTCALL, upsample_doc},
    {"downsample", (PyCFunction)(void (*)(void))downsample, METH_FASTCALL, downsample_doc},
    {NULL, NULL, 0, NULL},
};

static int
exec_module(PyObject *module)
{
#if PY_BIG_ENDIAN
    /* The G.711 tables are read in host order; numpy's fallback serves big-endian hosts. */
    PyErr_SetString(PyExc_ImportError, "the compiled resampler assumes a little-endian host");
    return -1;
#elif defined(__FLT_EVAL_METHOD__) && __FLT_EVAL_METHOD__ != 0
    /* x87 arithmetic (32-bit x86 without SSE2) keeps excess precision, which defeats to_int16's
       rounding: numpy's path, which rounds explicitly, serves such builds. */
    PyErr_SetString(PyExc_ImportError, "the compiled resampler needs double arithmetic without excess precision");
    return -1;
#else
    return 0;
#endif
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_polyphase", "The resampler's polyphase FIR loops, compiled.", 0, methods, slots,
};

PyMODINIT_FUNC
PyInit__polyphase(void)
{
    return PyModuleDef_Init(&module_def);
}
