//! Workgroup-count arithmetic: 1-D work folded into 2-D past 65,535 workgroups.
//!
//! Kernels launched with [`Workgroups::for_items`] recover their flat workgroup index with
//! `group_index(wid, nwg)` (`shaders/common/group_index.wgsl`: `wid.x + wid.y * nwg.x`) and
//! return early past the end.

use super::{limits, GpuError};

/// How many workgroups a dispatch launches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workgroups {
    /// `n` workgroups in a flat sequence, folded into x/y as needed.
    Linear(u64),
    /// An explicit 3-D grid.
    Grid([u32; 3]),
}

impl Workgroups {
    /// Enough workgroups of `workgroup_size` invocations to cover `items` items.
    pub fn for_items(items: u64, workgroup_size: u32) -> Self {
        Workgroups::Linear(items.div_ceil(workgroup_size as u64))
    }

    /// The `(x, y, z)` counts to pass to `dispatch_workgroups`, within device limits.
    pub fn counts(self) -> Result<[u32; 3], GpuError> {
        let max = limits::MAX_WORKGROUPS_PER_DIMENSION as u64;
        match self {
            Workgroups::Linear(0) => Ok([0, 1, 1]),
            Workgroups::Linear(n) => {
                let x = n.min(max);
                let y = n.div_ceil(x);
                limits::check(
                    "max_compute_workgroups_per_dimension (y of a folded 1-D dispatch)",
                    y,
                    max,
                )?;
                Ok([x as u32, y as u32, 1])
            }
            Workgroups::Grid(g) => {
                for v in g {
                    limits::check("max_compute_workgroups_per_dimension", v as u64, max)?;
                }
                Ok(g)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_dispatch_folds_into_two_dimensions() {
        assert_eq!(Workgroups::Linear(5).counts().unwrap(), [5, 1, 1]);
        assert_eq!(Workgroups::Linear(65_535).counts().unwrap(), [65_535, 1, 1]);
        assert_eq!(Workgroups::Linear(65_536).counts().unwrap(), [65_535, 2, 1]);
        let [x, y, _] = Workgroups::Linear(1 << 30).counts().unwrap();
        assert!(x as u64 * y as u64 >= 1 << 30);
        assert!(Workgroups::Linear(65_535u64 * 65_535 + 1).counts().is_err());
        assert_eq!(Workgroups::for_items(257, 256), Workgroups::Linear(2));
        assert!(Workgroups::Grid([1, 70_000, 1]).counts().is_err());
    }
}
