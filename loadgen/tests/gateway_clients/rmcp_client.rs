//! rmcp's own client through the gateway, in both eras: the initialize handshake in each
//! session version (a session the gateway holds, whose GET stream rmcp opens by itself) and the
//! `Auto` lifecycle, which asks `server/discover` and must settle on 2026-07-28 rather than
//! fall back. Tools are listed with `list_all_tools`, which follows `nextCursor`; a
//! `ClientHandler` tells a channel of each `notifications/tools/list_changed`.

use std::time::Duration;

use fleet::Profile;
use rmcp::{
    ClientHandler, ClientLifecycleMode, ServiceExt as _,
    model::{
        CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion,
    },
    serve_client_with_lifecycle,
    service::{NotificationContext, RoleClient, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::Value;
use tokio::sync::{mpsc, mpsc::UnboundedReceiver, mpsc::UnboundedSender};

use super::{
    Addrs, COMMUNITY, FLEET_CHANGES, McpClient, gateway_mcp, group, http,
    lists_and_calls_both_groups, scale_community, spec_of, start_fleet,
    survives_the_kill_of_its_member,
};

/// A client handler that tells a channel of each `notifications/tools/list_changed`.
struct Watcher {
    info: ClientConfig,
    list_changed: UnboundedSender<()>,
}

impl ClientHandler for Watcher {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.list_changed.send(());
    }
}

/// rmcp's client on the gateway's `/mcp`, with the notifications its handler heard.
pub(super) struct Rmcp {
    client: RunningService<RoleClient, Watcher>,
    list_changed: UnboundedReceiver<()>,
}

impl Rmcp {
    /// Connects to the shared fleet's gateway; see [`Rmcp::connect_at`].
    async fn connect(era: ProtocolVersion) -> Rmcp {
        Rmcp::connect_at(&gateway_mcp(), era).await
    }

    /// Connects to `url`: the initialize handshake at `era`, or for 2026-07-28 the `Auto`
    /// lifecycle (`server/discover`, falling back to initialize); the gateway must have
    /// answered itself, in `era`.
    pub(super) async fn connect_at(url: &str, era: ProtocolVersion) -> Rmcp {
        let cfg = StreamableHttpClientTransportConfig::with_uri(url.to_string())
            .reinit_on_expired_session(false);
        let transport = StreamableHttpClientTransport::with_client(http(), cfg);
        let info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("gateway-clients", "0"),
        );
        let (tx, list_changed) = mpsc::unbounded_channel();
        let client = if era == ProtocolVersion::V_2026_07_28 {
            let watcher = Watcher {
                info,
                list_changed: tx,
            };
            let auto = ClientLifecycleMode::Auto {
                preferred_versions: vec![era.clone()],
                legacy_version: Some(ProtocolVersion::V_2025_11_25),
            };
            serve_client_with_lifecycle(watcher, transport, auto)
                .await
                .expect("discover")
        } else {
            let watcher = Watcher {
                info: info.with_protocol_version(era.clone()),
                list_changed: tx,
            };
            watcher.serve(transport).await.expect("initialize")
        };
        let peer = client.peer_info().expect("the gateway described itself");
        assert_eq!(peer.protocol_version, era, "the era settled on");
        let name = peer.server_info.as_ref().map(|s| s.name.as_str());
        assert_eq!(name, Some("mcpfleet-gateway"));
        Rmcp {
            client,
            list_changed,
        }
    }

    /// Whether a `notifications/tools/list_changed` arrives within `within`.
    async fn hears_list_changed(&mut self, within: Duration) -> bool {
        let heard = tokio::time::timeout(within, self.list_changed.recv()).await;
        matches!(heard, Ok(Some(())))
    }

    pub(super) async fn close(self) {
        self.client.cancel().await.unwrap();
    }
}

impl McpClient for Rmcp {
    async fn list(&mut self) -> Vec<String> {
        let tools = self.client.list_all_tools().await.expect("tools/list");
        tools.into_iter().map(|t| t.name.into_owned()).collect()
    }

    async fn call(&mut self, name: &str, arguments: Value) -> Value {
        let params = CallToolRequestParams::new(name.to_string())
            .with_arguments(arguments.as_object().cloned().unwrap());
        let result = self
            .client
            .call_tool(params)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_ne!(result.is_error, Some(true), "{name}: {result:?}");
        result.structured_content.expect("a structured result")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_every_version_lists_and_calls_both_groups() {
    let _shared = FLEET_CHANGES.read().await;
    // Every session version is the one the gateway settles on when the client asks for it.
    let eras = [
        ProtocolVersion::V_2024_11_05,
        ProtocolVersion::V_2025_03_26,
        ProtocolVersion::V_2025_06_18,
        ProtocolVersion::V_2025_11_25,
        ProtocolVersion::V_2026_07_28,
    ];
    for era in eras {
        let mut client = Rmcp::connect(era).await;
        lists_and_calls_both_groups(&mut client).await;
        client.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_survives_the_kill_of_the_member_that_served_it() {
    let mut client = Rmcp::connect(ProtocolVersion::V_2025_11_25).await;
    survives_the_kill_of_its_member(&mut client, super::fleet()).await;
    client.close().await;
}

/// The same over real HTTP hops: a fleet of its own whose gateway reaches its task servers over
/// loopback, as it reaches servers in processes, so the calls around the kill go through the
/// gateway's upstream connections (which the killed instance's end) rather than in-process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_survives_the_kill_of_its_member_over_http_hops() {
    let mut spec = spec_of(vec![
        group("community", Profile::Community, COMMUNITY),
        group("security", Profile::Security, 1),
    ]);
    spec.gateway_in_process = false;
    let fleet = start_fleet(spec).await;
    let addrs = Addrs::of(&fleet);
    let mut client = Rmcp::connect_at(&addrs.mcp(), ProtocolVersion::V_2025_11_25).await;
    survives_the_kill_of_its_member(&mut client, &addrs).await;
    client.close().await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_hears_tools_list_changed_when_a_group_is_scaled() {
    let _alone = FLEET_CHANGES.write().await;
    let mut client = Rmcp::connect(ProtocolVersion::V_2025_11_25).await;
    lists_and_calls_both_groups(&mut client).await;
    // rmcp opens the GET stream by itself after the handshake and says nothing when it is
    // open; a change made before then reaches no one. So the group is scaled, up and down in
    // turn, until a change is heard, a few times at most.
    let mut heard = false;
    for attempt in 1..=4 {
        let count = if attempt % 2 == 1 {
            COMMUNITY + 1
        } else {
            COMMUNITY
        };
        scale_community(count).await;
        heard = client.hears_list_changed(Duration::from_secs(5)).await;
        if heard {
            if count != COMMUNITY {
                scale_community(COMMUNITY).await;
            }
            break;
        }
    }
    assert!(
        heard,
        "notifications/tools/list_changed reaches the session"
    );
    lists_and_calls_both_groups(&mut client).await;
    client.close().await;
}
