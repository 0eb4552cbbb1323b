//! Links `gantry` as a position-dependent executable. A PIE of this size carries ~46k
//! relocations that the loader applies at every start, dirtying 1.3 MB of pages: `gantry run`
//! and every CLI call paid ~0.5 ms for it (483 page faults per start, 160 without). Go tools
//! ship the same way; shared libraries, stack and heap stay randomized. (`.cargo/config.toml`
//! also links it statically, with `relocation-model=static`; this holds where that file's
//! target does not apply.)
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
