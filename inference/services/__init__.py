"""Writes of the inference layer: prediction jobs (`predict`) and the review queue (`review`)."""
