//! Legacy `config.istio.io/v1alpha2` DestinationPolicy (circuit breakers), converted to the
//! equivalent `networking.istio.io/v1` DestinationRule.

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;

/// Convert a DestinationPolicy manifest into a DestinationRule manifest, with a warning that
/// says so.
pub(crate) fn convert(manifest: Manifest) -> Result<(Manifest, Diagnostic), Vec<Diagnostic>> {
    Err(vec![manifest.error(
        "legacy-destination-policy",
        "/kind",
        "DestinationPolicy conversion is not written yet",
    )])
}
