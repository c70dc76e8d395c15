//! Secret values hidden from text shown to people: partner answers kept in
//! statistics and logs, and previews of requests.

/// `text` with every secret value of at least `min_chars` characters, as
/// it is or as a URL query carries it, replaced by `***`: the longest
/// first, so one secret inside another leaves nothing of the longer one.
pub fn hide_secrets<'a>(
    text: &str,
    secrets: impl IntoIterator<Item = &'a str>,
    min_chars: usize,
) -> String {
    let mut forms: Vec<String> = secrets
        .into_iter()
        .filter(|secret| !secret.is_empty() && secret.chars().count() >= min_chars)
        // As a query value carries it (`http::query_value`'s encoding).
        .flat_map(|secret| {
            let in_query = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            [secret.to_owned(), in_query]
        })
        .collect();
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    let mut text = text.to_owned();
    for form in forms {
        if text.contains(&form) {
            text = text.replace(&form, "***");
        }
    }
    text
}
