//! Traces as streams: a writer that frames ops a chunk at a time and a reader
//! that hands them back a chunk at a time, so a trace of any length is
//! written and replayed in the memory of one chunk, never all of it.

use std::io::{Read, Write};
use std::path::Path;

use leasehold_core::codec::{Reader, Writer};
use leasehold_core::frame;

use super::codec::{
    decode_answer, decode_header, decode_op, encode_answer, encode_header, encode_op,
};
use super::{TraceError, TraceHeader, TraceOp, CHUNK_OPS, FOOTER_TAG, MAGIC};

/// The largest frame a trace holds: a chunk of `CHUNK_OPS` ops is far below
/// it; a corrupt length above it is refused before anything is allocated.
const FRAME_BYTES_MAX: usize = 16 << 20;

/// Writes a trace op by op: the header first, a framed chunk every
/// `CHUNK_OPS` ops, the footer (with the op count) at `finish`.
pub struct TraceWriter<W: Write> {
    out: W,
    pending: Vec<TraceOp>,
    previous_ms: u64,
    total: u64,
    frame: Vec<u8>,
}

impl<W: Write> TraceWriter<W> {
    pub fn new(mut out: W, header: &TraceHeader) -> std::io::Result<TraceWriter<W>> {
        let mut frame = MAGIC.to_vec();
        frame::encode(&encode_header(header), &mut frame);
        out.write_all(&frame)?;
        Ok(TraceWriter {
            out,
            pending: Vec::with_capacity(CHUNK_OPS),
            previous_ms: 0,
            total: 0,
            frame,
        })
    }

    pub fn push(&mut self, op: TraceOp) -> std::io::Result<()> {
        self.pending.push(op);
        self.total += 1;
        if self.pending.len() == CHUNK_OPS {
            self.write_chunk()?;
        }
        Ok(())
    }

    /// Ops pushed so far.
    pub fn ops(&self) -> u64 {
        self.total
    }

    /// Writes what is pending and the footer; returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.write_chunk()?;
        let mut writer = Writer::new();
        writer.u8(FOOTER_TAG).varint(self.total);
        self.frame.clear();
        frame::encode(&writer.finish(), &mut self.frame);
        self.out.write_all(&self.frame)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn write_chunk(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut writer = Writer::new();
        writer.varint(self.pending.len() as u64);
        for op in self.pending.drain(..) {
            // Generated traces never go back in time; a hand-made one that
            // does is clamped rather than encoded as a huge delta.
            writer.varint(op.at_ms.saturating_sub(self.previous_ms));
            self.previous_ms = self.previous_ms.max(op.at_ms);
            encode_op(&mut writer, &op.op);
            encode_answer(&mut writer, &op.answer);
        }
        self.frame.clear();
        frame::encode(&writer.finish(), &mut self.frame);
        self.out.write_all(&self.frame)
    }
}

/// Reads a trace a chunk at a time. Every frame's checksum and every op are
/// checked as they are read; the footer's count is checked at the end, and
/// bytes after it are refused.
pub struct TraceReader<R: Read> {
    input: R,
    header: TraceHeader,
    /// Bytes consumed so far (error offsets are in the file's bytes).
    offset: usize,
    at_ms: u64,
    read: u64,
    finished: bool,
    buf: Vec<u8>,
}

impl<R: Read> TraceReader<R> {
    /// Reads the magic and the header.
    pub fn new(input: R) -> Result<TraceReader<R>, TraceError> {
        let mut reader = TraceReader {
            input,
            header: placeholder_header(),
            offset: 0,
            at_ms: 0,
            read: 0,
            finished: false,
            buf: Vec::new(),
        };
        let mut magic = [0u8; 8];
        if reader.fill(&mut magic)? < MAGIC.len() || &magic != MAGIC {
            return Err(TraceError::Corrupt {
                offset: 0,
                reason: "not a leasehold trace (bad magic)".to_owned(),
            });
        }
        reader.offset = MAGIC.len();
        let base = reader.next_frame()?;
        reader.header = decode_header(&reader.buf[base..])
            .map_err(|err| TraceError::at(reader.offset_of(base), err))?;
        Ok(reader)
    }

    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// Ops read so far.
    pub fn ops_read(&self) -> u64 {
        self.read
    }

