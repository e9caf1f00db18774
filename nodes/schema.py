"""io.Schema for the pack's nodes, with the newer schema fields used only where the host's Schema has them."""
import dataclasses

from comfy_api.v0_0_2 import io

# Words a user may type in the node search; io.Schema.search_aliases exists in ComfyUI newer than v0.3.75.
SEARCH_ALIASES = {
    "AVICaptureLatent": ["avi", "latent svd", "capture step", "attribute edit"],
    "AVISVDDecompose": ["avi", "svd", "singular value decomposition", "latent spectrum"],
    "AVITrainPhi": ["avi", "train attribute", "attribute vector", "learn edit"],
    "AVIIntegrate": ["avi", "attribute vector integration", "apply attribute", "edit strength rho"],
    "AVIInjectLatent": ["avi", "finish sampling", "continue sampler", "resume from step"],
    "AVISavePhi": ["avi", "save attribute", "save edit"],
    "AVILoadPhi": ["avi", "load attribute", "load edit"],
    "AVIScaleSingularValue": ["avi", "svd", "singular value", "spectrum probe"],
    "AVISubspaceDistance": ["avi", "grassmann", "geodesic distance", "subspace"],
    "AVIImageGrid": ["avi", "image grid", "contact sheet", "compare images"],
    "AVIInvertLatent": ["avi", "ddim inversion", "invert image", "edit real image"],
    "AVISingularValueSweep": ["avi", "svd sweep", "singular value grid", "figure 2"],
    "AVICaptureTrajectory": ["avi", "sampler trajectory", "keep every step", "x0 per step"],
    "AVITrajectoryDistance": ["avi", "grassmann along trajectory", "figure 5", "subspace drift"],
    "AVIMobilityMap": ["avi", "mobility", "singular vector overlap", "rank swap"],
}


def schema_fields(fields: dict, supported: set) -> dict:
    """The fields with the node's search aliases added where `supported` (the host's Schema fields) names them."""
    aliases = SEARCH_ALIASES.get(fields.get("node_id"))
    if aliases and "search_aliases" in supported and "search_aliases" not in fields:
        return {**fields, "search_aliases": list(aliases)}
    return fields


def schema(**fields) -> io.Schema:
    """io.Schema(**fields), with search aliases on hosts that read them."""
    return io.Schema(**schema_fields(fields, {f.name for f in dataclasses.fields(io.Schema)}))
