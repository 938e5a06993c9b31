//! Optional vector search beside the lexical index: one vector per entry,
//! computed when the entry is indexed (by whatever [`Embedder`] is
//! configured), stored in `<index>/vectors.bin`, kept current with the index
//! and searched by brute-force cosine — exact, and at 10,000 entries of 256
//! dimensions a couple of milliseconds. Fused with the BM25 ranking by their
//! normalised scores ([`fuse`]).
//!
//! The file: `AOVEC2\n`, a little-endian u32 length and a JSON header
//! (`model`, `dims`, `generation`, `count`), then per entry a u16 id length,
//! the id and the 40-hex-digit hash of the text embedded, then every
//! entry's `dims` f32s (unit length) in one block, in the same order.
//! Written to a temporary file and renamed: never half-written.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const MAGIC: &[u8] = b"AOVEC2\n";

/// What computes embeddings (a model API, a local model file).
pub trait Embedder: Send + Sync {
    /// The model and its settings: stored vectors from another are recomputed.
    fn id(&self) -> String;
    /// One vector per document text, in order. May take a while (it runs
    /// when entries are indexed, never in a hook).
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
    /// The query's vector, within the configured time bound.
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, String>;
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    model: String,
    dims: usize,
    /// The index state these vectors were brought up to date with (empty:
    /// some entries still lack one).
    generation: String,
    count: usize,
}

/// Every stored vector of one model.
#[derive(Debug, Clone, Default)]
pub struct Vectors {
    pub model: String,
    pub dims: usize,
    pub generation: String,
    ids: Vec<String>,
    hashes: Vec<String>,
    data: Vec<f32>,
    /// id → position, built on first use.
    pos: std::sync::OnceLock<std::collections::HashMap<String, usize>>,
}

/// What bringing the vectors up to date did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VectorSync {
    /// Entries embedded now.
    pub embedded: usize,
    /// Vectors dropped (their entry is gone or changed).
    pub removed: usize,
    /// Entries with a vector afterwards.
    pub entries: usize,
    /// Entries still without one (the endpoint failed or time ran out).
    pub missing: usize,
    /// Why embedding stopped early, if it did.
    pub error: Option<String>,
    /// Time spent in the embedder.
    pub embed_ms: f64,
    pub elapsed_ms: f64,
}

impl Vectors {
    /// Where an index directory keeps its vectors.
    pub fn path(index_dir: &Path) -> PathBuf {
        index_dir.join("vectors.bin")
    }

    /// An empty set for `model`.
    pub fn empty(model: &str) -> Self {
        Self {
            model: model.to_owned(),
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The stored vectors of `model` at `path`; empty when there are none,
    /// they are another model's, or the file is damaged (it is rebuilt).
    pub fn load(path: &Path, model: &str) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| Self::parse(&b))
            .filter(|v| v.model == model)
            .unwrap_or_else(|| Self::empty(model))
    }

