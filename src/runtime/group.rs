//! Hash aggregation for `group`.
//!
//! Semantics (see `hir::AggFunc`): `count()` counts rows; `sum` adds non-null values (0 when
//! none; int overflow is a job error); `min`/`max` keep the smallest/largest non-null value
//! (floats by `float_min`/`float_max`, strings bytewise), null if there was none; `avg` is the
//! float mean of non-null values, null if there was none. Keys compare by value: nulls form one
//! group, floats compare by value with `-0.0 == 0.0` and all NaNs equal.
//!
//! Groups are emitted in the order their keys were first seen (so with one worker the output
//! order is deterministic); rows are routed between workers by a hash of the encoded key that is
//! the same in every process (`KeyHasher` is a fixed function).

use crate::batch::Batch;
use crate::check::hir::AggFunc;
use crate::stdlib::ops;
use crate::types::{RowType, Scalar, Value};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Where each key and aggregate argument is found in the rows given to `update`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroupLayout {
    pub keys: Vec<(usize, Scalar)>,
    /// Function, argument column and scalar (`None` for `count()`).
    pub aggs: Vec<(AggFunc, Option<(usize, Scalar)>)>,
}

#[derive(Clone, Debug)]
enum State {
    Count(i64),
    SumInt(i64),
    SumFloat(f64),
    Best(Option<Value>),
    Avg(f64, u64),
}

pub struct GroupTable {
    layout: GroupLayout,
    index: HashMap<Vec<u8>, usize, BuildHasherDefault<KeyHasher>>,
    /// One row per group: its key values (columns = keys).
    keys: Batch,
    key_types: RowType,
    states: Vec<State>,
    scratch: Vec<u8>,
}

/// Appends the canonical encoding of the key of `b[row]` to `out`.
pub fn encode_key(out: &mut Vec<u8>, b: &Batch, row: usize, keys: &[(usize, Scalar)]) {
    for &(c, s) in keys {
        if b.is_null(row, c) {
            out.push(0);
            continue;
        }
        out.push(1);
        match s {
            Scalar::Str => {
                let v = b.get_str_bytes(row, c);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
            Scalar::Float => {
                let x = b.get_float(row, c);
                let x = if x.is_nan() {
                    f64::NAN
                } else if x == 0.0 {
                    0.0
                } else {
                    x
                };
                out.extend_from_slice(&x.to_bits().to_le_bytes());
            }
            _ => out.extend_from_slice(&b.raw(row, c).to_le_bytes()),
        }
    }
}

pub fn route(key: &[u8], peers: usize) -> u64 {
    let mut h = KeyHasher::default();
    h.write(key);
    // The high bits are the best mixed.
    (h.finish() >> 32) % peers.max(1) as u64
}

/// A fast, fixed (so the same in every process) hash of encoded keys: 8 bytes at a time,
/// multiply-rotate (FxHash-like) with a final avalanche. Not DoS-resistant; keys come from the
/// job's own data.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl KeyHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut c = bytes.chunks_exact(8);
        for w in &mut c {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            self.add(u64::from_le_bytes(a));
        }
        let r = c.remainder();
        if !r.is_empty() {
            let mut a = [0u8; 8];
            a[..r.len()].copy_from_slice(r);
            self.add(u64::from_le_bytes(a) ^ ((r.len() as u64) << 59));
        }
    }
    #[inline]
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
}

impl GroupTable {
    pub fn new(layout: GroupLayout, key_types: RowType) -> GroupTable {
        GroupTable {
            keys: Batch::new(layout.keys.len()),
            layout,
            index: HashMap::default(),
            key_types,
            states: Vec::new(),
            scratch: Vec::new(),
        }
    }

    pub fn groups(&self) -> usize {
        self.keys.rows
    }

