"""Development kit: the embedded ComfyUI host for tests and the demo. Not loaded by ComfyUI."""
