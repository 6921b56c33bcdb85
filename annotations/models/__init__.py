from annotations.models.imagette import Imagette
from annotations.models.labels import Consensus, ConsensusRun, GoldLabel, LabelDecision
from annotations.models.scene import IceChart, Scene, ScenePolygon, ScenePolygonRevision
from annotations.models.track import Track, TrackCollocation, TrackLabel, TrackLabelRange
from annotations.models.votes import Assignment, Vote

__all__ = ["Assignment", "Consensus", "ConsensusRun", "GoldLabel", "IceChart", "Imagette", "LabelDecision", "Scene",
           "ScenePolygon", "ScenePolygonRevision", "Track", "TrackCollocation", "TrackLabel",
           "TrackLabelRange", "Vote"]
