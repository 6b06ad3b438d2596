//! Bodies of the agent's meta routes (`GET /`, `GET /health`, `GET /user`) and its error body.

use serde::{Deserialize, Serialize};

/// `GET /`: `{"status":"ok","service":"agent"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    pub status: String,
    pub service: String,
}

impl StatusResponse {
    /// The only answer the agent gives.
    pub fn ok() -> Self {
        Self {
            status: "ok".to_owned(),
            service: "agent".to_owned(),
        }
    }
}

/// `GET /health`: `{"healthy":bool,"connected":bool}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResponse {
    pub healthy: bool,
    pub connected: bool,
}

/// `GET /user`: the OS user the agent runs as. The server opens terminals as `uid:gid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserResponse {
    pub username: String,
    pub uid: u32,
    pub gid: u32,
}

/// Every error the agent returns: `{"error":"<message>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

impl ErrorBody {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            error: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn meta_bodies_have_the_wire_shape() {
        assert_eq!(
            serde_json::to_value(StatusResponse::ok()).unwrap(),
            json!({"status": "ok", "service": "agent"})
        );
        let health = HealthResponse {
            healthy: true,
            connected: true,
        };
        assert_eq!(
            serde_json::to_value(health).unwrap(),
            json!({"healthy": true, "connected": true})
        );
        let user = UserResponse {
            username: "root".into(),
            uid: 0,
            gid: 0,
        };
        assert_eq!(
            serde_json::to_value(&user).unwrap(),
            json!({"username": "root", "uid": 0, "gid": 0})
        );
        assert_eq!(
            serde_json::to_value(ErrorBody::new("Unauthorized")).unwrap(),
            json!({"error": "Unauthorized"})
        );
    }
}
