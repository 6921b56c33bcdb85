from annotations.models.imagette import Imagette
from annotations.models.labels import Consensus, ConsensusRun, GoldLabel, LabelDecision
from annotations.models.votes import Assignment, Vote

__all__ = ["Assignment", "Consensus", "ConsensusRun", "GoldLabel", "Imagette", "LabelDecision", "Vote"]
