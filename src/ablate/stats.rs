//! Means and Student-t confidence intervals over seeds.
//!
//! The t quantile is computed, not looked up: for an integer number of degrees of freedom the
//! two-sided probability `P(|T| < t)` has a closed form (a finite trigonometric series,
//! Abramowitz & Stegun 26.7.3 / 26.7.4), which is inverted by bisection. Exact to ~1e-12 for
//! every df a grid can have, without a statistics dependency; `tests` pin it against the
//! printed table.

use serde::{Deserialize, Serialize};

/// Confidence level of every interval in a report.
pub const CONFIDENCE: f64 = 0.95;

/// A mean over runs with its two-sided 95 % Student-t confidence interval.
///
/// With one run there is no interval: `ci_low`/`ci_high` are `None` (`null` in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub mean: f64,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Number of values (runs, or seeds for a paired difference).
    pub n: usize,
    /// Sample standard deviation (n - 1 in the denominator); `None` for one value.
    pub std: Option<f64>,
}

impl Estimate {
    /// Mean and 95 % CI of `values` (`None` for no values).
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Some(Self {
                mean,
                ci_low: None,
                ci_high: None,
                n,
                std: None,
            });
        }
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let std = var.sqrt();
        let half = t_quantile_two_sided(CONFIDENCE, n - 1) * std / (n as f64).sqrt();
        Some(Self {
            mean,
            ci_low: Some(mean - half),
            ci_high: Some(mean + half),
            n,
            std: Some(std),
        })
    }

    /// Half the interval's width (0 without an interval).
    pub fn half_width(&self) -> f64 {
        match (self.ci_low, self.ci_high) {
            (Some(lo), Some(hi)) => (hi - lo) / 2.0,
            _ => 0.0,
        }
    }

    /// True when the interval lies entirely above or below zero.
    pub fn excludes_zero(&self) -> bool {
        matches!((self.ci_low, self.ci_high), (Some(lo), Some(hi)) if lo > 0.0 || hi < 0.0)
    }

    /// The interval's ends, or the mean twice without one (for drawing bands).
    pub fn band(&self) -> (f64, f64) {
        (
            self.ci_low.unwrap_or(self.mean),
            self.ci_high.unwrap_or(self.mean),
        )
    }
}

/// `P(|T| < t)` for Student's t with `df >= 1` degrees of freedom (exact series).
pub fn t_two_sided_probability(t: f64, df: usize) -> f64 {
    assert!(df >= 1, "Student t needs at least one degree of freedom");
    let t = t.abs();
    let theta = (t / (df as f64).sqrt()).atan();
    let (s, c) = theta.sin_cos();
    let c2 = c * c;
    // Sum of the series' terms: for odd df 1 + (2/3)c^2 + (2*4)/(3*5)c^4 + ... (df-2 powers),
    // for even df 1 + (1/2)c^2 + (1*3)/(2*4)c^4 + ... (df-2 powers).
    let (mut term, mut sum) = (1.0, 1.0);
    let first = if df % 2 == 1 { 2 } else { 1 };
    let mut k = first;
    while k + 2 <= df {
        term *= c2 * k as f64 / (k + 1) as f64;
        sum += term;
        k += 2;
    }
    if df % 2 == 1 {
        let series = if df == 1 { 0.0 } else { s * c * sum };
        2.0 / std::f64::consts::PI * (theta + series)
    } else {
        s * sum
    }
}

/// The `t` with `P(|T| < t) = level` (e.g. 0.95 -> 12.706 for df 1, 2.776 for df 4).
pub fn t_quantile_two_sided(level: f64, df: usize) -> f64 {
    assert!((0.0..1.0).contains(&level), "level {level} outside [0, 1)");
    // P(|T| < t) grows with t: bracket, then bisect.
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while t_two_sided_probability(hi, df) < level {
        lo = hi;
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_two_sided_probability(mid, df) < level {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-13 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_printed_table() {
        // 97.5 % one-sided quantiles (two-sided 95 %) from the standard t table.
        let table = [
            (1, 12.706_205),
            (2, 4.302_653),
            (3, 3.182_446),
            (4, 2.776_445),
            (5, 2.570_582),
            (9, 2.262_157),
            (10, 2.228_139),
            (29, 2.045_230),
            (30, 2.042_272),
            (120, 1.979_930),
        ];
        for (df, expected) in table {
            let got = t_quantile_two_sided(0.95, df);
            println!("df {df}: got {got:.6}, table {expected:.6}");
            assert!(
                (got - expected).abs() < 2e-6,
                "df {df}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn t_probability_of_cauchy_and_df2_closed_forms() {
        // df 1 is Cauchy: P(|T|<1) = 1/2; df 2: P(|T|<t) = t / sqrt(2 + t^2).
        assert!((t_two_sided_probability(1.0, 1) - 0.5).abs() < 1e-15);
        for t in [0.3_f64, 1.0, 4.0] {
            let exact = t / (2.0 + t * t).sqrt();
            assert!((t_two_sided_probability(t, 2) - exact).abs() < 1e-15);
        }
    }

    #[test]
    fn one_value_has_no_interval() {
        let e = Estimate::of(&[0.5]).expect("one value");
        assert_eq!((e.mean, e.ci_low, e.ci_high, e.n), (0.5, None, None, 1));
        assert!(Estimate::of(&[]).is_none());
    }
}
