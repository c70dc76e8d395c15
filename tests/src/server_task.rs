//! A service running in the test's runtime until told to stop.

use std::future::Future;

use tokio::sync::oneshot;

/// A spawned server: `stop` sends its shutdown signal and waits for it to
/// drain; dropping it aborts the task.
#[derive(Debug)]
pub struct ServerTask<E> {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), E>>>,
}

impl<E: Send + 'static> ServerTask<E> {
    /// Spawns `serve(shutdown)`, where `shutdown` resolves when [`stop`] is
    /// called.
    ///
    /// [`stop`]: ServerTask::stop
    pub fn spawn<F>(serve: impl FnOnce(oneshot::Receiver<()>) -> F) -> Self
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let (shutdown, stopped) = oneshot::channel();
        Self {
            shutdown: Some(shutdown),
            task: Some(tokio::spawn(serve(stopped))),
        }
    }

    /// Signals shutdown and waits for the server to finish.
    pub async fn stop(mut self) -> Result<(), E> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("server task panicked"),
            None => Ok(()),
        }
    }
}

impl<E> Drop for ServerTask<E> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Resolves when the shutdown signal arrives (or its sender is dropped).
pub async fn signalled(stopped: oneshot::Receiver<()>) {
    let _ = stopped.await;
}
