//! The standard workloads, as their authors published them.
//!
//! db_bench (LevelDB/RocksDB `tools/db_bench`): 16-byte keys, 100-byte
//! values (`--value-bytes`), `--num` keys drawn uniformly at random;
//! `fillrandom` into an empty database (or `filluniquerandom`: each key once,
//! in a scrambled order), `overwrite`, `readrandom`, `readmissing` (keys that
//! sort between the written ones) and `seekrandom` (a seek, then
//! `--seek-nexts` more entries) over the filled one, `fillsync` a thousandth
//! as many writes, each synced.
//!
//! YCSB core workloads (`workloads/workloada` … `workloadf`): 1000-byte
//! records (ten 100-byte fields), keys `user<hash>`, request distribution
//! scrambled Zipfian (θ 0.99) unless stated:
//! A 50 % read / 50 % update; B 95 / 5; C read only; D 95 % read of the latest
//! records / 5 % insert; E 95 % scan of 1–100 records / 5 % insert; F 50 %
//! read / 50 % read-modify-write.

use leasehold_core::codec::fnv1a;
use leasehold_core::rng::SplitMix64;
use leasehold_workloads::popularity::ScrambledZipf;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    Fillrandom,
    Filluniquerandom,
    Overwrite,
    Readrandom,
    Readmissing,
    Seekrandom,
    Fillsync,
    YcsbA,
    YcsbB,
    YcsbC,
    YcsbD,
    YcsbE,
    YcsbF,
    /// Not YCSB's, run in its suite on the records it loaded: YCSB F's
    /// read-modify-write across two Zipfian records at once — at the Store
    /// level a two-actor `commit`, at the KV level one two-key batch. Run
    /// only when named.
    Transfer,
}

/// One request of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Read(u64),
    /// A key that sorts just after `record`'s and was never written.
    ReadMissing(u64),
    /// Write a record (new or existing); `sync` for fillsync.
    Write {
        record: u64,
        sync: bool,
    },
    /// A record that did not exist yet (YCSB D and E).
    Insert(u64),
    /// Up to `len` records from `record` on.
    Scan {
        record: u64,
        len: usize,
    },
    ReadModifyWrite(u64),
    /// Read two records, write both atomically.
    Transfer(u64, u64),
}

impl Request {
    #[cfg(test)]
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Read(_) | Request::ReadMissing(_) => "read",
            Request::Write { .. } => "write",
            Request::Insert(_) => "insert",
            Request::Scan { .. } => "scan",
            Request::ReadModifyWrite(_) => "read-modify-write",
            Request::Transfer(..) => "transfer",
        }
    }
}

/// The longest YCSB E scan (YCSB's `maxscanlength`).
pub const SCAN_LENGTH_MAX: u64 = 100;
/// The YCSB Zipfian constant.
const ZIPF_THETA: f64 = 0.99;

