//! A throwaway Postgres database per test, on the server the test command
//! made sure is running (TEST_DATABASE_URL, default the local one).

use sqlx::{Connection, Executor, PgConnection};

/// Server-level URL used to create and drop test databases.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that is dropped (connections included) when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a database with a unique name.
    pub async fn create() -> Self {
        let admin = admin_url();
        let name = format!("ec_test_{}", uuid::Uuid::now_v7().simple());
        let mut connection = PgConnection::connect(&admin).await.unwrap_or_else(|error| {
            panic!("Postgres at {admin} is not reachable ({error}); run the README's test command")
        });
        connection
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let url = match admin.rfind('/') {
            Some(slash) => format!("{}/{name}", &admin[..slash]),
            None => panic!("TEST_DATABASE_URL must end with /<database>"),
        };
        Self { name, url }
    }

    /// URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = admin_url();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        crate::run_detached(move || async move {
            let mut connection = PgConnection::connect(&admin).await.ok()?;
            connection.execute(statement.as_str()).await.ok()
        });
    }
}
