//! Criterion benches of the binary ops on every backend present (see `common`).

mod common;

fn bench(c: &mut criterion::Criterion) {
    common::bench_family(c, slimgemm::Family::Binary);
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
