//! The state's stored form, built from cached pieces so that a write after a small change
//! re-encodes only what changed: format 1 (plain JSON in the one ConfigMap) while the state
//! is small, format 2 (the same document, gzip-compressed, cut into shard ConfigMaps) above
//! [`COMPRESS_ABOVE`]; [`super::decode`] reads both, and format 1 as older veers wrote it.
//!
//! The records are cut into chunks at records whose identity hashes to a multiple of
//! [`CHUNK_EVERY`] (content-defined cuts: a record added or removed moves no other cut), and
//! each chunk's JSON text is kept with its CRC-32 and, once the state is large enough to be
//! compressed, its raw deflate stream ended by a sync flush (byte-aligned, not final, no
//! history shared with the next chunk). Chunks are grouped into shards by a coarser cut of the
//! same hash ([`SHARD_CHUNKS`] chunks on average, ~80 KB of base64 each); a shard is one
//! ordinary gzip member (as `pigz` writes them): the gzip header, its chunks' deflate streams
//! one after another, an empty final block, and the CRC of the whole (combined from the
//! chunks') with its length. A shard's id is a digest of those bytes, so an unchanged shard
//! keeps its ConfigMap and a write after a small change stores one shard and the header,
//! not the whole state (the API server and etcd rewrite whole objects). A chunk is encoded
//! again only when a record it covers changed (the caller names the keys) or its cuts
//! moved; the bytes are then those a fresh encode of the same state gives.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use base64::Engine as _;
use flate2::Compression;
use flate2::Crc;
use flate2::write::DeflateEncoder;
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    BUG, COMPRESS_ABOVE, HEAD_KEY, JSON_KEY, MAX_STATE_BYTES, ObjectRecord, SHARDED_FORMAT,
    SHARDS_KEY, STATE_FORMAT, StateError, SyncState, TAIL_KEY,
};

/// Records per chunk, on average (about 20 KiB of JSON: deflate looks back 32 KiB, so
/// chunks compress nearly as well as the whole).
pub const CHUNK_EVERY: u64 = 128;
/// Chunks per shard, on average (~1,000 records, ~60 KB compressed).
pub const SHARD_CHUNKS: u64 = 8;

/// A record's key in the order records are kept (group, version, kind, namespace, name).
pub type OrderKey = (String, String, String, Option<String>, String);

type Borrowed<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a str);

pub(super) fn order(r: &ObjectRecord) -> Borrowed<'_> {
    (
        &r.group,
        &r.version,
        &r.kind,
        r.namespace.as_deref(),
        &r.name,
    )
}

pub(super) fn owned(r: &ObjectRecord) -> OrderKey {
    (
        r.group.clone(),
        r.version.clone(),
        r.kind.clone(),
        r.namespace.clone(),
        r.name.clone(),
    )
}

fn borrow(k: &OrderKey) -> Borrowed<'_> {
    (&k.0, &k.1, &k.2, k.3.as_deref(), &k.4)
}

