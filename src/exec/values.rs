//! Literals to values, row routing (partition and bucket), and synthetic rows.

use anyhow::{bail, Result};
use tabletsnap_engine::schema::days_from_civil;
use tabletsnap_engine::{ColumnType, Row, Schema, Value};

use crate::catalog::Table;
use crate::sql::ast::Literal;

fn parse_date(s: &str) -> Option<i32> {
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.trim().parse().ok()?;
    let m: u32 = it.next()?.trim().parse().ok()?;
    let d: u32 = it.next()?.trim().parse().ok()?;
    if !(0..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn parse_datetime(s: &str) -> Option<i64> {
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, t),
        None => (s, "00:00:00"),
    };
    let days = i64::from(parse_date(date)?);
    let mut parts = time.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let mi: i64 = parts.next().unwrap_or("0").parse().ok()?;
    let sec: f64 = parts.next().unwrap_or("0").parse().ok()?;
    if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0.0..61.0).contains(&sec) {
        return None;
    }
    Some((days * 86_400 + h * 3600 + mi * 60) * 1_000_000 + (sec * 1e6).round() as i64)
}

/// Converts a literal for a column of type `ty`, naming the column on error.
pub fn literal_to_value(lit: &Literal, ty: ColumnType, column: &str) -> Result<Value> {
    let bad = || {
        let shown = match lit {
            Literal::String(s) => format!("'{s}'"),
            Literal::Int(i) => i.to_string(),
            Literal::Float(f) => f.to_string(),
            Literal::Bool(b) => b.to_string(),
            Literal::Null => "NULL".into(),
        };
        let why = match ty {
            ColumnType::Date => " (not a valid date: use YYYY-MM-DD with a real month and day)",
            ColumnType::DateTime => {
                " (not a valid datetime: use YYYY-MM-DD HH:MM:SS with a real date and time)"
            }
            _ => "",
        };
        anyhow::anyhow!(
            "column {column} ({}) cannot hold the value {shown}{why}",
            ty.sql_name()
        )
    };
    Ok(match (ty, lit) {
        (_, Literal::Null) => Value::Null,
        (ColumnType::Boolean, Literal::Bool(b)) => Value::Boolean(*b),
        (ColumnType::Boolean, Literal::Int(i)) if *i == 0 || *i == 1 => Value::Boolean(*i == 1),
        (ColumnType::Int, Literal::Int(i)) => Value::Int(i32::try_from(*i).map_err(|_| bad())?),
        (ColumnType::Int, Literal::String(s)) => Value::Int(s.trim().parse().map_err(|_| bad())?),
        (ColumnType::BigInt, Literal::Int(i)) => Value::BigInt(*i),
        (ColumnType::BigInt, Literal::String(s)) => {
            Value::BigInt(s.trim().parse().map_err(|_| bad())?)
        }
        (ColumnType::Double, Literal::Int(i)) => Value::Double(*i as f64),
        (ColumnType::Double, Literal::Float(f)) => Value::Double(*f),
        (ColumnType::Double, Literal::String(s)) => {
            Value::Double(s.trim().parse().map_err(|_| bad())?)
        }
        (ColumnType::Date, Literal::String(s)) => Value::Date(parse_date(s).ok_or_else(bad)?),
        (ColumnType::DateTime, Literal::String(s)) => {
            Value::DateTime(parse_datetime(s).ok_or_else(bad)?)
        }
        (ColumnType::Varchar(n), Literal::String(s)) => {
            if s.len() > n as usize {
                bail!(
                    "column {column}: value of {} bytes exceeds VARCHAR({n})",
                    s.len()
                );
            }
            Value::Varchar(s.clone())
        }
        (ColumnType::Varchar(_), Literal::Int(i)) => Value::Varchar(i.to_string()),
        _ => return Err(bad()),
    })
}