    fn parse(b: &[u8]) -> Option<Self> {
        let rest = b.strip_prefix(MAGIC)?;
        let hlen = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let h: Header = serde_json::from_slice(rest.get(4..4 + hlen)?).ok()?;
        let mut at = 4 + hlen;
        let mut v = Self {
            model: h.model,
            dims: h.dims,
            generation: h.generation,
            ids: Vec::with_capacity(h.count),
            hashes: Vec::with_capacity(h.count),
            data: Vec::with_capacity(h.count * h.dims),
            pos: std::sync::OnceLock::new(),
        };
        for _ in 0..h.count {
            let n = u16::from_le_bytes(rest.get(at..at + 2)?.try_into().ok()?) as usize;
            at += 2;
            v.ids
                .push(String::from_utf8(rest.get(at..at + n)?.to_vec()).ok()?);
            at += n;
            v.hashes
                .push(String::from_utf8(rest.get(at..at + 40)?.to_vec()).ok()?);
            at += 40;
        }
        let block = rest.get(at..at + 4 * h.dims * h.count)?;
        v.data.extend(
            block
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        at += block.len();
        (at == rest.len()).then_some(v)
    }

    /// Writes the set to `path` (a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let h = serde_json::to_vec(&Header {
            model: self.model.clone(),
            dims: self.dims,
            generation: self.generation.clone(),
            count: self.ids.len(),
        })?;
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + h.len() + self.data.len() * 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(h.len() as u32).to_le_bytes());
        out.extend_from_slice(&h);
        for (id, hash) in self.ids.iter().zip(&self.hashes) {
            out.extend_from_slice(&(id.len() as u16).to_le_bytes());
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(hash.as_bytes());
        }
        for x in &self.data {
            out.extend_from_slice(&x.to_le_bytes());
        }
        let tmp = path.with_extension(format!("bin.{}.tmp", std::process::id()));
        std::fs::write(&tmp, &out)?;
        std::fs::rename(&tmp, path)
    }

    /// Makes the set hold exactly `wanted` (id, hash of text, text): keeps
    /// vectors whose hash matches, drops the rest, embeds what is missing in
    /// batches until `deadline`. The generation is set to `generation` only
    /// when nothing is missing.
    pub fn sync(
        &mut self,
        wanted: &[(String, String, String)],
        generation: &str,
        embedder: &dyn Embedder,
        deadline: Option<std::time::Instant>,
    ) -> VectorSync {
        let start = std::time::Instant::now();
        let mut r = VectorSync::default();
        let have: std::collections::HashMap<(&str, &str), usize> = self
            .ids
            .iter()
            .zip(&self.hashes)
            .enumerate()
            .map(|(i, (id, h))| ((id.as_str(), h.as_str()), i))
            .collect();
        let mut next = Self::empty(&self.model);
        next.dims = self.dims;
        let mut todo: Vec<&(String, String, String)> = Vec::new();
        for w in wanted {
            match have.get(&(w.0.as_str(), w.1.as_str())) {
                Some(&i) => next.push(&w.0, &w.1, &self.data[i * self.dims..(i + 1) * self.dims]),
                None => todo.push(w),
            }
        }
        r.removed = self.ids.len() - next.ids.len();
        for chunk in todo.chunks(64) {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                r.error.get_or_insert_with(|| "out of time".into());
                break;
            }
            let texts: Vec<&str> = chunk.iter().map(|w| w.2.as_str()).collect();
            let t0 = std::time::Instant::now();
            let got = embedder.embed_documents(&texts);
            r.embed_ms += t0.elapsed().as_secs_f64() * 1000.0;
            match got {
                Ok(vs) if vs.len() == chunk.len() => {
                    let kept = next.ids.len() - r.embedded;
                    if kept > 0
                        && r.embedded == 0
                        && vs.first().is_some_and(|v| v.len() != next.dims)
                    {
                        // The model now answers another size: what is stored
                        // is another model's, whatever its name. Start over.
                        *self = Self::empty(&self.model);
                        let mut again = self.sync(wanted, generation, embedder, deadline);
                        again.removed += kept;
                        again.embed_ms += r.embed_ms;
                        again.elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
                        return again;
                    }
                    for (w, v) in chunk.iter().zip(vs) {
                        if next.ids.is_empty() {
                            next.dims = v.len();
                        }
                        if v.len() != next.dims {
                            r.error = Some(format!(
                                "the model answered {} dimensions after {}",
                                v.len(),
                                next.dims
                            ));
                            break;
                        }
                        next.push(&w.0, &w.1, &unit(v));
                        r.embedded += 1;
                    }
                    if r.error.is_some() {
                        break;
                    }
                }
                Ok(vs) => {
                    r.error = Some(format!("{} vectors for {} texts", vs.len(), chunk.len()));
                    break;
                }
                Err(e) => {
                    r.error = Some(e);
                    break;
                }
            }
        }
        r.entries = next.ids.len();
        r.missing = wanted.len() - next.ids.len();
        next.generation = if r.missing == 0 {
            generation.to_owned()
        } else {
            String::new()
        };
        *self = next;
        r.elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
        r
    }

    fn push(&mut self, id: &str, hash: &str, v: &[f32]) {
        self.pos.take();
        self.ids.push(id.to_owned());
        self.hashes.push(hash.to_owned());
        self.data.extend_from_slice(v);
    }

    /// The cosine of `id`'s vector with `q`, if it has one.
    pub fn similarity(&self, id: &str, q: &[f32]) -> Option<f32> {
        if q.len() != self.dims || self.dims == 0 {
            return None;
        }
        let i = *self.pos.get_or_init(|| self.index_ids()).get(id)?;
        let q = unit(q.to_vec());
        Some(dot(&self.data[i * self.dims..(i + 1) * self.dims], &q))
    }

    fn index_ids(&self) -> std::collections::HashMap<String, usize> {
        self.ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect()
    }

    /// The ids of the `k` vectors most similar to `q` (cosine; stored vectors
    /// are unit length), best first, with their similarity; only positive.
    pub fn nearest(&self, q: &[f32], k: usize) -> Vec<(&str, f32)> {
        if q.len() != self.dims || self.dims == 0 || k == 0 {
            return Vec::new();
        }
        let q = unit(q.to_vec());
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        for (i, row) in self.data.chunks_exact(self.dims).enumerate() {
            let s = dot(row, &q);
            if s <= 0.0 || (best.len() == k && s <= best[k - 1].0) {
                continue;
            }
            let at = best.partition_point(|(b, _)| *b >= s);
            best.insert(at, (s, i));
            best.truncate(k);
        }
        best.into_iter()
            .map(|(s, i)| (self.ids[i].as_str(), s))
            .collect()
    }
}