impl Workload {
    pub const ALL: [Workload; 14] = [
        Workload::Fillrandom,
        Workload::Filluniquerandom,
        Workload::Overwrite,
        Workload::Readrandom,
        Workload::Readmissing,
        Workload::Seekrandom,
        Workload::Fillsync,
        Workload::YcsbA,
        Workload::YcsbB,
        Workload::YcsbC,
        Workload::YcsbD,
        Workload::YcsbE,
        Workload::YcsbF,
        Workload::Transfer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Fillrandom => "fillrandom",
            Workload::Filluniquerandom => "filluniquerandom",
            Workload::Overwrite => "overwrite",
            Workload::Readrandom => "readrandom",
            Workload::Readmissing => "readmissing",
            Workload::Seekrandom => "seekrandom",
            Workload::Fillsync => "fillsync",
            Workload::YcsbA => "ycsb-a",
            Workload::YcsbB => "ycsb-b",
            Workload::YcsbC => "ycsb-c",
            Workload::YcsbD => "ycsb-d",
            Workload::YcsbE => "ycsb-e",
            Workload::YcsbF => "ycsb-f",
            Workload::Transfer => "transfer",
        }
    }

    /// Whether it runs in the YCSB suite (on the records YCSB loads).
    pub fn is_ycsb(self) -> bool {
        self >= Workload::YcsbA
    }

    /// The workloads run when none is named: every one but
    /// filluniquerandom (the db_bench suite fills with fillrandom) and
    /// transfer (no published suite has it).
    pub fn defaults() -> Vec<Workload> {
        Workload::ALL
            .into_iter()
            .filter(|workload| !matches!(workload, Workload::Filluniquerandom | Workload::Transfer))
            .collect()
    }

    /// Whether it fills the db_bench suite's engine.
    pub fn is_fill(self) -> bool {
        matches!(self, Workload::Fillrandom | Workload::Filluniquerandom)
    }

    /// Requests this workload makes when asked for `ops` over `records`
    /// (fillsync: a thousandth, at least 1000, as db_bench's `fillsync`
    /// writes num/1000; filluniquerandom: every record once).
    pub fn requests(self, ops: u64, records: u64) -> u64 {
        match self {
            Workload::Fillsync => (ops / 1000).max(1000),
            Workload::Filluniquerandom => records,
            _ => ops,
        }
    }
}

/// Draws one workload's requests over `records` existing records; inserts
/// take the next numbers after them.
pub struct Requests {
    workload: Workload,
    records: u64,
    rng: SplitMix64,
    zipf: ScrambledZipf,
    inserted: u64,
    /// This client thread and how many there are: thread `t` inserts
    /// records `records + t`, `records + t + threads`, …
    thread: u64,
    threads: u64,
    /// filluniquerandom's requests so far from this thread.
    issued: u64,
    /// filluniquerandom's order: position `p` writes record
    /// `(p * stride + offset) % records`, a permutation (`stride` is coprime
    /// to `records`).
    stride: u64,
    offset: u64,
    /// seekrandom's entries read after the seek (db_bench's `--seek_nexts`).
    seek_nexts: usize,
}

impl Requests {
    pub fn new(
        workload: Workload,
        records: u64,
        seed: u64,
        (thread, threads): (usize, usize),
    ) -> Requests {
        let items = u32::try_from(records.max(1)).unwrap_or(u32::MAX);
        Requests {
            workload,
            records,
            rng: SplitMix64::new(seed ^ (workload as u64) << 8 ^ thread as u64),
            zipf: ScrambledZipf::new(items, ZIPF_THETA),
            inserted: 0,
            thread: thread as u64,
            threads: threads.max(1) as u64,
            issued: 0,
            stride: coprime_stride(records.max(1)),
            offset: SplitMix64::new(seed).below(records.max(1)),
            seek_nexts: 0,
        }
    }

    /// seekrandom reads `seek_nexts` entries after the one it seeks to.
    pub fn with_seek_nexts(mut self, seek_nexts: usize) -> Requests {
        self.seek_nexts = seek_nexts;
        self
    }

    /// Whether this source has nothing more to ask (filluniquerandom, once
    /// this thread's share of the records is written).
    pub fn exhausted(&self) -> bool {
        self.workload == Workload::Filluniquerandom
            && self.thread + self.issued * self.threads >= self.records
    }

    /// filluniquerandom's next record: this thread takes every `threads`-th
    /// position of the permutation.
    fn unique(&mut self) -> u64 {
        let position = self.thread + self.issued * self.threads;
        self.issued += 1;
        let records = u128::from(self.records.max(1));
        ((u128::from(position) * u128::from(self.stride) + u128::from(self.offset)) % records)
            as u64
    }

    /// Records this thread inserted so far.
    #[cfg(test)]
    pub fn inserted(&self) -> u64 {
        self.inserted
    }

    /// Record numbers the inserts of every thread may have taken, if each
    /// inserted as many as this one: where the next workload's inserts start.
    pub fn inserted_span(&self) -> u64 {
        self.inserted * self.threads
    }

