//! UTC calendar periods for daily and monthly limits, without a date library: days since the
//! epoch ↔ civil dates (Howard Hinnant's algorithms).

const DAY_MS: i64 = 86_400_000;

/// The day and month a moment falls in, as ledger keys, and when each ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Periods {
    pub day: String,
    pub month: String,
    pub day_end_ms: i64,
    pub month_end_ms: i64,
}

/// `(year, month, day)` of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn periods(now_ms: i64) -> Periods {
    let days = now_ms.div_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(days);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    Periods {
        day: day_period(y, m, d),
        month: month_period(y, m),
        day_end_ms: (days + 1) * DAY_MS,
        month_end_ms: days_from_civil(ny, nm, 1) * DAY_MS,
    }
}

pub fn day_period(y: i64, m: u32, d: u32) -> String {
    format!("d:{y:04}-{m:02}-{d:02}")
}

pub fn month_period(y: i64, m: u32) -> String {
    format!("m:{y:04}-{m:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_utc_calendar() {
        let p = periods(0);
        assert_eq!((p.day.as_str(), p.month.as_str()), ("d:1970-01-01", "m:1970-01"));
        assert_eq!(p.month_end_ms, 31 * DAY_MS);
        // 2024-02-29 12:00 UTC (a leap day).
        let t = days_from_civil(2024, 2, 29) * DAY_MS + DAY_MS / 2;
        let p = periods(t);
        assert_eq!((p.day.as_str(), p.month.as_str()), ("d:2024-02-29", "m:2024-02"));
        assert_eq!(p.month_end_ms, days_from_civil(2024, 3, 1) * DAY_MS);
        assert_eq!(civil_from_days(days_from_civil(2026, 12, 31)), (2026, 12, 31));
        assert_eq!(periods(days_from_civil(2026, 12, 5) * DAY_MS).month_end_ms, days_from_civil(2027, 1, 1) * DAY_MS);
    }
}
