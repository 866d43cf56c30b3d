//! Benchmarks of the day's hot paths. Targets (DESIGN.md "Scale"): 10 million accounts
//! and 100 million balance events a day closed and allocated well under a minute on two
//! cores; these measure the per-event and per-account costs that extrapolate to it.
//!
//! `cargo bench -p softstake-core` (criterion; reports in target/criterion).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use softstake_core::allocate::{allocate, EligibleEntry};
use softstake_core::twab::DayCloser;
use softstake_core::{Amount, Day, Timestamp};

fn events(accounts: usize, per_account: usize, day: Day) -> Vec<(String, Timestamp, Amount)> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut v: Vec<(String, Timestamp, Amount)> = (0..accounts * per_account)
        .map(|i| {
            let a = i % accounts;
            let ts = Timestamp(day.start().0 + rng.gen_range(0..86_400_000_000_000i64));
            (format!("acct-{a:08}"), ts, Amount(rng.gen_range(0..10u128.pow(24))))
        })
        .collect();
    v.sort_by_key(|e| e.1);
    v
}

fn day_close(c: &mut Criterion) {
    let day = Day::parse("2025-06-01").unwrap();
    let mut g = c.benchmark_group("day_close");
    for &(accounts, per) in &[(10_000usize, 10usize), (100_000, 10)] {
        let evs = events(accounts, per, day);
        g.throughput(Throughput::Elements(evs.len() as u64));
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{accounts}x{per}")),
            &evs,
            |b, evs| {
                b.iter(|| {
                    let mut closer = DayCloser::new(day, "NEAR", accounts);
                    for (a, ts, bal) in evs {
                        closer.apply(a, *ts, *bal).unwrap();
                    }
                    closer.finish()
                })
            },
        );
    }
    g.finish();
}

fn allocation(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut g = c.benchmark_group("allocate");
    g.sample_size(10);
    for &n in &[100_000usize, 1_000_000] {
        let entries: Vec<EligibleEntry> = (0..n)
            .map(|i| EligibleEntry {
                account_id: format!("acct-{i:08}"),
                eligible: Amount(rng.gen_range(1..10u128.pow(27))),
            })
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &entries, |b, e| {
            b.iter(|| allocate(Amount(10u128.pow(24) + 7), Amount::ZERO, 1_000, e).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, day_close, allocation);
criterion_main!(benches);
