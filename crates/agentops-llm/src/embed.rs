//! Text embeddings for search: an OpenAI-compatible `/v1/embeddings` client
//! (OpenAI, Ollama, llama.cpp, vLLM, …) and a local static-embedding model
//! in model2vec's format, read without any runtime of its own.
//!
//! **model2vec's format** (a directory): `model.safetensors` with one 2-D
//! tensor `embeddings` (F32 or F16, one row per vocabulary id),
//! `tokenizer.json` (a Hugging Face tokenizer; WordPiece models — what
//! model2vec distils from BERT-style encoders — are read: the vocabulary,
//! `[UNK]`, the `##` continuation prefix, lowercasing) and an optional
//! `config.json` (`"normalize": true` makes vectors unit length). A text's
//! vector is the mean of its tokens' rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{ErrorKind, LlmError};

/// The most texts one `/embeddings` request carries.
pub const BATCH: usize = 64;
/// The most characters of a text that are embedded (about 2,000 tokens:
/// under every common embedding model's input limit).
pub const MAX_CHARS: usize = 8_000;

/// An OpenAI-compatible embeddings endpoint.
pub struct OpenAiEmbeddings {
    agent: ureq::Agent,
    url: String,
    model: String,
    key: Option<String>,
}

impl std::fmt::Debug for OpenAiEmbeddings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbeddings")
            .field("url", &self.url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl OpenAiEmbeddings {
    /// `base_url` is the API's `/v1` URL; `timeout` bounds each request.
    pub fn new(base_url: &str, model: &str, key: Option<String>, timeout: Duration) -> Self {
        Self {
            agent: crate::api::http_agent(timeout),
            url: format!("{}/embeddings", base_url.trim_end_matches('/')),
            model: model.to_owned(),
            key,
        }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// One vector per text, in order (at most [`BATCH`] texts a request;
    /// more are sent in several).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, LlmError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            out.extend(self.embed_batch(chunk)?);
        }
        Ok(out)
    }

    /// The vector of one text (a query).
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, LlmError> {
        self.embed_batch(&[text])?
            .pop()
            .ok_or_else(|| LlmError::new(ErrorKind::Protocol, "no vector in the answer"))
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, LlmError> {
        let input: Vec<&str> = texts.iter().map(|t| clip(t, MAX_CHARS)).collect();
        let body = json!({"model": self.model, "input": input, "encoding_format": "float"});
        let mut rb = self
            .agent
            .post(&self.url)
            .header("content-type", "application/json");
        if let Some(k) = &self.key {
            rb = rb.header("authorization", &format!("Bearer {k}"));
        }
        let resp = rb
            .send(body.to_string().as_bytes())
            .map_err(crate::api::transport_error)?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let text = body
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .map_err(crate::api::transport_error)?;
        if status >= 300 {
            return Err(LlmError::from_http(status, &text, None));
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            LlmError::new(
                ErrorKind::Protocol,
                format!("{}: the answer is not JSON: {e}", self.url),
            )
        })?;
        parse_embeddings(&v, texts.len())
            .map_err(|m| LlmError::new(ErrorKind::Protocol, format!("{}: {m}", self.url)))
    }
}

/// The vectors of an `/embeddings` answer, by their `index`.
fn parse_embeddings(v: &Value, n: usize) -> Result<Vec<Vec<f32>>, String> {
    let data = v["data"]
        .as_array()
        .ok_or("`data` is missing or not a list")?;
    if data.len() != n {
        return Err(format!("`data` has {} vectors for {n} inputs", data.len()));
    }
    let mut out: Vec<Option<Vec<f32>>> = vec![None; n];
    for (i, d) in data.iter().enumerate() {
        let at = d["index"].as_u64().map_or(i, |x| x as usize);
        let e = d["embedding"]
            .as_array()
            .ok_or_else(|| format!("`data[{i}].embedding` is not a list of numbers"))?;
        let vec: Option<Vec<f32>> = e.iter().map(|x| x.as_f64().map(|f| f as f32)).collect();
        let vec = vec.ok_or_else(|| format!("`data[{i}].embedding` holds a non-number"))?;
        match out.get_mut(at) {
            Some(slot) => *slot = Some(vec),
            None => return Err(format!("`data[{i}].index` {at} is out of range")),
        }
    }
    let dims = out.first().and_then(|v| v.as_ref().map(Vec::len));
    out.into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Some(v) if Some(v.len()) == dims && !v.is_empty() => Ok(v),
            Some(_) => Err(format!("`data` vector {i} has another length")),
            None => Err(format!("no vector for input {i}")),
        })
        .collect()
}

