//! EventBridge schedule expressions: `cron(minutes hours day-of-month month day-of-week year)`
//! with `*`, `?`, ranges, lists, steps, names, `L`, `W` and `#`, and `rate(N unit)`; and the
//! fire times they give. Cron fields are read in UTC unless a time zone (IANA name, as
//! EventBridge Scheduler takes it) is given; a local time that a DST change skips does not
//! fire, one it repeats fires once. One of day-of-month and day-of-week must be `?`, as in AWS.

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc, Weekday,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Cron(Box<Cron>),
    /// Every this many seconds, counted from when the schedule starts.
    Rate(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>, // 0..60
    hours: Vec<bool>,   // 0..24
    months: Vec<bool>,  // 1..=12 at index m
    years: Vec<bool>,   // 1970..=2199 at index y - 1970
    day: DayRule,
    tz: chrono_tz::Tz,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayRule {
    /// Day-of-month given (day-of-week is `?`).
    Month(DomRule),
    /// Day-of-week given (day-of-month is `?`).
    Week(DowRule),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DomRule {
    Days(Vec<bool>), // 1..=31 at index d
    Last,
    /// `LW`: the last weekday (Mon–Fri) of the month.
    LastWeekday,
    /// `15W`: the weekday nearest the 15th, within the month.
    NearestWeekday(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DowRule {
    Days(Vec<bool>), // 1..=7 (1 = Sunday) at index d
    /// `5L`: the last such weekday of the month.
    Last(u32),
    /// `3#2`: the second Tuesday.
    Nth(u32, u32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule expression: {0}")]
pub struct ScheduleError(pub String);

fn bad<T>(msg: impl Into<String>) -> Result<T, ScheduleError> {
    Err(ScheduleError(msg.into()))
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// Parses an expression whose cron fields are in `timezone` (an IANA name; UTC if `None`).
    pub fn parse_in(expr: &str, timezone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let tz: chrono_tz::Tz = match timezone {
            None => chrono_tz::UTC,
            Some(name) => name.parse().map_err(|_| {
                ScheduleError(format!(
                    "unknown time zone `{name}`; use an IANA name like Europe/Paris"
                ))
            })?,
        };
        let mut s = Schedule::parse(expr)?;
        if let Schedule::Cron(c) = &mut s {
            c.tz = tz;
        }
        Ok(s)
    }

    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        let expr = expr.trim();
        if let Some(body) = expr.strip_prefix("rate(").and_then(|b| b.strip_suffix(')')) {
            return rate(body);
        }
        if let Some(body) = expr.strip_prefix("cron(").and_then(|b| b.strip_suffix(')')) {
            return Ok(Schedule::Cron(Box::new(cron(body)?)));
        }
        bad(format!(
            "`{expr}`: expected cron(minutes hours day-of-month month day-of-week year) or rate(N unit)"
        ))
    }

    /// The first fire time strictly after `after`. A rate schedule counts from `start`.
    pub fn next_after(&self, after: DateTime<Utc>, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Rate(secs) => {
                if after < start {
                    return Some(start);
                }
                let n = (after - start).num_seconds() / secs + 1;
                Some(start + Duration::seconds(n * secs))
            }
            Schedule::Cron(c) => c.next_after(after),
        }
    }
}

fn rate(body: &str) -> Result<Schedule, ScheduleError> {
    let mut words = body.split_whitespace();
    let (Some(n), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return bad(format!(
            "`rate({body})`: expected rate(N minute|minutes|hour|hours|day|days)"
        ));
    };
    let n: i64 = match n.parse() {
        Ok(n) if n > 0 => n,
        _ => {
            return bad(format!(
                "`rate({body})`: the value must be a positive whole number"
            ));
        }
    };
    let secs = match unit {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        other => {
            return bad(format!(
                "`rate({body})`: unknown unit `{other}`; use minute(s), hour(s) or day(s)"
            ));
        }
    };
    let plural = unit.ends_with('s');
    if (n == 1) == plural {
        return bad(format!(
            "`rate({body})`: use the singular unit for 1 and the plural for more (rate(1 hour), rate(5 hours))"
        ));
    }
    Ok(Schedule::Rate(n * secs))
}

fn cron(body: &str) -> Result<Cron, ScheduleError> {
    let f: Vec<&str> = body.split_whitespace().collect();
    let [min, hour, dom, month, dow, year] = f[..] else {
        return bad(format!(
            "`cron({body})` has {} fields; it needs 6: minutes hours day-of-month month day-of-week year",
            f.len()
        ));
    };
    let day = match (dom, dow) {
        ("?", "?") => return bad("day-of-month and day-of-week cannot both be `?`"),
        ("?", dow) => DayRule::Week(dow_rule(dow)?),
        (dom, "?") => DayRule::Month(dom_rule(dom)?),
        _ => {
            return bad(
                "day-of-month and day-of-week cannot both be given: one of them must be `?`",
            );
        }
    };
    Ok(Cron {
        minutes: field(min, "minutes", 0, 59, &[])?,
        hours: field(hour, "hours", 0, 23, &[])?,
        months: field(month, "month", 1, 12, &MONTHS)?,
        years: field(year, "year", 1970, 2199, &[])?.split_off(1970),
        day,
        tz: chrono_tz::UTC,
    })
}

/// A list of `*`, `N`, `A-B`, `*/S`, `A/S`, `A-B/S` (names allowed when given) as a bitmap
/// indexed by value.
fn field(
    text: &str,
    name: &str,
    lo: u32,
    hi: u32,
    names: &[&str],
) -> Result<Vec<bool>, ScheduleError> {
    let mut set = vec![false; hi as usize + 1];
    let value = |s: &str| -> Result<u32, ScheduleError> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(lo + i as u32);
        }
        match s.parse::<u32>() {
            Ok(v) if (lo..=hi).contains(&v) => Ok(v),
            _ => bad(format!("{name}: `{s}` is not a value from {lo} to {hi}")),
        }
    };
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => match s.parse::<u32>() {
                Ok(s) if s > 0 => (r, s),
                _ => return bad(format!("{name}: bad step in `{part}`")),
            },
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let a = value(range)?;
            (a, if part.contains('/') { hi } else { a })
        };
        if a > b {
            return bad(format!("{name}: `{part}` runs backwards"));
        }
        let mut v = a;
        while v <= b {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

fn dom_rule(text: &str) -> Result<DomRule, ScheduleError> {
    match text {
        "L" => Ok(DomRule::Last),
        "LW" => Ok(DomRule::LastWeekday),
        t if t.ends_with('W') => match t[..t.len() - 1].parse::<u32>() {
            Ok(d) if (1..=31).contains(&d) => Ok(DomRule::NearestWeekday(d)),
            _ => bad(format!("day-of-month: `{t}` is not like 15W")),
        },
        t => Ok(DomRule::Days(field(t, "day-of-month", 1, 31, &[])?)),
    }
}

fn dow_rule(text: &str) -> Result<DowRule, ScheduleError> {
    let day = |s: &str| -> Result<u32, ScheduleError> {
        if let Some(i) = DAYS.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + 1);
        }
        match s.parse::<u32>() {
            Ok(v) if (1..=7).contains(&v) => Ok(v),
            _ => bad(format!("day-of-week: `{s}` is not 1-7 or SUN-SAT")),
        }
    };
    if text == "L" {
        return Ok(DowRule::Last(7));
    }
    if let Some(d) = text.strip_suffix('L') {
        return Ok(DowRule::Last(day(d)?));
    }
    if let Some((d, n)) = text.split_once('#') {
        return match n.parse::<u32>() {
            Ok(n) if (1..=5).contains(&n) => Ok(DowRule::Nth(day(d)?, n)),
            _ => bad(format!(
                "day-of-week: `{text}` needs an occurrence 1-5 after `#`"
            )),
        };
    }
    Ok(DowRule::Days(field(text, "day-of-week", 1, 7, &DAYS)?))
}

fn days_in_month(y: i32, m: u32) -> u32 {
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    next.and_then(|n| n.pred_opt()).map_or(28, |d| d.day())
}

fn weekday_num(w: Weekday) -> u32 {
    w.num_days_from_sunday() + 1
}

impl Cron {
    fn day_matches(&self, d: NaiveDate) -> bool {
        let last = days_in_month(d.year(), d.month());
        match &self.day {
            DayRule::Month(DomRule::Days(set)) => set[d.day() as usize],
            DayRule::Month(DomRule::Last) => d.day() == last,
            DayRule::Month(DomRule::LastWeekday) => {
                let mut day = last;
                while is_weekend(d.with_day(day)) {
                    day -= 1;
                }
                d.day() == day
            }
            DayRule::Month(DomRule::NearestWeekday(target)) => {
                let target = (*target).min(last);
                let Some(t) = d.with_day(target) else {
                    return false;
                };
                let nearest = match t.weekday() {
                    Weekday::Sat if target == 1 => target + 2,
                    Weekday::Sat => target - 1,
                    Weekday::Sun if target == last => target - 2,
                    Weekday::Sun => target + 1,
                    _ => target,
                };
                d.day() == nearest
            }
            DayRule::Week(DowRule::Days(set)) => set[weekday_num(d.weekday()) as usize],
            DayRule::Week(DowRule::Last(w)) => weekday_num(d.weekday()) == *w && d.day() + 7 > last,
            DayRule::Week(DowRule::Nth(w, n)) => {
                weekday_num(d.weekday()) == *w && (d.day() - 1) / 7 + 1 == *n
            }
        }
    }

    /// The first fire time after `after`: the next matching local time in the schedule's
    /// zone that exists and lies after `after`.
    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut local = after.with_timezone(&self.tz).naive_local();
        // Around a DST change local times go back: step back an hour so none is missed,
        // then keep the first candidate that is really after `after`.
        local -= Duration::hours(1);
        for _ in 0..10_000 {
            let cand = self.next_local(local)?;
            if let Some(t) = self.tz.from_local_datetime(&cand).earliest() {
                let t = t.with_timezone(&Utc);
                if t > after {
                    return Some(t);
                }
            }
            local = cand;
        }
        None
    }

    /// The first matching local time (whole minutes) strictly after `after`.
    fn next_local(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        // The next whole minute after `after`.
        let start = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut date = start.date();
        let first_day = date;
        let last_year = 2199;
        while date.year() <= last_year {
            let y_ok = self
                .years
                .get((date.year() - 1970).max(0) as usize)
                .copied()
                .unwrap_or(false);
            if !y_ok {
                date = NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)?;
                continue;
            }
            if !self.months[date.month() as usize] {
                date = if date.month() == 12 {
                    NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)?
                } else {
                    NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)?
                };
                continue;
            }
            if self.day_matches(date) {
                let (h0, m0) = if date == first_day {
                    (start.hour(), start.minute())
                } else {
                    (0, 0)
                };
                for h in h0..24 {
                    if !self.hours[h as usize] {
                        continue;
                    }
                    let from = if h == h0 { m0 } else { 0 };
                    if let Some(m) = (from..60).find(|m| self.minutes[*m as usize]) {
                        return date.and_hms_opt(h, m, 0);
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

fn is_weekend(d: Option<NaiveDate>) -> bool {
    d.is_some_and(|d| matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, from: &str, n: usize) -> Vec<String> {
        let s = Schedule::parse(expr).unwrap_or_else(|e| panic!("{e}"));
        let start = at(from);
        let mut t = start;
        (0..n)
            .map(|_| {
                t = s.next_after(t, start).unwrap();
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            })
            .collect()
    }

    #[test]
    fn aws_documentation_examples() {
        // 10:15 UTC every day.
        assert_eq!(
            next("cron(15 10 * * ? *)", "2026-11-22T10:15:00Z", 2),
            ["2026-11-23T10:15:00Z", "2026-11-24T10:15:00Z"]
        );
        // 18:00 Monday through Friday.
        assert_eq!(
            next("cron(0 18 ? * MON-FRI *)", "2026-11-20T18:00:00Z", 2),
            ["2026-11-23T18:00:00Z", "2026-11-24T18:00:00Z"]
        );
        // 8:00 on the first day of the month.
        assert_eq!(
            next("cron(0 8 1 * ? *)", "2026-11-22T00:00:00Z", 2),
            ["2026-12-01T08:00:00Z", "2027-01-01T08:00:00Z"]
        );
        // Every 10 minutes, weekdays.
        assert_eq!(
            next("cron(0/10 * ? * MON-FRI *)", "2026-11-20T23:45:00Z", 2),
            ["2026-11-20T23:50:00Z", "2026-11-23T00:00:00Z"]
        );
        // Every 5 minutes between 8:00 and 17:55 weekdays.
        assert_eq!(
            next("cron(0/5 8-17 ? * MON-FRI *)", "2026-11-23T17:52:00Z", 2),
            ["2026-11-23T17:55:00Z", "2026-11-24T08:00:00Z"]
        );
        // 9:00 on the first Monday of each month.
        assert_eq!(
            next("cron(0 9 ? * 2#1 *)", "2026-11-22T00:00:00Z", 2),
            ["2026-12-07T09:00:00Z", "2027-01-04T09:00:00Z"]
        );
    }

    #[test]
    fn last_and_weekday_forms() {
        assert_eq!(
            next("cron(0 0 L * ? *)", "2027-01-31T00:00:00Z", 2),
            ["2027-02-28T00:00:00Z", "2027-03-31T00:00:00Z"]
        );
        assert_eq!(
            next("cron(0 0 L 2 ? 2028)", "2026-01-01T00:00:00Z", 1),
            ["2028-02-29T00:00:00Z"]
        );
        // Last Friday; last weekday; the weekday nearest the 1st (2027-05-01 is a Saturday).
        assert_eq!(
            next("cron(0 12 ? * 6L *)", "2026-11-01T00:00:00Z", 1),
            ["2026-11-27T12:00:00Z"]
        );
        assert_eq!(
            next("cron(0 12 LW * ? *)", "2027-01-01T00:00:00Z", 1),
            ["2027-01-29T12:00:00Z"]
        );
        assert_eq!(
            next("cron(0 12 1W 5 ? *)", "2027-01-01T00:00:00Z", 1),
            ["2027-05-03T12:00:00Z"]
        );
        assert_eq!(
            next("cron(0 12 15W 11 ? *)", "2026-01-01T00:00:00Z", 1),
            ["2026-11-16T12:00:00Z"]
        );
        // Lists and names.
        assert_eq!(
            next(
                "cron(30 6,18 ? JAN,JUL SUN 2027)",
                "2026-11-22T00:00:00Z",
                3
            ),
            [
                "2027-01-03T06:30:00Z",
                "2027-01-03T18:30:00Z",
                "2027-01-10T06:30:00Z"
            ]
        );
        // A year range that is over has no next time.
        let s = Schedule::parse("cron(0 0 1 1 ? 2020)").unwrap();
        assert_eq!(
            s.next_after(at("2026-01-01T00:00:00Z"), at("2026-01-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn time_zones_and_daylight_saving() {
        let next_in = |expr: &str, tz: &str, from: &str, n: usize| {
            let s = Schedule::parse_in(expr, Some(tz)).unwrap();
            let mut t = at(from);
            (0..n)
                .map(|_| {
                    t = s.next_after(t, at(from)).unwrap();
                    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
                })
                .collect::<Vec<_>>()
        };
        // 09:00 in Paris: UTC+1 in winter, UTC+2 in summer (DST starts 2027-03-28).
        assert_eq!(
            next_in(
                "cron(0 9 * * ? *)",
                "Europe/Paris",
                "2027-03-26T12:00:00Z",
                3
            ),
            [
                "2027-03-27T08:00:00Z",
                "2027-03-28T07:00:00Z",
                "2027-03-29T07:00:00Z"
            ]
        );
        // 02:30 does not exist in New York on 2027-03-14; 01:30 happens twice on 2027-11-07
        // and fires once.
        assert_eq!(
            next_in(
                "cron(30 2 * * ? *)",
                "America/New_York",
                "2027-03-13T12:00:00Z",
                2
            ),
            ["2027-03-15T06:30:00Z", "2027-03-16T06:30:00Z"]
        );
        assert_eq!(
            next_in(
                "cron(30 1 * * ? *)",
                "America/New_York",
                "2027-11-06T12:00:00Z",
                2
            ),
            ["2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"]
        );
        assert!(Schedule::parse_in("cron(0 9 * * ? *)", Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(
            next("rate(5 minutes)", "2026-11-22T10:00:00Z", 2),
            ["2026-11-22T10:05:00Z", "2026-11-22T10:10:00Z"]
        );
        assert_eq!(
            next("rate(1 day)", "2026-11-22T10:00:00Z", 1),
            ["2026-11-23T10:00:00Z"]
        );
        for bad in [
            "rate(1 minutes)",
            "rate(2 hour)",
            "rate(0 days)",
            "rate(5 weeks)",
            "rate(x days)",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_crons_say_why() {
        for (expr, why) in [
            ("cron(0 10 * * * *)", "one of them must be `?`"),
            ("cron(0 10 ? * ? *)", "cannot both be `?`"),
            ("cron(0 10 * *)", "needs 6"),
            ("cron(60 10 * * ? *)", "minutes"),
            ("cron(0 24 * * ? *)", "hours"),
            ("cron(0 0 32 * ? *)", "day-of-month"),
            ("cron(0 0 ? * 8 *)", "day-of-week"),
            ("cron(0 0 ? * 2#6 *)", "occurrence"),
            ("cron(0 0 1 FOO ? *)", "month"),
            ("cron(0 0 1 * ? 1969)", "year"),
            ("cron(0 0/0 1 * ? *)", "bad step"),
            ("every day", "expected cron"),
        ] {
            let e = Schedule::parse(expr).unwrap_err().to_string();
            assert!(e.contains(why), "{expr}: {e}");
        }
    }
}
