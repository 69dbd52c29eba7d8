package dev.isthmus.ops;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.stream.IntStream;

/**
 * Sparse matrices in CSR form and their product with dense matrices, as used by graph networks to
 * aggregate over neighbours. The sparse values are constants: gradients flow into the dense side only.
 */
public final class Sparse {
    private Sparse() {}

    static final Op SPMM = Op.primitive("spmm");

    static final List<Op> OPS = List.of(SPMM);

    /**
     * Transposes already computed, per matrix. Backward of spmm needs Aᵀ (and grad of grad needs Aᵀᵀ)
     * at every step, while the matrix (a graph's adjacency) usually stays fixed for all of training.
     * Weak keys: an entry goes when its matrix is no longer referenced.
     */
    private static final Map<CsrMatrix, CsrMatrix> TRANSPOSES = Collections.synchronizedMap(new WeakHashMap<>());

    /**
     * A {@code rows x cols} matrix in canonical compressed-sparse-row form: row r holds the entries
     * {@code rowPtr[r] .. rowPtr[r+1]-1} of {@code colIdx} and {@code values}, with strictly increasing
     * columns in each row. The arrays are checked in full when the record is made, so kernels can trust
     * them.
     *
     * @param rowPtr int64 (rows + 1), non-decreasing, from 0 to nnz
     * @param colIdx int64 (nnz), each in [0, cols)
     * @param values float (nnz); must not require a gradient, as spmm treats them as constants
     */
    public record CsrMatrix(long rows, long cols, Tensor rowPtr, Tensor colIdx, Tensor values) {
        private static final String WHAT = "CsrMatrix";

        public CsrMatrix {
            if (rowPtr == null || colIdx == null) throw Checks.error(WHAT, "rowPtr and colIdx must not be null", rowPtr, colIdx, values);
            checkConstantValues(WHAT, values);
            Tensor[] all = {rowPtr, colIdx, values};
            if (rows < 0 || cols < 0) throw Checks.error(WHAT, "negative size " + rows + " x " + cols, all);
            checkIndices(WHAT, all, rowPtr, colIdx);
            if (!rowPtr.device().equals(values.device()) || !colIdx.device().equals(values.device())) {
                throw Checks.error(WHAT, "tensors are on different devices", all);
            }
            if (rowPtr.numel() != rows + 1) throw Checks.error(WHAT, "rowPtr needs rows + 1 = " + (rows + 1) + " entries", all);
            if (colIdx.numel() != values.numel()) throw Checks.error(WHAT, "colIdx and values lengths differ", all);
            long[] ptr = rowPtr.toLongArray(), col = colIdx.toLongArray();
            if (ptr[0] != 0 || ptr[(int) rows] != col.length) {
                throw Checks.error(WHAT, "rowPtr must run from 0 to nnz = " + col.length + ", got " + ptr[0]
                        + " .. " + ptr[(int) rows], all);
            }
            for (int r = 0; r < rows; r++) {
                if (ptr[r + 1] < ptr[r]) {
                    throw Checks.error(WHAT, "rowPtr decreases at row " + r + " (" + ptr[r] + " > " + ptr[r + 1] + ")", all);
                }
                for (long e = ptr[r]; e < ptr[r + 1]; e++) {
                    long c = col[(int) e];
                    if (c < 0 || c >= cols) {
                        throw Checks.error(WHAT, "column " + c + " in row " + r + " out of range [0, " + cols + ")", all);
                    }
                    if (e > ptr[r] && c <= col[(int) e - 1]) {
                        throw Checks.error(WHAT, "columns of row " + r + " are not strictly increasing ("
                                + col[(int) e - 1] + " then " + c + "); use fromCoo to sort and merge", all);
                    }
                }
            }
        }