fn clip(t: &str, max: usize) -> &str {
    match t.char_indices().nth(max) {
        Some((i, _)) => &t[..i],
        None => t,
    }
}

/// A local static-embedding model (model2vec's format; see the module doc).
#[derive(Debug)]
pub struct StaticModel {
    vocab: HashMap<String, u32>,
    unk: Option<u32>,
    prefix: String,
    lowercase: bool,
    normalize: bool,
    dims: usize,
    rows: Vec<f32>,
    name: String,
}

fn model_err(path: &Path, what: impl std::fmt::Display) -> String {
    format!("{}: {what}", path.display())
}

impl StaticModel {
    /// Loads the model in directory `dir`. Errors name the file and field.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let tpath = dir.join("tokenizer.json");
        let ttext = std::fs::read_to_string(&tpath).map_err(|e| model_err(&tpath, e))?;
        let tok: Value = serde_json::from_str(&ttext)
            .map_err(|e| model_err(&tpath, format!("line {}: {e}", e.line())))?;
        let model = &tok["model"];
        match model["type"].as_str() {
            Some("WordPiece") => {}
            Some(other) => {
                return Err(model_err(
                    &tpath,
                    format!("`model.type` is {other:?}; only WordPiece tokenizers are read"),
                ));
            }
            None => return Err(model_err(&tpath, "`model.type` is missing")),
        }
        let vocab_v = model["vocab"]
            .as_object()
            .ok_or_else(|| model_err(&tpath, "`model.vocab` is not a map of token to id"))?;
        let mut vocab = HashMap::with_capacity(vocab_v.len());
        for (k, v) in vocab_v {
            let id = v
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| model_err(&tpath, format!("`model.vocab.{k}` is not an id")))?;
            vocab.insert(k.clone(), id);
        }
        let unk = model["unk_token"]
            .as_str()
            .and_then(|u| vocab.get(u).copied());
        let prefix = model["continuing_subword_prefix"]
            .as_str()
            .unwrap_or("##")
            .to_owned();
        let lowercase = tok["normalizer"]["lowercase"].as_bool().unwrap_or(true);
        let cpath = dir.join("config.json");
        let normalize = match std::fs::read_to_string(&cpath) {
            Ok(t) => serde_json::from_str::<Value>(&t)
                .map_err(|e| model_err(&cpath, format!("line {}: {e}", e.line())))?["normalize"]
                .as_bool()
                .unwrap_or(true),
            Err(_) => true,
        };
        let spath = dir.join("model.safetensors");
        let (dims, rows) = read_embeddings(&spath)?;
        let n_rows = rows.len() / dims.max(1);
        if let Some((tok, id)) = vocab.iter().find(|(_, id)| **id as usize >= n_rows) {
            return Err(model_err(
                &tpath,
                format!(
                    "`model.vocab.{tok}` is id {id}, past the {n_rows} rows of model.safetensors"
                ),
            ));
        }
        Ok(Self {
            vocab,
            unk,
            prefix,
            lowercase,
            normalize,
            dims,
            rows,
            name: dir.display().to_string(),
        })
    }

    /// Where it was loaded from.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The vocabulary ids of `text`: BERT-style words (split at spaces and
    /// punctuation), each as its longest vocabulary pieces; unknown words
    /// are left out (their `[UNK]` row says nothing about the text).
    pub fn token_ids(&self, text: &str) -> Vec<u32> {
        let text = if self.lowercase {
            text.to_lowercase()
        } else {
            text.to_owned()
        };
        let mut ids = Vec::new();
        for word in words(&text) {
            let chars: Vec<(usize, char)> = word.char_indices().collect();
            let mut start = 0;
            let mut pieces = Vec::new();
            let mut known = true;
            while start < chars.len() {
                let mut end = chars.len();
                let mut found = None;
                while end > start {
                    let from = chars[start].0;
                    let to = chars.get(end).map_or(word.len(), |c| c.0);
                    let piece = &word[from..to];
                    let id = if start == 0 {
                        self.vocab.get(piece)
                    } else {
                        self.vocab.get(&format!("{}{piece}", self.prefix))
                    };
                    if let Some(id) = id {
                        found = Some(*id);
                        break;
                    }
                    end -= 1;
                }
                match found {
                    Some(id) => {
                        pieces.push(id);
                        start = end;
                    }
                    None => {
                        known = false;
                        break;
                    }
                }
            }
            if known {
                ids.extend(pieces.into_iter().filter(|id| Some(*id) != self.unk));
            }
        }
        ids
    }

    /// The text's vector: the mean of its tokens' rows (zero when none is
    /// known), unit length when the model says so.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dims];
        let ids = self.token_ids(clip(text, MAX_CHARS));
        for id in &ids {
            let row = &self.rows[*id as usize * self.dims..(*id as usize + 1) * self.dims];
            for (a, b) in v.iter_mut().zip(row) {
                *a += b;
            }
        }
        if !ids.is_empty() {
            let n = ids.len() as f32;
            v.iter_mut().for_each(|a| *a /= n);
        }
        if self.normalize {
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|a| *a /= norm);
            }
        }
        v
    }
}

