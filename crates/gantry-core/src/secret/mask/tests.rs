use super::*;
use proptest::prelude::*;

/// Every `%XX` (either case) decoded.
fn percent_decode(text: &str) -> Vec<u8> {
    normalise(text.as_bytes(), None)
}

/// `bytes` percent-encoded: the bytes `escape` picks escaped (with upper- or lower-case hex as
/// `upper` says), the others left as they are.
fn percent(
    bytes: &[u8],
    escape: impl Fn(usize, u8) -> bool,
    upper: impl Fn(usize) -> bool,
) -> String {
    let mut out = String::new();
    for (i, &b) in bytes.iter().enumerate() {
        // `%` itself is always escaped (left as it is, it would start an escape), and bytes
        // beyond ASCII (not characters of a URL).
        if escape(i, b) || b == b'%' || !b.is_ascii() {
            if upper(i) {
                out.push_str(&format!("%{b:02X}"));
            } else {
                out.push_str(&format!("%{b:02x}"));
            }
        } else {
            out.push(b as char);
        }
    }
    out
}

/// Python's `urllib.parse.quote(v)`: unreserved characters and `/` stay, the rest is escaped
/// with upper-case hex.
fn urllib_quote(v: &str) -> String {
    percent(
        v.as_bytes(),
        |_, b| !(b.is_ascii_alphanumeric() || b"-._~/".contains(&b)),
        |_| true,
    )
}

/// `text` cut into lines of `width` characters, as `base64` does at 76.
fn wrap(text: &str, width: usize, crlf: bool) -> String {
    let brk = if crlf { "\r\n" } else { "\n" };
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(width)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(brk)
}

/// Whether any run of base64 characters left in `masked` (line breaks left out) decodes, at
/// any alignment, to something holding `secret`.
fn base64_leaks(masked: &str, secret: &[u8]) -> bool {
    let joined: String = masked
        .chars()
        .filter(|c| *c != '\n' && *c != '\r')
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    joined
        .split(|c: char| !(c.is_ascii_alphanumeric() || "+/-_".contains(c)))
        .any(|run| {
            let run: String = run.replace('-', "+").replace('_', "/");
            (0..4.min(run.len())).any(|shift| {
                let r = &run[shift..];
                let r = &r[..r.len() / 4 * 4];
                engine
                    .decode(r)
                    .is_ok_and(|d| memchr::memmem::find(&d, secret).is_some())
            })
        })
}

#[test]
fn masks_every_form() {
    let m = Masker::new(["s3cr3t value/+?", "line-one\nline-two"]);
    let b64 = STANDARD.encode("s3cr3t value/+?");
    let url = "s3cr3t%20value%2F%2B%3F";
    let text = format!("plain=s3cr3t value/+? b64={b64} url={url} lines=line-one and line-two ok");
    let masked = m.mask(&text);
    assert_eq!(
        masked, "plain=*** b64=*** url=*** lines=*** and *** ok",
        "{masked}"
    );
    assert_eq!(m.mask_bytes(text.as_bytes()), masked.as_bytes());
    assert_eq!(m.mask("nothing here"), "nothing here");
    // The multi-line value whole: each line masked, the break kept.
    assert_eq!(m.mask("a line-one\nline-two b"), "a ***\n*** b");
}

#[test]
fn the_findings_percent_forms_python_quote_and_lower_case_hex() {
    let secret = "p@ss/w0rd:x?y&z";
    let m = Masker::new([secret]);
    // urllib.parse.quote leaves `/` as it is and escapes the rest.
    let quoted = urllib_quote(secret);
    assert_eq!(quoted, "p%40ss/w0rd%3Ax%3Fy%26z");
    assert_eq!(
        m.mask(&format!("GET /login?pw={quoted} 200")),
        "GET /login?pw=*** 200"
    );
    // Lower-case hex, and a mix of cases.
    let lower = quoted.to_lowercase();
    assert_eq!(lower, "p%40ss/w0rd%3ax%3fy%26z");
    assert_eq!(m.mask(&format!("u={lower}")), "u=***");
    assert_eq!(m.mask("u=p%40ss%2fw0rd%3Ax%3fy%26z"), "u=***");
    // Form encoding: `+` for a space.
    let m = Masker::new(["two words here"]);
    assert_eq!(m.mask("q=two+words+here&x=1"), "q=***&x=1");
}

