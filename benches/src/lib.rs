//! criterion micro-benchmarks live in `benches/`; run them with
//! `cargo bench -p leasehold-benches`. This library is empty.