/// The bucket of a row: a hash of the distribution columns modulo the bucket count.
pub fn bucket_of(table: &Table, row: &Row, dist_idx: &[usize]) -> usize {
    let mut buf = Vec::new();
    for i in dist_idx {
        row[*i].encode_canonical(&mut buf);
    }
    let h = tabletsnap_engine::hash::splitmix64(u64::from(crc32fast::hash(&buf)));
    (h % u64::from(table.buckets.max(1))) as usize
}

/// Indices of the distribution columns.
pub fn dist_indices(table: &Table) -> Result<Vec<usize>> {
    table
        .distribution
        .iter()
        .map(|d| {
            table
                .schema
                .columns
                .iter()
                .position(|c| &c.name == d)
                .ok_or_else(|| {
                    anyhow::anyhow!("distribution column {d} is not in table {}", table.name)
                })
        })
        .collect()
}

fn span(ty: ColumnType) -> i64 {
    match ty {
        ColumnType::DateTime => 86_400_000_000 * 30,
        ColumnType::Date => 365,
        _ => 1_000_000,
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int(x) | Value::Date(x) => Some(i64::from(*x)),
        Value::BigInt(x) | Value::DateTime(x) => Some(*x),
        _ => None,
    }
}

fn from_i64(ty: ColumnType, x: i64) -> Value {
    match ty {
        ColumnType::Int => Value::Int(x.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32),
        ColumnType::Date => Value::Date(x.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32),
        ColumnType::DateTime => Value::DateTime(x),
        _ => Value::BigInt(x),
    }
}

/// A value inside `[lower, upper)` picked by `r`.
pub fn value_in_range(
    ty: ColumnType,
    lower: Option<&Value>,
    upper: Option<&Value>,
    r: u64,
) -> Value {
    let (lo, hi) = match (lower.and_then(as_i64), upper.and_then(as_i64)) {
        (Some(l), Some(u)) => (l, u),
        (Some(l), None) => (l, l.saturating_add(span(ty))),
        (None, Some(u)) => (u.saturating_sub(span(ty)), u),
        (None, None) => (0, span(ty)),
    };
    let width = (hi - lo).max(1) as u64;
    from_i64(ty, lo + (r % width) as i64)
}

/// `n` deterministic rows for `table`, spread round-robin over `partitions`
/// (indices), with the partition column inside each partition's range.
pub fn generate(table: &Table, partitions: &[usize], n: usize, seed: u64) -> Vec<(usize, Row)> {
    let schema: &Schema = &table.schema;
    let rows = tabletsnap_engine::workload::generate_rows(schema, seed, table.id, n);
    let pcol = table.partition_column_index();
    let mut rng = tabletsnap_engine::workload::Rng::new(seed ^ 0x5eed);
    rows.into_iter()
        .enumerate()
        .map(|(i, mut row)| {
            let p = partitions[i % partitions.len()];
            if let Some(ci) = pcol {
                let ty = schema.columns[ci].ty;
                row[ci] = value_in_range(
                    ty,
                    table.lower_bound(p),
                    table.partitions[p].upper.as_ref(),
                    rng.next_u64(),
                );
            }
            (p, row)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_datetimes_parse() -> Result<()> {
        assert_eq!(
            literal_to_value(&Literal::String("2026-11-26".into()), ColumnType::Date, "d")?,
            Value::Date(20_783)
        );
        let v = literal_to_value(
            &Literal::String("2026-11-26 01:02:03".into()),
            ColumnType::DateTime,
            "t",
        )?;
        assert_eq!(v.to_string(), "2026-11-26 01:02:03");
        assert!(
            literal_to_value(&Literal::String("2026-13-01".into()), ColumnType::Date, "d").is_err()
        );
        let e = literal_to_value(&Literal::Int(1 << 40), ColumnType::Int, "k")
            .expect_err("overflow accepted");
        assert!(e.to_string().contains("column k"));
        Ok(())
    }

    #[test]
    fn range_values_stay_inside() {
        for r in 0..1000u64 {
            let v = value_in_range(
                ColumnType::Int,
                Some(&Value::Int(10)),
                Some(&Value::Int(20)),
                r * 7919,
            );
            assert!(matches!(v, Value::Int(x) if (10..20).contains(&x)));
        }
    }
}
