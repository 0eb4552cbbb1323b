//! Latencies printed: percentiles and a text histogram.

pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn report(what: &str, mut ms: Vec<f64>) {
    ms.sort_by(|a, b| a.total_cmp(b));
    if ms.is_empty() {
        println!("{what}: no samples");
        return;
    }
    println!(
        "{what} (n = {}): p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms, min {:.0} ms",
        ms.len(),
        percentile(&ms, 0.50),
        percentile(&ms, 0.90),
        percentile(&ms, 0.99),
        ms[ms.len() - 1],
        ms[0],
    );
    let bounds: [(f64, &str); 12] = [
        (1.0, "1 ms"),
        (2.0, "2 ms"),
        (5.0, "5 ms"),
        (10.0, "10 ms"),
        (20.0, "20 ms"),
        (50.0, "50 ms"),
        (100.0, "100 ms"),
        (200.0, "200 ms"),
        (500.0, "500 ms"),
        (1000.0, "1 s"),
        (2000.0, "2 s"),
        (5000.0, "5 s"),
    ];
    let mut counts = vec![0usize; bounds.len() + 1];
    for v in &ms {
        let i = bounds
            .iter()
            .position(|(b, _)| v <= b)
            .unwrap_or(bounds.len());
        counts[i] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(1).max(1);
    for (i, n) in counts.iter().enumerate() {
        let label = match bounds.get(i) {
            Some((_, l)) => format!("<= {l}"),
            None => "> 5 s".to_string(),
        };
        let bar = "#".repeat((n * 50).div_ceil(most));
        println!("  {label:>9} {n:5}  {bar}");
    }
}
