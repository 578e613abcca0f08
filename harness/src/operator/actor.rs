//! The actor commands: `actor list-leases` and `actor inspect-state`. What
//! they print comes from stored data, so text is escaped (no control
//! character reaches the terminal) and a state is cut at `--max-bytes`,
//! JSON or not.

use leasehold_core::snapshot::to_hex;
use leasehold_core::{ActorKey, LeaseFilter, NodeId, StoreError, Timestamp};

use super::{now, Status, TargetArgs};

/// "in 4m 10s" / "2h 3m ago", for times relative to now.
fn relative(at: Timestamp, now: Timestamp) -> String {
    let (millis, future) = if at.0 >= now.0 {
        (at.0 - now.0, true)
    } else {
        (now.0 - at.0, false)
    };
    let secs = millis / 1000;
    let text = match secs {
        0..=59 => format!("{}.{}s", secs, millis % 1000 / 100),
        60..=3599 => format!("{}m {}s", secs / 60, secs % 60),
        3600..=86_399 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

pub struct ListLeases {
    pub node_id: Option<String>,
    pub actor_type: Option<String>,
    pub expired: bool,
    pub json: bool,
    pub at: Option<u64>,
}

pub fn list_leases(target: &TargetArgs, options: &ListLeases) -> Status {
    let target = target.resolve()?;
    let store = target.open_read_only()?;
    let now = now(options.at);
    let filter = LeaseFilter {
        node_id: options.node_id.clone().map(NodeId::new),
        actor_type: options.actor_type.clone(),
        expired: options.expired.then_some(true),
        now,
    };
    let leases = store.list_leases(&filter)?;
    if options.json {
        let rows: Vec<serde_json::Value> = leases
            .iter()
            .map(|lease| {
                serde_json::json!({
                    "actor_type": lease.key.actor_type,
                    "actor_id": lease.key.actor_id,
                    "owner": lease.node_id.as_ref().map(NodeId::as_str),
                    "epoch": lease.epoch,
                    "version": lease.version,
                    "acquired_at_ms": lease.acquired_at.as_millis(),
                    "expires_at_ms": lease.expires_at.as_millis(),
                    "held": lease.is_held_at(now),
                    "renewals": lease.renewals,
                    "metadata": lease.metadata,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    println!(
        "{:<16} {:<24} {:<14} {:>6} {:>8} {:<18} {:>8}",
        "ACTOR TYPE", "ACTOR ID", "OWNER", "EPOCH", "VERSION", "EXPIRES", "RENEWALS"
    );
    for lease in &leases {
        let expires = match &lease.node_id {
            None => "released".to_owned(),
            Some(_) => relative(lease.expires_at, now),
        };
        println!(
            "{:<16} {:<24} {:<14} {:>6} {:>8} {:<18} {:>8}",
            printable(&lease.key.actor_type),
            printable(&lease.key.actor_id),
            printable(lease.node_id.as_ref().map_or("-", NodeId::as_str)),
            lease.epoch,
            lease.version,
            expires,
            lease.renewals
        );
    }
    println!("{} leases", leases.len());
    Ok(0)
}

pub struct InspectState {
    pub actor_type: String,
    pub actor_id: String,
    pub max_bytes: usize,
    pub at: Option<u64>,
}

pub fn inspect_state(target: &TargetArgs, options: &InspectState) -> Status {
    let target = target.resolve()?;
    let store = target.open_read_only()?;
    let now = now(options.at);
    let key = ActorKey::new(options.actor_type.clone(), options.actor_id.clone());
    let lease = store.get_lease(&key)?;
    println!("actor        {}", printable(&key.to_string()));
    match &lease {
        Some(lease) => println!(
            "lease        owner {}, epoch {}, {} (expires {}), {} renewals",
            printable(lease.node_id.as_ref().map_or("-", NodeId::as_str)),
            lease.epoch,
            if lease.is_held_at(now) {
                "held"
            } else {
                "not held"
            },
            relative(lease.expires_at, now),
            lease.renewals
        ),
        None => println!("lease        none"),
    }
    let snapshot = match store.load(&key, now) {
        Ok(Some(snapshot)) => snapshot,
        Ok(None) => {
            println!("snapshot     none (never saved, deleted, or expired)");
            return Ok(1);
        }
        Err(StoreError::Integrity {
            expected, actual, ..
        }) => {
            println!(
                "snapshot     INTEGRITY FAILURE: stored hash {expected}, state hashes to {actual}"
            );
            println!("             the state is not shown: it is not what was saved");
            return Ok(1);
        }
        Err(err) => return Err(err.into()),
    };
    println!("snapshot id  {}", printable(&snapshot.snapshot_id));
    println!(
        "version      {} (written under epoch {})",
        snapshot.version, snapshot.epoch
    );
    println!(
        "created      {} ({})",
        snapshot.created_at.as_millis(),
        relative(snapshot.created_at, now)
    );
    println!(
        "updated      {} ({})",
        snapshot.updated_at.as_millis(),
        relative(snapshot.updated_at, now)
    );
    match snapshot.expires_at() {
        Some(expires) => println!(
            "ttl          {:?}, expires {}",
            snapshot.ttl.unwrap_or_default(),
            relative(expires, now)
        ),
        None => println!("ttl          none"),
    }
    println!("sha-256      {} (verified)", to_hex(&snapshot.state_hash));
    let tags: Vec<String> = snapshot
        .tags
        .iter()
        .map(|(name, value)| format!("{}={}", printable(name), printable(value)))
        .collect();
    println!(
        "tags         {}",
        if tags.is_empty() {
            "none".to_owned()
        } else {
            tags.join(", ")
        }
    );
    println!(
        "history      only the latest version: every save replaces the previous one in {}",
        target.label()
    );
    println!("state        {} bytes", snapshot.state.len());
    match serde_json::from_slice::<serde_json::Value>(&snapshot.state) {
        // serde_json escapes control characters in strings.
        Ok(json) => print!(
            "{}",
            cut(&serde_json::to_string_pretty(&json)?, options.max_bytes)
        ),
        Err(_) => print!("{}", hex_dump(&snapshot.state, options.max_bytes)),
    }
    Ok(0)
}

/// `text` with every control character escaped (`\u{1b}`), so stored data
/// cannot drive the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `text` and a newline, or its first `max_bytes` bytes (at a character
/// boundary) and how many were left out.
fn cut(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return format!("{text}\n");
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n… {} more bytes (--max-bytes to see more)\n",
        &text[..end],
        text.len() - end
    )
}

/// 16 bytes a line: offset, hex, printable ASCII.
fn hex_dump(bytes: &[u8], max_bytes: usize) -> String {
    let mut out = String::new();
    for (line, chunk) in bytes[..bytes.len().min(max_bytes)].chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|byte| format!("{byte:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&byte| {
                if byte.is_ascii_graphic() || byte == b' ' {
                    byte as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!(
            "{:08x}  {:<47}  {ascii}\n",
            line * 16,
            hex.join(" ")
        ));
    }
    if bytes.len() > max_bytes {
        out.push_str(&format!(
            "… {} more bytes (--max-bytes to see more)\n",
            bytes.len() - max_bytes
        ));
    }
    out
}
