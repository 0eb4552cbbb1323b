//! A JSON scanner that reads only what patterns ask for: it walks an event's raw bytes along a
//! trie of the field paths some rule mentions, descends into those keys, and skips every
//! other value without decoding it (the quamina approach). Leaves it reaches are reported
//! with their path id and array trail. The skipped parts are only checked for balance, so a
//! caller that needs a fully valid document validates it elsewhere (PutEvents does).
//!
//! Once every wanted path has been found outside any array, nothing later in the document can
//! add a leaf (only a duplicate key could), so the scan stops there and the rest of the event
//! is not read at all.

use super::event::Trail;
use super::matcher::Scalar;
use std::borrow::Cow;

/// The field paths to extract, as a trie of keys.
#[derive(Debug, Default, Clone)]
pub struct PathTrie {
    nodes: Vec<TrieNode>,
    /// How many distinct path ids the trie holds.
    paths: usize,
}

#[derive(Debug, Default, Clone)]
struct TrieNode {
    /// Few per node: a linear scan beats hashing every key of the event.
    children: Vec<(Box<[u8]>, usize)>,
    /// Set when a pattern names the path ending here.
    path_id: Option<u32>,
}

/// A leaf found by the scanner.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<'a> {
    pub path_id: u32,
    pub value: Scalar<'a>,
    pub trail: Trail,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the event is not valid JSON (at byte {0})")]
pub struct ScanError(pub usize);

impl PathTrie {
    pub fn new() -> PathTrie {
        PathTrie {
            nodes: vec![TrieNode::default()],
            paths: 0,
        }
    }

    /// Adds a dotted path; returns its id.
    pub fn insert(&mut self, path: &str, id: u32) {
        let mut at = 0;
        for key in path.split('.') {
            let next = self.nodes.len();
            let found = self.nodes[at].child(key.as_bytes());
            let child = match found {
                Some(c) => c,
                None => {
                    self.nodes[at].children.push((key.as_bytes().into(), next));
                    self.nodes.push(TrieNode::default());
                    next
                }
            };
            at = child;
        }
        if self.nodes[at].path_id.is_none() {
            self.paths += 1;
        }
        self.nodes[at].path_id = Some(id);
    }

    /// Every wanted leaf of `json` (an object), in document order. `complete` is scratch space
    /// (which paths were found outside arrays), reused across calls.
    pub fn scan<'a>(
        &self,
        json: &'a [u8],
        out: &mut Vec<Found<'a>>,
        complete: &mut Vec<bool>,
    ) -> Result<(), ScanError> {
        complete.clear();
        complete.resize(self.paths, false);
        let mut s = Scanner {
            b: json,
            i: 0,
            arrays: 0,
            remaining: self.paths,
            complete,
        };
        s.ws();
        if s.peek() != Some(b'{') {
            return Err(ScanError(s.i));
        }
        let mut trail = Vec::new();
        s.value(self, 0, &mut trail, out)
    }
}

impl TrieNode {
    fn child(&self, key: &[u8]) -> Option<usize> {
        // Length and first byte first: most keys differ there, which saves a memcmp call.
        self.children
            .iter()
            .find(|(k, _)| k.len() == key.len() && k.first() == key.first() && **k == *key)
            .map(|(_, c)| *c)
    }
}

