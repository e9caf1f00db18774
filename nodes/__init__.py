"""ComfyUI glue: one module per stage. Converts LATENT dicts and conventions, calls avi_core."""

NODES = []
