//! Fuzzes the spec parser on JSON (API bodies, `/webhook` orders, `gantry run x.json`): any
//! bytes must give a spec or a list of problems, never panic; a spec that parses must be one a
//! run can be made of (see `gantry_fuzz::exercise_spec`).
#![no_main]

use gantry_core::spec::{Format, Limits, parse_spec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_spec(data, Format::Json, "fuzz", &Limits::default()) {
        Ok(spec) => gantry_fuzz::exercise_spec(&spec, data),
        Err(problems) => {
            assert!(!problems.0.is_empty(), "rejected with no problem listed");
            let _ = problems.to_string();
        }
    }
});
