//! Time buckets and statistics ranges.
//!
//! Every outcome count is added to its UTC hour bucket (`h:YYYYMMDDHH`) and
//! its UTC day bucket (`d:YYYYMMDD`). A query reads:
//! - ranges up to 48 h: one point per hour, from hour buckets;
//! - longer ranges in UTC: one point per day, from day buckets (a 90-day
//!   range reads 90 keys);
//! - longer ranges in another time zone: one point per local day, each the
//!   sum of that day's hour buckets (24 keys a day), since a local day
//!   straddles two UTC days. Day boundaries are taken at the UTC hour that
//!   contains local midnight (for the few zones offset by a half or quarter
//!   hour, such as Asia/Kolkata, that is up to 45 minutes early).

use std::time::Duration;

use eventconnectors_proto::v1::{Granularity, StatsPreset};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, ZonedDateTime};
use server_kit::violations::Violations;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
/// Ranges up to this long get hourly points.
pub const HOURLY_UP_TO: i64 = 48 * HOUR;

/// How long buckets live and how far queries may reach.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Hour buckets expire this long after the hour they count.
    pub hours: Duration,
    /// Day buckets expire this long after the UTC day they count.
    pub days: Duration,
    /// Longest range a query may span.
    pub max_span: Duration,
}

/// `duration` in whole seconds.
pub fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Start of the UTC hour containing `unix`.
pub fn floor_hour(unix: i64) -> i64 {
    unix - unix.rem_euclid(HOUR)
}

fn utc(unix: i64) -> ZonedDateTime {
    Timestamp::from_second(unix)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(TimeZone::UTC)
}

/// The hour bucket of `unix`.
pub fn hour_bucket(unix: i64) -> String {
    utc(unix).strftime("h:%Y%m%d%H").to_string()
}

/// The UTC day bucket of `unix`.
pub fn day_bucket(unix: i64) -> String {
    utc(unix).strftime("d:%Y%m%d").to_string()
}

/// Start (unix seconds) of the bucket named `bucket`.
pub fn bucket_start(bucket: &str) -> Option<i64> {
    let (kind, digits) = bucket.split_once(':')?;
    let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<i16>().ok();
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let hour = if kind == "h" { number(8..10)? } else { 0 };
    let date = jiff::civil::date(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?);
    let at = date
        .at(i8::try_from(hour).ok()?, 0, 0, 0)
        .to_zoned_datetime(TimeZone::UTC)
        .ok()?;
    Some(at.timestamp().as_second())
}

/// One point of a series and the buckets it sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Start of the point (unix seconds).
    pub start: i64,
    /// Bucket keys summed into it.
    pub buckets: Vec<String>,
}

/// What a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Resolved start (inclusive, unix seconds).
    pub from: i64,
    /// Resolved end (exclusive, unix seconds).
    pub to: i64,
    /// Resolution of the series.
    pub granularity: Granularity,
    /// The points.
    pub points: Vec<Point>,
}

/// A range request, as the API received it.
#[derive(Debug, Clone, Default)]
pub struct RangeRequest<'a> {
    /// A preset, or unspecified.
    pub preset: i32,
    /// Custom start (unix seconds).
    pub from: Option<i64>,
    /// Custom end (unix seconds).
    pub to: Option<i64>,
    /// IANA zone name; empty for UTC.
    pub time_zone: &'a str,
}

/// How many days a preset spans, today included; `None` for no preset.
/// No wildcard arm: a preset added to the contract does not compile until
/// it is given its days here.
pub fn preset_days(preset: StatsPreset) -> Option<i64> {
    match preset {
        StatsPreset::Unspecified => None,
        StatsPreset::Last7Days => Some(7),
        StatsPreset::Last30Days => Some(30),
        StatsPreset::Last90Days => Some(90),
    }
}

fn start_of_local_day(unix: i64, zone: &TimeZone) -> Result<i64, jiff::Error> {
    let zoned = Timestamp::from_second(unix)?.to_zoned_datetime(zone.clone());
    Ok(floor_hour(zoned.start_of_day()?.timestamp().as_second()))
}

fn next_local_day(day_start: i64, zone: &TimeZone) -> Result<i64, jiff::Error> {
    // From the local noon of that day, so DST shifts never skip or repeat a day.
    let zoned = Timestamp::from_second(day_start + 12 * HOUR)?.to_zoned_datetime(zone.clone());
    let next = zoned.start_of_day()?.checked_add(1.day())?;
    Ok(floor_hour(next.timestamp().as_second()))
}