#[test]
fn the_findings_base64_wrapped_at_76_inside_a_longer_stream() {
    let secret = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
    let m = Masker::new([secret]);
    for lead in ["", "x", "xy", "{\"auths\": {\"registry\": {\"auth\": \""] {
        // As `base64` prints a file holding it: wrapped at 76.
        let file = format!("{lead}{secret}\nmore data after it, long enough to wrap again\n");
        let wrapped = wrap(&STANDARD.encode(&file), 76, false);
        let masked = m.mask(&format!("$ base64 config\n{wrapped}\ndone\n"));
        assert!(masked.contains("***"), "{masked}");
        assert!(
            !base64_leaks(&masked, secret.as_bytes()),
            "{lead:?}: {masked}"
        );
        assert!(masked.starts_with("$ base64 config\n") && masked.ends_with("\ndone\n"));
        assert_eq!(
            masked.lines().count(),
            wrapped.lines().count() + 2,
            "lines kept"
        );
    }
}

#[test]
fn ordinary_text_is_left_alone() {
    let m = Masker::new(["hunter22", "s3cr3t-t0ken"]);
    for text in [
        "hunter2 is not the password",
        "Compiling gantry v0.1.0 (/work/crates/gantry)\n",
        "aHVudGVyMg== is the base64 of another value",
        "100% done, 50%2 left, %zz",
        "s3cr3t-t0k\n3n",
    ] {
        assert_eq!(m.mask(text), text);
    }
    // (A value cut by a line break is one of its forms: wrapped.)
    assert_eq!(m.mask("s3cr3t-t0ke\nn"), "***\n***");
    // A line that ends where no form begins is not held back; one that ends with the start
    // of a form (here the value's base64) is.
    assert!(!m.may_continue(b"Compiling gantry v0.1.0\n"));
    let b64 = STANDARD.encode("hunter22");
    assert!(m.may_continue(format!("data: {}\n", &b64[..5]).as_bytes()));
    assert!(!Masker::default().may_continue(b"anything\n"));
}

#[test]
fn a_form_that_began_in_what_was_written_is_masked_where_it_goes_on() {
    let m = Masker::new(["hunter22"]);
    assert_eq!(m.mask_after(b"pw: hunt", b"er22 ok\n"), b"*** ok\n");
    assert_eq!(m.mask_after(b"pw: hunter22", b" ok\n"), b" ok\n");
    assert_eq!(m.mask_after(b"pw: ", b"hunter22\n"), b"***\n");
}

/// A secret of 4 to 24 characters, not starting or ending with a space, without `*` (a value
/// made of stars cannot be told from its mask), some of them beyond ASCII.
fn secret() -> impl Strategy<Value = String> {
    "[!-)+-~é€😀][ -)+-~é€😀]{2,22}[!-)+-~é€😀]"
}

/// Text around a secret: anything but `%` (a stray `%` next to an escape makes another
/// escape: a writer who wants to hide a value can), `*` and line breaks.
fn around() -> impl Strategy<Value = String> {
    "[ -$&-)+-~é]{0,20}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn masked_text_never_contains_the_value(secret in secret(), before in around(), after in around()) {
        let m = Masker::new([secret.as_str()]);
        let out = m.mask(&format!("{before}{secret}{after}"));
        prop_assert!(!out.contains(&secret), "{}", out);
    }

    #[test]
    fn every_percent_encoding_is_masked(
        secret in secret(),
        escaped in prop::collection::vec(any::<bool>(), 100),
        upper in prop::collection::vec(any::<bool>(), 100),
        before in around(),
        after in around(),
    ) {
        let encoded = percent(secret.as_bytes(), |i, _| escaped[i], |i| upper[i]);
        let m = Masker::new([secret.as_str()]);
        let out = m.mask(&format!("{before}{encoded}{after}"));
        prop_assert!(!out.contains(&encoded), "{}", out);
        prop_assert!(
            memchr::memmem::find(&percent_decode(&out), secret.as_bytes()).is_none(),
            "{} decodes back to the value", out
        );
    }

    #[test]
    fn base64_at_any_offset_and_any_wrap_is_masked(
        secret in secret(),
        lead in prop::collection::vec(any::<u8>(), 0..8),
        trail in prop::collection::vec(any::<u8>(), 0..8),
        url_safe in any::<bool>(),
        padded in any::<bool>(),
        width in prop_oneof![Just(76usize), Just(64usize), 1..100usize],
        crlf in any::<bool>(),
    ) {
        let mut bytes = lead.clone();
        bytes.extend_from_slice(secret.as_bytes());
        bytes.extend_from_slice(&trail);
        let engine = match (url_safe, padded) {
            (false, true) => &STANDARD,
            (false, false) => &STANDARD_NO_PAD,
            (true, true) => &URL_SAFE,
            (true, false) => &URL_SAFE_NO_PAD,
        };
        let encoded = wrap(&engine.encode(&bytes), width, crlf);
        let m = Masker::new([secret.as_str()]);
        let out = m.mask(&format!("key: {encoded}\nend"));
        prop_assert!(!base64_leaks(&out, secret.as_bytes()), "{}", out);
        prop_assert_eq!(out.lines().count(), encoded.lines().count() + 1, "lines kept: {}", out);
    }
}