    fn init(&self) -> impl Iterator<Item = State> + '_ {
        self.layout.aggs.iter().map(|(f, arg)| match (f, arg) {
            (AggFunc::Count, _) => State::Count(0),
            (AggFunc::Sum, Some((_, Scalar::Float))) => State::SumFloat(0.0),
            (AggFunc::Sum, _) => State::SumInt(0),
            (AggFunc::Min | AggFunc::Max, _) => State::Best(None),
            (AggFunc::Avg, _) => State::Avg(0.0, 0),
        })
    }

    /// Adds the rows of `b`. Errors: int sum overflow (a job error), naming the aggregate.
    pub fn update(&mut self, b: &Batch) -> Result<(), String> {
        let n = self.layout.aggs.len();
        for row in 0..b.rows {
            self.scratch.clear();
            encode_key(&mut self.scratch, b, row, &self.layout.keys);
            let g = match self.index.get(&self.scratch) {
                Some(&g) => g,
                None => {
                    let g = self.keys.push_row();
                    for (i, &(c, s)) in self.layout.keys.iter().enumerate() {
                        let v = b.get_value(row, c, s);
                        self.keys.set_value(g, i, &v);
                    }
                    self.index.insert(self.scratch.clone(), g);
                    let init: Vec<State> = self.init().collect();
                    self.states.extend(init);
                    g
                }
            };
            for (a, (func, arg)) in self.layout.aggs.iter().enumerate() {
                let st = &mut self.states[g * n + a];
                if let State::Count(c) = st {
                    *c += 1;
                    continue;
                }
                let Some((col, scalar)) = *arg else { continue };
                if b.is_null(row, col) {
                    continue;
                }
                match st {
                    State::SumInt(s) => {
                        *s = s.checked_add(b.get_int(row, col)).ok_or_else(|| {
                            format!("integer overflow in sum (aggregate {})", a + 1)
                        })?;
                    }
                    State::SumFloat(s) => *s += b.get_float(row, col),
                    State::Avg(s, k) => {
                        *s += match scalar {
                            Scalar::Float => b.get_float(row, col),
                            _ => b.get_int(row, col) as f64,
                        };
                        *k += 1;
                    }
                    State::Best(best) => {
                        let v = b.get_value(row, col, scalar);
                        let replace = match best {
                            None => true,
                            Some(cur) => better(*func, &v, cur),
                        };
                        if replace {
                            *best = Some(v);
                        }
                    }
                    State::Count(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Columns of a partial-state row (`emit_partial` / `merge`): the keys, then per aggregate
    /// its state: count, sum → one column; min/max → the value (null if none); avg → float sum
    /// and int count.
    pub fn partial_columns(&self) -> usize {
        self.layout.keys.len()
            + self
                .layout
                .aggs
                .iter()
                .map(|(f, _)| if *f == AggFunc::Avg { 2 } else { 1 })
                .sum::<usize>()
    }

    /// The encoded key of group `g` (for routing partial states; any worker gives the same
    /// bytes for the same key).
    pub fn group_key(&self, g: usize, out: &mut Vec<u8>) {
        let cols: Vec<(usize, Scalar)> = self
            .layout
            .keys
            .iter()
            .enumerate()
            .map(|(i, &(_, s))| (i, s))
            .collect();
        encode_key(out, &self.keys, g, &cols);
    }

    /// Appends group `g`'s key and aggregate states to `out` as one partial-state row.
    pub fn emit_partial(&self, g: usize, out: &mut Batch) {
        let n = self.layout.aggs.len();
        let k = self.layout.keys.len();
        let r = out.push_row();
        for (i, f) in self.key_types.fields.iter().enumerate() {
            let v = self.keys.get_value(g, i, f.ty.scalar);
            out.set_value(r, i, &v);
        }
        let mut c = k;
        for a in 0..n {
            match &self.states[g * n + a] {
                State::Count(x) | State::SumInt(x) => out.set_int(r, c, *x),
                State::SumFloat(x) => out.set_float(r, c, *x),
                State::Best(b) => out.set_value(r, c, b.as_ref().unwrap_or(&Value::Null)),
                State::Avg(sum, cnt) => {
                    out.set_float(r, c, *sum);
                    c += 1;
                    out.set_int(r, c, *cnt as i64);
                }
            }
            c += 1;
        }
    }

    /// Merges partial-state rows (from `emit_partial` of other tables with the same layout).
    pub fn merge(&mut self, b: &Batch) -> Result<(), String> {
        let n = self.layout.aggs.len();
        let k = self.layout.keys.len();
        let key_cols: Vec<(usize, Scalar)> = self
            .layout
            .keys
            .iter()
            .enumerate()
            .map(|(i, &(_, s))| (i, s))
            .collect();
        for row in 0..b.rows {
            self.scratch.clear();
            encode_key(&mut self.scratch, b, row, &key_cols);
            let g = match self.index.get(&self.scratch) {
                Some(&g) => g,
                None => {
                    let g = self.keys.push_row();
                    for (i, &(c, s)) in key_cols.iter().enumerate() {
                        let v = b.get_value(row, c, s);
                        self.keys.set_value(g, i, &v);
                    }
                    self.index.insert(self.scratch.clone(), g);
                    let init: Vec<State> = self.init().collect();
                    self.states.extend(init);
                    g
                }
            };
            let mut c = k;
            for (a, (func, arg)) in self.layout.aggs.iter().enumerate() {
                let st = &mut self.states[g * n + a];
                match st {
                    State::Count(x) => *x += b.get_int(row, c),
                    State::SumInt(x) => {
                        *x = x.checked_add(b.get_int(row, c)).ok_or_else(|| {
                            format!("integer overflow in sum (aggregate {})", a + 1)
                        })?;
                    }
                    State::SumFloat(x) => *x += b.get_float(row, c),
                    State::Avg(sum, cnt) => {
                        *sum += b.get_float(row, c);
                        c += 1;
                        *cnt += b.get_int(row, c) as u64;
                    }
                    State::Best(best) => {
                        if !b.is_null(row, c) {
                            let scalar = arg.map(|(_, s)| s).unwrap_or(Scalar::Null);
                            let v = b.get_value(row, c, scalar);
                            let replace = match best {
                                None => true,
                                Some(cur) => better(*func, &v, cur),
                            };
                            if replace {
                                *best = Some(v);
                            }
                        }
                    }
                }
                c += 1;
            }
        }
        Ok(())
    }

    /// Writes groups `from..` into `out` (layout: keys then aggregates), at most `max` rows;
    /// returns the next group index.
    pub fn emit(&self, from: usize, max: usize, out: &mut Batch) -> usize {
        let n = self.layout.aggs.len();
        let k = self.layout.keys.len();
        let end = (from + max).min(self.keys.rows);
        for g in from..end {
            let r = out.push_row();
            for (i, f) in self.key_types.fields.iter().enumerate() {
                let v = self.keys.get_value(g, i, f.ty.scalar);
                out.set_value(r, i, &v);
            }
            for a in 0..n {
                let v = match &self.states[g * n + a] {
                    State::Count(c) => Value::Int(*c),
                    State::SumInt(s) => Value::Int(*s),
                    State::SumFloat(s) => Value::Float(*s),
                    State::Best(b) => b.clone().unwrap_or(Value::Null),
                    State::Avg(s, c) => {
                        if *c == 0 {
                            Value::Null
                        } else {
                            Value::Float(*s / *c as f64)
                        }
                    }
                };
                out.set_value(r, k + a, &v);
            }
        }
        end
    }
}

/// Whether `v` should replace `cur` for `min` / `max`.
fn better(func: AggFunc, v: &Value, cur: &Value) -> bool {
    use std::cmp::Ordering::*;
    let ord = match (v, cur) {
        (Value::Int(a), Value::Int(b)) | (Value::Timestamp(a), Value::Timestamp(b)) => a.cmp(b),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Str(a), Value::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
        (Value::Float(a), Value::Float(b)) => {
            let pick = if func == AggFunc::Min {
                ops::float_min(*a, *b)
            } else {
                ops::float_max(*a, *b)
            };
            return pick.to_bits() == a.to_bits() && a.to_bits() != b.to_bits();
        }
        _ => Equal,
    };
    match func {
        AggFunc::Min => ord == Less,
        _ => ord == Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Field, Type};

    #[test]
    fn partial_states_merge_to_the_same_result() {
        let t = RowType::new(vec![
            Field {
                name: "k".into(),
                ty: Type::STR,
            },
            Field {
                name: "v".into(),
                ty: Type::nullable(Scalar::Int),
            },
            Field {
                name: "x".into(),
                ty: Type::FLOAT,
            },
        ]);
        let rows: Vec<Vec<Value>> = (0..200)
            .map(|i| {
                vec![
                    Value::Str(format!("k{}", i % 7)),
                    if i % 5 == 0 {
                        Value::Null
                    } else {
                        Value::Int(i * 3 - 100)
                    },
                    Value::Float(i as f64 / 4.0),
                ]
            })
            .collect();
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Str)],
            aggs: vec![
                (AggFunc::Count, None),
                (AggFunc::Sum, Some((1, Scalar::Int))),
                (AggFunc::Min, Some((1, Scalar::Int))),
                (AggFunc::Max, Some((2, Scalar::Float))),
                (AggFunc::Avg, Some((1, Scalar::Int))),
                (AggFunc::Sum, Some((2, Scalar::Float))),
            ],
        };
        let kt = RowType::new(vec![t.fields[0].clone()]);
        let mut whole = GroupTable::new(layout.clone(), kt.clone());
        whole.update(&Batch::from_values(&t, &rows)).unwrap();
        let mut fin = GroupTable::new(layout.clone(), kt.clone());
        for part in rows.chunks(37) {
            let mut pre = GroupTable::new(layout.clone(), kt.clone());
            pre.update(&Batch::from_values(&t, part)).unwrap();
            let mut b = Batch::new(pre.partial_columns());
            for g in 0..pre.groups() {
                pre.emit_partial(g, &mut b);
            }
            fin.merge(&b).unwrap();
        }
        let (mut x, mut y) = (Batch::new(7), Batch::new(7));
        whole.emit(0, 100, &mut x);
        fin.emit(0, 100, &mut y);
        assert_eq!(x.words, y.words);
        assert_eq!(x.arena, y.arena);
    }

    #[test]
    fn aggregates_follow_the_documented_semantics() {
        let t = RowType::new(vec![
            Field {
                name: "k".into(),
                ty: Type::STR,
            },
            Field {
                name: "v".into(),
                ty: Type::nullable(Scalar::Int),
            },
        ]);
        let rows = vec![
            vec![Value::Str("a".into()), Value::Int(3)],
            vec![Value::Str("b".into()), Value::Null],
            vec![Value::Str("a".into()), Value::Int(-1)],
        ];
        let b = Batch::from_values(&t, &rows);
        let layout = GroupLayout {
            keys: vec![(0, Scalar::Str)],
            aggs: vec![
                (AggFunc::Count, None),
                (AggFunc::Sum, Some((1, Scalar::Int))),
                (AggFunc::Min, Some((1, Scalar::Int))),
                (AggFunc::Avg, Some((1, Scalar::Int))),
            ],
        };
        let mut g = GroupTable::new(layout, RowType::new(vec![t.fields[0].clone()]));
        g.update(&b).unwrap();
        let mut out = Batch::new(5);
        assert_eq!(g.emit(0, 10, &mut out), 2);
        let ot = RowType::new(vec![
            t.fields[0].clone(),
            Field {
                name: "n".into(),
                ty: Type::INT,
            },
            Field {
                name: "s".into(),
                ty: Type::INT,
            },
            Field {
                name: "m".into(),
                ty: Type::nullable(Scalar::Int),
            },
            Field {
                name: "a".into(),
                ty: Type::nullable(Scalar::Float),
            },
        ]);
        assert_eq!(
            out.to_values(&ot),
            vec![
                vec![
                    Value::Str("a".into()),
                    Value::Int(2),
                    Value::Int(2),
                    Value::Int(-1),
                    Value::Float(1.0)
                ],
                vec![
                    Value::Str("b".into()),
                    Value::Int(1),
                    Value::Int(0),
                    Value::Null,
                    Value::Null
                ],
            ]
        );
        let over = Batch::from_values(
            &t,
            &[
                vec![Value::Str("z".into()), Value::Int(i64::MAX)],
                vec![Value::Str("z".into()), Value::Int(1)],
            ],
        );
        assert!(g.update(&over).is_err());
    }
}
