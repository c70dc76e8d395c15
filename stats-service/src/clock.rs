//! Time as the service reasons about it: which hours a batch may count in,
//! and what "today" is for a preset. Injectable, so a test can pin it (a
//! preset test then cannot straddle midnight). The counter stores keep to
//! the wall clock, as Redis's own expiry does.

/// The service's clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The wall clock.
    #[default]
    System,
    /// A stopped clock at this unix time (tests).
    Fixed(i64),
}

impl Clock {
    /// Now, in unix seconds.
    pub fn now(self) -> i64 {
        match self {
            Self::System => wall_now(),
            Self::Fixed(at) => at,
        }
    }
}

/// Now by the wall clock, in unix seconds.
pub fn wall_now() -> i64 {
    jiff::Timestamp::now().as_second()
}
