//! Column types, schemas and row values.

use serde::{Deserialize, Serialize};

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColumnType {
    /// true / false.
    Boolean,
    /// 32-bit signed integer.
    Int,
    /// 64-bit signed integer.
    BigInt,
    /// IEEE 754 double.
    Double,
    /// Days since 1970-01-01.
    Date,
    /// Microseconds since 1970-01-01 00:00:00.
    DateTime,
    /// UTF-8 string of at most `n` bytes.
    Varchar(u32),
}

impl ColumnType {
    /// The one-byte tag used in segment footers.
    pub fn tag(self) -> u8 {
        match self {
            ColumnType::Boolean => 1,
            ColumnType::Int => 2,
            ColumnType::BigInt => 3,
            ColumnType::Double => 4,
            ColumnType::Date => 5,
            ColumnType::DateTime => 6,
            ColumnType::Varchar(_) => 7,
        }
    }

    /// The SQL spelling, e.g. `VARCHAR(32)`.
    pub fn sql_name(self) -> String {
        match self {
            ColumnType::Boolean => "BOOLEAN".into(),
            ColumnType::Int => "INT".into(),
            ColumnType::BigInt => "BIGINT".into(),
            ColumnType::Double => "DOUBLE".into(),
            ColumnType::Date => "DATE".into(),
            ColumnType::DateTime => "DATETIME".into(),
            ColumnType::Varchar(n) => format!("VARCHAR({n})"),
        }
    }
}

/// One column of a schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Column type.
    pub ty: ColumnType,
    /// Part of the key.
    pub is_key: bool,
    /// Whether NULL is allowed.
    pub nullable: bool,
}

impl Column {
    /// A nullable non-key column.
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        Column {
            name: name.into(),
            ty,
            is_key: false,
            nullable: true,
        }
    }

    /// Marks the column as a key column.
    pub fn key(mut self) -> Self {
        self.is_key = true;
        self
    }
}

/// A tablet's schema. Its columns are shared: every tablet of a table holds
/// the same schema, so a clone is a pointer, not a copy per tablet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Schema {
    /// Columns in order.
    pub columns: std::sync::Arc<[Column]>,
}

impl Schema {
    /// A schema of these columns.
    pub fn new(columns: Vec<Column>) -> Self {
        Schema {
            columns: columns.into(),
        }
    }

    /// Makes `self` share `other`'s columns when the two are equal (a
    /// schema decoded from disk is a copy of its own until then).
    pub fn share_with(&mut self, other: &Schema) {
        if self == other && !std::sync::Arc::ptr_eq(&self.columns, &other.columns) {
            self.columns = std::sync::Arc::clone(&other.columns);
        }
    }

    /// A stable 32-bit hash of the schema, as the `schema_hash` of tablets.
    pub fn stable_hash(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        for c in self.columns.iter() {
            h.update(c.name.as_bytes());
            h.update(&[0, c.ty.tag(), u8::from(c.is_key), u8::from(c.nullable)]);
            if let ColumnType::Varchar(n) = c.ty {
                h.update(&n.to_le_bytes());
            }
        }
        h.finalize() & 0x7fff_ffff
    }

    /// Checks that `row` fits the schema, naming the first offending column.
    pub fn check_row(&self, row: &[Value]) -> Result<(), String> {
        if row.len() != self.columns.len() {
            return Err(format!(
                "row has {} values, schema has {} columns",
                row.len(),
                self.columns.len()
            ));
        }
        for (c, v) in self.columns.iter().zip(row) {
            let ok = match (c.ty, v) {
                (_, Value::Null) => c.nullable,
                (ColumnType::Boolean, Value::Boolean(_)) => true,
                (ColumnType::Int, Value::Int(_)) => true,
                (ColumnType::BigInt, Value::BigInt(_)) => true,
                (ColumnType::Double, Value::Double(_)) => true,
                (ColumnType::Date, Value::Date(_)) => true,
                (ColumnType::DateTime, Value::DateTime(_)) => true,
                (ColumnType::Varchar(n), Value::Varchar(s)) => {
                    if s.len() > n as usize {
                        return Err(format!(
                            "column {}: value of {} bytes exceeds VARCHAR({n})",
                            c.name,
                            s.len()
                        ));
                    }
                    true
                }
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "column {} ({}) cannot hold {:?}",
                    c.name,
                    c.ty.sql_name(),
                    v
                ));
            }
        }
        Ok(())
    }
}

/// One cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// BOOLEAN.
    Boolean(bool),
    /// INT.
    Int(i32),
    /// BIGINT.
    BigInt(i64),
    /// DOUBLE.
    Double(f64),
    /// DATE, days since the epoch.
    Date(i32),
    /// DATETIME, microseconds since the epoch.
    DateTime(i64),
    /// VARCHAR.
    Varchar(String),
}

/// A row: one value per schema column.
pub type Row = Vec<Value>;

impl Value {
    /// Feeds a canonical encoding of the value into `out` (used by checksums).
    pub fn encode_canonical(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.push(0),
            Value::Boolean(b) => out.extend_from_slice(&[1, u8::from(*b)]),
            Value::Int(v) => {
                out.push(2);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::BigInt(v) => {
                out.push(3);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Double(v) => {
                out.push(4);
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            Value::Date(v) => {
                out.push(5);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::DateTime(v) => {
                out.push(6);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Varchar(s) => {
                out.push(7);
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => write!(f, "NULL"),
            Value::Boolean(b) => write!(f, "{}", if *b { 1 } else { 0 }),
            Value::Int(v) => write!(f, "{v}"),
            Value::BigInt(v) => write!(f, "{v}"),
            Value::Double(v) => write!(f, "{v}"),
            Value::Date(d) => {
                let (y, m, d) = civil_from_days(i64::from(*d));
                write!(f, "{y:04}-{m:02}-{d:02}")
            }
            Value::DateTime(us) => {
                let secs = us.div_euclid(1_000_000);
                let days = secs.div_euclid(86_400);
                let rem = secs.rem_euclid(86_400);
                let (y, m, d) = civil_from_days(days);
                write!(
                    f,
                    "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
                    rem / 3600,
                    rem % 3600 / 60,
                    rem % 60
                )
            }
            Value::Varchar(s) => write!(f, "{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for z in [-800_000i64, -1, 0, 1, 19_000, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2026, 11, 26), 20_783);
        assert_eq!(Value::Date(20_783).to_string(), "2026-11-26");
        assert_eq!(
            Value::DateTime(20_783 * 86_400_000_000 + 3_723_000_000).to_string(),
            "2026-11-26 01:02:03"
        );
    }

    #[test]
    fn check_row_names_the_column() {
        let s = Schema::new(vec![
            Column::new("k", ColumnType::Int).key(),
            Column::new("v", ColumnType::Varchar(3)),
        ]);
        assert!(s
            .check_row(&[Value::Int(1), Value::Varchar("abc".into())])
            .is_ok());
        let e = s.check_row(&[Value::Int(1), Value::Varchar("abcd".into())]);
        assert!(e.err().unwrap_or_default().contains("column v"));
        let e = s.check_row(&[Value::BigInt(1), Value::Null]);
        assert!(e.err().unwrap_or_default().contains("column k"));
    }
}