        /**
         * Builds the CSR form of coordinate triplets {@code (rowIndices[i], colIndices[i], values[i])}
         * in any order; repeated coordinates are summed, as when coalescing a sparse COO tensor.
         */
        public static CsrMatrix fromCoo(long rows, long cols, Tensor rowIndices, Tensor colIndices, Tensor values) {
            String op = WHAT + ".fromCoo";
            if (rowIndices == null || colIndices == null) {
                throw Checks.error(op, "rowIndices and colIndices must not be null", rowIndices, colIndices, values);
            }
            checkConstantValues(op, values);
            Tensor[] all = {rowIndices, colIndices, values};
            if (rows < 0 || cols < 0) throw Checks.error(op, "negative size " + rows + " x " + cols, all);
            checkIndices(op, all, rowIndices, colIndices);
            if (rowIndices.numel() != values.numel() || colIndices.numel() != values.numel()) {
                throw Checks.error(op, "rowIndices, colIndices and values lengths differ", all);
            }
            long[] r = rowIndices.toLongArray(), c = colIndices.toLongArray();
            double[] v = values.toDoubleArray();
            for (int i = 0; i < r.length; i++) {
                if (r[i] < 0 || r[i] >= rows || c[i] < 0 || c[i] >= cols) {
                    throw Checks.error(op, "entry (" + r[i] + ", " + c[i] + ") outside a " + rows + " x " + cols + " matrix", all);
                }
            }
            int[] order = IntStream.range(0, r.length).boxed()
                    .sorted(Comparator.<Integer>comparingLong(i -> r[i]).thenComparingLong(i -> c[i]))
                    .mapToInt(Integer::intValue).toArray();
            long[] ptr = new long[Math.toIntExact(rows + 1)], col = new long[order.length];
            double[] val = new double[order.length];
            int nnz = 0;
            for (int k = 0; k < order.length; k++) {
                int i = order[k];
                boolean repeat = k > 0 && r[i] == r[order[k - 1]] && c[i] == c[order[k - 1]];
                if (repeat) {
                    val[nnz - 1] += v[i];
                } else {
                    col[nnz] = c[i];
                    val[nnz++] = v[i];
                    ptr[(int) r[i] + 1]++;
                }
            }
            for (int row = 0; row < rows; row++) ptr[row + 1] += ptr[row];
            return new CsrMatrix(rows, cols, Tensor.of(ptr, ptr.length), Tensor.of(Arrays.copyOf(col, nnz), nnz),
                    Tensor.of(Arrays.copyOf(val, nnz), values.dtype(), nnz));
        }

        /** Number of stored entries. */
        public long nnz() { return values.numel(); }

        /**
         * The transposed matrix, computed once per matrix and cached. Its tensors live in the scope of
         * {@code values}, so the cached copy lasts exactly as long as this matrix's own data.
         */
        public CsrMatrix transpose() { return TRANSPOSES.computeIfAbsent(this, Sparse::transposeOf); }
    }

    private static void checkConstantValues(String op, Tensor values) {
        if (values == null) throw new IllegalArgumentException(op + ": values must not be null");
        values.data(op);
        if (!values.dtype().isFloating()) throw Checks.error(op, "values must be float32 or float64", values);
        Checks.rank(op, values, 1);
        if (values.requiresGrad()) {
            throw Checks.error(op, "values must not require a gradient: spmm treats them as constants", values);
        }
    }

    private static void checkIndices(String op, Tensor[] all, Tensor... indices) {
        for (Tensor t : indices) {
            t.data(op);
            if (t.dtype() != DType.INT64 || t.dim() != 1) throw Checks.error(op, "index arrays must be 1-d int64", all);
        }
    }

    /** Counting sort by column: row c of the transpose lists, by increasing row, the entries of column c. */
    private static CsrMatrix transposeOf(CsrMatrix a) {
        long[] ptr = a.rowPtr().toLongArray(), col = a.colIdx().toLongArray();
        double[] val = a.values().toDoubleArray();
        long[] tPtr = new long[Math.toIntExact(a.cols() + 1)], tCol = new long[col.length];
        double[] tVal = new double[col.length];
        for (long c : col) tPtr[(int) c + 1]++;
        for (int c = 0; c < a.cols(); c++) tPtr[c + 1] += tPtr[c];
        long[] next = Arrays.copyOf(tPtr, tPtr.length - 1); // next free slot in each row of the transpose
        for (int r = 0; r < a.rows(); r++) {
            for (long e = ptr[r]; e < ptr[r + 1]; e++) {
                int slot = (int) next[(int) col[(int) e]]++;
                tCol[slot] = r;
                tVal[slot] = val[(int) e];
            }
        }
        Scope home = a.values().scope();
        return new CsrMatrix(a.cols(), a.rows(), Tensor.of(tPtr, tPtr.length).moveTo(home),
                Tensor.of(tCol, tCol.length).moveTo(home), Tensor.of(tVal, a.values().dtype(), tVal.length).moveTo(home));
    }

    /**
     * The product A · dense of a sparse (rows, cols) and a dense (cols, N) matrix, (rows, N). The
     * gradient for dense is Aᵀ · g, again an spmm, so it can be differentiated further.
     */
    public static Tensor spmm(CsrMatrix a, Tensor dense) {
        String op = SPMM.name();
        if (a == null) throw Checks.error(op, "the sparse matrix is null", dense);
        Checks.compatible(op, a.values(), dense);
        Checks.rank(op, dense, 2);
        if (dense.size(0) != a.cols()) {
            throw Checks.error(op, "a " + a.rows() + " x " + a.cols() + " sparse matrix cannot multiply a dense matrix of "
                    + dense.size(0) + " rows", a.values(), dense);
        }
        Tensor out = Tensor.empty(dense.dtype(), dense.device(), a.rows(), dense.size(1));
        dense.backend().spmm(a.rowPtr().data(op), a.colIdx().data(op), a.values().data(op), dense.data(op), out.data(op));
        return SPMM.record(out, g -> new Tensor[] {spmm(a.transpose(), g)}, dense);
    }
}
