//! Every service answers gRPC health checks and server reflection, so generic gRPC tools and
//! Kubernetes probes work; `strom health` reports them with its exit codes.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::groups::GroupCluster;
use futures::StreamExt;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// The services `address` lists through reflection v1.
async fn reflected_services(address: &str) -> Vec<String> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

async fn strom_health(addresses: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new(common::binary("strom"))
        .args(["health", "-o", "json", "--timeout", "2s"])
        .args(addresses)
        .env_remove("STROM_BROKERS")
        .env("HOME", "/nonexistent")
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_serves_health_and_reflection() {
    let Some(mut cluster) = GroupCluster::start("probes", 1, 0).await else {
        return;
    };
    let broker = cluster.broker.address.clone();
    let controller = cluster.controller.address.clone();
    let coordinator = cluster.coordinators[0].address.clone();

    let (code, stdout) = strom_health(&[&broker, &controller, &coordinator]).await;
    assert_eq!(code, 0, "{stdout}");
    let checks: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        checks
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "SERVING"),
        "{checks}"
    );

    let on_broker = reflected_services(&broker).await;
    for service in [
        "strom.broker.v1.BrokerService",
        "strom.admin.v1.AdminService",
        "strom.replication.v1.ReplicationService",
        "strom.coordinator.v1.CoordinatorService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            on_broker.iter().any(|s| s == service),
            "{service}: {on_broker:?}"
        );
    }
    assert!(
        reflected_services(&controller)
            .await
            .iter()
            .any(|s| s == "strom.controller.v1.ControllerService")
    );
    assert!(
        reflected_services(&coordinator)
            .await
            .iter()
            .any(|s| s == "strom.coordinator.v1.CoordinatorService")
    );

    cluster.broker.kill9().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (code, stdout) = strom_health(&[&broker, &controller]).await;
    assert_eq!(code, 3, "a dead broker is unreachable: {stdout}");
    assert!(stdout.contains("UNREACHABLE"), "{stdout}");
}
