//! A connector's recent failures, a page at a time. The store keeps the
//! newest failed events in a list (newest first, trimmed to
//! `RECENT_FAILURES`) beside a count of every failure ever pushed to it.
//! A page token holds that count as the first page saw it and how far the
//! pages got: failures pushed since shift the list, and the next page
//! starts that much further down, so pages neither repeat nor skip while
//! new failures arrive (those past the trim are gone).

use eventconnectors_proto::v1::FailedEvent;
use prost::Message;
use server_kit::violations::Violations;

/// Failures per page when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Most failures per page.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    /// Failures ever pushed when the first page was read.
    pushed: u64,
    /// Failures listed so far.
    offset: u64,
}

impl Cursor {
    fn parse(token: &str) -> Result<Option<Self>, Violations> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || Violations::one("page_token", "not a token from a previous page");
        let (pushed, offset) = token.split_once('.').ok_or_else(invalid)?;
        Ok(Some(Self {
            pushed: pushed.parse().map_err(|_| invalid())?,
            offset: offset.parse().map_err(|_| invalid())?,
        }))
    }

    fn token(self) -> String {
        format!("{}.{}", self.pushed, self.offset)
    }
}

/// One page of `connector_id`'s failures from `list` (encoded, newest
/// first; `pushed` ever pushed), after `token`, at most `page_size` of
/// them, those before `oldest_kept` (unix seconds, the retention) left out;
/// and the next page's token (empty at the end).
pub fn page(
    connector_id: &str,
    pushed: u64,
    list: &[Vec<u8>],
    page_token: &str,
    page_size: u32,
    oldest_kept: i64,
) -> Result<(Vec<FailedEvent>, String), Violations> {
    let size = match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n <= MAX_PAGE_SIZE => n,
        _ => {
            return Err(Violations::one(
                "page_size",
                format!("at most {MAX_PAGE_SIZE}"),
            ));
        }
    };
    let cursor = Cursor::parse(page_token)?.unwrap_or(Cursor { pushed, offset: 0 });
    // Pushed since the first page: the list moved down by as many. Fewer
    // than then: the list was erased or expired meanwhile, and holds other
    // failures now.
    let Some(shift) = pushed.checked_sub(cursor.pushed) else {
        return Ok((Vec::new(), String::new()));
    };
    let start = usize::try_from(cursor.offset.saturating_add(shift)).unwrap_or(usize::MAX);
    let kept: Vec<FailedEvent> = list
        .iter()
        .skip(start)
        .take(size as usize)
        .filter_map(|encoded| FailedEvent::decode(encoded.as_slice()).ok())
        .filter(|failure| failure.at.is_some_and(|at| at.seconds >= oldest_kept))
        .map(|failure| FailedEvent {
            connector_id: connector_id.to_owned(),
            ..failure
        })
        .collect();
    // A page may come out short (an entry past the retention, or one that
    // does not decode): what follows it is still listed.
    let more = start.saturating_add(size as usize) < list.len();
    let next = more.then(|| {
        Cursor {
            pushed: cursor.pushed,
            offset: cursor.offset + u64::from(size),
        }
        .token()
    });
    Ok((kept, next.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(n: u64) -> Vec<u8> {
        FailedEvent {
            event_id: format!("e{n}"),
            at: Some(prost_types::Timestamp {
                seconds: 1_000 + n as i64,
                nanos: 0,
            }),
            ..FailedEvent::default()
        }
        .encode_to_vec()
    }

    /// The list after `pushed` failures e1..e{pushed}, newest first, kept 100.
    fn list(pushed: u64) -> Vec<Vec<u8>> {
        (1..=pushed).rev().take(100).map(failure).collect()
    }

    fn ids(failures: &[FailedEvent]) -> Vec<String> {
        failures.iter().map(|f| f.event_id.clone()).collect()
    }

    #[test]
    fn pages_hold_still_while_new_failures_arrive() {
        let (first, token) = page("c", 30, &list(30), "", 10, 0).expect("page");
        assert_eq!(ids(&first)[..2], ["e30", "e29"]);
        assert_eq!(first[0].connector_id, "c");
        // Five more arrive: the second page goes on from e20, not e25.
        let (second, token) = page("c", 35, &list(35), &token, 10, 0).expect("page");
        assert_eq!(ids(&second)[0], "e20");
        assert_eq!(ids(&second)[9], "e11");
        let (third, token) = page("c", 35, &list(35), &token, 10, 0).expect("page");
        assert_eq!(
            ids(&third),
            (1..=10).rev().map(|n| format!("e{n}")).collect::<Vec<_>>()
        );
        assert!(token.is_empty(), "the end: {token}");
    }

    #[test]
    fn failures_past_the_trim_or_the_retention_are_gone() {
        // 150 pushed, 100 kept: e51..e150.
        let (all, token) = page("c", 150, &list(150), "", 100, 0).expect("page");
        assert_eq!(all.len(), 100);
        assert_eq!(ids(&all)[99], "e51");
        assert!(token.is_empty());
        // Older than the retention: left out.
        let (recent, _) = page("c", 150, &list(150), "", 100, 1_140).expect("page");
        assert_eq!(ids(&recent).last().map(String::as_str), Some("e140"));
    }

    #[test]
    fn bad_tokens_and_sizes_are_invalid_arguments() {
        for token in ["x", "1", "1.x", "-1.0"] {
            let error = page("c", 1, &list(1), token, 10, 0).expect_err(token);
            assert!(format!("{error:?}").contains("page_token"), "{error:?}");
        }
        let error = page("c", 1, &list(1), "", 101, 0).expect_err("too big");
        assert!(format!("{error:?}").contains("page_size"), "{error:?}");
        // An erased list: the old token leads nowhere, no error.
        assert_eq!(page("c", 2, &list(2), "9.5", 10, 0).expect("page").0, []);
    }
}
