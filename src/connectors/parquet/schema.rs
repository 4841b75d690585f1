//! Parquet types ↔ flow types.
//!
//! Read (a top-level column of primitive type; nested groups and repeated fields are not read):
//!
//! | Parquet (physical / logical) | flow |
//! |---|---|
//! | BOOLEAN | `bool` |
//! | INT32, INT64 (plain or signed `Integer`; unsigned 8/16/32-bit) | `int` |
//! | FLOAT, DOUBLE | `float` |
//! | BYTE_ARRAY as `String`, `Enum` or `Json` (UTF8) | `str` |
//! | INT64 `Timestamp` (millis, micros, nanos; UTC-adjusted or not) | `timestamp` (µs; nanos floored) |
//! | INT32 `Date` | `timestamp` (midnight UTC) |
//!
//! Anything else (DECIMAL, UINT64, INT96, TIME, plain binary, FIXED_LEN_BYTE_ARRAY such as
//! UUID or FLOAT16, LIST, MAP, structs) is unsupported. `OPTIONAL` columns are nullable,
//! `REQUIRED` ones not.
//!
//! Written: `int` INT64, `float` DOUBLE, `bool` BOOLEAN, `str` BYTE_ARRAY `String`,
//! `timestamp` INT64 `Timestamp(UTC, MICROS)`; nullable columns `OPTIONAL`, others `REQUIRED`.

use crate::types::{Field, RowType, Scalar, Type};
use parquet::basic::{ConvertedType, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::schema::types::{ColumnDescriptor, SchemaDescriptor, Type as PqType, TypePtr};
use std::sync::Arc;

/// How a Parquet leaf column's values become a flow value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    I32,
    /// Unsigned 32-bit, stored as INT32 bits.
    U32,
    I64,
    F32,
    F64,
    Str,
    TsMillis,
    TsMicros,
    TsNanos,
    /// Days since the epoch.
    Date,
}

impl Kind {
    pub fn scalar(self) -> Scalar {
        match self {
            Kind::Bool => Scalar::Bool,
            Kind::I32 | Kind::U32 | Kind::I64 => Scalar::Int,
            Kind::F32 | Kind::F64 => Scalar::Float,
            Kind::Str => Scalar::Str,
            Kind::TsMillis | Kind::TsMicros | Kind::TsNanos | Kind::Date => Scalar::Timestamp,
        }
    }

    /// A timestamp-like value in its file unit → microseconds (saturating; floor for nanos).
    pub fn micros(self, v: i64) -> i64 {
        match self {
            Kind::TsMillis => v.saturating_mul(1000),
            Kind::TsNanos => v.div_euclid(1000),
            Kind::Date => v.saturating_mul(86_400_000_000),
            _ => v,
        }
    }
}

/// One top-level column of a Parquet file that flow can read.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    /// Its index among the file's leaf columns.
    pub leaf: usize,
    pub kind: Kind,
    pub nullable: bool,
}

/// A column flow cannot read: its name and a description of its Parquet type.
#[derive(Clone, Debug)]
pub struct Unsupported {
    pub name: String,
    pub what: String,
}

/// Every top-level column of the file, in file order: readable or not.
pub fn columns(schema: &SchemaDescriptor) -> Vec<Result<Column, Unsupported>> {
    let mut out: Vec<Result<Column, Unsupported>> = Vec::new();
    for (leaf, desc) in schema.columns().iter().enumerate() {
        let path = desc.path().parts();
        let top = path.first().cloned().unwrap_or_default();
        if path.len() > 1 {
            // A leaf inside a group: the top-level column is nested; report it once.
            if !matches!(out.last(), Some(Err(u)) if u.name == top) {
                out.push(Err(Unsupported {
                    name: top,
                    what: "a nested group (LIST, MAP or struct)".into(),
                }));
            }
            continue;
        }
        out.push(column(leaf, desc).map_err(|what| Unsupported { name: top, what }));
    }
    out
}

fn column(leaf: usize, desc: &ColumnDescriptor) -> Result<Column, String> {
    let info = desc.self_type().get_basic_info();
    let nullable = match info.repetition() {
        Repetition::REQUIRED => false,
        Repetition::OPTIONAL => true,
        Repetition::REPEATED => return Err("a repeated field".into()),
    };
    let kind = kind(desc)?;
    Ok(Column {
        name: desc.name().to_string(),
        leaf,
        kind,
        nullable,
    })
}

