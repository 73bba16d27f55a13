//! Set-up shared by `benches/pipeline.rs` and `examples/chaos.rs` (included with `#[path]`):
//! a fresh PostgreSQL database, the gateway on port 0 over it, and the WAHA simulator on port 0.
// Each includer uses a different subset of the stack.
#![allow(dead_code)]

use std::net::TcpListener;

use wapim_settings::Settings;
use wapim_store::Pool;
use wapim_testkit::{TestBackend, TestDatabase};
use wapim_waha_sim::{SimConfig, SimHandle};

/// The running gateway and simulator, and what a soak or bench needs to drive them.
pub struct Stack {
    /// The database (dropped with the stack).
    pub db: TestDatabase,
    /// The gateway's pool, shared with the relay and in-process dispatchers.
    pub pool: Pool,
    /// The gateway's settings (AMQP defaults included).
    pub settings: Settings,
    /// `http://127.0.0.1:<port>` of the gateway.
    pub base: String,
    /// The operator token.
    pub admin: String,
    /// The WAHA simulator.
    pub sim: SimHandle,
}

/// Starts the gateway (without its relay) and the simulator over a fresh database.
pub async fn start_stack() -> Stack {
    let db = TestDatabase::create_on(TestBackend::Postgres);
    let admin = wapim_domain::token::generate_secret_token();
    // The simulator first: the gateway registers it as the default WAHA server.
    let sim = wapim_waha_sim::start(
        SimConfig::default(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    )
    .await
    .unwrap();
    let settings = Settings::load_from([
        ("WAPIM_WAHA__URL".to_owned(), sim.base_url()),
        // The benches place more devices than one default WAHA server takes.
        ("WAPIM_WAHA__CAPACITY".to_owned(), "10000".to_owned()),
        ("WAPIM_DATABASE__URL".to_owned(), db.url.clone()),
        (
            "WAPIM_DATABASE__CREATE_IF_MISSING".to_owned(),
            "false".to_owned(),
        ),
        ("WAPIM_AUTH__ADMIN_TOKEN".to_owned(), admin.clone()),
        ("WAPIM_LOG__LEVEL".to_owned(), "error".to_owned()),
    ])
    .unwrap();
    let gateway_db = wapim_gateway::prepare_database(&settings.database)
        .await
        .unwrap();
    let pool = gateway_db.pool().clone();
    let app = wapim_gateway::Application::build(
        &settings,
        gateway_db,
        TcpListener::bind("127.0.0.1:0").unwrap(),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Stack {
        db,
        pool,
        settings,
        base,
        admin,
        sim,
    }
}