/// The first `"` or `\\` in `s`. Eight bytes at a time (SWAR) for the short strings that make
/// up most of an event; long ones go to the vectorised search.
fn find_quote_or_backslash(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has = |x: u64, c: u8| {
        let y = x ^ (LO * c as u64);
        y.wrapping_sub(LO) & !y & HI
    };
    let mut i = 0;
    while i + 8 <= s.len() && i < 64 {
        let x = u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
        let m = has(x, b'"') | has(x, b'\\');
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i < 64 {
        return s[i..]
            .iter()
            .position(|c| *c == b'"' || *c == b'\\')
            .map(|k| k + i);
    }
    memchr::memchr2(b'"', b'\\', &s[i..]).map(|k| k + i)
}

struct Scanner<'a, 'c> {
    b: &'a [u8],
    i: usize,
    arrays: u32,
    /// Wanted paths not yet found outside an array; at 0 the scan is over.
    remaining: usize,
    complete: &'c mut [bool],
}

impl<'a> Scanner<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), ScanError> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(ScanError(self.i))
        }
    }

    /// The raw bytes of a string (at its opening quote), and whether it has escapes.
    fn raw_string(&mut self) -> Result<(&'a [u8], bool), ScanError> {
        self.i += 1; // opening quote
        let start = self.i;
        let mut escaped = false;
        loop {
            match find_quote_or_backslash(&self.b[self.i..]) {
                None => return Err(ScanError(self.b.len())),
                Some(k) => {
                    self.i += k;
                    if self.b[self.i] == b'"' {
                        let raw = &self.b[start..self.i];
                        self.i += 1;
                        return Ok((raw, escaped));
                    }
                    escaped = true;
                    self.i += 2; // the backslash and the escaped byte
                }
            }
        }
    }

    fn string(&mut self) -> Result<Cow<'a, str>, ScanError> {
        let at = self.i;
        let (raw, escaped) = self.raw_string()?;
        if escaped {
            // Rare: let serde_json decode the escapes.
            let quoted = &self.b[at..self.i];
            serde_json::from_slice::<String>(quoted)
                .map(Cow::Owned)
                .map_err(|_| ScanError(at))
        } else {
            std::str::from_utf8(raw)
                .map(Cow::Borrowed)
                .map_err(|_| ScanError(at))
        }
    }

    fn scalar_end(&self) -> usize {
        let mut j = self.i;
        while j < self.b.len()
            && !matches!(self.b[j], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
        {
            j += 1;
        }
        j
    }

    /// A value at the cursor, for trie node `node`.
    fn value(
        &mut self,
        trie: &PathTrie,
        node: usize,
        trail: &mut Trail,
        out: &mut Vec<Found<'a>>,
    ) -> Result<(), ScanError> {
        self.ws();
        let n = &trie.nodes[node];
        match self.peek() {
            Some(b'{') => {
                if n.children.is_empty() {
                    return self.skip();
                }
                self.i += 1;
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(ScanError(self.i));
                    }
                    let key_at = self.i;
                    let (raw, escaped) = self.raw_string()?;
                    let child = if escaped {
                        let key: String = serde_json::from_slice(&self.b[key_at..self.i])
                            .map_err(|_| ScanError(key_at))?;
                        n.child(key.as_bytes())
                    } else {
                        n.child(raw)
                    };
                    self.expect(b':')?;
                    match child {
                        Some(c) => self.value(trie, c, trail, out)?,
                        None => self.skip()?,
                    }
                    if self.remaining == 0 {
                        return Ok(());
                    }
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(ScanError(self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let id = self.arrays;
                self.arrays += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(());
                }
                let mut idx = 0u32;
                loop {
                    trail.push((id, idx));
                    self.value(trie, node, trail, out)?;
                    trail.pop();
                    if self.remaining == 0 {
                        return Ok(());
                    }
                    idx += 1;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(ScanError(self.i)),
                    }
                }
            }
            Some(b'"') => {
                let Some(path_id) = n.path_id else {
                    self.raw_string()?;
                    return Ok(());
                };
                let s = self.string()?;
                self.found(path_id, Scalar::Str(s), trail, out);
                Ok(())
            }
            Some(_) => {
                let end = self.scalar_end();
                let text = &self.b[self.i..end];
                let at = self.i;
                self.i = end;
                let value = match text {
                    b"true" => Scalar::Bool(true),
                    b"false" => Scalar::Bool(false),
                    b"null" => Scalar::Null,
                    t => {
                        let t = std::str::from_utf8(t).map_err(|_| ScanError(at))?;
                        Scalar::Num(t.parse::<f64>().map_err(|_| ScanError(at))?)
                    }
                };
                if let Some(path_id) = n.path_id {
                    self.found(path_id, value, trail, out);
                }
                Ok(())
            }
            None => Err(ScanError(self.i)),
        }
    }

    fn found(&mut self, path_id: u32, value: Scalar<'a>, trail: &Trail, out: &mut Vec<Found<'a>>) {
        if trail.is_empty()
            && let Some(done) = self.complete.get_mut(path_id as usize)
            && !*done
        {
            *done = true;
            self.remaining -= 1;
        }
        out.push(Found {
            path_id,
            value,
            trail: trail.clone(),
        });
    }

    /// Skips one value without decoding it.
    fn skip(&mut self) -> Result<(), ScanError> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.raw_string().map(|_| ()),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                while self.i < self.b.len() {
                    match self.b[self.i] {
                        b'"' => {
                            self.raw_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                Err(ScanError(self.b.len()))
            }
            Some(_) => {
                self.i = self.scalar_end();
                Ok(())
            }
            None => Err(ScanError(self.i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_quotes_and_backslashes_at_every_offset() {
        for len in 0..150 {
            for at in 0..=len {
                let mut s = vec![b'a'; len];
                let want = if at < len {
                    s[at] = if at % 2 == 0 { b'"' } else { b'\\' };
                    Some(at)
                } else {
                    None
                };
                assert_eq!(find_quote_or_backslash(&s), want, "len {len} at {at}");
            }
        }
        // A byte above 0x80 next to a match must not be mistaken for one.
        assert_eq!(find_quote_or_backslash(b"\xa2\xdc\xff\"x"), Some(3));
    }

    #[test]
    fn extracts_only_wanted_leaves_with_trails() {
        let mut trie = PathTrie::new();
        trie.insert("source", 0);
        trie.insert("detail.items.kind", 1);
        trie.insert("detail.n", 2);
        let json = br#"{"id": "x", "source": "a\"b", "skip": {"deep": [1, {"x": "}"}]},
            "detail": {"n": -2.5e1, "items": [{"kind": "k1", "other": [true]}, {"kind": "k2"}], "z": null}}"#;
        let (mut out, mut complete) = (Vec::new(), Vec::new());
        trie.scan(json, &mut out, &mut complete).unwrap();
        let got: Vec<(u32, Scalar<'_>, usize)> = out
            .iter()
            .map(|f| (f.path_id, f.value.clone(), f.trail.len()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, Scalar::Str("a\"b".into()), 0),
                (2, Scalar::Num(-25.0), 0),
                (1, Scalar::Str("k1".into()), 1),
                (1, Scalar::Str("k2".into()), 1),
            ]
        );
        assert_ne!(out[2].trail, out[3].trail);
        // Every wanted path found outside arrays: the rest is not read, not even for balance.
        let mut flat = PathTrie::new();
        flat.insert("source", 0);
        flat.insert("detail.n", 1);
        let mut found = |json: &[u8]| {
            let mut got = Vec::new();
            flat.scan(json, &mut got, &mut complete).map(|()| got.len())
        };
        assert_eq!(
            found(br#"{"source": "s", "detail": {"n": 1, "x": [}"#),
            Ok(2)
        );
        // A path still missing (or found only inside an array) keeps the scan going to the end.
        assert!(found(br#"{"source": "s", "detail": {"m": 1, "x": [}"#).is_err());
        assert_eq!(
            found(br#"{"detail": [{"n": 1}, {"n": 2}], "source": "s"}"#),
            Ok(3)
        );
        assert!(trie.scan(b"[1]", &mut out, &mut complete).is_err());
        assert!(
            trie.scan(br#"{"source": "unterminated}"#, &mut out, &mut complete)
                .is_err()
        );
    }
}
