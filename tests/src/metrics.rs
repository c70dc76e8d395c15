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

/// Scrapes until `series` is on the page (a gauge published on its own
/// tick, say); panics after `timeout`.
pub async fn scrape_until(
    address: std::net::SocketAddr,
    series: &str,
    timeout: std::time::Duration,
) -> String {
    let started = std::time::Instant::now();
    loop {
        let page = scrape(address).await;
        if page.lines().any(|line| line.starts_with(series)) {
            return page;
        }
        assert!(
            started.elapsed() < timeout,
            "{series} not served within {timeout:?}:\n{page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
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