/// FNV-1a over an identity (API version aside, so a new version of an object keeps its
/// chunk and shard): stable across runs and builds.
fn identity_hash(group: &str, kind: &str, namespace: Option<&str>, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [group, kind, namespace.unwrap_or(""), name] {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Does a chunk end at `r`?
fn cuts_after(r: &ObjectRecord) -> bool {
    identity_hash(&r.group, &r.kind, r.namespace.as_deref(), &r.name).is_multiple_of(CHUNK_EVERY)
}

/// Does a shard end with the chunk ending at `k`? (A subset of the chunk cuts.)
fn shard_cuts_after(k: &OrderKey) -> bool {
    identity_hash(&k.0, &k.2, k.3.as_deref(), &k.4).is_multiple_of(CHUNK_EVERY * SHARD_CHUNKS)
}

/// One chunk: `count` records after `after` (the previous chunk's last; `None`: the first
/// chunk) up to `end`, as JSON (a comma before each record but the state's first).
#[derive(Debug)]
struct Chunk {
    after: Option<OrderKey>,
    end: OrderKey,
    count: usize,
    /// The JSON text; dropped once deflated (a compressed state keeps only the deflate
    /// stream: the text is four times its size, 2.6 MiB at 10,000 records).
    text: Option<String>,
    /// The text's length in bytes (kept when the text is dropped).
    len: usize,
    crc: Crc,
    /// The raw deflate stream, sync-flushed; made when the state is compressed.
    deflate: Option<Vec<u8>>,
    /// Made by the last encode (not taken over from the one before).
    fresh: bool,
}

/// A shard as last encoded: the records after `after` up to `end`, and its id.
#[derive(Debug)]
struct ShardMemo {
    after: Option<OrderKey>,
    end: OrderKey,
    id: String,
}

/// The cached chunks and shards of the state last encoded, in order, and the shards the
/// cluster is known to hold (told by the writer).
#[derive(Debug, Default)]
pub struct Encoded {
    chunks: Vec<Chunk>,
    shards: Vec<ShardMemo>,
    /// The ids of the shards the stored state is made of; `None`: unknown (none written
    /// through this cache yet).
    stored: Option<BTreeSet<String>>,
}

/// The state as it is to be stored: the ConfigMap's `data` and `binaryData` and, in format
/// 2, its shards in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub data: Value,
    pub binary: Value,
    pub shards: Vec<Shard>,
}

/// One shard of a stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// A digest of its bytes; its ConfigMap is the state's name, a dash and this.
    pub id: String,
    /// Its gzip member, base64; `None` when the cluster holds it already.
    pub body: Option<String>,
}

impl Stored {
    /// The shards' ids, in order.
    pub fn shard_ids(&self) -> impl Iterator<Item = &str> {
        self.shards.iter().map(|s| s.id.as_str())
    }
}

/// Is a key of `changed` (sorted) in (`after`, `end`]?
fn touches(changed: &[OrderKey], after: Option<&OrderKey>, end: &OrderKey) -> bool {
    let lower = after.map(borrow);
    let first = changed.partition_point(|k| Some(borrow(k)) <= lower);
    changed.get(first).is_some_and(|k| borrow(k) <= borrow(end))
}

fn bug(reason: String) -> StateError {
    StateError::Write {
        namespace: String::new(),
        name: String::new(),
        reason,
        hint: BUG.into(),
    }
}

fn crc_of(text: &str) -> Crc {
    let mut crc = Crc::new();
    crc.update(text.as_bytes());
    crc
}

fn deflate(text: &str) -> Result<Vec<u8>, StateError> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(text.as_bytes())
        .and_then(|()| encoder.flush())
        .map_err(|e| bug(e.to_string()))?;
    // Not finished: a finish would add a final block. What dropping the encoder writes goes
    // to the empty vector left behind.
    Ok(std::mem::take(encoder.get_mut()))
}

/// The JSON before the records (ending in `"objects":[`) and after them.
fn head_and_tail(state: &SyncState) -> Result<(String, String), StateError> {
    let header = SyncState {
        format: state.format,
        revision: state.revision.clone(),
        outcome: state.outcome,
        applied_at: state.applied_at.clone(),
        rejected: state.rejected.clone(),
        last_error: state.last_error.clone(),
        objects: Vec::new(),
        drift: Vec::new(),
        updated_at: None,
    };
    let text = serde_json::to_string(&header).map_err(|e| bug(e.to_string()))?;
    let head = (text.strip_suffix("]}").map(str::to_string))
        .ok_or_else(|| bug(format!("unexpected state header {text}")))?;
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Tail<'a> {
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        drift: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        updated_at: &'a Option<String>,
    }
    let tail = serde_json::to_string(&Tail {
        drift: &state.drift,
        updated_at: &state.updated_at,
    })
    .map_err(|e| bug(e.to_string()))?;
    let tail = match tail.strip_prefix('{') {
        Some("}") => "]}".to_string(),
        Some(rest) => format!("],{rest}"),
        None => return Err(bug(format!("unexpected state tail {tail}"))),
    };
    Ok((head, tail))
}

