//! The `VirtualService` spec (networking.istio.io).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualService {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}
