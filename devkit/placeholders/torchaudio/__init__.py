"""Import-only placeholder for torchaudio, for the devkit's ComfyUI hosts only (see ../avi_import_placeholder.py)."""
import sys

import avi_import_placeholder

avi_import_placeholder.install(sys.modules[__name__])