fn kind(desc: &ColumnDescriptor) -> Result<Kind, String> {
    let physical = desc.physical_type();
    let logical = desc.logical_type_ref();
    let converted = desc.converted_type();
    let unsupported = |what: &str| Err(format!("{physical} {what}"));
    match physical {
        Physical::BOOLEAN => Ok(Kind::Bool),
        Physical::INT32 => match (logical, converted) {
            (Some(LogicalType::Integer(t)), _) if t.is_signed || t.bit_width < 32 => Ok(Kind::I32),
            (Some(LogicalType::Integer(_)), _) => Ok(Kind::U32),
            (Some(LogicalType::Date), _) => Ok(Kind::Date),
            (Some(LogicalType::Decimal(d)), _) => {
                unsupported(&format!("DECIMAL({}, {})", d.precision, d.scale))
            }
            (Some(LogicalType::Time(_)), _) => unsupported("TIME"),
            (Some(l), _) => unsupported(&format!("{l:?}")),
            (None, ConvertedType::NONE | ConvertedType::INT_8)
            | (None, ConvertedType::INT_16 | ConvertedType::INT_32)
            | (None, ConvertedType::UINT_8 | ConvertedType::UINT_16) => Ok(Kind::I32),
            (None, ConvertedType::UINT_32) => Ok(Kind::U32),
            (None, ConvertedType::DATE) => Ok(Kind::Date),
            (None, c) => unsupported(&format!("{c}")),
        },
        Physical::INT64 => match (logical, converted) {
            (Some(LogicalType::Integer(t)), _) if t.is_signed => Ok(Kind::I64),
            (Some(LogicalType::Integer(_)), _) => unsupported("UINT64"),
            (Some(LogicalType::Timestamp(t)), _) => Ok(match t.unit {
                TimeUnit::MILLIS => Kind::TsMillis,
                TimeUnit::MICROS => Kind::TsMicros,
                TimeUnit::NANOS => Kind::TsNanos,
            }),
            (Some(LogicalType::Decimal(d)), _) => {
                unsupported(&format!("DECIMAL({}, {})", d.precision, d.scale))
            }
            (Some(LogicalType::Time(_)), _) => unsupported("TIME"),
            (Some(l), _) => unsupported(&format!("{l:?}")),
            (None, ConvertedType::NONE | ConvertedType::INT_64) => Ok(Kind::I64),
            (None, ConvertedType::TIMESTAMP_MILLIS) => Ok(Kind::TsMillis),
            (None, ConvertedType::TIMESTAMP_MICROS) => Ok(Kind::TsMicros),
            (None, c) => unsupported(&format!("{c}")),
        },
        Physical::FLOAT => Ok(Kind::F32),
        Physical::DOUBLE => Ok(Kind::F64),
        Physical::BYTE_ARRAY => match (logical, converted) {
            (Some(LogicalType::String | LogicalType::Enum | LogicalType::Json), _) => Ok(Kind::Str),
            (None, ConvertedType::UTF8 | ConvertedType::ENUM | ConvertedType::JSON) => {
                Ok(Kind::Str)
            }
            (None, ConvertedType::NONE) => unsupported("(binary, not UTF-8 text)"),
            (Some(l), _) => unsupported(&format!("{l:?}")),
            (None, c) => unsupported(&format!("{c}")),
        },
        Physical::INT96 => Err("INT96 (a legacy timestamp)".into()),
        Physical::FIXED_LEN_BYTE_ARRAY => match logical {
            Some(l) => unsupported(&format!("{l:?}")),
            None => unsupported(&format!("{converted}")),
        },
    }
}

/// The flow row type of a file: every column must be readable.
pub fn row_type(schema: &SchemaDescriptor) -> Result<RowType, Unsupported> {
    let mut fields = Vec::new();
    for c in columns(schema) {
        let c = c?;
        fields.push(Field {
            name: c.name,
            ty: Type {
                scalar: c.kind.scalar(),
                nullable: c.nullable,
            },
        });
    }
    Ok(RowType::new(fields))
}

