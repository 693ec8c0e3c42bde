//! The one place this crate calls an `unsafe` kernel: a bounds-checked wrapper around `gemm`.

use gemm::Parallelism;

/// A strided, read-only view of a row-major-or-not matrix inside a slice.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    /// Distance between consecutive rows, in elements.
    pub row_stride: usize,
    /// Distance between consecutive columns, in elements.
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A dense row-major matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The transpose of a dense row-major `[rows, cols]` matrix, seen as `[cols, rows]`.
    #[cfg(test)]
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows: cols, cols: rows, row_stride: 1, col_stride: cols }
    }

    /// Index one past the last element this view touches (0 for an empty view).
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            return 0;
        }
        (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
    }
}

/// Whether a product may use several threads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    One,
    All,
}

/// `dst[m×n] (row-major, row stride dst_stride) = lhs[m×k] · rhs[k×n]`.
///
/// Returns `false` (and computes nothing) when the shapes or strides do not fit the slices;
/// callers build views from their own dimensions, so `false` signals a bug in the caller.
#[must_use]
pub fn matmul(dst: &mut [f32], dst_stride: usize, lhs: View<'_>, rhs: View<'_>, threads: Threads) -> bool {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    if rhs.rows != k || dst_stride < n {
        return false;
    }
    if lhs.extent() > lhs.data.len() || rhs.extent() > rhs.data.len() {
        return false;
    }
    let dst_extent = if m == 0 || n == 0 { 0 } else { (m - 1) * dst_stride + n };
    if dst_extent > dst.len() {
        return false;
    }
    if m == 0 || n == 0 {
        return true;
    }
    let par = match threads {
        Threads::One => Parallelism::None,
        Threads::All => Parallelism::Rayon(0),
    };
    #[expect(unsafe_code, reason = "gemm takes raw pointers; every extent was checked against its slice above")]
    // SAFETY: `lhs`, `rhs` and `dst` extents (computed from rows, cols and strides) lie inside
    // their slices, `dst` is exclusively borrowed, and the element type is f32.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            false,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], m: usize, k: usize, b_t: &[f32], n: usize) -> Vec<f32> {
        // b_t is [n, k] row-major: we compute a · b_tᵀ
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b_t[j * k + p]).sum();
            }
        }
        out
    }

    #[test]
    fn matches_naive_product_with_transposed_rhs() {
        let (m, k, n) = (7, 13, 5);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut dst = vec![0.0; m * n];
        assert!(matmul(&mut dst, n, View::row_major(&a, m, k), View::transposed(&w, n, k), Threads::All));
        let want = naive(&a, m, k, &w, n);
        for (x, y) in dst.iter().zip(&want) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }

    #[test]
    fn refuses_views_larger_than_their_slices() {
        let a = vec![0.0; 10];
        let mut dst = vec![0.0; 4];
        assert!(!matmul(&mut dst, 2, View::row_major(&a, 2, 6), View::row_major(&a, 6, 2), Threads::One));
    }
}