/// The gzip member of `parts`' deflate streams (see the module header).
fn gzip(parts: &[(&[u8], &Crc)]) -> Vec<u8> {
    let size: usize = parts.iter().map(|(d, _)| d.len()).sum();
    let mut out = Vec::with_capacity(size + 23);
    // Magic, deflate, no flags, no time, no extra flags, unknown OS (as flate2 writes it).
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let mut crc = Crc::new();
    for (bytes, part) in parts {
        out.extend_from_slice(bytes);
        crc.combine(part);
    }
    // An empty final stored block (each part ended byte-aligned).
    out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&crc.amount().to_le_bytes());
    out
}

impl Encoded {
    /// The stored form of `state`. `changed`: the keys of every record added, removed or
    /// changed since the state this cache last encoded, sorted; `None`: anything may have
    /// (everything is encoded again).
    pub fn encode(
        &mut self,
        state: &SyncState,
        changed: Option<&[OrderKey]>,
    ) -> Result<Stored, StateError> {
        self.encode_above(state, changed, COMPRESS_ABOVE)
    }

    /// The writer stored the state with these shards: the next encode leaves out the bodies
    /// of those it keeps.
    pub(super) fn stored(&mut self, ids: BTreeSet<String>) {
        self.stored = Some(ids);
    }

    /// The shards the stored state was made of, as last told; `None`: unknown.
    pub(super) fn stored_ids(&self) -> Option<&BTreeSet<String>> {
        self.stored.as_ref()
    }

    /// [`Encoded::encode`], compressed above `compress_above` bytes of JSON (tests compress
    /// small states).
    pub(super) fn encode_above(
        &mut self,
        state: &SyncState,
        changed: Option<&[OrderKey]>,
        compress_above: usize,
    ) -> Result<Stored, StateError> {
        self.encode_chunks(state, changed)?;
        let (head, tail) = head_and_tail(state)?;
        let length = head.len() + tail.len() + self.chunks.iter().map(|c| c.len).sum::<usize>();
        if length <= compress_above {
            if self.chunks.iter().any(|c| c.text.is_none()) {
                // Shrunk below the threshold since it was compressed: the dropped texts are
                // made again (rare: a state that lost most of its records).
                self.chunks.clear();
                return self.encode_above(state, None, compress_above);
            }
            let mut text = String::with_capacity(length);
            text.push_str(&head);
            for c in &self.chunks {
                text.push_str(c.text.as_deref().unwrap_or_default());
            }
            text.push_str(&tail);
            self.shards.clear();
            let format = STATE_FORMAT.to_string();
            return Ok(Stored {
                data: json!({"format": format, JSON_KEY: text}),
                binary: json!({}),
                shards: Vec::new(),
            });
        }
        for c in &mut self.chunks {
            if c.deflate.is_none()
                && let Some(text) = c.text.take()
            {
                c.deflate = Some(deflate(&text)?);
            }
        }
        let shards = self.encode_shards()?;
        let ids: Vec<&str> = shards.iter().map(|s| s.id.as_str()).collect();
        let header = head.len() + tail.len() + ids.len() * 17;
        if header > MAX_STATE_BYTES {
            return Err(StateError::TooLarge { bytes: header });
        }
        let data = json!({
            "format": SHARDED_FORMAT.to_string(),
            HEAD_KEY: head,
            TAIL_KEY: tail,
            SHARDS_KEY: ids.join(","),
        });
        Ok(Stored {
            data,
            binary: json!({}),
            shards,
        })
    }