/// The dot product, in eight lanes the compiler can keep in SIMD registers
/// (a plain `sum` must add in order, one at a time).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// `v` scaled to unit length (zero stays zero).
fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|a| *a /= n);
    }
    v
}

/// Fusion of a lexical and a vector ranking by normalised score: BM25 over
/// the best BM25, plus similarity min–max scaled over the vector candidates,
/// so an entry first in both scores 2 and one found by one list alone at
/// most 1. Unlike reciprocal rank fusion the gaps between scores survive,
/// and with them "relevance comes first": freshness, utility and maturity
/// (together at most a few times) cannot lift a barely similar entry over a
/// close match (measured: docs/factor-2-context.md). Best first; ties keep
/// the order of first appearance.
pub fn fuse(lexical: &[(String, f64)], vector: &[(String, f64)]) -> Vec<(String, f64)> {
    let top = lexical.iter().map(|x| x.1).fold(0.0, f64::max);
    let hi = vector.iter().map(|x| x.1).fold(f64::MIN, f64::max);
    let lo = vector.iter().map(|x| x.1).fold(f64::MAX, f64::min);
    let mut order: Vec<String> = Vec::new();
    let mut score: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    let mut add = |id: &String, s: f64| {
        let e = score.entry(id.clone()).or_insert_with(|| {
            order.push(id.clone());
            0.0
        });
        *e += s;
    };
    for (id, s) in lexical {
        add(id, if top > 0.0 { s / top } else { 0.0 });
    }
    for (id, s) in vector {
        let v = if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
        add(id, v.max(0.0));
    }
    let mut out: Vec<(String, f64)> = order
        .into_iter()
        .map(|id| {
            let s = score[&id];
            (id, s)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(std::sync::atomic::AtomicUsize, Option<usize>);
    impl Embedder for Fake {
        fn id(&self) -> String {
            "fake".into()
        }
        fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.1.is_some_and(|fail| n >= fail) {
                return Err("connection refused".into());
            }
            Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())
        }
        fn embed_query(&self, t: &str) -> Result<Vec<f32>, String> {
            Ok(vec![t.len() as f32, 1.0])
        }
    }

    fn wanted(n: usize) -> Vec<(String, String, String)> {
        (0..n)
            .map(|i| (format!("e{i}"), format!("{i:040}"), "x".repeat(i + 1)))
            .collect()
    }

    #[test]
    fn sync_embeds_only_what_changed_and_survives_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = Vectors::path(dir.path());
        let e = Fake(Default::default(), None);
        let mut v = Vectors::load(&p, "fake");
        let r = v.sync(&wanted(70), "g1", &e, None);
        assert_eq!((r.embedded, r.entries, r.missing), (70, 70, 0));
        assert_eq!(
            e.0.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "two batches of 64"
        );
        v.save(&p).unwrap();
        let mut again = Vectors::load(&p, "fake");
        assert_eq!(
            (again.len(), again.dims, again.generation.as_str()),
            (70, 2, "g1")
        );
        let mut w = wanted(69);
        w[3].1 = format!("{:040}", 999);
        let r = again.sync(&w, "g2", &e, None);
        assert_eq!((r.embedded, r.removed, r.entries), (1, 2, 69));
        assert!(Vectors::load(&p, "another-model").is_empty());
        std::fs::write(&p, b"AOVEC2\n\x05\0\0\0{").unwrap();
        assert!(
            Vectors::load(&p, "fake").is_empty(),
            "a damaged file is rebuilt"
        );
    }

    #[test]
    fn a_failing_endpoint_keeps_what_was_embedded_and_leaves_the_generation_open() {
        let e = Fake(Default::default(), Some(1));
        let mut v = Vectors::empty("fake");
        let r = v.sync(&wanted(100), "g1", &e, None);
        assert_eq!((r.embedded, r.missing), (64, 36));
        assert_eq!(r.error.as_deref(), Some("connection refused"));
        assert_eq!(v.generation, "");
        let ok = Fake(Default::default(), None);
        let r = v.sync(&wanted(100), "g1", &ok, None);
        assert_eq!(
            (r.embedded, r.missing, v.generation.as_str()),
            (36, 0, "g1")
        );
    }

    #[test]
    fn vectors_of_another_size_are_replaced_not_mixed() {
        struct Sized(usize);
        impl Embedder for Sized {
            fn id(&self) -> String {
                "m".into()
            }
            fn embed_documents(&self, t: &[&str]) -> Result<Vec<Vec<f32>>, String> {
                Ok(t.iter().map(|_| vec![1.0; self.0]).collect())
            }
            fn embed_query(&self, _: &str) -> Result<Vec<f32>, String> {
                Ok(vec![1.0; self.0])
            }
        }
        let mut v = Vectors::empty("m");
        v.sync(&wanted(3), "g1", &Sized(4), None);
        let mut w = wanted(3);
        w.push(("new".into(), "f".repeat(40), "text".into()));
        let r = v.sync(&w, "g2", &Sized(8), None);
        assert_eq!((r.embedded, r.removed, r.missing, v.dims), (4, 3, 0, 8));
        assert_eq!(v.generation, "g2");
    }

    #[test]
    fn the_lane_dot_product_is_the_dot_product() {
        let a: Vec<f32> = (0..21).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..21).map(|i| 1.0 - i as f32 * 0.1).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - want).abs() < 1e-4);
    }

    #[test]
    fn nearest_is_by_cosine_and_fusion_rewards_both_lists() {
        let mut v = Vectors::empty("m");
        v.dims = 2;
        v.push("a", &"0".repeat(40), &unit(vec![1.0, 0.0]));
        v.push("b", &"0".repeat(40), &unit(vec![1.0, 1.0]));
        v.push("c", &"0".repeat(40), &unit(vec![-1.0, 0.2]));
        let near = v.nearest(&[0.9, 1.0], 5);
        assert_eq!(near.iter().map(|x| x.0).collect::<Vec<_>>(), ["b", "a"]);
        let fused = fuse(
            &[("x".into(), 4.0), ("b".into(), 2.0)],
            &[("b".into(), 0.9), ("a".into(), 0.5), ("c".into(), 0.1)],
        );
        // b: 0.5 + 1.0; x: 1.0; a: 0.5; c: 0.
        assert_eq!(fused[0], ("b".into(), 1.5));
        assert_eq!(fused[1], ("x".into(), 1.0));
        assert_eq!(fused[2], ("a".into(), 0.5));
        assert_eq!(fused.len(), 4);
        assert_eq!(v.similarity("a", &[2.0, 0.0]), Some(1.0));
        assert_eq!(v.similarity("zz", &[2.0, 0.0]), None);
    }
}