/// Resolves a range against `now` into the buckets to read.
pub fn plan(
    request: &RangeRequest<'_>,
    now: i64,
    retention: Retention,
) -> Result<Plan, Violations> {
    let mut violations = Violations::default();
    let zone = if request.time_zone.is_empty() {
        TimeZone::UTC
    } else {
        match TimeZone::get(request.time_zone) {
            Ok(zone) => zone,
            Err(_) => {
                violations.add(
                    "time_zone",
                    format!("`{}` is not an IANA time zone", request.time_zone),
                );
                return Err(violations);
            }
        }
    };
    let is_utc = zone
        .to_fixed_offset()
        .is_ok_and(|offset| offset.seconds() == 0);
    // Years 1970-9999: anything else is not a statistics range (and would
    // overflow the arithmetic below).
    const LATEST: i64 = 253_402_300_799;
    for (field, value) in [("from", request.from), ("to", request.to)] {
        if value.is_some_and(|t| !(0..=LATEST).contains(&t)) {
            violations.add(field, "must be between 1970 and 9999");
            return Err(violations);
        }
    }
    let Ok(preset) = StatsPreset::try_from(request.preset) else {
        violations.add(
            "preset",
            format!("{} is not a preset this service knows", request.preset),
        );
        return Err(violations);
    };
    let (from, to) = match (preset_days(preset), request.from, request.to) {
        (None, Some(from), Some(to)) => {
            if from >= to {
                violations.add("to", "must be after from");
                return Err(violations);
            }
            (from, to)
        }
        (None, _, _) => {
            violations.add(
                "preset",
                "required: LAST_7_DAYS, LAST_30_DAYS, LAST_90_DAYS, or both from and to",
            );
            return Err(violations);
        }
        (Some(days), None, None) => {
            let today = start_of_local_day(now, &zone).map_err(inexpressible)?;
            let mut from = today;
            for _ in 1..days {
                from = start_of_local_day(from - 12 * HOUR, &zone).map_err(inexpressible)?;
            }
            (from, next_local_day(today, &zone).map_err(inexpressible)?)
        }
        (_, _, _) => {
            violations.add("preset", "give either a preset or from and to, not both");
            return Err(violations);
        }
    };

    let hourly = to - from <= HOURLY_UP_TO;
    let (from, to) = if hourly {
        (floor_hour(from), floor_hour(to + HOUR - 1))
    } else {
        let from = start_of_local_day(from, &zone).map_err(inexpressible)?;
        let last = start_of_local_day(to - 1, &zone).map_err(inexpressible)?;
        (from, next_local_day(last, &zone).map_err(inexpressible)?)
    };
    if to - from > secs(retention.max_span) {
        violations.add(
            "to",
            format!(
                "the range spans more than {}",
                humantime::format_duration(retention.max_span)
            ),
        );
    }
    if from < now - secs(retention.days) {
        violations.add(
            "from",
            format!(
                "further back than the {} statistics are kept",
                humantime::format_duration(retention.days)
            ),
        );
    } else if (hourly || !is_utc) && from < now - secs(retention.hours) {
        violations.add(
            "from",
            format!(
                "hourly statistics (used for ranges up to 48 h and for time zones other than UTC) are kept {}",
                humantime::format_duration(retention.hours)
            ),
        );
    }
    violations.into_result(())?;

    let mut points = Vec::new();
    if hourly {
        points.extend((from..to).step_by(HOUR as usize).map(|start| Point {
            start,
            buckets: vec![hour_bucket(start)],
        }));
    } else {
        let mut start = from;
        while start < to {
            let end = next_local_day(start, &zone).map_err(inexpressible)?.min(to);
            let buckets = if is_utc && end - start == DAY {
                vec![day_bucket(start)]
            } else {
                (start..end)
                    .step_by(HOUR as usize)
                    .map(hour_bucket)
                    .collect()
            };
            points.push(Point { start, buckets });
            start = end;
        }
    }
    Ok(Plan {
        from,
        to,
        granularity: if hourly {
            Granularity::Hour
        } else {
            Granularity::Day
        },
        points,
    })
}

fn inexpressible(_: jiff::Error) -> Violations {
    let mut violations = Violations::default();
    violations.add(
        "time_zone",
        "the range cannot be expressed in this time zone",
    );
    violations
}