    fn uniform(&mut self) -> u64 {
        self.rng.below(self.records.max(1))
    }

    fn zipfian(&mut self) -> u64 {
        u64::from(self.zipf.next(&mut self.rng)) % self.records.max(1)
    }

    /// YCSB's skewed-latest: the newest record is the most popular.
    fn latest(&mut self) -> u64 {
        let newest = self.records + self.inserted * self.threads;
        let rank = u64::from(self.zipf.rank(&mut self.rng));
        newest.saturating_sub(1 + rank % newest.max(1))
    }

    fn insert(&mut self) -> Request {
        let record = self.records + self.inserted * self.threads + self.thread;
        self.inserted += 1;
        Request::Insert(record)
    }

    pub fn next(&mut self) -> Request {
        let roll = self.rng.below(100);
        match self.workload {
            Workload::Fillrandom | Workload::Overwrite => Request::Write {
                record: self.uniform(),
                sync: false,
            },
            Workload::Filluniquerandom => Request::Write {
                record: self.unique(),
                sync: false,
            },
            Workload::Fillsync => Request::Write {
                record: self.uniform(),
                sync: true,
            },
            Workload::Readrandom => Request::Read(self.uniform()),
            Workload::Readmissing => Request::ReadMissing(self.uniform()),
            Workload::Seekrandom => Request::Scan {
                record: self.uniform(),
                len: 1 + self.seek_nexts,
            },
            Workload::YcsbA if roll < 50 => Request::Read(self.zipfian()),
            Workload::YcsbA => Request::Write {
                record: self.zipfian(),
                sync: false,
            },
            Workload::YcsbB if roll < 95 => Request::Read(self.zipfian()),
            Workload::YcsbB => Request::Write {
                record: self.zipfian(),
                sync: false,
            },
            Workload::YcsbC => Request::Read(self.zipfian()),
            Workload::YcsbD if roll < 95 => Request::Read(self.latest()),
            Workload::YcsbD => self.insert(),
            Workload::YcsbE if roll < 95 => Request::Scan {
                record: self.zipfian(),
                len: 1 + self.rng.below(SCAN_LENGTH_MAX) as usize,
            },
            Workload::YcsbE => self.insert(),
            Workload::YcsbF if roll < 50 => Request::Read(self.zipfian()),
            Workload::YcsbF => Request::ReadModifyWrite(self.zipfian()),
            Workload::Transfer => {
                let from = self.zipfian();
                let to = self.zipfian();
                let to = if to == from {
                    (from + 1) % self.records.max(2)
                } else {
                    to
                };
                Request::Transfer(from, to)
            }
        }
    }
}

/// A stride near the golden section of `records` and coprime to it, so
/// consecutive positions land far apart and every record is taken once.
fn coprime_stride(records: u64) -> u64 {
    fn gcd(mut a: u64, mut b: u64) -> u64 {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }
    let mut stride = ((records as f64 * 0.618_033_988_7) as u64).max(1);
    while gcd(stride, records) != 1 {
        stride += 1;
    }
    stride
}

/// A key that sorts just after `record`'s and is never written (db_bench's
/// readmissing appends to a written key).
pub fn missing_key(workload: Workload, record: u64) -> Vec<u8> {
    let mut key = key(workload, record);
    key.push(b'.');
    key
}

