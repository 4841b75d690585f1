//! Seeded, deterministic generator of the "trips" CSV used by the benchmarks (bench/README.md).
//!
//! cargo run --release --example gen_trips -- --rows 1000000 --out bench/data/trips_1m.csv [--seed 42]
//!
//! Columns (header row first): id int (1..N), vendor (8 names), pickup_ts int (unix seconds,
//! non-decreasing), distance float 0-50 (skewed to short trips, ~55% above 10), fare float (~1%
//! zero, ~0.5% negative), tip float (empty in ~5% of rows), city (200 names), note free text of
//! 0-40 chars, ~1/4 of which contain a comma and are then quoted (RFC 4180; a few quoted notes
//! also contain a doubled `""` quote). Floats are written with exactly two decimals.
//!
//! The same seed and row count always give the same bytes. No dependencies on purpose: the
//! harness can build it with plain `rustc` even while the flow library itself does not compile.
//! Numbers are formatted by hand into one reusable buffer: no per-row allocation.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

/// splitmix64: tiny, fast, good enough for test data, and fully deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0), by multiply-shift (bias negligible for small n).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

const VENDORS: [&str; 8] = [
    "CMT", "VeriFone", "Curb", "Arro", "Flywheel", "Uber", "Lyft", "Via",
];

const CITY_HEADS: [&str; 20] = [
    "Ash", "Birch", "Cedar", "Clear", "Elm", "Fair", "Glen", "Green", "Hazel", "Kings", "Lake",
    "Maple", "Mill", "North", "Oak", "Pine", "Red", "Spring", "Stone", "West",
];
const CITY_TAILS: [&str; 10] = [
    "field", "ford", "haven", "ton", "wood", "dale", " Falls", " Harbor", "port", " Heights",
];

const WORDS: [&str; 32] = [
    "late", "pickup", "airport", "run", "cash", "card", "traffic", "detour", "rain", "night",
    "shift", "luggage", "quiet", "ride", "toll", "bridge", "fare", "dispute", "happy", "rider",
    "child", "seat", "pet", "on", "board", "long", "wait", "surge", "pool", "shared", "event",
    "downtown",
];

fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Writes cents/100 with exactly two decimals, e.g. -1234 -> "-12.34", 5 -> "0.05".
fn push_cents(buf: &mut Vec<u8>, cents: i64) {
    if cents < 0 {
        buf.push(b'-');
    }
    let c = cents.unsigned_abs();
    push_u64(buf, c / 100);
    let frac = (c % 100) as u8;
    buf.push(b'.');
    buf.push(b'0' + frac / 10);
    buf.push(b'0' + frac % 10);
}

struct Args {
    rows: u64,
    out: String,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut rows: Option<u64> = None;
    let mut out: Option<String> = None;
    let mut seed = 42u64;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--rows" => {
                let v = val("--rows")?;
                rows = Some(parse_count(&v).ok_or(format!("bad --rows value: {v}"))?);
            }
            "--out" => out = Some(val("--out")?),
            "--seed" => {
                let v = val("--seed")?;
                seed = v.parse().map_err(|_| format!("bad --seed value: {v}"))?;
            }
            "-h" | "--help" => {
                return Err(
                    "usage: gen_trips --rows N (e.g. 1000000, 1m, 10m) --out PATH [--seed S]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Args {
        rows: rows.ok_or("--rows is required")?,
        out: out.ok_or("--out is required")?,
        seed,
    })
}

/// Accepts "1000000", "1m", "10M", "500k".
fn parse_count(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1_000),
        'm' | 'M' => (&s[..s.len() - 1], 1_000_000),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gen_trips: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = generate(&args) {
        eprintln!("gen_trips: cannot write {}: {e}", args.out);
        std::process::exit(1);
    }
}

fn generate(args: &Args) -> std::io::Result<()> {
    let start = Instant::now();
    let cities: Vec<String> = CITY_HEADS
        .iter()
        .flat_map(|h| CITY_TAILS.iter().map(move |t| format!("{h}{t}")))
        .collect();
    debug_assert_eq!(cities.len(), 200);

    // Write to a temporary name and rename at the end: no half-written data file survives a kill.
    let tmp = format!("{}.tmp", args.out);
    let file = File::create(&tmp)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(b"id,vendor,pickup_ts,distance,fare,tip,city,note\n")?;

    let mut rng = Rng(args.seed);
    let mut row: Vec<u8> = Vec::with_capacity(256);
    let mut note: Vec<u8> = Vec::with_capacity(64);
    let mut ts: u64 = 1_704_067_200; // 2024-01-01T00:00:00Z
    let mut bytes: u64 = 0;

    for id in 1..=args.rows {
        row.clear();
        push_u64(&mut row, id);
        row.push(b',');
        row.extend_from_slice(VENDORS[rng.below(8) as usize].as_bytes());
        row.push(b',');
        ts += rng.below(7); // about 3 s between pickups: 10M rows span ~1 year
        push_u64(&mut row, ts);
        row.push(b',');

        // distance: 50 * u^2 -> many short trips, P(distance > 10) ~ 0.553
        let u = rng.unit();
        let distance_c = (5000.0 * u * u) as i64;
        push_cents(&mut row, distance_c);
        row.push(b',');

        // fare: base + per-mile + noise; ~1% zero, ~0.5% negative (refunds/corrections)
        let r = rng.below(1000);
        let fare_c: i64 = if r < 10 {
            0
        } else if r < 15 {
            -(250 + rng.below(5000) as i64)
        } else {
            250 + distance_c * 5 / 2 + rng.below(1500) as i64
        };
        push_cents(&mut row, fare_c);
        row.push(b',');

        // tip: empty in ~5% of rows; otherwise 0-35% of |fare|, a third of them above 20%
        if rng.below(100) >= 5 {
            let pct = rng.below(3501) as i64; // hundredths of a percent
            let tip_c = fare_c.abs() * pct / 10_000;
            push_cents(&mut row, tip_c);
        }
        row.push(b',');

        row.extend_from_slice(cities[rng.below(200) as usize].as_bytes());
        row.push(b',');

        // note: 0..=40 chars of words; ~1/4 get a comma and are then quoted
        let len = rng.below(41) as usize;
        note.clear();
        while note.len() < len {
            if !note.is_empty() {
                note.push(b' ');
            }
            note.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        }
        note.truncate(len);
        if len > 0 && rng.below(4) == 0 {
            let at = rng.below(len as u64) as usize;
            note[at] = b',';
            // a few quoted notes also carry a quote, doubled as RFC 4180 requires
            let quote_at = if len > 2 && rng.below(50) == 0 {
                Some(rng.below(len as u64) as usize)
            } else {
                None
            };
            row.push(b'"');
            for (i, &b) in note.iter().enumerate() {
                if Some(i) == quote_at && i != at {
                    row.extend_from_slice(b"\"\"");
                } else {
                    row.push(b);
                }
            }
            row.push(b'"');
        } else {
            row.extend_from_slice(&note);
        }
        row.push(b'\n');
        bytes += row.len() as u64;
        w.write_all(&row)?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, &args.out)?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "gen_trips: {} rows, {:.1} MB -> {} in {:.2} s (seed {})",
        args.rows,
        bytes as f64 / 1e6,
        args.out,
        secs,
        args.seed
    );
    Ok(())
}
