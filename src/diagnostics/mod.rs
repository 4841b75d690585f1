//! Diagnostics: the error-code registry and rendering (ariadne, JSON).
