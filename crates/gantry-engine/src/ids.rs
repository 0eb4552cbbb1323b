//! Identifiers: run ids (ULIDs: sortable by creation time, readable in URLs) and trace ids
//! (W3C trace-context format, 32 lowercase hex digits).

/// A new run id, e.g. `01JD8X3QK4W5T6Y7Z8A9B0C1D2`.
pub fn new_run_id() -> String {
    // Monotonic within a millisecond, so ids made in one process sort in creation order
    // (oldest-first dispatch, newest-first lists) even when they share a timestamp.
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut g = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let g = g.get_or_insert_with(ulid::Generator::new);
    g.generate()
        .unwrap_or_else(|_| ulid::Ulid::generate())
        .to_string()
}

/// A new trace id, e.g. `4bf92f3577b34da6a3ce929d0e0e4736`.
pub fn new_trace_id() -> String {
    format!(
        "{:032x}",
        u128::from(ulid::Ulid::generate()) ^ (u128::from(ulid::Ulid::generate()) << 48)
    )
}

/// Whether `s` has the shape of a trace id a caller may pass in.
pub fn valid_trace_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && s.bytes().any(|b| b != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_shapes() {
        let a = new_run_id();
        assert_eq!(a.len(), 26);
        let t = new_trace_id();
        assert!(valid_trace_id(&t), "{t}");
        assert_ne!(new_trace_id(), t);
        assert!(!valid_trace_id("00000000000000000000000000000000"));
        assert!(!valid_trace_id("XYZ"));
    }
}
