//! Searching for a failing case: proptest strategies over crash cases, the
//! search (seeded, so a campaign is reproducible) and the checks engine tests
//! call, which panic with the shrunk case.

use super::*;

fn value_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..24),
        // Values that span 512-byte sectors, so writes can tear inside a record:
        // one byte repeated (compressing to almost nothing) or noise (not
        // compressing at all, so engines that compress still meet long records).
        1 => (1usize..3000, any::<u8>()).prop_map(|(len, byte)| vec![byte; len]),
        1 => (1usize..3000, any::<u64>()).prop_map(|(len, seed)| {
            let mut value = vec![0; len];
            leasehold_core::rng::SplitMix64::new(seed).fill(&mut value);
            value
        }),
    ]
}

fn durability_strategy() -> impl Strategy<Value = Durability> {
    prop_oneof![
        Just(Durability::Sync),
        Just(Durability::Group),
        Just(Durability::Buffered)
    ]
}

fn op_strategy() -> impl Strategy<Value = CrashOp> {
    let entry = (
        0..KEY_SPACE,
        proptest::option::weighted(0.8, value_strategy()),
    );
    prop_oneof![
        8 => (proptest::collection::vec(entry, 1..4), durability_strategy())
            .prop_map(|(ops, durability)| CrashOp::Write { ops, durability }),
        1 => Just(CrashOp::Flush),
        1 => Just(CrashOp::Reopen),
    ]
}

fn policy_strategy(policies: &[CrashPolicy]) -> impl Strategy<Value = CrashPolicy> {
    proptest::sample::select(policies.to_vec())
}

/// Cases of up to `ops_max` operations.
pub fn case_strategy(ops_max: usize) -> impl Strategy<Value = CrashCase> {
    case_strategy_with(ops_max, &CrashPolicy::ALL)
}

/// Cases of up to `ops_max` operations crashing under one of `policies`.
pub fn case_strategy_with(
    ops_max: usize,
    policies: &[CrashPolicy],
) -> impl Strategy<Value = CrashCase> {
    (
        proptest::collection::vec(op_strategy(), 1..ops_max),
        // Most runs make 30-150 mutations: most cases crash mid-run, some after.
        1u64..120,
        policy_strategy(policies),
        any::<u64>(),
        1u64..40,
        policy_strategy(policies),
    )
        .prop_map(
            |(ops, crash_after, policy, seed, recovery_crash_after, recovery_policy)| CrashCase {
                ops,
                crash_after,
                policy,
                seed,
                recovery_crash_after,
                recovery_policy,
            },
        )
}

/// Runs `cases` random cases (deterministic unless `LEASEHOLD_CRASH_SEED` is
/// set) and returns the shrunk failing case, if any.
pub fn search<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    cases: u32,
    ops_max: usize,
) -> Result<(), (CrashCase, String)> {
    search_with(open, cases, ops_max, None)
}

/// `search` with check 4 under `read_faults`.
pub fn search_with<E: KvEngine>(
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    cases: u32,
    ops_max: usize,
    read_faults: Option<&FaultConfig>,
) -> Result<(), (CrashCase, String)> {
    search_cases(cases, ops_max, &|case| {
        run_case_with(open, case, read_faults).map(|_| ())
    })
}

/// Runs `run` over `cases` random cases (deterministic unless
/// `LEASEHOLD_CRASH_SEED` is set); the shrunk failing case, if any.
pub fn search_cases(
    cases: u32,
    ops_max: usize,
    run: &dyn Fn(&CrashCase) -> Result<(), Violation>,
) -> Result<(), (CrashCase, String)> {
    let seed = std::env::var("LEASEHOLD_CRASH_SEED")
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(0);
    search_seeded(seed, cases, ops_max, &CrashPolicy::ALL, run)
}

/// `search_cases` from an explicit seed, crashing only under `policies`.
pub fn search_seeded(
    seed: u64,
    cases: u32,
    ops_max: usize,
    policies: &[CrashPolicy],
    run: &dyn Fn(&CrashCase) -> Result<(), Violation>,
) -> Result<(), (CrashCase, String)> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    match runner.run(&case_strategy_with(ops_max, policies), |case| {
        run(&case).map_err(|err| TestCaseError::fail(err.reason))
    }) {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, case)) => Err((case, reason.to_string())),
        Err(TestError::Abort(reason)) => Err((
            CrashCase {
                ops: Vec::new(),
                crash_after: 0,
                policy: CrashPolicy::ProcessCrash,
                seed: 0,
                recovery_crash_after: 0,
                recovery_policy: CrashPolicy::ProcessCrash,
            },
            format!("proptest aborted: {reason}"),
        )),
    }
}

/// `search`, panicking with the shrunk case on failure: for engine tests.
pub fn check<E: KvEngine>(
    name: &str,
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    cases: u32,
    ops_max: usize,
) {
    if let Err((case, reason)) = search(open, cases, ops_max) {
        panic!("crash oracle failed for {name}: {reason}\nshrunk case: {case:#?}");
    }
}

/// `check` plus check 4 (recovery under read faults, `read_fault_config`).
pub fn check_read_faults<E: KvEngine>(
    name: &str,
    open: &dyn Fn(SimVfs) -> KvResult<E>,
    cases: u32,
    ops_max: usize,
) {
    if let Err((case, reason)) = search_with(open, cases, ops_max, Some(&read_fault_config())) {
        panic!(
            "crash oracle under read faults failed for {name}: {reason}\nshrunk case: {case:#?}"
        );
    }
}
