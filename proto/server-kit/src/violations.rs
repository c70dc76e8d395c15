//! Everything wrong with a request, each problem naming its field, answered
//! at once as INVALID_ARGUMENT with a `google.rpc.BadRequest` detail: one
//! round trip shows the caller everything to fix.

/// One problem with a request: the field (as a path into the request, e.g.
/// `connector.settings.url`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Path of the offending field.
    pub field: String,
    /// What is wrong, for people.
    pub description: String,
}

/// Every problem found in a request.
#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// One problem.
    pub fn one(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut violations = Self::default();
        violations.add(field, description);
        violations
    }

    /// Records a problem.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// `Ok(value)` when nothing was recorded, else the problems.
    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// The problems, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &Violation> {
        self.0.iter()
    }

    /// The offending fields, in the order found.
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|v| v.field.as_str()).collect()
    }

    /// INVALID_ARGUMENT with a google.rpc.BadRequest detail naming each
    /// field, and the same list in the message for people reading it raw.
    pub fn into_status(self) -> tonic::Status {
        use tonic_types::{ErrorDetails, StatusExt};
        let summary: Vec<String> = self
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect();
        let mut details = ErrorDetails::new();
        for violation in self.iter() {
            details.add_bad_request_violation(&violation.field, &violation.description);
        }
        tonic::Status::with_error_details(
            tonic::Code::InvalidArgument,
            format!("invalid request: {}", summary.join("; ")),
            details,
        )
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn every_violation_reaches_the_status_and_its_detail() {
        let mut violations = Violations::one("connector.name", "required");
        violations.add("connector.settings.url", "not a URL");
        assert_eq!(
            violations.fields(),
            ["connector.name", "connector.settings.url"]
        );
        let status = violations.into_status();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "invalid request: connector.name: required; connector.settings.url: not a URL"
        );
        let details = status
            .get_details_bad_request()
            .expect("a BadRequest detail");
        let fields: Vec<_> = details
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["connector.name", "connector.settings.url"]);
    }

    #[test]
    fn nothing_recorded_is_ok() {
        assert_eq!(Violations::default().into_result(7).ok(), Some(7));
    }
}
