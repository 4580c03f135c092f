//! Criterion benches of the lowrank ops on every backend present (see `common`).

mod common;

fn bench(c: &mut criterion::Criterion) {
    common::bench_family(c, slimgemm::Family::LowRank);
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
