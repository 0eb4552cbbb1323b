//! The [`Masker`]: every form of a job's secret values that Gantry knows, replaced with `***`
//! in text it shows. The forms of a value:
//!
//! - the value, trimmed, with `+` for each space (form encoding), and each line of a
//!   multi-line value, trimmed;
//! - any percent-encoding of those: any subset of characters escaped, hex digits in either
//!   case (`urllib.parse.quote` leaves `/`, `encodeURIComponent` leaves `!'()*`, and so on);
//! - base64 of the value, standard and URL-safe alphabets, padded or not, alone or inside a
//!   longer encoded stream: at each of the three offsets a 3-byte group gives, the characters
//!   that depend on the value's bits alone (a GitHub Actions idea);
//! - each of these wrapped onto lines of any width (`base64` wraps at 76, PEM at 64).
//!
//! How: text is matched in a normal form, percent escapes decoded and line breaks left out,
//! against each form's needle in the same normal form; a match maps back to the span of the
//! original text it came from, and each line's part of that span becomes `***` (line breaks
//! stay, so a log keeps its lines). A form whose value holds `%` escapes of its own is also
//! matched as it is. Forms shorter than [`MIN_SECRET_LEN`] are not masked (they would hide
//! ordinary text). Out of reach: other encodings (hex, double percent-encoding, JSON or shell
//! escapes, compression), and a form cut by anything but a line break.
//!
//! A writer that masks a stream line by line must not write a line that may end where a form
//! begins that goes on in the next line: [`Masker::may_continue`] says which lines to hold back,
//! and [`Masker::mask_after`] masks what follows text already written.

use super::{MASK, MIN_SECRET_LEN};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use memchr::memmem::Finder;

/// Replaces every known form of some secret values with `***`. Built once per job; cheap to
/// clone and to apply to each piece of output.
#[derive(Clone, Default)]
pub struct Masker {
    /// Each form in normal form, distinct, longest first.
    needles: Vec<Finder<'static>>,
    /// Forms with `%` escapes of their own, as they are (matched against the text as it is,
    /// where normal form would decode them).
    literal: Vec<Finder<'static>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Masker({} forms)",
            self.needles.len() + self.literal.len()
        )
    }
}

impl Masker {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Masker {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        let mut literal: Vec<Vec<u8>> = Vec::new();
        for value in values {
            for form in forms(value) {
                if form.contains(&b'%') {
                    // Its own escapes are characters of the value: an encoding makes `%25` of
                    // each `%`, which normal form turns back into the form as it is.
                    let mut kept = form.clone();
                    kept.retain(|b| *b != b'\n' && *b != b'\r');
                    needles.push(kept);
                    literal.push(form.clone());
                }
                needles.push(normalise(&form, None));
            }
        }
        let finders = |mut v: Vec<Vec<u8>>| {
            v.retain(|n| n.len() >= MIN_SECRET_LEN);
            v.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
            v.dedup();
            v.iter()
                .map(|n| Finder::new(n).into_owned())
                .collect::<Vec<_>>()
        };
        Masker {
            needles: finders(needles),
            literal: finders(literal),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty() && self.literal.is_empty()
    }

    /// The longest form, in bytes of normal form (in the original text a form may take up to
    /// three times that, and its line breaks).
    pub fn longest(&self) -> usize {
        self.needles.first().map_or(0, |n| n.needle().len())
    }

