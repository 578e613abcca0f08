//! Crash test by process kill, on the real file system: a child process
//! writes with `Sync` and prints each acknowledged key; the parent checks
//! that a second open of the live directory is refused, SIGKILLs the child at
//! a random moment, reopens, and checks that every acknowledged key is present
//! and intact and that every key present holds exactly what was written.
//! Several rounds run on one directory, so recovery also recovers what
//! earlier recoveries left.
//!
//! A kill loses no page cache: this proves recovery from an abrupt process
//! death (torn log tails, half-finished flushes, compactions, checkpoints),
//! not from power loss — the simulated disk covers that.
//!
//! Use: `leasehold_testkit::kill_tests!(open, rounds: 6, locks: true);` in
//! an engine's test file writes the two tests — an `#[ignore]`d child that
//! calls `child_writer`, and the parent that calls `sigkill_rounds` with its
//! name.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use leasehold_core::kv::{Durability, KvEngine, WriteBatch};
use leasehold_core::rng::SplitMix64;
use leasehold_core::{KvError, KvResult};

const CHILD_DIR: &str = "LEASEHOLD_KILL_DIR";
const CHILD_START: &str = "LEASEHOLD_KILL_START";

fn key_of(index: u64) -> Vec<u8> {
    format!("S-key-{index:010}").into_bytes()
}

fn value_of(index: u64) -> Vec<u8> {
    let mut value = format!("value of {index};").into_bytes();
    let len = 100 + (index % 2000) as usize;
    while value.len() < len {
        value.push(b'a' + (index % 26) as u8);
    }
    value
}

/// The child: writes keys from the parent's start on, one synced batch each,
/// printing `ack N` after each write returns. Run only by `sigkill_rounds`.
pub fn child_writer<E: KvEngine>(open: impl Fn(&Path) -> KvResult<E>) {
    let dir = std::env::var(CHILD_DIR).expect("run by the parent test");
    let start: u64 = std::env::var(CHILD_START).unwrap().parse().unwrap();
    let engine = open(Path::new(&dir)).unwrap();
    let mut stdout = std::io::stdout().lock();
    for index in start.. {
        let mut batch = WriteBatch::new();
        batch.put(key_of(index), value_of(index));
        engine.write(batch, Durability::Sync).unwrap();
        writeln!(stdout, "ack {index}").unwrap();
        stdout.flush().unwrap();
    }
}

/// `rounds` rounds of: start the child (`child_test` in this test binary),
/// wait for its first acknowledgement, check a second open is refused
/// (`Locked`, when `locks` — RocksDB reports its own lock as an I/O error),
/// kill it at a random moment, reopen and check. Returns the writes
/// acknowledged in all.
pub fn sigkill_rounds<E: KvEngine>(
    child_test: &str,
    rounds: u64,
    locks: bool,
    open: impl Fn(&Path) -> KvResult<E>,
) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(0x6b69_6c6c);
    let mut next = 0u64;
    let mut acknowledged_total = 0u64;
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                child_test,
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_START, next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (acks, received) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest's own "test <name> ... " shares the first line.
                let ack = line.rfind("ack ").map(|at| &line[at + 4..]);
                if let Some(index) = ack.and_then(|n| n.parse::<u64>().ok()) {
                    if acks.send(index).is_err() {
                        break;
                    }
                }
            }
        });
        let first = received
            .recv_timeout(Duration::from_secs(60))
            .expect("child never acknowledged");
        assert_eq!(first, next, "round {round}: the child starts at {next}");
        // A second process must not get the live directory.
        match open(dir.path()) {
            Err(KvError::Locked { .. }) if locks => {}
            Err(_) if !locks => {}
            Err(err) => panic!("round {round}: a second open failed with `{err}`, not Locked"),
            Ok(_) => panic!("round {round}: a second open of a live directory was allowed"),
        }
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let acknowledged: Vec<u64> = std::iter::once(first).chain(received.try_iter()).collect();
        let last_acknowledged = *acknowledged.iter().max().unwrap();
        acknowledged_total += acknowledged.len() as u64;

        let engine = open(dir.path()).unwrap();
        for index in 0..=last_acknowledged {
            assert_eq!(
                engine.get(&key_of(index)).unwrap(),
                Some(value_of(index)),
                "round {round}: acknowledged key {index} lost or damaged"
            );
        }
        // Keys written but killed before the ack may be there; if so, intact.
        let mut index = last_acknowledged + 1;
        while let Some(value) = engine.get(&key_of(index)).unwrap() {
            assert_eq!(
                value,
                value_of(index),
                "round {round}: unacknowledged key {index} damaged"
            );
            index += 1;
        }
        assert!(engine.verify().unwrap().is_clean());
        engine.close().unwrap();
        next = index;
    }
    assert!(
        acknowledged_total >= rounds,
        "every round acknowledged a write"
    );
    acknowledged_total
}

/// The kill campaign's two tests for an engine, `open` opening it on a
/// directory: `kill_child_writer` (ignored; the child process the parent
/// starts) and `acknowledged_sync_writes_survive_sigkill` (`rounds` rounds;
/// `locks`: whether a second open must be refused with `Locked`).
#[macro_export]
macro_rules! kill_tests {
    ($open:expr, rounds: $rounds:expr, locks: $locks:expr) => {
        #[test]
        #[ignore = "the child process of acknowledged_sync_writes_survive_sigkill"]
        fn kill_child_writer() {
            $crate::kill::child_writer($open);
        }

        #[test]
        fn acknowledged_sync_writes_survive_sigkill() {
            $crate::kill::sigkill_rounds("kill_child_writer", $rounds, $locks, $open);
        }
    };
}
