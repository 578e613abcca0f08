//! Crash test by process kill (RocksDB does its own I/O, so the simulated-disk
//! oracle cannot reach it): a child process writes with `Sync` and prints each
//! acknowledged key; the parent SIGKILLs it at a random moment, reopens the
//! database, and checks that every acknowledged key is present and intact and
//! that every key present holds exactly what was written. Several rounds run
//! on one directory, so recovery also recovers what earlier recoveries left.
//!
//! A kill loses no page cache, so this proves recovery from an abrupt process
//! death (torn WAL tails, half-finished flushes and compactions), not from
//! power loss.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use leasehold_core::config::RocksDbConfig;
use leasehold_core::kv::WriteBatch;
use leasehold_core::rng::SplitMix64;
use leasehold_core::{Durability, KvEngine};
use leasehold_rocksdb::RocksEngine;

const CHILD_DIR: &str = "LEASEHOLD_ROCKS_KILL_DIR";
const CHILD_START: &str = "LEASEHOLD_ROCKS_KILL_START";
const ROUNDS: u64 = 6;

fn config(dir: &Path) -> RocksDbConfig {
    RocksDbConfig {
        data_dir: dir.to_path_buf(),
        // Small memtables: kills land in flushes and compactions too.
        write_buffer_size: 256 << 10,
        block_cache_size: 1 << 20,
        ..RocksDbConfig::default()
    }
}

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

/// The child: writes keys from `CHILD_START` on, one synced batch each, and
/// prints `ack N` after each write returns. Run only by the parent.
#[test]
#[ignore = "the child process of acknowledged_sync_writes_survive_sigkill"]
fn kill_child_writer() {
    let dir = std::env::var(CHILD_DIR).expect("run by the parent test");
    let start: u64 = std::env::var(CHILD_START).unwrap().parse().unwrap();
    let engine = RocksEngine::open(&config(Path::new(&dir))).unwrap();
    let mut stdout = std::io::stdout().lock();
    for index in start.. {
        let mut batch = WriteBatch::new();
        batch.put(key_of(index), value_of(index));
        engine.write(batch, Durability::Sync).unwrap();
        writeln!(stdout, "ack {index}").unwrap();
        stdout.flush().unwrap();
    }
}

#[test]
fn acknowledged_sync_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(0x6b69_6c6c);
    let mut next = 0u64;
    let mut acknowledged_total = 0u64;
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "kill_child_writer",
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
                // libtest's own "test kill_child_writer ... " shares the first line.
                let ack = line.rfind("ack ").map(|at| &line[at + 4..]);
                if let Some(index) = ack.and_then(|n| n.parse::<u64>().ok()) {
                    if acks.send(index).is_err() {
                        break;
                    }
                }
            }
        });
        // Kill only once the child is writing, at a random moment after.
        let first = received
            .recv_timeout(Duration::from_secs(60))
            .expect("child never acknowledged");
        assert_eq!(first, next, "round {round}: the child starts at {next}");
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let acknowledged: Vec<u64> = std::iter::once(first).chain(received.try_iter()).collect();
        let last_acknowledged = *acknowledged.iter().max().unwrap();
        acknowledged_total += acknowledged.len() as u64;

        let recovering = Instant::now();
        let engine = RocksEngine::open(&config(dir.path())).unwrap();
        let recovery = recovering.elapsed();
        for index in 0..=last_acknowledged {
            assert_eq!(
                engine.get(&key_of(index)).unwrap(),
                Some(value_of(index)),
                "round {round}: acknowledged key {index} lost or damaged (recovery took {recovery:?})"
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
        acknowledged_total >= ROUNDS,
        "every round acknowledged a write"
    );
}
