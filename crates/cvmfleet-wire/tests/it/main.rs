//! The wire crate's own suite, through its public API only: what the client and the emulator
//! both rely on (issue 20 §5). Signing against the API reference's published example, the
//! response envelope both ways, name templates, and the flat parameter form.

mod envelope;
mod flat;
mod names;
mod sign;
