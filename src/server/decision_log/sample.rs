//! `--decision-log-allow-sample`: which allows are written.
//!
//! A counter, not a random draw: of every run of allows, exactly the
//! fraction asked for is kept, evenly spread (0.25 keeps the 4th, 8th,
//! 12th, ...), with one atomic add per allow and no lock. Denies are not
//! sampled; the caller writes them all.

use std::sync::atomic::{AtomicU64, Ordering};

/// Keeps a fixed fraction of what it is asked about.
#[derive(Debug)]
pub struct Sampler {
    /// The fraction, in units of 2^-32.
    rate: u64,
    seen: AtomicU64,
}

const ONE: u64 = 1 << 32;

impl Sampler {
    /// `fraction` is clamped to 0..=1 (a NaN keeps nothing).
    pub fn new(fraction: f64) -> Sampler {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        Sampler {
            rate: (fraction * ONE as f64).round() as u64,
            seen: AtomicU64::new(0),
        }
    }

    /// Whether to keep the next one: the n-th is kept when it carries the
    /// running total `n × fraction` past a whole number.
    pub fn keep(&self) -> bool {
        match self.rate {
            0 => false,
            ONE => true,
            rate => {
                let n = u128::from(self.seen.fetch_add(1, Ordering::Relaxed));
                let rate = u128::from(rate);
                ((n + 1) * rate) >> 32 > (n * rate) >> 32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(fraction: f64, of: usize) -> usize {
        let s = Sampler::new(fraction);
        (0..of).filter(|_| s.keep()).count()
    }

    #[test]
    fn keeps_exactly_the_fraction_asked_for() {
        assert_eq!(kept(0.0, 1000), 0);
        assert_eq!(kept(1.0, 1000), 1000);
        assert_eq!(kept(0.1, 1000), 100);
        assert_eq!(kept(0.25, 1000), 250);
        assert_eq!(kept(0.5, 7), 3);
        assert_eq!(kept(f64::NAN, 10), 0);
        assert_eq!(kept(7.0, 10), 10);
    }

    #[test]
    fn spreads_what_it_keeps_evenly() {
        let s = Sampler::new(0.25);
        let picks: Vec<bool> = (0..8).map(|_| s.keep()).collect();
        assert_eq!(
            picks,
            [false, false, false, true, false, false, false, true]
        );
    }
}
