//! Pseudo-terminal helper for console end-to-end tests (filled in by the console tests).
