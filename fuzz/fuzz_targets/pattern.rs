//! Fuzzes the event pattern parser and matcher: any bytes as a pattern must parse or be
//! rejected with a reason, never panic; a parsed pattern must match any event without panicking.
#![no_main]

use gantry_core::bus::Pattern;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first line is the pattern, the rest an event.
    let (pattern, event) = text.split_once('\n').unwrap_or((&text, "{}"));
    if let Ok(p) = Pattern::parse(pattern)
        && let Ok(ev) = serde_json::from_str::<serde_json::Value>(event)
    {
        let _ = p.matches_json(&ev);
    }
});
