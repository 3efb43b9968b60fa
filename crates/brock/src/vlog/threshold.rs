//! The dynamic value threshold (`vlog_percentile`), as Badger computes it.
//!
//! Badger v4's `vlogThreshold`: every value written updates a histogram of
//! value sizes whose buckets are spaced evenly from the configured
//! `value_threshold` up to the largest threshold allowed (1 MiB, or the
//! transaction batch limit when smaller), at most 1024 of them. After each
//! write batch the threshold becomes the histogram's `percentile`: the upper
//! bound of the bucket where the cumulative count reaches that share of all
//! values. A value goes to the value log when it is at least the threshold,
//! so about `percentile` of the values written stay in the tree. The
//! threshold never drops below the configured one; `drop_all` resets it.
//!
//! Pure: no I/O, no locks (the write thread owns the histogram).

/// Badger's histogram of value sizes and the threshold it yields.
#[derive(Debug, Clone)]
pub struct DynamicThreshold {
    percentile: f64,
    /// Ascending bucket bounds, fractional as Badger's are; bucket `i`
    /// counts sizes below `bounds[i]` (and at least `bounds[i - 1]`), the
    /// last one everything above. A threshold is a bound truncated.
    bounds: Vec<f64>,
    counts: Vec<u64>,
    total: u64,
}

impl DynamicThreshold {
    /// A histogram from `min` (the configured threshold) to `max`.
    pub fn new(percentile: f64, min: u64, max: u64) -> Self {
        let max = max.max(min);
        let (lo, hi) = (min as f64, max as f64);
        let n = (hi - lo + 1.0).min(1024.0);
        let step = (hi - lo) / n;
        let len = n as usize;
        let mut bounds = Vec::with_capacity(len);
        let mut b = lo;
        for i in 0..len {
            b = if i == 0 {
                lo
            } else if i == len - 1 {
                hi
            } else {
                b + step
            };
            bounds.push(b);
        }
        DynamicThreshold {
            percentile,
            counts: vec![0; bounds.len() + 1],
            bounds,
            total: 0,
        }
    }

    /// Counts one value of `size` bytes.
    pub fn record(&mut self, size: u64) {
        let i = self.bounds.partition_point(|&b| b <= size as f64);
        self.counts[i] += 1;
        self.total += 1;
    }

    /// The threshold the sizes counted so far give.
    pub fn threshold(&self) -> u64 {
        let (first, last) = (self.bounds[0], self.bounds[self.bounds.len() - 1]);
        if self.total == 0 {
            return first as u64;
        }
        let mut remaining = (self.total as f64 * self.percentile) as i128;
        for (i, &c) in self.counts.iter().enumerate() {
            remaining -= i128::from(c);
            if remaining <= 0 {
                return self.bounds.get(i).copied().unwrap_or(last) as u64;
            }
        }
        last as u64
    }

    /// Forgets every size counted.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_run_evenly_from_the_configured_threshold_to_the_cap() {
        let t = DynamicThreshold::new(0.9, 1024, 1 << 20);
        assert_eq!(t.bounds.len(), 1024);
        assert_eq!(t.bounds[0], 1024.0);
        assert_eq!(*t.bounds.last().unwrap(), f64::from(1 << 20));
        assert!(t.bounds.windows(2).all(|w| w[0] < w[1]));
        // Fewer possible sizes than 1024: one bucket per size, with Badger's
        // step of (max - min) / (max - min + 1) and the last bound the cap.
        let small = DynamicThreshold::new(0.5, 10, 20);
        assert_eq!(small.bounds.len(), 11);
        assert!((small.bounds[1] - (10.0 + 10.0 / 11.0)).abs() < 1e-9);
        assert_eq!(small.bounds[10], 20.0);
    }

    #[test]
    fn empty_histogram_gives_the_configured_threshold() {
        assert_eq!(DynamicThreshold::new(0.99, 1024, 1 << 20).threshold(), 1024);
    }

    #[test]
    fn threshold_follows_the_percentile_of_sizes() {
        let mut t = DynamicThreshold::new(0.9, 10, 20);
        // 90 values of 12 bytes, 10 of 19: the 90th percentile is the bucket
        // holding 12, [11.8, 12.7), whose bound truncates to 12 (so, as in
        // Badger, a 12-byte value itself would now go to the log).
        for _ in 0..90 {
            t.record(12);
        }
        for _ in 0..10 {
            t.record(19);
        }
        assert_eq!(t.threshold(), 12);
        // A majority of larger values moves the threshold up.
        for _ in 0..1000 {
            t.record(19);
        }
        assert_eq!(t.threshold(), 20);
        // Above the cap: the cap.
        for _ in 0..100_000 {
            t.record(1_000_000);
        }
        assert_eq!(t.threshold(), 20);
        // Below the configured threshold: the configured threshold.
        t.clear();
        for _ in 0..100 {
            t.record(1);
        }
        assert_eq!(t.threshold(), 10);
    }
}
