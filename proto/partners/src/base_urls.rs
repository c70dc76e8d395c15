//! Where each partner's requests go: the catalog's default base URL, or a
//! deployment's override (a sandbox, an egress proxy, a fake partner in
//! tests), keyed by partner id.

use std::collections::BTreeMap;

use crate::PARTNERS;

/// A base-URL override that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    /// Not `partner=url`.
    #[error("`{0}` is not `partner=url` (e.g. meta_capi=http://127.0.0.1:9000)")]
    Syntax(String),
    /// No such partner.
    #[error("unknown partner `{partner}` in a base-URL override; known: {known}")]
    UnknownPartner {
        /// The id given.
        partner: String,
        /// The ids there are.
        known: String,
    },
    /// A partner whose connectors each give their own URL.
    #[error("partner `{0}` has no base URL: each of its connectors gives its own")]
    NoBaseUrl(String),
    /// Not an absolute http(s) URL.
    #[error("the base URL of `{partner}` must be an absolute http:// or https:// URL, not `{url}`")]
    Url {
        /// The partner.
        partner: String,
        /// What was given.
        url: String,
    },
    /// Two different URLs for one partner.
    #[error("the base URL of `{0}` is given twice, differently")]
    Conflict(String),
}

/// Parses one `partner=url` override (a flag value).
pub fn parse_override(text: &str) -> Result<(String, String), BaseUrlError> {
    let (partner, url) = text
        .split_once('=')
        .ok_or_else(|| BaseUrlError::Syntax(text.to_owned()))?;
    let (partner, url) = (partner.trim(), url.trim());
    if partner.is_empty() || url.is_empty() {
        return Err(BaseUrlError::Syntax(text.to_owned()));
    }
    Ok((partner.to_owned(), url.to_owned()))
}

/// Each partner's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrls {
    urls: BTreeMap<&'static str, String>,
}

impl Default for BaseUrls {
    fn default() -> Self {
        Self {
            urls: PARTNERS
                .iter()
                .filter_map(|p| Some((p.id, p.default_base_url?.to_owned())))
                .collect(),
        }
    }
}

impl BaseUrls {
    /// The catalog's defaults with `overrides` (partner id, URL) applied. A
    /// partner named twice must be given the same URL both times.
    pub fn with_overrides<'a>(
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, BaseUrlError> {
        let mut urls = Self::default();
        let mut given: BTreeMap<&str, &str> = BTreeMap::new();
        for (partner, url) in overrides {
            let Some(spec) = PARTNERS.iter().find(|p| p.id == partner) else {
                let known: Vec<_> = PARTNERS.iter().map(|p| p.id).collect();
                return Err(BaseUrlError::UnknownPartner {
                    partner: partner.to_owned(),
                    known: known.join(", "),
                });
            };
            if spec.default_base_url.is_none() {
                return Err(BaseUrlError::NoBaseUrl(partner.to_owned()));
            }
            let absolute = url::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !absolute {
                return Err(BaseUrlError::Url {
                    partner: partner.to_owned(),
                    url: url.to_owned(),
                });
            }
            if given
                .insert(spec.id, url)
                .is_some_and(|before| before != url)
            {
                return Err(BaseUrlError::Conflict(partner.to_owned()));
            }
            urls.urls
                .insert(spec.id, url.trim_end_matches('/').to_owned());
        }
        Ok(urls)
    }

    /// The base URL of `partner`; empty for partners without one.
    pub fn get(&self, partner: &str) -> &str {
        self.urls.get(partner).map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_catalog_and_overrides_replace_them() {
        let defaults = BaseUrls::default();
        assert_eq!(defaults.get("meta_capi"), "https://graph.facebook.com");
        assert_eq!(defaults.get("webhook"), "");
        let urls = BaseUrls::with_overrides([
            ("meta_capi", "http://127.0.0.1:9000/"),
            ("tiktok", "http://127.0.0.1:9001"),
            ("meta_capi", "http://127.0.0.1:9000/"),
        ])
        .expect("valid");
        assert_eq!(urls.get("meta_capi"), "http://127.0.0.1:9000");
        assert_eq!(urls.get("tiktok"), "http://127.0.0.1:9001");
        assert_eq!(urls.get("ga4"), "https://www.google-analytics.com");
    }

    #[test]
    fn every_bad_override_says_why() {
        assert_eq!(
            parse_override("meta_capi=http://x"),
            Ok(("meta_capi".into(), "http://x".into()))
        );
        for bad in ["meta_capi", "=http://x", "meta_capi="] {
            assert!(
                matches!(parse_override(bad), Err(BaseUrlError::Syntax(_))),
                "{bad}"
            );
        }
        let error = |partner, url| BaseUrls::with_overrides([(partner, url)]).expect_err(url);
        assert!(matches!(
            error("snapchatt", "http://x"),
            BaseUrlError::UnknownPartner { .. }
        ));
        assert_eq!(
            error("webhook", "http://x"),
            BaseUrlError::NoBaseUrl("webhook".into())
        );
        assert!(matches!(error("ga4", "ftp://x"), BaseUrlError::Url { .. }));
        assert!(matches!(
            error("ga4", "/relative"),
            BaseUrlError::Url { .. }
        ));
        assert_eq!(
            BaseUrls::with_overrides([("ga4", "http://a"), ("ga4", "http://b")]),
            Err(BaseUrlError::Conflict("ga4".into()))
        );
    }
}