/// BERT's pre-tokenization: runs of letters and digits, and each
/// punctuation character on its own.
fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            out.push(&text[s..i]);
        }
        if !c.is_whitespace() && !c.is_control() {
            out.push(&text[i..i + c.len_utf8()]);
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

/// The `embeddings` tensor of a safetensors file: (dims, rows flattened).
fn read_embeddings(path: &PathBuf) -> Result<(usize, Vec<f32>), String> {
    let bytes = std::fs::read(path).map_err(|e| model_err(path, e))?;
    let head_len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
        .ok_or_else(|| model_err(path, "shorter than the 8-byte header length"))?;
    let head = bytes
        .get(8..8usize.saturating_add(head_len))
        .ok_or_else(|| {
            model_err(
                path,
                format!("the header ({head_len} bytes) runs past the file"),
            )
        })?;
    let head: Value = serde_json::from_slice(head)
        .map_err(|e| model_err(path, format!("the header is not JSON: {e}")))?;
    let t = head
        .get("embeddings")
        .or_else(|| {
            head.as_object()
                .and_then(|o| o.iter().find(|(k, _)| *k != "__metadata__").map(|(_, v)| v))
        })
        .ok_or_else(|| model_err(path, "no tensor `embeddings`"))?;
    let numbers = |v: &Value| -> Vec<usize> {
        v.as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|d| d.as_u64().map(|d| d as usize))
                    .collect()
            })
            .unwrap_or_default()
    };
    let shape = numbers(&t["shape"]);
    let [rows, dims] = shape[..] else {
        return Err(model_err(
            path,
            format!("`embeddings.shape` is {shape:?}, not [rows, dims]"),
        ));
    };
    let offs = numbers(&t["data_offsets"]);
    let [from, to] = offs[..] else {
        return Err(model_err(
            path,
            "`embeddings.data_offsets` is not [begin, end]",
        ));
    };
    let base = 8 + head_len;
    let data = bytes
        .get(base + from..base + to)
        .ok_or_else(|| model_err(path, "`embeddings.data_offsets` run past the file"))?;
    let dtype = t["dtype"].as_str().unwrap_or("");
    let width = match dtype {
        "F32" => 4,
        "F16" => 2,
        other => {
            return Err(model_err(
                path,
                format!("`embeddings.dtype` is {other:?}; F32 and F16 are read"),
            ));
        }
    };
    if data.len() != rows * dims * width || dims == 0 {
        return Err(model_err(
            path,
            format!(
                "`embeddings` holds {} bytes, not {rows} x {dims} {dtype}",
                data.len()
            ),
        ));
    }
    let values = if width == 4 {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        data.chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect()
    };
    Ok((dims, values))
}