/// The key of `record`: db_bench's 16-digit number, or YCSB's `user` and
/// the record number's hash (YCSB's `insertorder=hashed`), so the hot
/// records are spread over the key space.
pub fn key(workload: Workload, record: u64) -> Vec<u8> {
    if workload.is_ycsb() {
        format!("user{:020}", fnv1a(&record.to_le_bytes())).into_bytes()
    } else {
        format!("{record:016}").into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(workload: Workload) -> std::collections::BTreeMap<&'static str, u64> {
        let mut requests = Requests::new(workload, 10_000, 1, (0, 1));
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..20_000 {
            *counts.entry(requests.next().kind()).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn the_mixes_are_the_published_ones() {
        let share = |counts: &std::collections::BTreeMap<&str, u64>, kind: &str| {
            *counts.get(kind).unwrap_or(&0) as f64 / 20_000.0
        };
        let a = mix(Workload::YcsbA);
        assert!((share(&a, "read") - 0.5).abs() < 0.02, "{a:?}");
        let b = mix(Workload::YcsbB);
        assert!((share(&b, "write") - 0.05).abs() < 0.01, "{b:?}");
        assert_eq!(share(&mix(Workload::YcsbC), "read"), 1.0);
        let d = mix(Workload::YcsbD);
        assert!((share(&d, "insert") - 0.05).abs() < 0.01, "{d:?}");
        let e = mix(Workload::YcsbE);
        assert!((share(&e, "scan") - 0.95).abs() < 0.01, "{e:?}");
        let f = mix(Workload::YcsbF);
        assert!((share(&f, "read-modify-write") - 0.5).abs() < 0.02, "{f:?}");
        assert_eq!(share(&mix(Workload::Readrandom), "read"), 1.0);
    }

    #[test]
    fn a_transfer_names_two_different_records() {
        for records in [2u64, 3, 1000] {
            let mut requests = Requests::new(Workload::Transfer, records, 5, (0, 1));
            for _ in 0..2000 {
                let Request::Transfer(from, to) = requests.next() else {
                    panic!("transfer makes transfers")
                };
                assert!(from != to && from < records && to < records, "{from} {to}");
            }
        }
        assert!(!Workload::defaults().contains(&Workload::Transfer));
    }

    #[test]
    fn filluniquerandom_writes_every_record_once_over_the_threads() {
        for (records, threads) in [(1000u64, 1usize), (1000, 3), (997, 2), (1, 2)] {
            let mut seen = vec![0u32; records as usize];
            for thread in 0..threads {
                let mut requests =
                    Requests::new(Workload::Filluniquerandom, records, 5, (thread, threads));
                while !requests.exhausted() {
                    let Request::Write { record, .. } = requests.next() else {
                        panic!("filluniquerandom only writes")
                    };
                    seen[record as usize] += 1;
                }
            }
            assert!(
                seen.iter().all(|&count| count == 1),
                "{records} over {threads}"
            );
        }
        // Scrambled: consecutive writes are not neighbours.
        let mut requests = Requests::new(Workload::Filluniquerandom, 1000, 5, (0, 1));
        let first: Vec<Request> = (0..3).map(|_| requests.next()).collect();
        assert!(first.windows(2).all(|pair| match (pair[0], pair[1]) {
            (Request::Write { record: a, .. }, Request::Write { record: b, .. }) =>
                a.abs_diff(b) > 10,
            _ => false,
        }));
    }

    #[test]
    fn latest_prefers_the_newest_records_and_zipfian_the_hot_ones() {
        let mut requests = Requests::new(Workload::YcsbD, 10_000, 3, (0, 1));
        let mut newest = 0;
        let mut reads = 0;
        for _ in 0..20_000 {
            if let Request::Read(record) = requests.next() {
                reads += 1;
                if record + 100 >= 10_000 + requests.inserted() {
                    newest += 1;
                }
            }
        }
        // The newest 1 % of the records get far more than 1 % of the reads.
        assert!(newest * 5 > reads, "{newest} of {reads}");
        let mut requests = Requests::new(Workload::YcsbC, 10_000, 3, (0, 1));
        let mut counts = std::collections::HashMap::new();
        for _ in 0..20_000 {
            if let Request::Read(record) = requests.next() {
                *counts.entry(record).or_insert(0u32) += 1;
            }
        }
        let hottest = counts.values().max().copied().unwrap_or(0);
        assert!(hottest > 200, "the hottest record got {hottest} of 20 000");
    }
}
