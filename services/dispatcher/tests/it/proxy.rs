//! A TCP proxy in front of RabbitMQ whose connections a test can cut, to prove that the relay
//! and the dispatcher reconnect by themselves when the broker connection drops mid-run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards 127.0.0.1:<port> to the broker; [`Proxy::cut`] drops every open connection (new
/// ones are accepted again right away, as after a broker restart or a network blip).
pub struct Proxy {
    pub port: u16,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
    down: Arc<AtomicBool>,
}

impl Proxy {
    pub async fn start(target: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let registry = links.clone();
        let down = Arc::new(AtomicBool::new(false));
        let refusing = down.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if refusing.load(Ordering::SeqCst) {
                    // "Broker down": the connection is closed before any AMQP byte.
                    drop(inbound);
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                registry.lock().unwrap().push(link);
            }
        });
        Self {
            port,
            links,
            accept,
            down,
        }
    }

    /// While down, new connections are closed at once and open ones are cut, as with a broker
    /// that is stopped; up again, connections pass.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.cut();
        }
    }

    /// Closes every proxied connection at once.
    pub fn cut(&self) -> usize {
        let links: Vec<_> = self.links.lock().unwrap().drain(..).collect();
        let n = links.iter().filter(|l| !l.is_finished()).count();
        for link in links {
            link.abort();
        }
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