/// The Parquet schema flow writes for `row`.
pub fn write_schema(row: &RowType) -> parquet::errors::Result<TypePtr> {
    let mut fields = Vec::with_capacity(row.len());
    for f in &row.fields {
        let (physical, logical) = match f.ty.scalar {
            Scalar::Int => (Physical::INT64, None),
            Scalar::Float => (Physical::DOUBLE, None),
            Scalar::Bool => (Physical::BOOLEAN, None),
            Scalar::Str | Scalar::Null => (Physical::BYTE_ARRAY, Some(LogicalType::String)),
            Scalar::Timestamp => (
                Physical::INT64,
                Some(LogicalType::timestamp(true, TimeUnit::MICROS)),
            ),
        };
        let repetition = if f.ty.nullable {
            Repetition::OPTIONAL
        } else {
            Repetition::REQUIRED
        };
        fields.push(Arc::new(
            PqType::primitive_type_builder(&f.name, physical)
                .with_repetition(repetition)
                .with_logical_type(logical)
                .build()?,
        ));
    }
    Ok(Arc::new(
        PqType::group_type_builder("schema")
            .with_fields(fields)
            .build()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::schema::parser::parse_message_type;

    /// A readable column as (name, kind, nullable); an unsupported one as (name, what).
    type Read = Result<(String, Kind, bool), (String, String)>;

    fn read(message: &str) -> Vec<Read> {
        let t = parse_message_type(message).expect("a valid message type");
        columns(&SchemaDescriptor::new(Arc::new(t)))
            .into_iter()
            .map(|c| match c {
                Ok(c) => Ok((c.name, c.kind, c.nullable)),
                Err(u) => Err((u.name, u.what)),
            })
            .collect()
    }

    #[test]
    fn readable_types_map_to_flow_types() {
        let got = read(
            "message m {
               required boolean b; optional int32 i (INTEGER(16, true)); optional int32 u (INTEGER(32, false));
               required int64 l; optional float f; required double d; optional binary s (STRING);
               optional binary e (ENUM); required int64 ts (TIMESTAMP(MILLIS, true));
               optional int64 tn (TIMESTAMP(NANOS, false)); optional int32 day (DATE);
             }",
        );
        let want = [
            ("b", Kind::Bool, false),
            ("i", Kind::I32, true),
            ("u", Kind::U32, true),
            ("l", Kind::I64, false),
            ("f", Kind::F32, true),
            ("d", Kind::F64, false),
            ("s", Kind::Str, true),
            ("e", Kind::Str, true),
            ("ts", Kind::TsMillis, false),
            ("tn", Kind::TsNanos, true),
            ("day", Kind::Date, true),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(n, k, null)| Ok((n.to_string(), *k, *null)))
            .collect();
        assert_eq!(got, want);
        assert_eq!(Kind::TsNanos.micros(-1), -1, "nanos are floored");
        assert_eq!(Kind::Date.micros(1), 86_400_000_000);
    }

    #[test]
    fn unsupported_types_are_named_with_their_column() {
        let got = read(
            "message m {
               optional int64 price (DECIMAL(18, 2)); optional int64 big (INTEGER(64, false));
               optional int96 legacy; optional binary blob; optional fixed_len_byte_array(16) id (UUID);
               optional group tags (LIST) { repeated group list { optional int64 element; } }
               repeated int32 old_list; optional int32 t (TIME(MILLIS, true));
             }",
        );
        let names: Vec<String> = got
            .iter()
            .map(|c| match c {
                Err((n, what)) => format!("{n}: {what}"),
                Ok(c) => format!("{} read as {:?}", c.0, c.1),
            })
            .collect();
        assert_eq!(
            names,
            [
                "price: INT64 DECIMAL(18, 2)",
                "big: INT64 UINT64",
                "legacy: INT96 (a legacy timestamp)",
                "blob: BYTE_ARRAY (binary, not UTF-8 text)",
                "id: FIXED_LEN_BYTE_ARRAY Uuid",
                "tags: a nested group (LIST, MAP or struct)",
                "old_list: a repeated field",
                "t: INT32 TIME",
            ]
        );
    }

    #[test]
    fn written_schema_reads_back_as_the_same_row_type() {
        let row = RowType::new(vec![
            Field {
                name: "a".into(),
                ty: Type::INT,
            },
            Field {
                name: "b".into(),
                ty: Type::nullable(Scalar::Float),
            },
            Field {
                name: "c".into(),
                ty: Type::BOOL,
            },
            Field {
                name: "d".into(),
                ty: Type::nullable(Scalar::Str),
            },
            Field {
                name: "e".into(),
                ty: Type::TIMESTAMP,
            },
        ]);
        let t = write_schema(&row).expect("a schema");
        let back = row_type(&SchemaDescriptor::new(t)).expect("readable");
        assert_eq!(back, row);
    }
}
