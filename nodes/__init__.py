"""ComfyUI glue: one module per stage. Converts LATENT dicts and conventions, calls avi_core."""
from .capture import CaptureLatentAtStep
from .explore import ScaleSingularValue, SubspaceDistance
from .files import LoadAVIPhi, SaveAVIPhi
from .grid import AVIImageGrid
from .inject import InjectLatent
from .integrate import AVIIntegrate
from .invert import InvertLatent
from .svd import SVDDecompose
from .sweep import SingularValueSweep
from .train import TrainAVIPhi
from .trajectory import CaptureTrajectory, MobilityMap, TrajectoryDistance

NODES = [CaptureLatentAtStep, SVDDecompose, TrainAVIPhi, AVIIntegrate, InjectLatent, SaveAVIPhi, LoadAVIPhi,
         ScaleSingularValue, SubspaceDistance, AVIImageGrid, InvertLatent, SingularValueSweep, CaptureTrajectory,
         TrajectoryDistance, MobilityMap]
