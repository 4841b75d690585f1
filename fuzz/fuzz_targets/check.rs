//! Fuzz the front end (lexer, parser, checker): no input may make it panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = flow::driver::check_text("fuzz.flow", s);
    }
});