    pub fn mask(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        match String::from_utf8(self.mask_bytes(text.as_bytes())) {
            Ok(s) => s,
            // Not reached: masks replace whole characters of valid text.
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// Masks bytes that may not be UTF-8 (process output): invalid sequences pass through.
    pub fn mask_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        self.mask_after(&[], bytes)
    }

    /// Masks `text`, which comes right after `before` (already written, masked): a form that
    /// began in `before` is masked where it goes on in `text`.
    pub fn mask_after(&self, before: &[u8], text: &[u8]) -> Vec<u8> {
        if self.is_empty() {
            return text.to_vec();
        }
        if before.is_empty() {
            return render(text, &self.spans(text));
        }
        let mut whole = Vec::with_capacity(before.len() + text.len());
        whole.extend_from_slice(before);
        whole.extend_from_slice(text);
        let spans: Vec<(usize, usize)> = self
            .spans(&whole)
            .into_iter()
            .filter(|&(_, end)| end > before.len())
            .map(|(start, end)| (start.max(before.len()) - before.len(), end - before.len()))
            .collect();
        render(text, &spans)
    }

    /// Whether `line` (a whole line) may end where a form begins that goes on in the next
    /// line: its end, in normal form, is the start of some form. A writer holds such a line
    /// back until it has the next one.
    pub fn may_continue(&self, line: &[u8]) -> bool {
        if self.needles.is_empty() {
            return false;
        }
        let hay = normalise(line, None);
        self.needles.iter().any(|n| {
            let n = n.needle();
            let from = hay.len().saturating_sub(n.len() - 1);
            (from..hay.len()).any(|at| n.starts_with(&hay[at..]))
        })
    }

    /// Where forms are in `text`: sorted spans of the original bytes, overlaps merged.
    fn spans(&self, text: &[u8]) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let special = memchr::memchr3(b'%', b'\n', b'\r', text).is_some();
        let mut from = Vec::new();
        let normal;
        let hay: &[u8] = if special {
            normal = normalise(text, Some(&mut from));
            &normal
        } else {
            text
        };
        // Where normal byte `i` came from in `text`, and where its source ends.
        let start = |i: usize| if special { from[i] } else { i };
        let end = |i: usize| start(i) + escape_len(text, start(i));
        for n in &self.needles {
            let len = n.needle().len();
            spans.extend(n.find_iter(hay).map(|at| (start(at), end(at + len - 1))));
        }
        for n in &self.literal {
            let len = n.needle().len();
            spans.extend(n.find_iter(text).map(|at| (at, at + len)));
        }
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s < last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }
}

/// The forms of one value that are masked, before normal form.
fn forms(value: &str) -> Vec<Vec<u8>> {
    let trimmed = value.trim();
    let mut texts = vec![value.to_string(), trimmed.to_string()];
    if value.contains(' ') {
        texts.push(value.replace(' ', "+"));
        texts.push(trimmed.replace(' ', "+"));
    }
    texts.extend(value.lines().map(|l| l.trim().to_string()));
    texts.retain(|t| t.chars().count() >= MIN_SECRET_LEN);
    let mut out: Vec<Vec<u8>> = texts.into_iter().map(String::into_bytes).collect();
    let mut plain = vec![value.as_bytes()];
    if trimmed != value {
        plain.push(trimmed.as_bytes());
    }
    for bytes in plain {
        for (padded, bare) in [(&STANDARD, &STANDARD_NO_PAD), (&URL_SAFE, &URL_SAFE_NO_PAD)] {
            out.push(padded.encode(bytes).into_bytes());
            out.extend(base64_cores(bare, bytes));
        }
    }
    out
}

/// The value's bytes inside a longer base64 stream, at each offset in a 3-byte group: the
/// characters whose 6 bits all come from the value (the first one to three, and the last,
/// also depend on their neighbours).
fn base64_cores(engine: &base64::engine::GeneralPurpose, value: &[u8]) -> Vec<Vec<u8>> {
    (0..3usize)
        .filter_map(|offset| {
            let mut bytes = vec![0u8; offset];
            bytes.extend_from_slice(value);
            let text = engine.encode(&bytes).into_bytes();
            let skip = [0, 2, 3][offset];
            let end = text.len() - usize::from(bytes.len() % 3 != 0);
            (skip < end).then(|| text[skip..end].to_vec())
        })
        .collect()
}

/// Whether a percent escape (`%` and two hex digits, either case) starts at `at`: 3, else 1.
fn escape_len(text: &[u8], at: usize) -> usize {
    match text.get(at..at + 3) {
        Some([b'%', h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => 3,
        _ => 1,
    }
}

fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// `text` in normal form: percent escapes decoded, line breaks left out. With `from`, where
/// each of its bytes starts in `text`.
fn normalise(text: &[u8], mut from: Option<&mut Vec<usize>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let next = memchr::memchr3(b'%', b'\n', b'\r', &text[at..]).map_or(text.len(), |i| at + i);
        out.extend_from_slice(&text[at..next]);
        if let Some(from) = from.as_deref_mut() {
            from.extend(at..next);
        }
        if next == text.len() {
            break;
        }
        match text[next] {
            b'\n' | b'\r' => at = next + 1,
            _ if escape_len(text, next) == 3 => {
                out.push(hex(text[next + 1]) << 4 | hex(text[next + 2]));
                if let Some(from) = from.as_deref_mut() {
                    from.push(next);
                }
                at = next + 3;
            }
            _ => {
                out.push(b'%');
                if let Some(from) = from.as_deref_mut() {
                    from.push(next);
                }
                at = next + 1;
            }
        }
    }
    out
}

/// `text` with each span replaced: each line's part of it by `***`, its line breaks kept.
fn render(text: &[u8], spans: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for &(start, end) in spans {
        out.extend_from_slice(&text[at..start]);
        let mut in_line = false;
        for &b in &text[start..end] {
            if b == b'\n' || b == b'\r' {
                out.push(b);
                in_line = false;
            } else if !in_line {
                out.extend_from_slice(MASK.as_bytes());
                in_line = true;
            }
        }
        at = end;
    }
    out.extend_from_slice(&text[at..]);
    out
}

#[cfg(test)]
mod tests;
