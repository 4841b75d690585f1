//! Seeded, deterministic generator of the H2O.ai db-benchmark group-by table (bench/README.md),
//! following the published generator (duckdblabs/db-benchmark `_data/groupby-datagen.R`).
//!
//! cargo run --release --example gen_h2o -- --rows 1m --out bench/data/h2o_1m.csv [--k 100] [--na 5] [--seed 42]
//!
//! Columns (header row first), N rows, K groups:
//! - id1, id2: strings `id%03d` with K values (1..K); id3: `id%010d` with N/K values;
//! - id4, id5: ints 1..K; id6: int 1..N/K;
//! - v1: int 1..5; v2: int 1..15; v3: float uniform in [0, 100] written with 6 decimals.
//!
//! With `--na P` each cell of every column is empty with probability P% (the R script empties
//! exactly P% of the rows of each column; here it is per cell, so about P%).
//! The same seed, rows, K and P always give the same bytes. No dependencies (like gen_trips).

use std::io::Write;

/// splitmix64 (as in gen_trips).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 1..=n (n > 0).
    pub fn pick(&mut self, n: u64) -> u64 {
        1 + (((self.next_u64() >> 32) * n) >> 32)
    }
}

/// Appends `v` in decimal, zero-padded to at least `width` digits.
fn push_u64(buf: &mut Vec<u8>, mut v: u64, width: usize) {
    let digits = v.checked_ilog10().unwrap_or(0) as usize + 1;
    let end = buf.len() + digits.max(width);
    buf.resize(end, b'0');
    let mut i = end;
    while v > 0 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Writes the table: `rows` rows, `k` groups, `na` percent empty cells, from `seed`.
pub fn generate(
    out: &mut impl Write,
    rows: u64,
    k: u64,
    na: u64,
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = Rng(seed);
    let nk = (rows / k).max(1);
    let mut buf = Vec::with_capacity(1 << 16);
    buf.extend_from_slice(b"id1,id2,id3,id4,id5,id6,v1,v2,v3\n");
    // Cells empty with probability na/100, decided from 32 bits.
    let na_below = (na.min(100) << 32) / 100;
    for _ in 0..rows {
        for col in 0..9 {
            if col > 0 {
                buf.push(b',');
            }
            // Draw the value first, so the non-empty values do not depend on `na`.
            let v = match col {
                0 | 1 | 3 | 4 => rng.pick(k),
                2 | 5 => rng.pick(nk),
                6 => rng.pick(5),
                7 => rng.pick(15),
                _ => rng.next_u64() % 100_000_001,
            };
            if na > 0 && (rng.next_u64() >> 32) < na_below {
                continue;
            }
            match col {
                0 | 1 => {
                    buf.extend_from_slice(b"id");
                    push_u64(&mut buf, v, 3);
                }
                2 => {
                    buf.extend_from_slice(b"id");
                    push_u64(&mut buf, v, 10);
                }
                8 => {
                    push_u64(&mut buf, v / 1_000_000, 1);
                    buf.push(b'.');
                    push_u64(&mut buf, v % 1_000_000, 6);
                }
                _ => push_u64(&mut buf, v, 1),
            }
        }
        buf.push(b'\n');
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)
}

/// `1m`, `10M`, `500k`, `1e7` or a plain number.
pub fn parse_count(s: &str) -> Option<u64> {
    let l = s.to_ascii_lowercase();
    if let Some((m, e)) = l.split_once('e') {
        return Some(m.parse::<u64>().ok()? * 10u64.checked_pow(e.parse().ok()?)?);
    }
    let (num, mul) = match l.as_bytes().last()? {
        b'k' => (&l[..l.len() - 1], 1_000),
        b'm' => (&l[..l.len() - 1], 1_000_000),
        _ => (&l[..], 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

#[allow(dead_code)]
fn main() {
    let mut rows = 1_000_000;
    let (mut k, mut na, mut seed) = (100, 0, 42);
    let mut out = String::from("bench/data/h2o.csv");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let fail = |m: String| -> ! {
        eprintln!(
            "gen_h2o: {m}\nusage: gen_h2o --rows N --out PATH [--k 100] [--na 0] [--seed 42]"
        );
        std::process::exit(2)
    };
    while i < args.len() {
        let val = args
            .get(i + 1)
            .cloned()
            .unwrap_or_else(|| fail(format!("{} needs a value", args[i])));
        let num = || {
            parse_count(&val).unwrap_or_else(|| fail(format!("bad number for {}: {val}", args[i])))
        };
        match args[i].as_str() {
            "--rows" => rows = num(),
            "--k" => k = num().max(1),
            "--na" => na = num(),
            "--seed" => seed = num(),
            "--out" => out = val.clone(),
            a => fail(format!("unknown argument {a}")),
        }
        i += 2;
    }
    if na > 100 {
        fail(format!("--na must be a percentage (0-100), got {na}"));
    }
    let t = std::time::Instant::now();
    let tmp = format!("{out}.tmp");
    let r = std::fs::File::create(&tmp).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        generate(&mut w, rows, k, na, seed)?;
        w.flush()?;
        std::fs::rename(&tmp, &out)
    });
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        fail(format!("cannot write {out}: {e}"));
    }
    eprintln!(
        "gen_h2o: {rows} rows (K={k}, {na}% NA) to {out} in {:.1?}",
        t.elapsed()
    );
}
