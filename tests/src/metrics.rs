//! Reading a Prometheus endpoint the way a scraper does.

/// The text page served at `http://{address}/metrics`.
pub async fn scrape(address: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{address}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics page")
}

/// The value of `series` (name and labels exactly as exposed) on `page`;
/// panics, showing the page, when it is absent.
pub fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} in\n{page}"))
}

/// A free loopback address for a metrics endpoint.
pub fn free_address() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}
