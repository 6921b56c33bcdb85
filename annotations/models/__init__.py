from annotations.models.imagette import Imagette
from annotations.models.labels import Consensus, GoldLabel, LabelDecision
from annotations.models.votes import Assignment, Vote

__all__ = ["Assignment", "Consensus", "GoldLabel", "Imagette", "LabelDecision", "Vote"]