    /// Appends the next chunk's ops to `ops`; `false` (nothing appended)
    /// once the footer has been read.
    pub fn next_chunk(&mut self, ops: &mut Vec<TraceOp>) -> Result<bool, TraceError> {
        if self.finished {
            return Ok(false);
        }
        let base = self.next_frame()?;
        let file_base = self.offset_of(base);
        let payload = &self.buf[base..];
        let mut reader = Reader::new(payload);
        if payload.first() == Some(&FOOTER_TAG) {
            reader
                .u8("footer tag")
                .map_err(|err| TraceError::at(file_base, err))?;
            let total = reader
                .varint("op count")
                .map_err(|err| TraceError::at(file_base, err))?;
            reader
                .expect_end("footer")
                .map_err(|err| TraceError::at(file_base, err))?;
            if total != self.read {
                return Err(TraceError::Corrupt {
                    offset: file_base,
                    reason: format!("footer counts {total} ops, chunks hold {}", self.read),
                });
            }
            let mut extra = [0u8; 1];
            if self.fill(&mut extra)? > 0 {
                return Err(TraceError::Corrupt {
                    offset: self.offset,
                    reason: "bytes after the footer".to_owned(),
                });
            }
            self.finished = true;
            return Ok(false);
        }
        let count = reader
            .varint_at_most(CHUNK_OPS as u64, "chunk op count")
            .map_err(|err| TraceError::at(file_base, err))?;
        for _ in 0..count {
            let delta = reader
                .varint("time delta")
                .map_err(|err| TraceError::at(file_base, err))?;
            let op = decode_op(&mut reader, &self.header)
                .map_err(|err| TraceError::at(file_base, err))?;
            let answer = decode_answer(&mut reader, &self.header)
                .map_err(|err| TraceError::at(file_base, err))?;
            self.at_ms = self
                .at_ms
                .checked_add(delta)
                .ok_or_else(|| TraceError::Corrupt {
                    offset: file_base + reader.position(),
                    reason: "time overflows".to_owned(),
                })?;
            ops.push(TraceOp {
                at_ms: self.at_ms,
                op,
                answer,
            });
        }
        reader
            .expect_end("chunk")
            .map_err(|err| TraceError::at(file_base, err))?;
        self.read += count;
        Ok(true)
    }

    /// Reads one frame into `buf` (header then payload), checks it, and
    /// returns where its payload starts in `buf`.
    fn next_frame(&mut self) -> Result<usize, TraceError> {
        let start = self.offset;
        let mut head = [0u8; frame::FRAME_HEADER_LEN];
        let got = self.fill(&mut head)?;
        if got == 0 {
            return Err(TraceError::Corrupt {
                offset: start,
                reason: "trace ends before its footer".to_owned(),
            });
        }
        let length = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if got < head.len() || length > FRAME_BYTES_MAX {
            return Err(TraceError::Corrupt {
                offset: start,
                reason: if got < head.len() {
                    "frame truncated".to_owned()
                } else {
                    format!("a frame of {length} bytes (a trace's are below {FRAME_BYTES_MAX})")
                },
            });
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&head);
        buf.resize(head.len() + length, 0);
        let got = self.fill(&mut buf[head.len()..])?;
        let checked = if got < length {
            Err(frame::FrameError::Truncated { offset: 0 })
        } else {
            frame::decode(&buf, 0).map(|_| ())
        };
        self.buf = buf;
        checked.map_err(|err| TraceError::Corrupt {
            offset: start,
            reason: err.reason().to_owned(),
        })?;
        self.offset = start + self.buf.len();
        Ok(frame::FRAME_HEADER_LEN)
    }

    /// The file offset of `at` in the frame now in `buf`.
    fn offset_of(&self, at: usize) -> usize {
        self.offset - self.buf.len() + at
    }

    /// Reads until `into` is full or the input ends; the bytes read.
    fn fill(&mut self, into: &mut [u8]) -> Result<usize, TraceError> {
        let mut filled = 0;
        while filled < into.len() {
            match self.input.read(&mut into[filled..]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(TraceError::Io {
                        action: "read",
                        path: format!("(at byte {})", self.offset + filled),
                        source,
                    })
                }
            }
        }
        Ok(filled)
    }
}

/// A trace file opened for streaming, its op count known: the file is read
/// through once to check it (every frame, every op, the footer), then read
/// again by the caller a chunk at a time.
pub struct TraceFile {
    pub reader: TraceReader<std::io::BufReader<std::fs::File>>,
    pub total_ops: u64,
    /// Where the trace's `Measure` marker is (set-up ops come before it).
    pub measure_at: Option<u64>,
}

impl TraceFile {
    pub fn open(path: &Path) -> Result<TraceFile, TraceError> {
        let open = || -> Result<TraceReader<_>, TraceError> {
            let file = std::fs::File::open(path).map_err(|source| TraceError::Io {
                action: "open",
                path: path.display().to_string(),
                source,
            })?;
            TraceReader::new(std::io::BufReader::with_capacity(1 << 20, file))
                .map_err(|err| err.in_file(path))
        };
        let mut checking = open()?;
        let mut ops = Vec::with_capacity(CHUNK_OPS);
        let mut measure_at = None;
        loop {
            let before = checking.ops_read();
            if !checking
                .next_chunk(&mut ops)
                .map_err(|err| err.in_file(path))?
            {
                break;
            }
            if measure_at.is_none() {
                measure_at = ops
                    .iter()
                    .position(|op| op.op == super::Op::Measure)
                    .map(|at| before + at as u64);
            }
            ops.clear();
        }
        Ok(TraceFile {
            total_ops: checking.ops_read(),
            measure_at,
            reader: open()?,
        })
    }
}

fn placeholder_header() -> TraceHeader {
    TraceHeader {
        scenario: String::new(),
        seed: 0,
        scale: 1.0,
        actor_type: String::new(),
        actors: 1,
        nodes: 1,
        lease_ms: 0,
        ttl_ms: 0,
        state_bytes_max: 0,
    }
}