/// Every bucket a connector can have at `now`: each hour within the hour
/// retention and each day within the day retention (plus a day of clock
/// skew either side). Erasing these erases the connector.
pub fn all_buckets(now: i64, retention: Retention) -> Vec<String> {
    let mut buckets = Vec::new();
    let last = floor_hour(now) + DAY;
    let mut hour = floor_hour(now - secs(retention.hours) - DAY);
    while hour <= last {
        buckets.push(hour_bucket(hour));
        hour += HOUR;
    }
    let mut day = now - secs(retention.days) - DAY;
    day -= day.rem_euclid(DAY);
    while day <= last {
        buckets.push(day_bucket(day));
        day += DAY;
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETENTION: Retention = Retention {
        hours: Duration::from_secs(100 * 86_400),
        days: Duration::from_secs(400 * 86_400),
        max_span: Duration::from_secs(400 * 86_400),
    };

    fn at(text: &str) -> i64 {
        text.parse::<Timestamp>().expect("timestamp").as_second()
    }

    fn custom(from: &str, to: &str, zone: &'static str) -> RangeRequest<'static> {
        RangeRequest {
            preset: 0,
            from: Some(at(from)),
            to: Some(at(to)),
            time_zone: zone,
        }
    }

    fn custom_raw(from: i64, to: i64) -> RangeRequest<'static> {
        RangeRequest {
            preset: 0,
            from: Some(from),
            to: Some(to),
            time_zone: "",
        }
    }

    #[test]
    fn buckets_name_utc_hours_and_days() {
        assert_eq!(hour_bucket(at("2026-11-29T17:59:59Z")), "h:2026112917");
        assert_eq!(day_bucket(at("2026-11-29T23:59:59Z")), "d:20261129");
        assert_eq!(
            floor_hour(at("2026-11-29T17:30:00Z")),
            at("2026-11-29T17:00:00Z")
        );
    }

    #[test]
    fn short_ranges_are_hourly_and_rounded_out_to_hours() {
        let now = at("2026-11-29T18:00:00Z");
        let plan = plan(
            &custom("2026-11-28T10:30:00Z", "2026-11-28T13:10:00Z", ""),
            now,
            RETENTION,
        )
        .expect("valid");
        assert_eq!(plan.granularity, Granularity::Hour);
        assert_eq!(
            (plan.from, plan.to),
            (at("2026-11-28T10:00:00Z"), at("2026-11-28T14:00:00Z"))
        );
        let buckets: Vec<_> = plan.points.iter().map(|p| p.buckets[0].as_str()).collect();
        assert_eq!(
            buckets,
            [
                "h:2026112810",
                "h:2026112811",
                "h:2026112812",
                "h:2026112813"
            ]
        );
    }

    #[test]
    fn long_utc_ranges_read_one_key_per_day() {
        let now = at("2026-11-29T18:00:00Z");
        let request = RangeRequest {
            preset: StatsPreset::Last90Days as i32,
            ..RangeRequest::default()
        };
        let plan = plan(&request, now, RETENTION).expect("valid");
        assert_eq!(plan.granularity, Granularity::Day);
        assert_eq!(plan.points.len(), 90);
        assert!(plan.points.iter().all(|p| p.buckets.len() == 1));
        assert_eq!(
            plan.points[89].buckets,
            ["d:20261129"],
            "today is the last point"
        );
        assert_eq!(plan.points[0].buckets, ["d:20260901"]);
        assert_eq!(plan.to, at("2026-11-30T00:00:00Z"));
    }

    #[test]
    fn local_days_follow_the_time_zone_and_its_dst_changes() {
        // Europe/Paris leaves summer time on 2026-10-25: that day has 25 hours.
        let now = at("2026-11-29T18:00:00Z");
        let plan = plan(
            &custom(
                "2026-10-24T12:00:00Z",
                "2026-10-27T12:00:00Z",
                "Europe/Paris",
            ),
            now,
            RETENTION,
        )
        .expect("valid");
        assert_eq!(plan.granularity, Granularity::Day);
        let starts: Vec<_> = plan
            .points
            .iter()
            .map(|p| (p.start, p.buckets.len()))
            .collect();
        assert_eq!(
            starts,
            [
                (at("2026-10-23T22:00:00Z"), 24),
                (at("2026-10-24T22:00:00Z"), 25),
                (at("2026-10-25T23:00:00Z"), 24),
                (at("2026-10-26T23:00:00Z"), 24),
            ]
        );
        // Kolkata (+05:30): local midnight falls inside the 18:00 UTC hour.
        let kolkata = super::plan(
            &custom(
                "2026-11-20T00:00:00Z",
                "2026-11-23T00:00:00Z",
                "Asia/Kolkata",
            ),
            now,
            RETENTION,
        )
        .expect("valid");
        assert_eq!(kolkata.points[0].start, at("2026-11-19T18:00:00Z"));
    }

    #[test]
    fn invalid_ranges_name_the_field() {
        let now = at("2026-11-29T18:00:00Z");
        let field = |request: RangeRequest<'_>| -> String {
            let violations = plan(&request, now, RETENTION).expect_err("invalid");
            violations.iter().next().expect("one").field.clone()
        };
        assert_eq!(
            field(custom("2026-11-29T10:00:00Z", "2026-11-29T10:00:00Z", "")),
            "to"
        );
        assert_eq!(
            field(custom("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "")),
            "from"
        );
        assert_eq!(
            field(custom("2025-10-20T00:00:00Z", "2026-11-29T00:00:00Z", "")),
            "to"
        );
        assert_eq!(
            field(custom(
                "2026-07-01T00:00:00Z",
                "2026-07-05T00:00:00Z",
                "Europe/Paris"
            )),
            "from"
        );
        assert_eq!(
            field(custom(
                "2026-11-01T00:00:00Z",
                "2026-11-05T00:00:00Z",
                "Mars/Olympus"
            )),
            "time_zone"
        );
        assert_eq!(field(RangeRequest::default()), "preset");
        assert_eq!(field(custom_raw(i64::MIN, 0)), "from");
        assert_eq!(field(custom_raw(0, i64::MAX)), "to");
        let both = RangeRequest {
            preset: StatsPreset::Last7Days as i32,
            ..custom("2026-11-01T00:00:00Z", "2026-11-05T00:00:00Z", "")
        };
        assert_eq!(field(both), "preset");
    }

    #[test]
    fn every_preset_spans_the_days_its_name_says() {
        let presets: Vec<StatsPreset> = (0..)
            .map_while(|value| StatsPreset::try_from(value).ok())
            .collect();
        assert!(presets.len() >= 4, "{presets:?}");
        let now = at("2026-11-29T18:00:00Z");
        for preset in presets {
            let Some(days) = preset_days(preset) else {
                assert_eq!(preset, StatsPreset::Unspecified);
                continue;
            };
            let named: i64 = preset
                .as_str_name()
                .trim_start_matches("LAST_")
                .trim_end_matches("_DAYS")
                .parse()
                .unwrap_or_else(|_| panic!("{} names no day count", preset.as_str_name()));
            assert_eq!(days, named, "{preset:?}");
            let request = RangeRequest {
                preset: preset as i32,
                ..RangeRequest::default()
            };
            let plan = plan(&request, now, RETENTION).expect("valid");
            assert_eq!(plan.points.len() as i64, days, "{preset:?}");
            assert_eq!(plan.to, at("2026-11-30T00:00:00Z"), "through today");
        }
        let unknown = RangeRequest {
            preset: 99,
            ..RangeRequest::default()
        };
        let violations = plan(&unknown, now, RETENTION).expect_err("unknown preset");
        assert_eq!(violations.fields(), ["preset"]);
    }

    #[test]
    fn presets_are_whole_local_days() {
        // 23:30 in Tokyo is already the next local day: 7 days end at its
        // local midnight (15:00 UTC).
        let now = at("2026-11-29T15:30:00Z");
        let request = RangeRequest {
            preset: StatsPreset::Last7Days as i32,
            time_zone: "Asia/Tokyo",
            ..RangeRequest::default()
        };
        let plan = plan(&request, now, RETENTION).expect("valid");
        assert_eq!(
            (plan.from, plan.to),
            (at("2026-11-23T15:00:00Z"), at("2026-11-30T15:00:00Z"))
        );
        assert!(plan.points.iter().all(|p| p.buckets.len() == 24));
    }

    #[test]
    fn erasing_covers_every_bucket_a_write_can_make() {
        let now = at("2026-11-29T18:20:00Z");
        let all = all_buckets(now, RETENTION);
        assert!(
            all.contains(&day_bucket(now + DAY)),
            "tomorrow, for clocks a little ahead"
        );
        assert!(all.contains(&hour_bucket(now)));
        assert!(all.contains(&day_bucket(now - 399 * DAY)));
        assert!(all.contains(&hour_bucket(now - 99 * DAY)));
        assert!(all.len() < 2600 + 410);
    }
}