    /// The chunks of `state` (see the module header), those no changed key falls in taken
    /// over from the last encode.
    fn encode_chunks(
        &mut self,
        state: &SyncState,
        changed: Option<&[OrderKey]>,
    ) -> Result<(), StateError> {
        // The chunks by the key they start after: a chunk no changed key falls in is taken
        // as it is and its records skipped, unread (a write costs what changed).
        let mut old: BTreeMap<Option<OrderKey>, Chunk> = std::mem::take(&mut self.chunks)
            .into_iter()
            .map(|c| (c.after.clone(), Chunk { fresh: false, ..c }))
            .collect();
        let records = &state.objects;
        let mut start = 0;
        while start < records.len() {
            let after = self.chunks.last().map(|c| c.end.clone());
            if let (Some(keys), Some(c)) = (changed, old.remove(&after)) {
                let last = (start + c.count).checked_sub(1);
                let same = last.and_then(|l| records.get(l)).is_some_and(|r| {
                    order(r) == borrow(&c.end)
                        && (cuts_after(r) || start + c.count == records.len())
                });
                if same && !touches(keys, after.as_ref(), &c.end) {
                    start += c.count;
                    self.chunks.push(c);
                    continue;
                }
            }
            let mut end = start;
            while end + 1 < records.len() && !records.get(end).is_some_and(cuts_after) {
                end += 1;
            }
            let mut text = String::new();
            for (i, record) in records.iter().enumerate().take(end + 1).skip(start) {
                if i > 0 {
                    text.push(',');
                }
                let json = serde_json::to_string(record).map_err(|e| bug(e.to_string()))?;
                text.push_str(&json);
            }
            let last = records
                .get(end)
                .ok_or_else(|| bug("a chunk past the records".into()))?;
            self.chunks.push(Chunk {
                after,
                end: owned(last),
                count: end + 1 - start,
                crc: crc_of(&text),
                len: text.len(),
                text: Some(text),
                deflate: None,
                fresh: true,
            });
            start = end + 1;
        }
        Ok(())
    }

    /// The shards of the chunks (deflated), in order: a shard whose chunks all come from the
    /// last encode keeps its id unread; a body is made only for a shard the cluster is not
    /// known to hold.
    fn encode_shards(&mut self) -> Result<Vec<Shard>, StateError> {
        let mut old: BTreeMap<Option<OrderKey>, ShardMemo> = std::mem::take(&mut self.shards)
            .into_iter()
            .map(|s| (s.after.clone(), s))
            .collect();
        let mut out = Vec::new();
        let mut first = 0;
        for (i, c) in self.chunks.iter().enumerate() {
            if !(shard_cuts_after(&c.end) || i + 1 == self.chunks.len()) {
                continue;
            }
            let group = self.chunks.get(first..=i).unwrap_or_default();
            let after = group.first().and_then(|c| c.after.clone());
            let kept = old
                .remove(&after)
                .filter(|m| m.end == c.end && group.iter().all(|c| !c.fresh));
            let parts: Vec<(&[u8], &Crc)> = group
                .iter()
                .map(|c| (c.deflate.as_deref().unwrap_or_default(), &c.crc))
                .collect();
            let (id, bytes) = match kept {
                Some(m) => (m.id, None),
                None => {
                    let bytes = gzip(&parts);
                    (digest(&bytes), Some(bytes))
                }
            };
            let held = self.stored.as_ref().is_some_and(|s| s.contains(&id));
            let body = if held {
                None
            } else {
                let bytes = bytes.unwrap_or_else(|| gzip(&parts));
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                if encoded.len() > MAX_STATE_BYTES {
                    return Err(StateError::TooLarge {
                        bytes: encoded.len(),
                    });
                }
                Some(encoded)
            };
            self.shards.push(ShardMemo {
                after,
                end: c.end.clone(),
                id: id.clone(),
            });
            out.push(Shard { id, body });
            first = i + 1;
        }
        Ok(out)
    }
}

/// A shard's id: the first 8 bytes of its bytes' SHA-256, in hex.
fn digest(bytes: &[u8]) -> String {
    crate::ids::sha256_hex(bytes, 8)
}