/// IEEE 754 half precision to single.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise it.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Writes a model2vec-format directory (for tests and benchmarks): the
/// `embeddings` rows F32, a WordPiece `tokenizer.json` over `vocab`
/// (index = id), and `config.json`.
pub fn write_static_model(dir: &Path, vocab: &[&str], rows: &[Vec<f32>]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let dims = rows.first().map_or(0, Vec::len);
    let mut data = Vec::with_capacity(rows.len() * dims * 4);
    for r in rows {
        for x in r {
            data.extend_from_slice(&x.to_le_bytes());
        }
    }
    let head = json!({
        "__metadata__": {"format": "pt"},
        "embeddings": {"dtype": "F32", "shape": [rows.len(), dims], "data_offsets": [0, data.len()]},
    })
    .to_string();
    let mut file = (head.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(head.as_bytes());
    file.extend_from_slice(&data);
    std::fs::write(dir.join("model.safetensors"), file)?;
    let v: serde_json::Map<String, Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| ((*t).to_owned(), json!(i)))
        .collect();
    let tok = json!({
        "version": "1.0",
        "normalizer": {"type": "BertNormalizer", "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": v},
    });
    std::fs::write(dir.join("tokenizer.json"), tok.to_string())?;
    std::fs::write(
        dir.join("config.json"),
        json!({"model_type": "model2vec", "normalize": true}).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_model_averages_its_word_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let vocab = ["[UNK]", "retry", "##ing", "back", "##off", "disk"];
        let rows = vec![
            vec![9.0, 9.0, 9.0],
            vec![1.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.0, 1.0],
            vec![0.0, 0.0, 1.0],
            vec![5.0, 5.0, 5.0],
        ];
        write_static_model(dir.path(), &vocab, &rows).unwrap();
        let m = StaticModel::load(dir.path()).unwrap();
        assert_eq!(m.dims(), 3);
        // "Retrying" = retry + ##ing; "backoff" = back + ##off; "zebra" is unknown.
        assert_eq!(m.token_ids("Retrying backoff, zebra!"), vec![1, 2, 3, 4]);
        let v = m.embed("Retrying backoff, zebra!");
        let want = [0.25f32, 0.25, 0.5];
        let norm = want.iter().map(|x| x * x).sum::<f32>().sqrt();
        for (a, b) in v.iter().zip(want) {
            assert!((a - b / norm).abs() < 1e-6, "{v:?}");
        }
        assert_eq!(m.embed("zebra"), vec![0.0, 0.0, 0.0]);
    }

    #[test]
    fn broken_model_files_are_named_with_their_field() {
        let dir = tempfile::tempdir().unwrap();
        write_static_model(dir.path(), &["[UNK]", "a"], &[vec![1.0], vec![2.0]]).unwrap();
        let tok = dir.path().join("tokenizer.json");
        let text = std::fs::read_to_string(&tok).unwrap();
        std::fs::write(&tok, text.replace("WordPiece", "BPE")).unwrap();
        let e = StaticModel::load(dir.path()).unwrap_err();
        assert!(
            e.contains("tokenizer.json") && e.contains("model.type"),
            "{e}"
        );
        std::fs::write(&tok, text.replace("\"a\":1", "\"a\":7")).unwrap();
        let e = StaticModel::load(dir.path()).unwrap_err();
        assert!(
            e.contains("model.vocab.a") && e.contains("past the 2 rows"),
            "{e}"
        );
        std::fs::write(&tok, &text).unwrap();
        std::fs::write(dir.path().join("model.safetensors"), b"\x10\0\0\0\0\0\0\0{").unwrap();
        let e = StaticModel::load(dir.path()).unwrap_err();
        assert!(
            e.contains("model.safetensors") && e.contains("runs past"),
            "{e}"
        );
    }

    #[test]
    fn half_floats_convert() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert!((f16_to_f32(0x0001) - 5.960_464_5e-8).abs() < 1e-12);
    }

    #[test]
    fn embedding_answers_are_put_in_input_order() {
        let v = json!({"data": [
            {"index": 1, "embedding": [0.0, 1.0]},
            {"index": 0, "embedding": [1.0, 0.0]},
        ]});
        assert_eq!(
            parse_embeddings(&v, 2).unwrap(),
            vec![vec![1.0, 0.0], vec![0.0, 1.0]]
        );
        assert!(
            parse_embeddings(&v, 3)
                .unwrap_err()
                .contains("2 vectors for 3")
        );
        let bad = json!({"data": [{"embedding": [1.0]}, {"embedding": [1.0, 2.0]}]});
        assert!(
            parse_embeddings(&bad, 2)
                .unwrap_err()
                .contains("another length")
        );
    }
}
