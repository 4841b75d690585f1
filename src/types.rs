//! The type vocabulary shared by every stage after parsing: scalar types, nullability, row types
//! and literal values. It holds data only; no stage logic lives here.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A scalar column type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scalar {
    Int,
    Float,
    Bool,
    Str,
    /// Microseconds since the Unix epoch, UTC.
    Timestamp,
    /// The type of the literal `null` before it meets a context; never the type of a column.
    Null,
}

impl Scalar {
    pub fn name(self) -> &'static str {
        match self {
            Scalar::Int => "int",
            Scalar::Float => "float",
            Scalar::Bool => "bool",
            Scalar::Str => "str",
            Scalar::Timestamp => "timestamp",
            Scalar::Null => "null",
        }
    }

    pub fn from_name(name: &str) -> Option<Scalar> {
        Some(match name {
            "int" => Scalar::Int,
            "float" => Scalar::Float,
            "bool" => Scalar::Bool,
            "str" => Scalar::Str,
            "timestamp" => Scalar::Timestamp,
            _ => return None,
        })
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, Scalar::Int | Scalar::Float)
    }
}

/// A column or expression type: a scalar plus nullability (`T?`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Type {
    pub scalar: Scalar,
    pub nullable: bool,
}

impl Type {
    pub const INT: Type = Type::new(Scalar::Int);
    pub const FLOAT: Type = Type::new(Scalar::Float);
    pub const BOOL: Type = Type::new(Scalar::Bool);
    pub const STR: Type = Type::new(Scalar::Str);
    pub const TIMESTAMP: Type = Type::new(Scalar::Timestamp);
    pub const NULL: Type = Type {
        scalar: Scalar::Null,
        nullable: true,
    };

    pub const fn new(scalar: Scalar) -> Type {
        Type {
            scalar,
            nullable: false,
        }
    }
    pub const fn nullable(scalar: Scalar) -> Type {
        Type {
            scalar,
            nullable: true,
        }
    }
    pub fn with_nullable(self, nullable: bool) -> Type {
        Type {
            scalar: self.scalar,
            nullable,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scalar == Scalar::Null {
            return f.write_str("null");
        }
        f.write_str(self.scalar.name())?;
        if self.nullable {
            f.write_str("?")?;
        }
        Ok(())
    }
}

/// One named column of a row type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub ty: Type,
}

/// The type of the rows that flow along one edge: an ordered list of named columns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RowType {
    pub fields: Vec<Field>,
}

impl RowType {
    pub fn new(fields: Vec<Field>) -> RowType {
        RowType { fields }
    }
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
    pub fn len(&self) -> usize {
        self.fields.len()
    }
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl fmt::Display for RowType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{ ")?;
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}", field.name, field.ty)?;
        }
        f.write_str(" }")
    }
}

/// A constant value: literals in expressions and options, and values produced by evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Timestamp(i64),
}

impl Value {
    pub fn scalar(&self) -> Scalar {
        match self {
            Value::Null => Scalar::Null,
            Value::Int(_) => Scalar::Int,
            Value::Float(_) => Scalar::Float,
            Value::Bool(_) => Scalar::Bool,
            Value::Str(_) => Scalar::Str,
            Value::Timestamp(_) => Scalar::Timestamp,
        }
    }

    /// A stable textual key, used where values take part in hashing and equality of plan
    /// nodes (floats compare by bit pattern there).
    pub fn canonical(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Int(i) => format!("i{i}"),
            Value::Float(x) => format!("f{:016x}", x.to_bits()),
            Value::Bool(b) => format!("b{b}"),
            Value::Str(s) => format!("s{s:?}"),
            Value::Timestamp(t) => format!("t{t}"),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => {
                if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
                    write!(f, "{x:.1}")
                } else {
                    write!(f, "{x}")
                }
            }
            Value::Bool(b) => write!(f, "{b}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Timestamp(t) => write!(f, "timestamp({t})"),
        }
    }
}
